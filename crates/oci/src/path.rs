//! Slash-separated paths as Go's `path` package treats them (the paths of
//! image layers, archives and Dockerfiles).

/// Go's `path.Clean`: one `/` between names, no `.`, `..` resolved as far
/// as the path allows (a rooted path never goes above `/`), `.` for an
/// empty result.
pub fn clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn as_go_cleans() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a/b/../c", "a/c"),
            ("/a/../../b/./c/", "/b/c"),
            ("a/../..", ".."),
            ("../../x", "../../x"),
            ("//a//b", "/a/b"),
            ("./", "."),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }
}
