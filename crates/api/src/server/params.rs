//! Query parameters, repeated ones included (`names=a&names=b`), and
//! Docker's way of reading booleans.

use percent_encoding::percent_decode_str;

/// The decoded query of a request.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

impl Params {
    /// Parses a raw query string.
    pub fn parse(query: Option<&str>) -> Params {
        Params(
            query
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (decode(k), decode(v)),
                    None => (decode(p), String::new()),
                })
                .collect(),
        )
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a parameter.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean as dockerd reads it: absent, empty, `0`, `no`, `false`,
    /// `none` are false.
    pub fn bool(&self, key: &str) -> bool {
        self.bool_or(key, false)
    }

    /// A boolean with a default for when it is absent.
    pub fn bool_or(&self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => !matches!(
                v.to_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_and_encoded() {
        let p = Params::parse(Some("names=busybox%3Alatest&names=a+b&quiet=1&all=0&x"));
        assert_eq!(p.all("names"), vec!["busybox:latest", "a b"]);
        assert!(p.bool("quiet"));
        assert!(!p.bool("all"));
        assert!(!p.bool("x"));
        assert!(p.bool_or("missing", true));
    }
}
