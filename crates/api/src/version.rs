//! API versions: `/v1.41/images/json` asks for 1.41; paths without a
//! version get the newest. hafen serves 1.24 to 1.51, the range of the
//! docker CLI 28 series.

use std::fmt;

/// An API version (`1.41`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Always 1.
    pub major: u32,
    /// 24 to 51.
    pub minor: u32,
}

/// The newest version hafen speaks.
pub const MAX: ApiVersion = ApiVersion {
    major: 1,
    minor: 51,
};
/// The oldest version hafen speaks.
pub const MIN: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

impl ApiVersion {
    /// Parses `1.41`.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }

    /// Shorthand for `1.<minor>`.
    pub const fn v1(minor: u32) -> ApiVersion {
        ApiVersion { major: 1, minor }
    }

    /// Whether this version is older than `1.<minor>`.
    pub fn before(self, minor: u32) -> bool {
        self < ApiVersion::v1(minor)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_numerically() {
        let v = |s| ApiVersion::parse(s).unwrap_or(MIN);
        assert!(v("1.9") < v("1.10"));
        assert!(v("1.41").before(43));
        assert!(!v("1.51").before(51));
        assert_eq!(ApiVersion::parse("x.1"), None);
        assert_eq!(MAX.to_string(), "1.51");
    }
}
