//! The classic builder's progress lines, in step order: stages run at the
//! same time, but their steps are shown one after the other (a step's
//! lines are held until the steps before it are done), as `docker build`
//! shows them.

use std::collections::BTreeMap;

use hafen_api::models::JsonMessage;
use hafen_build::builder::Event;

/// Orders and renders build events.
#[derive(Debug)]
pub(super) struct Progress {
    next: usize,
    held: BTreeMap<usize, Vec<Event>>,
}

fn number(e: &Event) -> Option<usize> {
    match e {
        Event::Step { number, .. }
        | Event::Cached { number }
        | Event::Output { number, .. }
        | Event::Done { number, .. } => Some(*number),
        Event::Warning(_) => None,
    }
}

/// The 12 characters of an ID that Docker shows.
pub(super) fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..12.min(hex.len())]
}

fn render(e: Event, out: &mut dyn FnMut(JsonMessage)) {
    let text = match e {
        Event::Step {
            number,
            total,
            text,
            ..
        } => format!("Step {number}/{total} : {text}\n"),
        Event::Cached { .. } => " ---> Using cache\n".into(),
        Event::Output { bytes, .. } => String::from_utf8_lossy(&bytes).into_owned(),
        Event::Done { key, .. } => format!(" ---> {}\n", short(&key)),
        Event::Warning(w) => format!("[WARNING]: {w}\n"),
    };
    out(JsonMessage::stream(text));
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            next: 1,
            held: BTreeMap::new(),
        }
    }

    /// Shows `e` now if its step is the current one, else later.
    pub(super) fn push(&mut self, e: Event, out: &mut dyn FnMut(JsonMessage)) {
        match number(&e) {
            Some(n) if n > self.next => self.held.entry(n).or_default().push(e),
            _ => {
                let done = matches!(e, Event::Done { number, .. } if number == self.next);
                render(e, out);
                if done {
                    self.advance(out);
                }
            }
        }
    }

    /// The current step is done: shows what the next ones held.
    fn advance(&mut self, out: &mut dyn FnMut(JsonMessage)) {
        loop {
            self.next += 1;
            let Some(events) = self.held.remove(&self.next) else {
                return;
            };
            let mut done = false;
            for e in events {
                done |= matches!(e, Event::Done { .. });
                render(e, out);
            }
            if !done {
                return;
            }
        }
    }

    /// The build ended: what is still held, in step order.
    pub(super) fn finish(&mut self, out: &mut dyn FnMut(JsonMessage)) {
        for (_, events) in std::mem::take(&mut self.held) {
            for e in events {
                render(e, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_show_in_order() {
        let step = |n| Event::Step {
            number: n,
            total: 3,
            stage: String::new(),
            text: format!("S{n}"),
        };
        let done = |n| Event::Done {
            number: n,
            key: format!("k{n}"),
        };
        let mut p = Progress::new();
        let mut lines = Vec::new();
        let mut out = |m: JsonMessage| lines.push(m.stream.unwrap_or_default());
        for e in [step(2), step(1), done(2), step(3), done(1), done(3)] {
            p.push(e, &mut out);
        }
        p.finish(&mut out);
        assert_eq!(
            lines,
            [
                "Step 1/3 : S1\n",
                " ---> k1\n",
                "Step 2/3 : S2\n",
                " ---> k2\n",
                "Step 3/3 : S3\n",
                " ---> k3\n"
            ]
        );
    }
}
