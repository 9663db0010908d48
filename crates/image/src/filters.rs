//! The filters of `docker images`: `dangling`, `label`, `before`, `since`,
//! `reference` and `until`.

use std::collections::HashSet;

use crate::{ImageError, ImageStore, ImageSummary, Result};

/// The filters of an image listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilters {
    /// Only untagged (`true`) or only tagged (`false`) images.
    pub dangling: Option<bool>,
    /// `key` or `key=value`; all must match.
    pub labels: Vec<String>,
    /// Images created before this one.
    pub before: Option<String>,
    /// Images created after this one.
    pub since: Option<String>,
    /// Glob patterns on `name` or `name:tag`; any may match.
    pub reference: Vec<String>,
    /// Images created before this time (Unix seconds).
    pub until: Option<i64>,
}

/// Matches like Go's `path.Match`: `*` is any run of characters but `/`,
/// `?` one character but `/`, `[a-z]`/`[^a-z]` a class, `\` escapes.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    fn class(p: &[char], c: char) -> Option<(bool, usize)> {
        // Returns (matched, length of the class in the pattern).
        let mut i = 1;
        let negate = p.get(1) == Some(&'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        while i < p.len() {
            if p[i] == ']' && !first {
                return Some((matched != negate, i + 1));
            }
            first = false;
            let lo = if p[i] == '\\' {
                i += 1;
                *p.get(i)?
            } else {
                p[i]
            };
            let mut hi = lo;
            if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|c| *c != ']') {
                hi = if p[i + 2] == '\\' {
                    i += 1;
                    *p.get(i + 2)?
                } else {
                    p[i + 2]
                };
                i += 2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 1;
        }
        None
    }
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => {
                let rest = &p[1..];
                for i in 0..=t.len() {
                    if go(rest, &t[i..]) {
                        return true;
                    }
                    if i < t.len() && t[i] == '/' {
                        break;
                    }
                }
                false
            }
            Some('?') => !t.is_empty() && t[0] != '/' && go(&p[1..], &t[1..]),
            Some('[') => match (t.first(), class(p, *t.first().unwrap_or(&'\0'))) {
                (Some(c), Some((true, len))) if *c != '/' => go(&p[len..], &t[1..]),
                _ => false,
            },
            Some('\\') => p.len() > 1 && t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn label_matches(labels: &std::collections::BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// `name:tag` → does it match one of the patterns (on the name alone or
/// the whole)?
fn reference_matches(patterns: &[String], familiar: &str) -> bool {
    let name = match familiar.rsplit_once(['@', ':']) {
        Some((n, rest)) if !rest.contains('/') => n,
        _ => familiar,
    };
    patterns
        .iter()
        .any(|p| glob_match(p, familiar) || glob_match(p, name))
}

pub(crate) fn apply(
    store: &ImageStore,
    images: Vec<ImageSummary>,
    f: &ListFilters,
    all: bool,
) -> Result<Vec<ImageSummary>> {
    let created_of = |name: &str| -> Result<i64> {
        let id = store.resolve(name)?.record.id;
        Ok(store.config(&id)?.created_unix())
    };
    let before = f.before.as_deref().map(created_of).transpose()?;
    let since = f.since.as_deref().map(created_of).transpose()?;
    let parents: HashSet<_> = images.iter().filter_map(|i| i.parent.clone()).collect();
    let mut out = Vec::new();
    for mut image in images {
        let untagged = image.repo_tags.is_empty() && image.repo_digests.is_empty();
        if untagged && !all && parents.contains(&image.id) {
            continue; // an intermediate image of a build
        }
        if let Some(d) = f.dangling {
            if d != untagged {
                continue;
            }
        }
        if !f.labels.iter().all(|l| label_matches(&image.labels, l)) {
            continue;
        }
        if before.is_some_and(|b| image.created >= b) || since.is_some_and(|s| image.created <= s) {
            continue;
        }
        if f.until.is_some_and(|u| image.created >= u) {
            continue;
        }
        if !f.reference.is_empty() {
            image
                .repo_tags
                .retain(|t| reference_matches(&f.reference, t));
            image
                .repo_digests
                .retain(|t| reference_matches(&f.reference, t));
            if image.repo_tags.is_empty() && image.repo_digests.is_empty() {
                continue;
            }
        }
        out.push(image);
    }
    Ok(out)
}

/// Parses a `dangling` filter value.
pub fn parse_bool_filter(key: &str, value: &str) -> Result<bool> {
    match value.to_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ImageError::Invalid(format!(
            "invalid filter '{key}={value}'"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go() {
        for (p, t, want) in [
            ("busy*", "busybox", true),
            ("busy*", "busybox:latest", true),
            ("*:latest", "busybox:latest", true),
            ("*", "user/app", false),
            ("*/*", "user/app", true),
            ("b?sybox", "busybox", true),
            ("[a-c]usybox", "busybox", true),
            ("[^a-c]usybox", "busybox", false),
            ("busybox", "busybox:latest", false),
            ("bus\\*", "bus*", true),
        ] {
            assert_eq!(glob_match(p, t), want, "{p} {t}");
        }
        assert!(reference_matches(&["busybox".into()], "busybox:latest"));
        assert!(reference_matches(
            &["localhost:5000/a".into()],
            "localhost:5000/a:1"
        ));
        assert!(!reference_matches(
            &["busybox".into()],
            "user/busybox:latest"
        ));
    }
}
