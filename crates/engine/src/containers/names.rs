//! Container names: Docker's rule for user names, and made-up
//! `adjective_name` ones when none is given.

/// Whether a name is valid (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`, as Docker).
pub fn valid(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

const LEFT: &[&str] = &[
    "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "kind",
    "lucid", "modest", "nifty", "quiet", "relaxed", "sharp", "stoic", "tender", "vibrant", "witty",
    "zen", "bold", "busy", "crisp", "dazzling", "elegant", "festive", "focused", "funny", "great",
];

const RIGHT: &[&str] = &[
    "archimedes",
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "euler",
    "fermi",
    "gauss",
    "hopper",
    "hypatia",
    "kepler",
    "lamarr",
    "lovelace",
    "meitner",
    "newton",
    "noether",
    "pascal",
    "ritchie",
    "shannon",
    "tesla",
    "thompson",
    "turing",
    "wozniak",
    "yonath",
    "zuse",
    "galileo",
    "hamilton",
    "johnson",
    "knuth",
    "liskov",
];

/// A made-up name from random bytes, with a number after it when `retry`
/// is above zero (as Docker does after a clash).
pub fn generate(random: &[u8], retry: u32) -> String {
    let a = usize::from(random.first().copied().unwrap_or(0)) % LEFT.len();
    let b = usize::from(random.get(1).copied().unwrap_or(0)) % RIGHT.len();
    if retry == 0 {
        format!("{}_{}", LEFT[a], RIGHT[b])
    } else {
        format!("{}_{}{}", LEFT[a], RIGHT[b], retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(valid("web-1"));
        assert!(valid("a.b_c"));
        assert!(!valid("a"));
        assert!(!valid("-web"));
        assert!(!valid("we/b"));
        assert!(valid(&generate(&[3, 7], 0)));
        assert!(generate(&[3, 7], 2).ends_with('2'));
    }
}
