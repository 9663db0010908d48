//! Signal names and numbers, as `kill` accepts them: `TERM`, `SIGTERM`,
//! `sigterm`, `15`, `RTMIN+3`, `SIGRTMAX-1`.

/// The standard Linux signals (x86 and arm numbering), with the names the
/// `kill` command and the Docker CLI use, aliases after their main name.
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Why a signal could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown signal {0:?}: use a name such as TERM or SIGKILL, or a number from 1 to {max}", max = libc::SIGRTMAX())]
pub struct UnknownSignal(pub String);

/// Parses a signal name or number.
pub fn parse(text: &str) -> Result<i32, UnknownSignal> {
    let unknown = || UnknownSignal(text.to_string());
    let max = libc::SIGRTMAX();
    if let Ok(number) = text.parse::<i32>() {
        return if (1..=max).contains(&number) {
            Ok(number)
        } else {
            Err(unknown())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, number)) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(number);
    }
    let (base, rest) = if let Some(rest) = name.strip_prefix("RTMIN") {
        (libc::SIGRTMIN(), rest)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        (max, rest)
    } else {
        return Err(unknown());
    };
    let number = match rest {
        "" => base,
        _ => {
            let offset = |digits: &str| {
                digits
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| digits.parse::<i32>().ok())
                    .flatten()
            };
            let number = if let Some(digits) = rest.strip_prefix('+') {
                offset(digits).and_then(|o| base.checked_add(o))
            } else if let Some(digits) = rest.strip_prefix('-') {
                offset(digits).and_then(|o| base.checked_sub(o))
            } else {
                None
            };
            number.ok_or_else(unknown)?
        }
    };
    if (libc::SIGRTMIN()..=max).contains(&number) {
        Ok(number)
    } else {
        Err(unknown())
    }
}

/// The conventional name of a signal number (`SIGTERM`, `SIGRTMIN+2`).
pub fn name(number: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, n)| *n == number) {
        return format!("SIG{name}");
    }
    let min = libc::SIGRTMIN();
    match number - min {
        0 => "SIGRTMIN".to_string(),
        offset if offset > 0 && number <= libc::SIGRTMAX() => format!("SIGRTMIN+{offset}"),
        _ => format!("signal {number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_numbers_and_realtime_signals() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("SIGKILL"), Ok(9));
        assert_eq!(parse("sigusr1"), Ok(10));
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("IOT"), Ok(6));
        assert_eq!(parse("RTMIN"), Ok(libc::SIGRTMIN()));
        assert_eq!(parse("SIGRTMIN+3"), Ok(libc::SIGRTMIN() + 3));
        assert_eq!(parse("RTMAX-1"), Ok(libc::SIGRTMAX() - 1));
    }

    #[test]
    fn refuses_unknown_signals() {
        for bad in [
            "",
            "0",
            "65",
            "-1",
            "SIGFOO",
            "RTMIN+99",
            "RTMIN*2",
            "RTMAX+1",
            "RTMIN+2147483647",
            "RTMIN-2147483647",
            "RTMAXé",
            "RTMIN+",
            "RTMIN++1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_round_trip() {
        for n in 1..=libc::SIGRTMAX() {
            if n == 32 || n == 33 {
                continue; // reserved by libc, below SIGRTMIN
            }
            assert_eq!(parse(&name(n)), Ok(n), "{}", name(n));
        }
    }
}
