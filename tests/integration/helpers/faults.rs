//! The fault campaign's table (`tests/chaos/run.sh` collects it into `docs/faults.md`): every
//! case of `chaos` and `outage` prints one row on stderr, prefixed so the script can find it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hookpipe::kafka::tail::{StartAt, TopicReader, Watermarks};

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

/// How long a read-back may take at most before it gives up: a guard against a hang (a broker
/// that stopped answering), not a pass/fail threshold — a read-back ends when the topic is read
/// to its end, and one stopped by the guard says so (`ReadBack::complete`). Under nextest's
/// 5 minutes per test (`.config/nextest.toml`), with room for the load before it, so that a
/// read that does not end fails with what it read rather than being killed.
pub const READ_BACK_GUARD: Duration = Duration::from_secs(150);

/// What reading a topic back found: the records by request id, and how far the read got.
#[derive(Debug)]
pub struct StoredRecords {
    /// The `data` of the records, by request id (one entry a copy stored).
    pub by_request: HashMap<String, Vec<serde_json::Value>>,
    /// How far the read got.
    pub read_back: ReadBack,
}

impl StoredRecords {
    /// The records of `request_id` (empty if none was found).
    pub fn get(&self, request_id: &str) -> &[serde_json::Value] {
        self.by_request.get(request_id).map_or(&[][..], Vec::as_slice)
    }
}

/// How far a read-back got, partition by partition.
#[derive(Debug, Clone)]
pub struct ReadBack {
    /// Whether every partition was read to its end (its high watermark as the fetches of the
    /// read, all after the load ended, reported it, looked at again once reached): records not found then are not in the topic. `false`:
    /// the guard passed first, and records not found may simply not have been read.
    pub complete: bool,
    /// How long the read took.
    pub took: Duration,
    /// Each partition's watermarks (the last asked) and what was read of it.
    pub partitions: Vec<PartitionRead>,
}

/// What a read-back read of one partition.
#[derive(Debug, Clone)]
pub struct PartitionRead {
    /// The partition and its watermarks.
    pub watermarks: Watermarks,
    /// The offset after the last message read (where the read was).
    pub next: i64,
    /// Messages read.
    pub messages: u64,
    /// Offsets skipped between two messages read (none in a topic without transactions or
    /// compaction).
    pub skipped: i64,
}

impl std::fmt::Display for ReadBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.complete {
            write!(f, "the topic read to its end in {:.1} s", self.took.as_secs_f64())?;
        } else {
            write!(
                f,
                "READ-BACK INCOMPLETE: the {} s guard passed before the topic's end, so records not \
                 found may just be unread",
                READ_BACK_GUARD.as_secs()
            )?;
        }
        for read in &self.partitions {
            let Watermarks { partition, low, high } = read.watermarks;
            write!(
                f,
                "; partition {partition}: offsets {low}..{high}, read to {} ({} messages, {} offsets skipped)",
                read.next, read.messages, read.skipped
            )?;
        }
        Ok(())
    }
}

/// Fails the test when `lost` (requests answered 2xx whose records were not found) is not
/// empty, saying which it is: records missing from a topic read to its end, or a read-back
/// that did not get there.
pub fn assert_none_lost<T: std::fmt::Debug>(case: &str, lost: &[T], read_back: &ReadBack) {
    assert!(
        lost.is_empty(),
        "{case}: {} requests answered 2xx but their records were not found ({read_back}), e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
}

/// The records in `topic` and their copies, by request id: every partition read from its start
/// to its end, the end being its high watermark as the broker's fetch answers report it, all
/// given once the caller's load is over (so every record acknowledged before is below it), and
/// looked at again once reached (an end that moved on meanwhile is followed). Only a hang stops it earlier: `READ_BACK_GUARD`.
pub fn stored_records(settings: &hookpipe::config::Settings, bootstrap: &str, topic: &str) -> StoredRecords {
    let started = Instant::now();
    let guard = started + READ_BACK_GUARD;
    let reader = TopicReader::open(
        &settings.kafka,
        bootstrap,
        topic,
        StartAt::Beginning,
        Duration::from_secs(20),
    )
    .expect("topic reader");
    let mut by_request: HashMap<String, Vec<serde_json::Value>> = HashMap::new();
    let mut partitions: Vec<PartitionRead> = Vec::new();
    let mut complete = false;
    while Instant::now() < guard {
        // Reached the end (or nothing known yet): where is the end now?
        if partitions.iter().all(|read| read.next >= read.watermarks.high) {
            // Not known before the first fetches are answered: read (poll) meanwhile.
            if let Ok(watermarks) = reader.watermarks() {
                for marks in watermarks {
                    match partitions
                        .iter_mut()
                        .find(|read| read.watermarks.partition == marks.partition)
                    {
                        Some(read) => read.watermarks = marks,
                        None => partitions.push(PartitionRead {
                            watermarks: marks,
                            next: marks.low,
                            messages: 0,
                            skipped: 0,
                        }),
                    }
                }
                if partitions.iter().all(|read| read.next >= read.watermarks.high) {
                    complete = true;
                    break;
                }
            }
        }
        // A transient client error (librdkafka reports "all brokers down" while it reconnects
        // after a fault) is not the end of the read.
        let message = match reader.next(Duration::from_millis(100)) {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(error) => {
                eprintln!("reading {topic} back: {error} (retrying)");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let at = match partitions
            .iter()
            .position(|read| read.watermarks.partition == message.partition)
        {
            Some(at) => at,
            None => {
                // Read before every partition's end is known: its end comes with the others'.
                let watermarks = Watermarks {
                    partition: message.partition,
                    low: 0,
                    high: -1,
                };
                partitions.push(PartitionRead {
                    watermarks,
                    next: 0,
                    messages: 0,
                    skipped: 0,
                });
                partitions.len() - 1
            }
        };
        let read = &mut partitions[at];
        if message.offset < read.next {
            // Read again (the consumer went back to the start after an "out of range").
            continue;
        }
        read.skipped += message.offset - read.next;
        read.next = message.offset + 1;
        read.messages += 1;
        let page: serde_json::Value = serde_json::from_slice(&message.payload).expect("a page is JSON");
        for record in page["records"].as_array().expect("records") {
            let request_id = record["request_id"].as_str().expect("request_id").to_string();
            by_request.entry(request_id).or_default().push(record["data"].clone());
        }
    }
    let read_back = ReadBack {
        complete,
        took: started.elapsed(),
        partitions,
    };
    eprintln!("read {topic} back: {read_back}");
    StoredRecords { by_request, read_back }
}
