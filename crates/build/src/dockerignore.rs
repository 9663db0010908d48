//! `.dockerignore`: which files of the context a build does not see, as
//! Docker reads the file (moby's `ignorefile` and `patternmatcher`): one
//! pattern per line, `#` comments, `!` exceptions, paths cleaned and made
//! relative, Go's `filepath.Match` syntax plus `**` for any number of
//! directories; a path is excluded when it or one of its parents matches,
//! and the last pattern that matches decides.

use regex::Regex;

/// A bad pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IgnoreError {
    /// A pattern Go's `filepath.Match` would refuse.
    #[error("syntax error in pattern {0:?}")]
    BadPattern(String),
    /// A bad pattern in a .dockerignore line.
    #[error("line {line}: syntax error in pattern {pattern:?}")]
    BadLine {
        /// 1-based.
        line: usize,
        /// The pattern.
        pattern: String,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    regex: Regex,
}

/// The patterns of a `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct Patterns {
    list: Vec<Pattern>,
}

/// Go's `path.Clean` of a relative slash path.
fn clean(p: &str) -> String {
    crate::copy::clean(p)
}

/// The regular expression of a pattern (patternmatcher's translation).
fn compile(pattern: &str) -> Result<Regex, IgnoreError> {
    translate(pattern, true)
}

/// The regular expression of a glob: Go's `filepath.Match` syntax (`*`
/// and `?` stop at `/`, `[...]` classes with `^`, `\` escapes), and with
/// `doublestar` patternmatcher's `**` for any number of directories.
fn translate(pattern: &str, doublestar: bool) -> Result<Regex, IgnoreError> {
    let bad = || IgnoreError::BadPattern(pattern.to_string());
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if doublestar && chars.get(i + 1) == Some(&'*') => {
                i += 1;
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                }
                re.push_str(if i + 1 >= chars.len() { ".*" } else { "(.*/)?" });
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                i += 1;
                let n = *chars.get(i).ok_or_else(bad)?;
                re.push_str(&regex::escape(&n.to_string()));
            }
            '[' => {
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'^') {
                    class.push('^');
                    j += 1;
                }
                let start = j;
                loop {
                    let c = *chars.get(j).ok_or_else(bad)?;
                    if c == ']' && j > start {
                        break;
                    }
                    if c == ']' {
                        return Err(bad());
                    }
                    if c == '\\' {
                        j += 1;
                        let n = *chars.get(j).ok_or_else(bad)?;
                        class.push_str(&regex::escape(&n.to_string()));
                    } else if c == '[' {
                        class.push_str("\\[");
                    } else {
                        class.push(c);
                    }
                    j += 1;
                }
                class.push(']');
                re.push_str(&class);
                i = j;
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|_| bad())
}

impl Patterns {
    /// Reads a .dockerignore file's text.
    pub fn parse(text: &str) -> Result<Patterns, IgnoreError> {
        let mut list = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exception, p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let p = Self::normalise(p);
            if p.is_empty() {
                continue;
            }
            let regex = compile(&p).map_err(|_| IgnoreError::BadLine {
                line: n + 1,
                pattern: line.to_string(),
            })?;
            list.push(Pattern {
                text: p,
                exception,
                regex,
            });
        }
        Ok(Patterns { list })
    }

    /// Patterns given one by one (`COPY --exclude`); `!` makes an
    /// exception.
    pub fn from_patterns(patterns: &[String]) -> Result<Patterns, IgnoreError> {
        let mut list = Vec::new();
        for raw in patterns {
            let (exception, p) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, raw.trim()),
            };
            let p = Self::normalise(p);
            if p.is_empty() {
                continue;
            }
            list.push(Pattern {
                regex: compile(&p)?,
                text: p,
                exception,
            });
        }
        Ok(Patterns { list })
    }

    fn normalise(p: &str) -> String {
        if p.is_empty() {
            return String::new();
        }
        let c = clean(p);
        match c.strip_prefix('/') {
            Some("") => "/".into(),
            Some(rest) => rest.to_string(),
            None => c,
        }
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether the context path `path` (`a/b`, no leading `./`) is left
    /// out: the last pattern matching it or one of its parents decides.
    pub fn excluded(&self, path: &str) -> bool {
        if self.list.is_empty() {
            return false;
        }
        let path = clean(path);
        // The path's parents: its prefixes up to each `/`.
        let ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
        let mut excluded = false;
        for p in &self.list {
            if p.exception != excluded {
                continue;
            }
            let hit = p.regex.is_match(&path) || ends.iter().any(|&e| p.regex.is_match(&path[..e]));
            if hit {
                excluded = !p.exception;
            }
        }
        excluded
    }

    /// For an excluded directory: whether an exception names something
    /// below it (then a walker must still look inside).
    pub fn may_include_below(&self, dir: &str) -> bool {
        let prefix = format!("{}/", clean(dir));
        self.list
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.text).starts_with(&prefix) || p.text.starts_with("**"))
    }
}

/// Go's `filepath.Match`: whether `name` matches `pattern` (`*` and `?`
/// do not match `/`); a malformed pattern is an error.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, IgnoreError> {
    Ok(translate(pattern, false)?.is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Patterns {
        Patterns::parse(text).expect("patterns")
    }

    #[test]
    fn patterns_match_as_docker_matches_them() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.log", "a.log", true),
            ("*.log", "d/a.log", false),
            ("**/*.log", "d/e/a.log", true),
            ("**/*.log", "a.log", true),
            ("d", "d/x/y", true),
            ("d/*", "d/x/y", true),
            ("/d", "d/x", true),
            ("./d/../e", "e", true),
            ("d?", "d1", true),
            ("d?", "d12", false),
            ("[a-c].txt", "b.txt", true),
            ("[^a-c].txt", "b.txt", false),
            ("**", "anything/at/all", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/**", "a/x", true),
            ("foo\\*", "foo*", true),
            ("foo\\*", "foox", false),
            ("node_modules", "sub/node_modules", false),
            ("**/node_modules", "sub/node_modules/x", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(p(pattern).excluded(path), *want, "{pattern} {path}");
        }
    }

    #[test]
    fn the_last_matching_pattern_wins() {
        let ps = p("# comment\n*.md\n!README.md\n\n  docs  \n!docs/keep\n");
        assert!(ps.excluded("a.md"));
        assert!(!ps.excluded("README.md"));
        assert!(ps.excluded("docs/x"));
        assert!(!ps.excluded("docs/keep"));
        assert!(ps.may_include_below("docs"));
        assert!(!ps.may_include_below("other"));
        let again = p("*.md\n!README.md\nREADME.md\n");
        assert!(again.excluded("README.md"));
        assert!(!p("").excluded("x"));
        assert!(p("").is_empty());
    }

    #[test]
    fn bad_patterns_name_their_line() {
        let e = Patterns::parse("ok\n[unclosed\n").expect_err("bad");
        assert_eq!(
            e,
            IgnoreError::BadLine {
                line: 2,
                pattern: "[unclosed".into()
            }
        );
    }

    #[test]
    fn go_filepath_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a/b", false),
            ("a*/b", "abc/b", true),
            ("a?c", "abc", true),
            ("[a-z]", "q", true),
            ("[^a-z]", "q", false),
            ("a\\*", "a*", true),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(glob_match(pattern, name), Ok(*want), "{pattern} {name}");
        }
        assert!(glob_match("[", "a").is_err());
        assert!(glob_match("a\\", "a").is_err());
    }
}
