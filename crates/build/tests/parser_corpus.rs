//! The parser against Docker's own: every Dockerfile of the corpus
//! (`tests/data/dockerfiles`, real Dockerfiles of official images and a few
//! tricky ones) parses to the instruction list BuildKit's parser printed
//! for it, and the official images' Dockerfiles type-check as stages.

use std::path::Path;

use hafen_build::{instructions, syntax};

#[test]
fn the_corpus_parses_as_dockers_parser_parses_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dockerfiles");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "Dockerfile"))
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("dockerfile");
        let expected = std::fs::read_to_string(path.with_extension("dump")).expect("dump");
        let parsed = syntax::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            parsed.dump().trim_end(),
            expected.trim_end(),
            "{}",
            path.display()
        );
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.starts_with("hafen--") {
            instructions::stages(&parsed).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} Dockerfiles in the corpus");
}
