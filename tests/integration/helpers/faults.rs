//! The fault campaign's table (`tests/chaos/run.sh` collects it into `docs/faults.md`): every
//! case of `chaos` and `outage` prints one row on stderr, prefixed so the script can find it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookpipe::kafka::tail::{StartAt, TopicReader};

/// The prefix of a table row on stderr.
pub const ROW_PREFIX: &str = "FAULT-ROW ";

/// What one fault case showed.
#[derive(Debug)]
pub struct Row<'a> {
    /// The case, as the table names it.
    pub case: &'a str,
    /// Requests answered 2xx.
    pub ok: usize,
    /// Requests answered 503.
    pub refused: usize,
    /// Every other outcome (another status, a connection refused, reset or closed early).
    pub other: usize,
    /// Requests answered 2xx with a record missing from Kafka (the tests assert 0).
    pub lost: usize,
    /// Records of 2xx requests stored more than once.
    pub duplicates: usize,
    /// From the repair (or the restart) to the first 2xx.
    pub recovered: Option<Duration>,
}

impl Row<'_> {
    /// Prints the row, a markdown table row after `ROW_PREFIX`.
    pub fn print(&self) {
        let recovered = self
            .recovered
            .map_or_else(|| "—".to_string(), |at| format!("{:.2}", at.as_secs_f64()));
        eprintln!(
            "{ROW_PREFIX}| {} | {} | {} | {} | {} | {} | {recovered} |",
            self.case, self.ok, self.refused, self.other, self.lost, self.duplicates
        );
    }
}

/// The `data` of the records in `topic`, by request id, read from the beginning until every id
/// of `expected` is there (or `timeout`), then for one more quiet second (for duplicates).
pub fn stored_records(
    settings: &hookpipe::config::Settings,
    bootstrap: &str,
    topic: &str,
    expected: &[&str],
    timeout: Duration,
) -> HashMap<String, Vec<serde_json::Value>> {
    let reader = TopicReader::open(
        &settings.kafka,
        bootstrap,
        topic,
        StartAt::Beginning,
        Duration::from_secs(20),
    )
    .expect("topic reader");
    let mut found: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    let deadline = Instant::now() + timeout;
    let mut quiet_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline || quiet_until.is_some_and(|until| now >= until) {
            return found;
        }
        if quiet_until.is_none() && expected.iter().all(|id| found.contains_key(*id)) {
            quiet_until = Some(now + Duration::from_secs(1));
        }
        // A transient client error (librdkafka reports "all brokers down" while it reconnects
        // after a fault) is not the end of the read: keep reading until the deadline; missing
        // records fail the caller's comparison anyway.
        let message = match reader.next(Duration::from_millis(100)) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(error) => {
                eprintln!("reading {topic} back: {error} (retrying)");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let page: serde_json::Value = serde_json::from_slice(&message.payload).expect("a page is JSON");
        for record in page["records"].as_array().expect("records") {
            let request_id = record["request_id"].as_str().expect("request_id").to_string();
            found.entry(request_id).or_default().push(record["data"].clone());
        }
    }
}
