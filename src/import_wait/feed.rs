//! The results topic (`kafka.results_topic`) as a serve instance reads it: every partition,
//! assigned (no consumer group), from its end as found at open, each message handed to
//! [`Waiters::deliver`] — which drops those for requests not waiting here before reading their
//! value. Opened in the background, retrying until the topic is readable; until then a request
//! that waits is answered 202 as soon as Kafka acknowledged it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Waiters;
use crate::config::kafka::KafkaSettings;
use crate::kafka::state::{Follower, Sink};

/// How long to wait before trying to open a missing or unreadable results topic again.
const OPEN_RETRY_INTERVAL: Duration = Duration::from_secs(2);

/// The follower of the results topic, held by the waiters it feeds.
pub struct ResultsFeed {
    _follower: Follower,
}

/// Makes `waiters` open the results topic on their first registration (`Waiters::open_feed`).
pub fn open_when_needed(waiters: &Arc<Waiters>, kafka: KafkaSettings, bootstrap: String) {
    let weak = Arc::downgrade(waiters);
    waiters.set_opener(Box::new(move || {
        if let Some(waiters) = weak.upgrade() {
            spawn_open(&waiters, kafka.clone(), bootstrap.clone());
        }
    }));
}

/// Opens the results topic for `waiters` in the background (on the current actix runtime),
/// retrying until it is readable; the feed lives as long as `waiters`.
pub fn spawn_open(waiters: &Arc<Waiters>, kafka: KafkaSettings, bootstrap: String) {
    let waiters = Arc::downgrade(waiters);
    actix_web::rt::spawn(async move {
        let mut warned = false;
        loop {
            let Some(alive) = waiters.upgrade() else { return };
            let sink = Arc::new(Deliver {
                waiters: Arc::downgrade(&alive),
            });
            match Follower::open_from_end(&kafka, &bootstrap, &kafka.results_topic, sink).await {
                Ok(follower) => {
                    tracing::info!(topic = %kafka.results_topic, "results topic open: requests may wait for their import");
                    alive.feed_opened(ResultsFeed { _follower: follower });
                    return;
                }
                Err(error) => {
                    if !warned {
                        tracing::warn!(topic = %kafka.results_topic, %error,
                            "cannot read the results topic; requests that wait for their import are answered 202 until it is, retrying");
                        warned = true;
                    }
                    drop(alive);
                    actix_web::rt::time::sleep(OPEN_RETRY_INTERVAL).await;
                }
            }
        }
    });
}

struct Deliver {
    waiters: Weak<Waiters>,
}

impl Sink for Deliver {
    fn apply(&self, key: &str, value: Option<&[u8]>, _timestamp_ms: i64) {
        if let Some(waiters) = self.waiters.upgrade() {
            waiters.deliver(key, value);
        }
    }
}
