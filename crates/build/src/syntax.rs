//! The Dockerfile parser: lines to instruction nodes, as Docker's parser
//! (BuildKit's `frontend/dockerfile/parser`) makes them.
//!
//! Parser directives (`# syntax=`, `# escape=`, `# check=`) come first;
//! comments and empty lines are skipped, also inside an instruction
//! continued over several lines with the escape character; each
//! instruction's arguments are split the way that instruction wants them
//! (whitespace-separated words, JSON or a raw string, `key=value` pairs,
//! a sub-instruction for ONBUILD); `--flags` come off the front; `RUN`,
//! `COPY` and `ADD` take heredocs (`<<EOF` ... `EOF`). Unknown
//! instructions parse (they fail when typed, with their line).

use std::fmt::Write as _;

/// A parse error, with its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A warning (the build goes on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line.
    pub line: usize,
    /// What.
    pub message: String,
}

/// The parser directives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// `# syntax=`.
    pub syntax: Option<String>,
    /// `# check=`.
    pub check: Option<String>,
}

/// A heredoc of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word.
    pub name: String,
    /// The lines, each ending with a newline.
    pub content: String,
    /// Variables in it are expanded (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs were removed.
    pub chomp: bool,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Lower case: `from`, `run`, ...
    pub keyword: String,
    /// As written: `--mount=type=cache,target=/x`.
    pub flags: Vec<String>,
    /// The arguments, split as the instruction wants them (ENV and
    /// LABEL: key, value, key, value, ...).
    pub values: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// ONBUILD's instruction.
    pub sub: Option<Box<Node>>,
    /// Heredocs.
    pub heredocs: Vec<Heredoc>,
    /// 1-based first line.
    pub start_line: usize,
    /// 1-based last line (heredocs included).
    pub end_line: usize,
    /// The instruction's text, its lines joined.
    pub original: String,
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// The directives.
    pub directives: Directives,
    /// The instructions.
    pub nodes: Vec<Node>,
    /// Warnings (empty continuation lines).
    pub warnings: Vec<Warning>,
}

fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        line,
        message: message.into(),
    })
}

/// A directive line: `# name = value`.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.trim_start().strip_prefix('#')?.trim();
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    Some((name.to_lowercase(), value.to_string()))
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// The line without the continuation escape at its end, and whether the
/// instruction ends on it.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        // An escaped escape character is no continuation.
        Some(rest) if !rest.ends_with(escape) => (rest.to_string(), false),
        _ => (line.to_string(), true),
    }
}

/// Splits on whitespace outside quotes, keeping quotes and escapes in the
/// words (BuildKit's `parseWords`).
fn words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let last = i + 1 == chars.len();
        if !in_word && quote.is_none() {
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if c.is_whitespace() {
                    if blank_ok || !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    blank_ok = false;
                    in_word = false;
                    i += 1;
                    continue;
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    if last {
                        i += 1;
                        continue;
                    }
                    cur.push(c);
                    i += 1;
                    cur.push(chars[i]);
                    i += 1;
                    continue;
                }
                cur.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    if last {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    cur.push(c);
                    i += 1;
                    cur.push(chars[i]);
                    i += 1;
                    continue;
                }
                cur.push(c);
            }
        }
        i += 1;
    }
    if (in_word || quote.is_some()) && (blank_ok || !cur.is_empty()) {
        out.push(cur);
    }
    out
}

/// `--flags` at the start of `rest` (quotes and escapes removed, as
/// BuildKit's `extractBuilderFlags` does), and what follows them.
fn flags(rest: &str, escape: char) -> (Vec<String>, String) {
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    loop {
        // Between words: the next must start with `--`.
        while i < chars.len() && chars[i].1.is_whitespace() {
            i += 1;
        }
        if i == chars.len() {
            return (words, String::new());
        }
        let starts_flag = chars[i].1 == '-' && chars.get(i + 1).is_some_and(|c| c.1 == '-');
        if !starts_flag {
            return (words, rest[chars[i].0..].to_string());
        }
        let mut quote: Option<char> = None;
        loop {
            if i == chars.len() {
                if cur != "--" && (blank_ok || !cur.is_empty()) {
                    words.push(std::mem::take(&mut cur));
                }
                return (words, String::new());
            }
            let c = chars[i].1;
            match quote {
                None => {
                    if c.is_whitespace() {
                        let word = std::mem::take(&mut cur);
                        if word == "--" {
                            return (words, rest[chars[i].0..].to_string());
                        }
                        if blank_ok || !word.is_empty() {
                            words.push(word);
                        }
                        blank_ok = false;
                        break;
                    }
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                        blank_ok = true;
                        i += 1;
                        continue;
                    }
                    if c == escape {
                        if i + 1 == chars.len() {
                            i += 1;
                            continue;
                        }
                        i += 1;
                    }
                    cur.push(chars[i].1);
                }
                Some(q) => {
                    if c == q {
                        quote = None;
                        i += 1;
                        continue;
                    }
                    if c == escape {
                        if i + 1 == chars.len() {
                            quote = None;
                            i += 1;
                            continue;
                        }
                        i += 1;
                    }
                    cur.push(chars[i].1);
                }
            }
            i += 1;
        }
    }
}

/// JSON errors that are parse errors: a JSON array of something else
/// than strings.
const NOT_STRINGS: &str = "when using JSON array syntax, arrays must be comprised of strings only";

/// `Ok(Some)`: a JSON array of strings; `Ok(None)`: no JSON array.
fn json_strings(rest: &str) -> Result<Option<Vec<String>>, &'static str> {
    let t = rest.trim_start();
    if !t.starts_with('[') {
        return Ok(None);
    }
    let Ok(v) = serde_json::from_str::<Vec<serde_json::Value>>(t) else {
        return Ok(None);
    };
    v.into_iter()
        .map(|x| match x {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRINGS),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn split_ws(rest: &str) -> Vec<String> {
    rest.split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// The node of one logical line.
fn node(line: &str, escape: char, at: usize) -> Result<Node, ParseError> {
    let trimmed = line.trim();
    let (cmd, rest) = match trimmed.find([' ', '\t', '\u{b}', '\u{c}', '\r']) {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, ""),
    };
    let keyword = cmd.to_lowercase();
    let (flags, rest) = if rest.is_empty() {
        (Vec::new(), String::new())
    } else {
        flags(rest, escape)
    };
    let rest = rest.trim();
    let mut n = Node {
        keyword: keyword.clone(),
        flags,
        values: Vec::new(),
        json: false,
        sub: None,
        heredocs: Vec::new(),
        start_line: at,
        end_line: at,
        original: line.to_string(),
    };
    let json = |rest: &str| {
        json_strings(rest).map_err(|m| ParseError {
            line: at,
            message: m.to_string(),
        })
    };
    match keyword.as_str() {
        "from" | "expose" => n.values = split_ws(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" if !rest.is_empty() => {
            n.values = vec![rest.to_string()];
        }
        "maintainer" | "stopsignal" | "user" | "workdir" => {}
        "run" | "cmd" | "entrypoint" | "shell" if !rest.is_empty() => match json(rest)? {
            Some(v) => {
                n.values = v;
                n.json = true;
            }
            None => n.values = vec![rest.to_string()],
        },
        "run" | "cmd" | "entrypoint" | "shell" => {}
        "add" | "copy" | "volume" => match json(rest)? {
            Some(v) => {
                n.values = v;
                n.json = true;
            }
            None => n.values = split_ws(rest),
        },
        "env" | "label" => n.values = name_values(rest, &keyword, escape, at)?,
        "arg" => n.values = words(rest, escape),
        "healthcheck" => {
            let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
            if sep > 0 {
                let typ = &rest[..sep];
                let cmd = rest[sep..].trim_start();
                n.values.push(typ.to_string());
                if !cmd.is_empty() {
                    match json(cmd)? {
                        Some(v) => {
                            n.values.extend(v);
                            n.json = true;
                        }
                        None => n.values.push(cmd.to_string()),
                    }
                }
            }
        }
        "onbuild" if !rest.is_empty() => {
            n.sub = Some(Box::new(node(rest, escape, at)?));
        }
        "onbuild" => {}
        // Unknown instructions parse (with one empty argument, as
        // BuildKit's parser keeps them); they fail when typed.
        _ => n.values = vec![String::new()],
    }
    Ok(n)
}

/// ENV and LABEL arguments: `k=v k2="v 2"` or the old `k value`, as
/// BuildKit keeps them: key, value, separator (`=`, or empty for the old
/// form), for each pair.
fn name_values(
    rest: &str,
    keyword: &str,
    escape: char,
    at: usize,
) -> Result<Vec<String>, ParseError> {
    let ws = words(rest, escape);
    if ws.is_empty() {
        return Ok(Vec::new());
    }
    if !ws[0].contains('=') {
        // The old form: one key, the rest is its value.
        let trimmed = rest.trim();
        let Some(i) = trimmed.find([' ', '\t', '\u{b}', '\u{c}', '\r']) else {
            return fail(
                at,
                format!("{} must have two arguments", keyword.to_uppercase()),
            );
        };
        let key = &trimmed[..i];
        let value = trimmed[i..].trim_start_matches([' ', '\t', '\u{b}', '\u{c}', '\r']);
        return Ok(vec![key.to_string(), value.to_string(), String::new()]);
    }
    let mut out = Vec::new();
    for w in ws {
        let Some((k, v)) = w.split_once('=') else {
            return fail(
                at,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            );
        };
        out.push(k.to_string());
        out.push(v.to_string());
        out.push("=".to_string());
    }
    Ok(out)
}

/// The heredocs a line opens: `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`.
fn heredoc_marks(line: &str, escape: char) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for w in words(line, escape) {
        let Some(pos) = w.find("<<") else { continue };
        if !w[..pos].chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let mut r = &w[pos + 2..];
        let chomp = r.starts_with('-');
        if chomp {
            r = &r[1..];
        }
        if r.is_empty() || r.starts_with('<') {
            continue;
        }
        let quoted = (r.starts_with('"') && r.ends_with('"') && r.len() >= 2)
            || (r.starts_with('\'') && r.ends_with('\'') && r.len() >= 2);
        let name = if quoted { &r[1..r.len() - 1] } else { r };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            continue;
        }
        out.push((name.to_string(), !quoted, chomp));
    }
    out
}

/// Parses a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut d = Directives {
        escape: '\\',
        syntax: None,
        check: None,
    };
    let mut i = 0;
    // Directives: only at the very top.
    let mut seen = Vec::new();
    while i < lines.len() {
        let Some((name, value)) = directive(lines[i]) else {
            break;
        };
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            break;
        }
        if seen.contains(&name) {
            return fail(
                i + 1,
                format!("only one {name} parser directive can be used"),
            );
        }
        seen.push(name.clone());
        match name.as_str() {
            "escape" => {
                d.escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return fail(
                            i + 1,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        );
                    }
                }
            }
            "syntax" => d.syntax = Some(value),
            _ => d.check = Some(value),
        }
        i += 1;
    }
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let start = i;
        if is_comment(raw) || raw.trim().is_empty() {
            continue;
        }
        let (mut line, mut ended) = trim_continuation(raw.trim_start(), d.escape);
        let mut empty_continuation = false;
        while !ended && i < lines.len() {
            let next = lines[i];
            i += 1;
            if is_comment(next) {
                continue;
            }
            if next.trim().is_empty() {
                empty_continuation = true;
                continue;
            }
            // Continuation lines keep their leading whitespace.
            let (part, end) = trim_continuation(next, d.escape);
            line.push_str(&part);
            ended = end;
        }
        if line.trim().is_empty() {
            continue;
        }
        if empty_continuation {
            warnings.push(Warning {
                line: start,
                message: format!("Empty continuation line found in: {}", line.trim()),
            });
        }
        let mut n = node(&line, d.escape, start)?;
        n.end_line = i;
        if matches!(n.keyword.as_str(), "run" | "copy" | "add") && !n.json {
            for (name, expand, chomp) in heredoc_marks(&line, d.escape) {
                let mut content = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let body = if chomp { l.trim_start_matches('\t') } else { l };
                    if body == name {
                        closed = true;
                        break;
                    }
                    content.push_str(body);
                    content.push('\n');
                }
                if !closed {
                    return fail(
                        start,
                        format!("unterminated heredoc {name:?}: no line {name} closes it"),
                    );
                }
                n.heredocs.push(Heredoc {
                    name,
                    content,
                    expand,
                    chomp,
                });
            }
            n.end_line = i;
        }
        nodes.push(n);
    }
    if nodes.is_empty() {
        return fail(lines.len().max(1), "file with no instructions");
    }
    Ok(Dockerfile {
        directives: d,
        nodes,
        warnings,
    })
}

fn go_quote(s: &str) -> String {
    // strconv.Quote for the printable text Dockerfiles hold.
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Node {
    /// BuildKit's `Node.Dump()`: `run "echo hi"`, `copy ["--from=a"] "x" "y"`.
    pub fn dump(&self) -> String {
        let mut s = self.keyword.clone();
        if !self.flags.is_empty() {
            let quoted: Vec<String> = self.flags.iter().map(|f| go_quote(f)).collect();
            let _ = write!(s, " [{}]", quoted.join(" "));
        }
        if let Some(sub) = &self.sub {
            let _ = write!(s, " ({})", sub.dump());
        }
        for v in &self.values {
            s.push(' ');
            s.push_str(&go_quote(v));
        }
        s.trim().to_string()
    }
}

impl Dockerfile {
    /// The dump of every node, one per line: `(from "busybox")`.
    pub fn dump(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("({})\n", n.dump()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let d = parse(text).expect("parse");
        assert_eq!(d.nodes.len(), 1, "{d:?}");
        d.nodes[0].clone()
    }

    #[test]
    fn arguments_split_per_instruction() {
        assert_eq!(one("FROM busybox:1 AS b").values, ["busybox:1", "AS", "b"]);
        let r = one("RUN echo  hi  ");
        assert_eq!(
            (r.values.clone(), r.json),
            (vec!["echo  hi".to_string()], false)
        );
        let r = one("CMD [\"a\", \"b c\"]");
        assert_eq!(
            (r.values.clone(), r.json),
            (vec!["a".to_string(), "b c".to_string()], true)
        );
        // Not JSON: the raw text.
        assert_eq!(one("CMD [a, b]").values, ["[a, b]"]);
        assert_eq!(one("COPY a b /c/").values, ["a", "b", "/c/"]);
        assert_eq!(
            one("ENV A=1 B=\"x y\" C=z\\ w").values,
            ["A", "1", "=", "B", "\"x y\"", "=", "C", "z\\ w", "="]
        );
        assert_eq!(one("ENV A the rest  ").values, ["A", "the rest", ""]);
        assert_eq!(one("LABEL \"a b\"=c").values, ["\"a b\"", "c", "="]);
        // Flags lose their quotes; unknown instructions keep one empty
        // argument; JSON of other things than strings is an error.
        assert_eq!(
            one("RUN --mount=\"type=cache,target=/a b\" x").flags,
            ["--mount=type=cache,target=/a b"]
        );
        assert_eq!(one("NOPE a b").values, [""]);
        assert_eq!(parse("CMD [\"a\", 1]").expect_err("json").line, 1);
        assert_eq!(
            parse("# only\n\n").expect_err("empty").message,
            "file with no instructions"
        );
        assert_eq!(one("ARG A=1 B").values, ["A=1", "B"]);
        let h = one("HEALTHCHECK --interval=5s CMD curl -f x");
        assert_eq!(h.flags, ["--interval=5s"]);
        assert_eq!(h.values, ["CMD", "curl -f x"]);
        let o = one("ONBUILD RUN --mount=type=cache,target=/c make");
        let sub = o.sub.expect("sub");
        assert_eq!(
            (sub.keyword.as_str(), sub.flags.clone()),
            ("run", vec!["--mount=type=cache,target=/c".to_string()])
        );
        let c = one("COPY --from=build --chown=1:1 /a /b");
        assert_eq!(c.flags, ["--from=build", "--chown=1:1"]);
        assert_eq!(
            c.dump(),
            "copy [\"--from=build\" \"--chown=1:1\"] \"/a\" \"/b\""
        );
        assert_eq!(one("frobnicate x").keyword, "frobnicate");
    }

    #[test]
    fn continuations_comments_and_lines() {
        let d = parse("# syntax=docker/dockerfile:1\nFROM a\n\n# c\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD x\n").expect("parse");
        assert_eq!(d.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
        assert_eq!(d.nodes.len(), 3);
        assert_eq!(d.nodes[1].values, ["echo a   && echo b"]);
        assert_eq!((d.nodes[1].start_line, d.nodes[1].end_line), (5, 8));
        assert_eq!(d.nodes[2].start_line, 9);
        assert_eq!(d.warnings.len(), 1);
        assert_eq!(d.warnings[0].line, 5);
    }

    #[test]
    fn the_escape_directive() {
        let d = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n").expect("parse");
        assert_eq!(d.directives.escape, '`');
        assert_eq!(d.nodes[1].values, ["dir c:\\   /w"]);
        // A directive after an instruction is a comment.
        let d = parse("FROM a\n# escape=`\nRUN x \\\n y\n").expect("parse");
        assert_eq!(d.directives.escape, '\\');
        assert_eq!(d.nodes[1].values, ["x  y"]);
        let e = parse("# escape=x\nFROM a\n").expect_err("bad escape");
        assert_eq!(e.line, 1);
        let e = parse("# escape=`\n# escape=\\\nFROM a\n").expect_err("twice");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn heredocs() {
        let d = parse("FROM a\nRUN <<EOF\necho $HOME\n  two\nEOF\nCOPY <<-\"X\" <<Y /d/\n\tx\nX\ny\nY\nCMD z\n").expect("parse");
        let run = &d.nodes[1];
        assert_eq!(
            run.heredocs,
            vec![Heredoc {
                name: "EOF".into(),
                content: "echo $HOME\n  two\n".into(),
                expand: true,
                chomp: false
            }]
        );
        assert_eq!((run.start_line, run.end_line), (2, 5));
        let copy = &d.nodes[2];
        assert_eq!(copy.heredocs.len(), 2);
        assert_eq!(
            copy.heredocs[0],
            Heredoc {
                name: "X".into(),
                content: "x\n".into(),
                expand: false,
                chomp: true
            }
        );
        assert_eq!(copy.heredocs[1].content, "y\n");
        assert_eq!(copy.values, ["<<-\"X\"", "<<Y", "/d/"]);
        assert_eq!(d.nodes[3].start_line, 11);
        // Other instructions take no heredocs.
        assert!(
            parse("FROM a\nCMD <<EOF\n").expect("cmd").nodes[1]
                .heredocs
                .is_empty()
        );
        let e = parse("FROM a\nRUN <<EOF\nnever closed\n").expect_err("open");
        assert_eq!(e.line, 2);
    }

    #[test]
    fn name_value_errors_have_their_line() {
        let e = parse("FROM a\nENV A\n").expect_err("env");
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "ENV must have two arguments")
        );
        let e = parse("FROM a\n\nLABEL a=1 b\n").expect_err("label");
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .starts_with("dockerfile parse error on line 3:")
        );
    }
}
