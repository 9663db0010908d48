//! `--change` for `import`: the Dockerfile instructions that set an image's
//! configuration (CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
//! STOPSIGNAL, USER, VOLUME, WORKDIR).

use std::collections::BTreeMap;

use crate::config::ContainerConfig;

/// Why a change does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// An instruction that is not a configuration change.
    #[error("{0} is not a valid change command")]
    NotAllowed(String),
    /// An instruction without its arguments or with bad ones.
    #[error("{instruction} {problem}")]
    Invalid {
        /// The instruction.
        instruction: String,
        /// What is wrong.
        problem: String,
    },
}

fn invalid(instruction: &str, problem: impl Into<String>) -> ChangeError {
    ChangeError::Invalid {
        instruction: instruction.to_string(),
        problem: problem.into(),
    }
}

/// The JSON array form (`["a", "b"]`) if the text is one.
fn json_array(text: &str) -> Option<Vec<String>> {
    let t = text.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Exec form as given, or shell form wrapped in `/bin/sh -c`.
fn command(text: &str) -> Vec<String> {
    json_array(text).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), text.trim().to_string()])
}

/// Splits `a=b c="d e"` style arguments, honouring double and single
/// quotes and backslash escapes.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `k=v k2=v2` pairs, or the legacy `k v` form (one pair, the rest is the
/// value).
fn pairs(instruction: &str, text: &str) -> Result<Vec<(String, String)>, ChangeError> {
    let w = words(text);
    if w.is_empty() {
        return Err(invalid(instruction, "requires at least one argument"));
    }
    if !w[0].contains('=') {
        let (key, value) = text
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid(instruction, "requires two arguments"))?;
        return Ok(vec![(key.to_string(), value.trim().to_string())]);
    }
    w.into_iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| invalid(instruction, format!("has a bad name=value pair {kv:?}")))
        })
        .collect()
}

/// Applies one change to a configuration.
pub fn apply(config: &mut ContainerConfig, change: &str) -> Result<(), ChangeError> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let instruction = word.to_uppercase();
    let rest = rest.trim();
    let need = |what: &str| -> Result<(), ChangeError> {
        if rest.is_empty() {
            Err(invalid(what, "requires at least one argument"))
        } else {
            Ok(())
        }
    };
    match instruction.as_str() {
        "CMD" => {
            need("CMD")?;
            config.cmd = Some(command(rest));
        }
        "ENTRYPOINT" => {
            need("ENTRYPOINT")?;
            config.entrypoint = Some(command(rest));
        }
        "ENV" => {
            let pairs = pairs("ENV", rest)?;
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs {
                let prefix = format!("{k}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let pairs = pairs("LABEL", rest)?;
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            need("EXPOSE")?;
            let mut ports = Vec::new();
            for p in rest.split_whitespace() {
                let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let valid = !port.is_empty()
                    && port.split('-').all(|n| n.parse::<u16>().is_ok())
                    && matches!(proto.to_lowercase().as_str(), "tcp" | "udp" | "sctp");
                if !valid {
                    return Err(invalid("EXPOSE", format!("has an invalid port {p:?}")));
                }
                ports.push(format!("{port}/{}", proto.to_lowercase()));
            }
            let exposed = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                exposed.insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            need("VOLUME")?;
            let list = json_array(rest).unwrap_or_else(|| words(rest));
            if list.iter().any(String::is_empty) {
                return Err(invalid("VOLUME", "specified can not be an empty string"));
            }
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in list {
                volumes.insert(v, serde_json::json!({}));
            }
        }
        "WORKDIR" => {
            need("WORKDIR")?;
            config.working_dir = rest.to_string();
        }
        "USER" => {
            need("USER")?;
            config.user = rest.to_string();
        }
        "STOPSIGNAL" => {
            need("STOPSIGNAL")?;
            config.stop_signal = Some(rest.to_string());
        }
        "ONBUILD" => {
            need("ONBUILD")?;
            let inner = rest.split_whitespace().next().unwrap_or("").to_uppercase();
            if matches!(inner.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(invalid("ONBUILD", format!("does not allow {inner}")));
            }
            config
                .on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_string());
        }
        "HEALTHCHECK" => config.healthcheck = Some(healthcheck(rest)?),
        "" => return Err(ChangeError::NotAllowed(String::new())),
        _ => return Err(ChangeError::NotAllowed(word.to_string())),
    }
    Ok(())
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D ...] CMD ...`.
fn healthcheck(rest: &str) -> Result<serde_json::Value, ChangeError> {
    if rest.eq_ignore_ascii_case("NONE") {
        return Ok(serde_json::json!({"Test": ["NONE"]}));
    }
    let mut obj = serde_json::Map::new();
    let mut rest = rest;
    while let Some(opt) = rest.strip_prefix("--") {
        let (flag, after) = opt.split_once(char::is_whitespace).unwrap_or((opt, ""));
        let (name, value) = flag
            .split_once('=')
            .ok_or_else(|| invalid("HEALTHCHECK", format!("option --{flag} needs a value")))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => "Retries",
            other => {
                return Err(invalid(
                    "HEALTHCHECK",
                    format!("has an unknown option --{other}"),
                ));
            }
        };
        let number = if key == "Retries" {
            value.parse::<u64>().ok()
        } else {
            humantime::parse_duration(value)
                .ok()
                .and_then(|d| u64::try_from(d.as_nanos()).ok())
        }
        .ok_or_else(|| invalid("HEALTHCHECK", format!("has a bad --{name} value {value:?}")))?;
        obj.insert(key.into(), serde_json::json!(number));
        rest = after.trim_start();
    }
    let (word, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !word.eq_ignore_ascii_case("CMD") || cmd.trim().is_empty() {
        return Err(invalid("HEALTHCHECK", "must be NONE or CMD <command>"));
    }
    let test = match json_array(cmd) {
        Some(list) => std::iter::once("CMD".to_string()).chain(list).collect(),
        None => vec!["CMD-SHELL".to_string(), cmd.trim().to_string()],
    };
    obj.insert("Test".into(), serde_json::json!(test));
    Ok(serde_json::Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for ch in changes {
            apply(&mut c, ch).unwrap_or_else(|e| panic!("{ch}: {e}"));
        }
        c
    }

    #[test]
    fn the_configuration_instructions() {
        let c = applied(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/run --fast",
            "ENV A=b C=\"d e\"",
            "ENV LEGACY value with spaces",
            "env A=replaced",
            "LABEL org.example=yes other='quoted value'",
            "EXPOSE 80 53/udp",
            r#"VOLUME ["/data"]"#,
            "VOLUME /logs /cache",
            "WORKDIR /srv",
            "USER 1000:1000",
            "STOPSIGNAL SIGINT",
            "ONBUILD RUN make",
            "HEALTHCHECK --interval=5s --retries=3 CMD curl -f localhost",
        ]);
        assert_eq!(
            c.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            c.entrypoint,
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "/bin/run --fast".into()
            ])
        );
        assert_eq!(
            c.env,
            Some(vec![
                "C=d e".into(),
                "LEGACY=value with spaces".into(),
                "A=replaced".into()
            ])
        );
        let labels = c.labels.unwrap_or_default();
        assert_eq!(labels["other"], "quoted value");
        let ports: Vec<_> = c.exposed_ports.unwrap_or_default().into_keys().collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp"]);
        assert_eq!(c.volumes.unwrap_or_default().len(), 3);
        assert_eq!(
            (c.working_dir.as_str(), c.user.as_str()),
            ("/srv", "1000:1000")
        );
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(c.on_build, Some(vec!["RUN make".into()]));
        let hc = c.healthcheck.unwrap_or_default();
        assert_eq!(hc["Interval"], 5_000_000_000u64);
        assert_eq!(hc["Test"][0], "CMD-SHELL");
    }

    #[test]
    fn other_instructions_and_bad_arguments_are_refused() {
        let mut c = ContainerConfig::default();
        assert_eq!(
            apply(&mut c, "RUN rm -rf /"),
            Err(ChangeError::NotAllowed("RUN".into()))
        );
        for bad in [
            "CMD",
            "EXPOSE 99999",
            "EXPOSE 80/xyz",
            "ENV",
            "ONBUILD FROM x",
            "HEALTHCHECK --bogus=1 CMD x",
            "USER",
        ] {
            assert!(apply(&mut c, bad).is_err(), "{bad}");
        }
        assert_eq!(
            c,
            ContainerConfig::default(),
            "a refused change changes nothing"
        );
    }
}
