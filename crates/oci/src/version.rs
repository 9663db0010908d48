//! The `ociVersion` field: parsing and the range of versions hafen accepts.
//!
//! The runtime specification is versioned with SemVer. hafen implements the
//! 1.x line up to and including 1.3.0; documents of a newer minor of 1.x or of
//! another major are refused with an error that names both versions, because
//! they may ask for behaviour hafen does not know how to provide.

use std::fmt;

/// The newest runtime-spec version hafen implements.
pub const RUNTIME_SPEC_VERSION: SpecVersion = SpecVersion {
    major: 1,
    minor: 3,
    patch: 0,
};

/// The oldest runtime-spec version hafen accepts.
pub const RUNTIME_SPEC_MIN_VERSION: SpecVersion = SpecVersion {
    major: 1,
    minor: 0,
    patch: 0,
};

/// A parsed `major.minor.patch[-pre][+build]` version; the pre-release and
/// build parts are accepted and ignored, as `1.0.2-dev` is a common value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpecVersion {
    /// SemVer major.
    pub major: u64,
    /// SemVer minor.
    pub minor: u64,
    /// SemVer patch.
    pub patch: u64,
}

/// Why an `ociVersion` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VersionError {
    /// The field is empty.
    #[error(
        "ociVersion is empty: set it to the runtime-spec version of the config, e.g. \"1.0.2\""
    )]
    Empty,
    /// The field is not `major.minor.patch`.
    #[error("ociVersion {0:?} is not a version of the form MAJOR.MINOR.PATCH")]
    Malformed(String),
    /// The version is outside what hafen implements.
    #[error("ociVersion {found} is not supported: hafen implements runtime-spec {min} to {max}")]
    Unsupported {
        /// The version in the document.
        found: String,
        /// The oldest version accepted.
        min: SpecVersion,
        /// The newest version accepted.
        max: SpecVersion,
    },
}

impl SpecVersion {
    /// Parses `major.minor.patch` with an optional `-pre` or `+build` suffix.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(VersionError::Empty);
        }
        let core = trimmed.split(['-', '+']).next().unwrap_or(trimmed);
        let mut parts = core.split('.');
        let mut next = || -> Result<u64, VersionError> {
            parts
                .next()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| VersionError::Malformed(text.to_string()))
        };
        let version = SpecVersion {
            major: next()?,
            minor: next()?,
            patch: next()?,
        };
        if parts.next().is_some() {
            return Err(VersionError::Malformed(text.to_string()));
        }
        Ok(version)
    }

    /// Checks that a runtime-spec version is one hafen implements: any 1.x
    /// release from 1.0.0 through 1.3.x.
    pub fn check_runtime(text: &str) -> Result<Self, VersionError> {
        let version = Self::parse(text)?;
        let newest_minor = SpecVersion {
            patch: u64::MAX,
            ..RUNTIME_SPEC_VERSION
        };
        if version < RUNTIME_SPEC_MIN_VERSION || version > newest_minor {
            return Err(VersionError::Unsupported {
                found: text.to_string(),
                min: RUNTIME_SPEC_MIN_VERSION,
                max: RUNTIME_SPEC_VERSION,
            });
        }
        Ok(version)
    }
}

impl fmt::Display for SpecVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_1_x_line_up_to_1_3() {
        for ok in [
            "1.0.0",
            "1.0.2-dev",
            "1.1.0",
            "1.2.1",
            "1.3.0",
            "1.3.7+build.5",
        ] {
            assert!(SpecVersion::check_runtime(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_other_majors_and_newer_minors() {
        for bad in ["0.9.0", "1.4.0", "2.0.0"] {
            assert!(
                matches!(
                    SpecVersion::check_runtime(bad),
                    Err(VersionError::Unsupported { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_malformed_versions() {
        assert_eq!(SpecVersion::parse(""), Err(VersionError::Empty));
        for bad in ["1", "1.0", "1.0.0.0", "a.b.c", "1..0", "v1.0.0", "1.-1.0"] {
            assert!(
                matches!(SpecVersion::parse(bad), Err(VersionError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
