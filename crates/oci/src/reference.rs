//! Image references as Docker reads and writes them.
//!
//! `busybox` is `docker.io/library/busybox:latest`; `localhost:5000/app@sha256:…`
//! names a registry with a port and a digest. [`Reference::parse_normalized`]
//! applies Docker's normalisation (default domain `docker.io`, `library/` for
//! single-component names there); [`Reference::familiar`] gives the short form
//! back (`busybox:latest`). The grammar is the one of the distribution
//! project's reference package:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path-component { "/" path-component }
//! domain     := host [ ":" port ]
//! path-comp  := [a-z0-9]+ { ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ }
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest     := algorithm ":" hex
//! ```

use std::fmt;

use crate::digest::Digest;

/// The registry Docker uses when a name has none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy name of the default registry, normalised to [`DEFAULT_DOMAIN`].
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on the default registry.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest name (domain and path) allowed.
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a reference does not parse. The messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Anything that does not fit the grammar.
    #[error("invalid reference format")]
    Format,
    /// Uppercase letters in the repository path.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// An empty name.
    #[error("repository name must have at least one component")]
    Empty,
    /// A name longer than 255 characters.
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    TooLong,
    /// A tag that does not fit the tag grammar.
    #[error("invalid tag format")]
    Tag,
    /// A bare 64-hex-digit name, which would be mistaken for an image ID.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    /// A digest that hafen cannot verify.
    #[error(transparent)]
    Digest(#[from] crate::digest::DigestError),
}

/// A parsed, normalised image reference.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way `docker` does for user input, filling in
    /// the default domain and `library/`. Does not add a default tag (see
    /// [`Reference::with_default_tag`]).
    pub fn parse_normalized(text: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex(text) {
            return Err(ReferenceError::HexName(text.to_string()));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        let (name, tag) = split_tag(rest);
        let (domain, path) = split_domain(name);
        if path.to_lowercase() != path {
            return Err(ReferenceError::Uppercase(path));
        }
        let r = Reference::from_parts(&domain, &path, tag, digest)?;
        Ok(r)
    }

    /// Parses a fully qualified reference (`domain/path[:tag][@digest]`)
    /// without normalisation, as found in image annotations.
    pub fn parse_qualified(text: &str) -> Result<Reference, ReferenceError> {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (text, None),
        };
        let (name, tag) = split_tag(rest);
        let (domain, path) = name.split_once('/').ok_or(ReferenceError::Format)?;
        if !looks_like_domain(domain) {
            return Err(ReferenceError::Format);
        }
        Reference::from_parts(domain, path, tag, digest)
    }

    fn from_parts(
        domain: &str,
        path: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Reference, ReferenceError> {
        if path.is_empty() {
            return Err(if domain.is_empty() {
                ReferenceError::Empty
            } else {
                ReferenceError::Format
            });
        }
        if !valid_domain(domain) || !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::Format);
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::TooLong);
        }
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ReferenceError::Format);
            }
        }
        let digest = digest
            .map(|d| {
                if valid_digest_syntax(d) {
                    Digest::parse(d).map_err(ReferenceError::from)
                } else {
                    Err(ReferenceError::Format)
                }
            })
            .transpose()?;
        Ok(Reference {
            domain: domain.to_string(),
            path: path.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The same reference with the tag `latest` if it has neither tag nor
    /// digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag);
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository with a digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The repository alone.
    pub fn repository(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// The registry (`docker.io`, `localhost:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path in the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as Docker shows it (`busybox`, `user/app`,
    /// `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as Docker shows it (`busybox:latest`).
    pub fn familiar(&self) -> String {
        self.render(&self.familiar_name())
    }

    fn render(&self, name: &str) -> String {
        let mut s = name.to_string();
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form (`docker.io/library/busybox:latest`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&self.name()))
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

/// Whether `text` is exactly 64 lowercase hex digits (an image ID).
pub fn is_full_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Splits `name[:tag]`: a colon after the last slash starts the tag.
fn split_tag(text: &str) -> (&str, Option<&str>) {
    match text.rfind(':') {
        Some(i) if !text[i..].contains('/') => (&text[..i], Some(&text[i + 1..])),
        _ => (text, None),
    }
}

/// Docker's domain rule: the first component is a registry if it has a dot
/// or a colon, is `localhost`, or has uppercase letters (which a path
/// component cannot).
fn looks_like_domain(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
}

fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_domain(first) => (first.to_string(), rest.to_string()),
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        path = format!("{OFFICIAL_REPO_PREFIX}{path}");
    }
    (domain, path)
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // A separator run, then an alphanumeric must follow (guaranteed
        // by the last-byte check once the run is valid).
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host [":" port]`, host a DNS name, an IPv4 address or `[IPv6]`.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// The digest grammar before hafen's own check of the algorithm:
/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}`.
fn valid_digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        Reference::parse_normalized(s)
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox");
        assert_eq!(norm("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(norm("user/app"), "docker.io/user/app");
        assert_eq!(norm("index.docker.io/busybox"), "docker.io/library/busybox");
        assert_eq!(
            norm("docker.io/library/busybox"),
            "docker.io/library/busybox"
        );
        assert_eq!(norm("localhost/app"), "localhost/app");
        assert_eq!(norm("localhost:5000/a/b:v1"), "localhost:5000/a/b:v1");
        assert_eq!(norm("quay.io/x/y"), "quay.io/x/y");
        assert_eq!(norm("127.0.0.1:5000/x"), "127.0.0.1:5000/x");
        assert_eq!(norm("[::1]:5000/x:t"), "[::1]:5000/x:t");
        assert_eq!(
            norm(&format!("busybox@{D}")),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            norm(&format!("busybox:1@{D}")),
            format!("docker.io/library/busybox:1@{D}")
        );
        assert_eq!(norm("a__b-c---d/e.f_g"), "docker.io/a__b-c---d/e.f_g");
        let r = Reference::parse_normalized("busybox").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.with_default_tag().to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn familiar_forms() {
        let f = |s: &str| {
            Reference::parse_normalized(s)
                .unwrap_or_else(|e| panic!("{s}: {e}"))
                .with_default_tag()
                .familiar()
        };
        assert_eq!(f("docker.io/library/busybox"), "busybox:latest");
        assert_eq!(f("docker.io/library/a/b"), "library/a/b:latest");
        assert_eq!(f("user/app:v2"), "user/app:v2");
        assert_eq!(f("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(f(&format!("busybox@{D}")), format!("busybox@{D}"));
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            ":tag",
            "UPPER",
            "user/App",
            "a//b",
            "a/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "busybox:",
            "busybox:-x",
            "busybox:a b",
            "busybox@sha256:abc",
            "busybox@",
            "host:port/x",
            "a b",
            "x:y:z",
        ] {
            assert!(Reference::parse_normalized(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Reference::parse_normalized("Busybox"),
            Err(ReferenceError::Uppercase("library/Busybox".into()))
        );
        assert!(matches!(
            Reference::parse_normalized(&D[7..]),
            Err(ReferenceError::HexName(_))
        ));
        let long = format!("a/{}", "b".repeat(260));
        assert_eq!(
            Reference::parse_normalized(&long),
            Err(ReferenceError::TooLong)
        );
        let tag = "t".repeat(129);
        assert!(Reference::parse_normalized(&format!("a:{tag}")).is_err());
        assert!(Reference::parse_normalized(&format!("a:{}", &tag[1..])).is_ok());
    }

    #[test]
    fn qualified_references_from_annotations() {
        let r = Reference::parse_qualified("docker.io/library/busybox:latest")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.familiar(), "busybox:latest");
        assert!(Reference::parse_qualified("busybox:latest").is_err());
    }
}
