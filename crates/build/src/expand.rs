//! Variable expansion in Dockerfile words, as Docker's builder does it
//! (the `shell` package of BuildKit): `$VAR`, `${VAR}` and the forms
//! `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?message}`, `${VAR?message}`, `${VAR#pattern}`, `${VAR##pattern}`,
//! `${VAR%pattern}`, `${VAR%%pattern}`, `${VAR/pattern/text}` and
//! `${VAR//pattern/text}`; single quotes keep their text, double quotes
//! expand inside, and the escape character (`\` or the `# escape=`
//! directive's) takes the next character as it is.

use std::collections::BTreeSet;

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LexError {
    /// What is wrong.
    pub message: String,
}

fn error<T>(message: impl Into<String>) -> Result<T, LexError> {
    Err(LexError {
        message: message.into(),
    })
}

/// Expands words.
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    escape: char,
}

/// Variable values by name.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

struct Scan<'a> {
    chars: Vec<char>,
    pos: usize,
    escape: char,
    env: Env<'a>,
    used: BTreeSet<String>,
}

impl Lexer {
    /// A lexer with this escape character.
    pub fn new(escape: char) -> Lexer {
        Lexer { escape }
    }

    /// One word: quotes removed, variables expanded.
    pub fn process_word(&self, word: &str, env: Env<'_>) -> Result<String, LexError> {
        self.process_word_with_used(word, env).map(|(w, _)| w)
    }

    /// [`Lexer::process_word`], also returning the names of the
    /// variables it looked up.
    pub fn process_word_with_used(
        &self,
        word: &str,
        env: Env<'_>,
    ) -> Result<(String, BTreeSet<String>), LexError> {
        let mut s = self.scan(word, env);
        let words = s.words(None, false)?;
        let text: String = words
            .into_iter()
            .map(|w| w.text)
            .collect::<Vec<_>>()
            .join(" ");
        Ok((text, s.used))
    }

    /// Splits `text` into words on whitespace outside quotes, expanding
    /// each (the value of a variable is not split again).
    pub fn process_words(&self, text: &str, env: Env<'_>) -> Result<Vec<String>, LexError> {
        let mut s = self.scan(text, env);
        let words = s.words(None, true)?;
        Ok(words.into_iter().map(|w| w.text).collect())
    }

    fn scan<'a>(&self, text: &str, env: Env<'a>) -> Scan<'a> {
        Scan {
            chars: text.chars().collect(),
            pos: 0,
            escape: self.escape,
            env,
            used: BTreeSet::new(),
        }
    }
}

/// A word being made: its text, and whether it exists even if empty
/// (`""` is a word).
#[derive(Debug, Default)]
struct Word {
    text: String,
    started: bool,
}

impl Scan<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Words up to `stop` (not consumed... consumed, as BuildKit does) or
    /// the end; `split`: whitespace outside quotes separates words, else
    /// it is kept.
    fn words(&mut self, stop: Option<char>, split: bool) -> Result<Vec<Word>, LexError> {
        let mut out = Vec::new();
        let mut cur = Word::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                out.push(cur);
                return Ok(out);
            }
            self.pos += 1;
            if split && c.is_whitespace() {
                if cur.started || !cur.text.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            cur.started = true;
            match c {
                '\'' => cur.text.push_str(&self.single_quoted()?),
                '"' => cur.text.push_str(&self.double_quoted()?),
                '$' => cur.text.push_str(&self.dollar()?),
                c if c == self.escape => match self.next() {
                    Some(n) => cur.text.push(n),
                    // A trailing escape stays.
                    None => cur.text.push(c),
                },
                c => cur.text.push(c),
            }
        }
        if let Some(s) = stop {
            return error(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        if cur.started || !cur.text.is_empty() || (!split && out.is_empty()) {
            out.push(cur);
        }
        Ok(out)
    }

    fn single_quoted(&mut self) -> Result<String, LexError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return error(
                        "unexpected end of statement while looking for matching single-quote",
                    );
                }
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, LexError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => {
                    return error(
                        "unexpected end of statement while looking for matching double-quote",
                    );
                }
                Some('"') => return Ok(s),
                Some('$') => s.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        s.push(n);
                    }
                    _ => s.push(c),
                },
                Some(c) => s.push(c),
            }
        }
    }

    fn lookup(&mut self, name: &str) -> Option<String> {
        self.used.insert(name.to_string());
        (self.env)(name)
    }

    /// After a `$`.
    fn dollar(&mut self) -> Result<String, LexError> {
        match self.peek() {
            None => Ok("$".into()),
            Some('{') => {
                self.pos += 1;
                self.braced()
            }
            Some(c) if c.is_ascii_digit() => {
                // Positional parameters are empty.
                self.pos += 1;
                Ok(String::new())
            }
            Some(c) if c.is_alphanumeric() || c == '_' => {
                let name = self.name();
                Ok(self.lookup(&name).unwrap_or_default())
            }
            Some(_) => Ok("$".into()),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// The word up to the closing `}` (expanded).
    fn word_to_brace(&mut self) -> Result<String, LexError> {
        let words = self.words(Some('}'), false)?;
        Ok(words
            .into_iter()
            .map(|w| w.text)
            .collect::<Vec<_>>()
            .join(" "))
    }

    /// Raw text up to an unescaped `stop`, for patterns (expanded, quotes
    /// kept out).
    fn pattern_to(&mut self, stops: &[char]) -> Result<(String, Option<char>), LexError> {
        let mut s = String::new();
        loop {
            match self.next() {
                None => return error("syntax error: missing '}'"),
                Some(c) if stops.contains(&c) => return Ok((s, Some(c))),
                Some('$') => s.push_str(&glob_escape(&self.dollar()?)),
                Some('\'') => s.push_str(&glob_escape(&self.single_quoted()?)),
                Some('"') => s.push_str(&glob_escape(&self.double_quoted()?)),
                Some(c) if c == self.escape => match self.next() {
                    Some(n) => {
                        s.push('\\');
                        s.push(n);
                    }
                    None => return error("syntax error: missing '}'"),
                },
                Some(c) => s.push(c),
            }
        }
    }

    /// After `${`.
    fn braced(&mut self) -> Result<String, LexError> {
        let name = match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                self.pos += 1;
                c.to_string()
            }
            _ => self.name(),
        };
        if name.is_empty() {
            return error("bad substitution: missing variable name in ${}");
        }
        let value = if name.chars().all(|c| c.is_ascii_digit()) {
            None
        } else {
            self.lookup(&name)
        };
        match self.next() {
            None => error(format!("syntax error: missing '}}' in ${{{name}")),
            Some('}') => Ok(value.unwrap_or_default()),
            Some(':') => {
                let m = self.next();
                match m {
                    Some('-') => {
                        let word = self.word_to_brace()?;
                        Ok(match value {
                            Some(v) if !v.is_empty() => v,
                            _ => word,
                        })
                    }
                    Some('+') => {
                        let word = self.word_to_brace()?;
                        Ok(match value {
                            Some(v) if !v.is_empty() => word,
                            _ => String::new(),
                        })
                    }
                    Some('?') => {
                        let word = self.word_to_brace()?;
                        match value {
                            Some(v) if !v.is_empty() => Ok(v),
                            _ if word.is_empty() => {
                                error(format!("{name}: is not allowed to be unset"))
                            }
                            _ => error(format!("{name}: {word}")),
                        }
                    }
                    other => error(format!(
                        "unsupported modifier ({}) in substitution",
                        other.map_or(String::new(), |c| format!(":{c}"))
                    )),
                }
            }
            Some('-') => {
                let word = self.word_to_brace()?;
                Ok(value.unwrap_or(word))
            }
            Some('+') => {
                let word = self.word_to_brace()?;
                Ok(if value.is_some() { word } else { String::new() })
            }
            Some('?') => {
                let word = self.word_to_brace()?;
                match value {
                    Some(v) => Ok(v),
                    None if word.is_empty() => error(format!("{name}: is not allowed to be unset")),
                    None => error(format!("{name}: {word}")),
                }
            }
            Some(c @ ('#' | '%')) => {
                let longest = self.peek() == Some(c);
                if longest {
                    self.pos += 1;
                }
                let (pattern, _) = self.pattern_to(&['}'])?;
                let v = value.unwrap_or_default();
                Ok(if c == '#' {
                    trim_prefix(&v, &pattern, longest)
                } else {
                    trim_suffix(&v, &pattern, longest)
                })
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let (pattern, end) = self.pattern_to(&['/', '}'])?;
                let replacement = if end == Some('/') {
                    self.word_to_brace()?
                } else {
                    String::new()
                };
                Ok(replace(
                    &value.unwrap_or_default(),
                    &pattern,
                    &replacement,
                    all,
                ))
            }
            Some(c) => error(format!("unsupported modifier ({c}) in substitution")),
        }
    }
}

/// Escapes glob characters of a literal part of a pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Shell glob matching of a whole string (`*`, `?`, `[...]`, `\x`).
fn glob(p: &[char], s: &[char]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some(('*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some(('?', rest)) => !s.is_empty() && glob(rest, &s[1..]),
        Some(('\\', rest)) => match (rest.split_first(), s.split_first()) {
            (Some((pc, prest)), Some((sc, srest))) => pc == sc && glob(prest, srest),
            _ => false,
        },
        Some(('[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|c| *c == ']').map(|i| i + 1) else {
                return s.first() == Some(&'[') && glob(rest, &s[1..]);
            };
            let Some((c, srest)) = s.split_first() else {
                return false;
            };
            let mut class = &rest[..close];
            let negate = matches!(class.first(), Some('!' | '^'));
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == '-' {
                    if class[i] <= *c && *c <= class[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if class[i] == *c {
                        hit = true;
                    }
                    i += 1;
                }
            }
            hit != negate && glob(&rest[close + 1..], srest)
        }
        Some((pc, rest)) => s.first() == Some(pc) && glob(rest, &s[1..]),
    }
}

fn trim_prefix(v: &str, pattern: &str, longest: bool) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = v.chars().collect();
    let mut ends: Vec<usize> = (0..=s.len()).collect();
    if longest {
        ends.reverse();
    }
    for e in ends {
        if glob(&p, &s[..e]) {
            return s[e..].iter().collect();
        }
    }
    v.to_string()
}

fn trim_suffix(v: &str, pattern: &str, longest: bool) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = v.chars().collect();
    let mut starts: Vec<usize> = (0..=s.len()).rev().collect();
    if longest {
        starts.reverse();
    }
    for b in starts {
        if glob(&p, &s[b..]) {
            return s[..b].iter().collect();
        }
    }
    v.to_string()
}

fn replace(v: &str, pattern: &str, with: &str, all: bool) -> String {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = v.chars().collect();
    if p.is_empty() {
        return v.to_string();
    }
    let mut out = String::new();
    let mut i = 0;
    let mut done = false;
    while i < s.len() {
        if !done && let Some(len) = (1..=s.len() - i).rev().find(|l| glob(&p, &s[i..i + l])) {
            out.push_str(with);
            i += len;
            if !all {
                done = true;
            }
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PWD" => Some("/home".into()),
            "SHELL" => Some("bash".into()),
            "EMPTY" => Some(String::new()),
            "PATHX" => Some("/usr/local/bin/tool".into()),
            "WORDS" => Some("a b  c".into()),
            _ => None,
        }
    }

    fn word(s: &str) -> Result<String, LexError> {
        Lexer::new('\\').process_word(s, &env)
    }

    #[test]
    fn words_expand_as_docker_expands_them() {
        let cases = [
            ("hello", "hello"),
            ("he'll'o", "hello"),
            ("he\"ll\"o", "hello"),
            ("\"$PWD\"", "/home"),
            ("'$PWD'", "$PWD"),
            ("\\$PWD", "$PWD"),
            ("\"\\$PWD\"", "$PWD"),
            ("$PWD/x", "/home/x"),
            ("${PWD}x", "/homex"),
            ("$NOPE", ""),
            ("${NOPE:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${NOPE-dflt}", "dflt"),
            ("${PWD:-dflt}", "/home"),
            ("${PWD:+set}", "set"),
            ("${EMPTY:+set}", ""),
            ("${EMPTY+set}", "set"),
            ("${NOPE+set}", ""),
            ("${NOPE:-$PWD/y}", "/home/y"),
            ("${NOPE:-'a b'}", "a b"),
            ("${PATHX#*/}", "usr/local/bin/tool"),
            ("${PATHX##*/}", "tool"),
            ("${PATHX%/*}", "/usr/local/bin"),
            ("${PATHX%%/*}", ""),
            ("${PATHX/local/LOCAL}", "/usr/LOCAL/bin/tool"),
            ("${PATHX//o/0}", "/usr/l0cal/bin/t00l"),
            ("a\\ b", "a b"),
            ("$1x", "x"),
            ("$", "$"),
            ("a$", "a$"),
            ("$!", "$!"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\nb\"", "a\\nb"),
            ("$WORDS", "a b  c"),
        ];
        for (input, want) in cases {
            assert_eq!(word(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_words_are_errors() {
        for bad in [
            "'open",
            "\"open",
            "${PWD",
            "${}",
            "${PWD:x}",
            "${NOPE:?must be set}",
            "${NOPE?}",
        ] {
            assert!(word(bad).is_err(), "{bad}");
        }
        assert_eq!(
            word("${NOPE:?must be set}").expect_err("unset").message,
            "NOPE: must be set"
        );
    }

    #[test]
    fn words_split_outside_quotes_only() {
        let l = Lexer::new('\\');
        assert_eq!(
            l.process_words("a \"b c\" 'd e' $WORDS f\\ g", &env)
                .expect("words"),
            vec!["a", "b c", "d e", "a b  c", "f g"]
        );
        assert_eq!(
            l.process_words("  ", &env).expect("empty"),
            Vec::<String>::new()
        );
        assert_eq!(
            l.process_words("\"\" x", &env).expect("blank"),
            vec!["", "x"]
        );
    }

    #[test]
    fn the_escape_directive_changes_the_escape_character() {
        let l = Lexer::new('`');
        assert_eq!(
            l.process_word("c:\\dir`$PWD", &env).expect("word"),
            "c:\\dir$PWD"
        );
    }

    #[test]
    fn used_variables_are_reported() {
        let l = Lexer::new('\\');
        let (w, used) = l
            .process_word_with_used("${A:-$PWD}-$B", &env)
            .expect("word");
        assert_eq!(w, "/home-");
        assert_eq!(used.into_iter().collect::<Vec<_>>(), ["A", "B", "PWD"]);
    }
}
