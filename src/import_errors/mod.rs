//! Import errors and retry data.
//!
//! A record that fails permanently (or exhausts its tries) is an *error*: the worker writes it to
//! the compacted errors topic under `<listener id>/<record id>`; resolving it (by a later
//! successful import of the same trace key, by a successful retry, or by hand) writes a
//! tombstone. Every instance mirrors the topic (`StateTopic`), so the errors view works anywhere.
//!
//! Retry data is stored for records that fail, not for every record: ingest publishes each page
//! once, and the worker keeps a failed record (exactly as it was in its page) inside its error
//! entry, unless the listener has `do_not_store_retry_data` or the record is bigger than
//! `worker.retry_data_max_bytes`. So the error and its retry data are written, compacted and
//! tombstoned together, a retry works however long after the pages topic dropped the page, and
//! it needs no read of Kafka: the mirror has it. The cost is the mirror's memory: each open error
//! is about half a kilobyte plus its record.
//!
//! Errors recorded by earlier versions have no retry data in their entry: those versions wrote
//! every page's retry data to the retry topic at ingest (one message per page, key = page id).
//! It is read on demand (`find_retry_data`): Kafka cannot look a key up, but it can look a time
//! up, and that retry data was produced within `server.request_timeout_ms` of the record's
//! `received_at`, so the lookup asks for the offsets at `received_at - margin` on every
//! partition of the retry topic and reads forward to `received_at + request timeout + margin`,
//! keeping only the wanted keys.
//!
//! One file per job: `entry` (what an error is, its key, a record's retry data), `store` (the
//! mirrored errors topic and its trace-key index), `retry_data` (reading the legacy retry topic),
//! `republish` (sending records again, as pages written by `crate::wire`).

pub mod entry;
pub mod republish;
pub mod retry_data;
pub mod store;

pub use entry::{do_not_store_reason, error_key, too_large_reason, ErrorEntry, RetryData};
pub use republish::{republish, republish_events, Republish};
pub use retry_data::{find_retry_data, RetryLookup, RETRY_LOOKUP_BATCH, RETRY_LOOKUP_CLOCK_MARGIN};
pub use store::ErrorsStore;
