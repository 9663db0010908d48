//! Healthchecks: a thread per running container with a healthcheck runs
//! the check every interval (in the container, through its shim) and keeps
//! `State.Health` and the `health_status` events as Docker does.

use std::time::Duration;

use hafen_api::models::{HealthConfig, HealthLog};

use super::record::Status;
use crate::Engine;

const DEFAULT_INTERVAL: i64 = 30_000_000_000;
const DEFAULT_TIMEOUT: i64 = 30_000_000_000;
const DEFAULT_RETRIES: i64 = 3;
/// Docker keeps the last five results.
const KEEP: usize = 5;

/// Whether a healthcheck is configured.
pub fn enabled(h: &HealthConfig) -> bool {
    h.test
        .as_ref()
        .and_then(|t| t.first())
        .is_some_and(|first| first != "NONE")
}

fn ns(v: i64, default: i64) -> Duration {
    Duration::from_nanos(u64::try_from(if v > 0 { v } else { default }).unwrap_or(0))
}

/// Starts the healthcheck thread of a container that just started.
pub fn spawn(engine: &Engine, id: &str) {
    let Ok(ctr) = engine.containers.find(id) else {
        return;
    };
    let Some(hc) = ctr.rec().config.healthcheck.clone().filter(enabled) else {
        return;
    };
    let args = match hc.test.as_deref() {
        Some([kind, rest @ ..]) if kind == "CMD" => rest.to_vec(),
        Some([kind, cmd, ..]) if kind == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), cmd.clone()]
        }
        _ => return,
    };
    let started_at = ctr.rec().state.started_at.clone();
    let weak = engine.me();
    let interval = ns(hc.interval, DEFAULT_INTERVAL);
    let timeout = ns(hc.timeout, DEFAULT_TIMEOUT);
    let start_period = ns(hc.start_period, 0);
    let start_interval = ns(hc.start_interval, 5_000_000_000);
    let retries = if hc.retries > 0 {
        hc.retries
    } else {
        DEFAULT_RETRIES
    };
    let began = std::time::Instant::now();
    let _ = std::thread::Builder::new()
        .name("healthcheck".into())
        .spawn(move || {
            loop {
                let in_start = began.elapsed() < start_period;
                std::thread::sleep(if in_start && hc.start_interval > 0 {
                    start_interval
                } else {
                    interval
                });
                let Some(engine) = weak.upgrade() else { return };
                {
                    let r = ctr.rec();
                    if r.state.status != Status::Running || r.state.started_at != started_at {
                        return;
                    }
                }
                let start = super::now_rfc3339();
                let (code, output) = match engine.exec_capture(&ctr, args.clone(), timeout) {
                    Ok(r) => r,
                    Err(e) => (-1, e.to_string()),
                };
                let end = super::now_rfc3339();
                let in_start = began.elapsed() < start_period;
                let mut r = ctr.rec();
                if r.state.status != Status::Running || r.state.started_at != started_at {
                    return;
                }
                let id = r.id.clone();
                let name = r.name.clone();
                let health = r.state.health.get_or_insert_with(Default::default);
                let before = health.status.clone();
                health.log.push(HealthLog {
                    start,
                    end,
                    exit_code: code,
                    output,
                });
                if health.log.len() > KEEP {
                    health.log.remove(0);
                }
                if code == 0 {
                    health.failing_streak = 0;
                    health.status = "healthy".into();
                } else if !in_start {
                    health.failing_streak += 1;
                    if health.failing_streak >= retries {
                        health.status = "unhealthy".into();
                    }
                }
                let after = health.status.clone();
                ctr.commit(&r);
                drop(r);
                if after != before {
                    engine.container_event(
                        &id,
                        &format!("health_status: {after}"),
                        &[("name", &name)],
                    );
                }
            }
        });
}
