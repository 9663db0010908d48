//! The event log: the last 256 events for `since` queries, and a broadcast
//! of new ones for `/events` subscribers.

use std::collections::VecDeque;
use std::sync::Mutex;

use hafen_api::models::{Actor, Event};
use hafen_image::ImageEvent;

/// How many past events are kept (as dockerd).
const KEEP: usize = 256;

/// The event log.
#[derive(Debug)]
pub struct EventBus {
    past: Mutex<VecDeque<Event>>,
    live: tokio::sync::broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl EventBus {
    /// An empty log.
    pub fn new() -> EventBus {
        EventBus {
            past: Mutex::new(VecDeque::with_capacity(KEEP)),
            live: tokio::sync::broadcast::channel(1024).0,
        }
    }

    /// Records and sends an event.
    pub fn publish(&self, mut e: Event) {
        let now = chrono::Utc::now();
        e.time = now.timestamp();
        e.time_nano = now.timestamp_nanos_opt().unwrap_or(0);
        {
            let mut past = self.past.lock().unwrap_or_else(|p| p.into_inner());
            if past.len() == KEEP {
                past.pop_front();
            }
            past.push_back(e.clone());
        }
        let _ = self.live.send(e);
    }

    /// An image event, in Docker's shape (legacy `status` and `id` too).
    pub fn publish_image(&self, e: ImageEvent) {
        let legacy = e.action != "prune";
        self.publish(Event {
            status: if legacy {
                e.action.to_string()
            } else {
                String::new()
            },
            id: if legacy { e.id.clone() } else { String::new() },
            from: String::new(),
            kind: "image".into(),
            action: e.action.into(),
            actor: Actor {
                id: e.id,
                attributes: e.attributes,
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
        });
    }

    /// Past events at or after `since` (ns), and a subscription to new
    /// ones.
    pub fn feed(&self, since: Option<i64>) -> hafen_api::server::EventFeed {
        let live = self.live.subscribe();
        let past = match since {
            None => Vec::new(),
            Some(s) => self
                .past
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|e| e.time_nano >= s)
                .cloned()
                .collect(),
        };
        hafen_api::server::EventFeed { past, live }
    }

    /// The number of subscribers.
    pub fn listeners(&self) -> usize {
        self.live.receiver_count()
    }
}
