//! Import errors and retry data.
//!
//! A record that fails permanently (or exhausts its tries) is an *error*: the worker writes it to
//! the compacted errors topic under `<listener id>/<record id>`; resolving it (by a later
//! successful import of the same trace key, by a successful retry, or by hand) writes a
//! tombstone. Every instance mirrors the topic (`StateTopic`), so the errors view works anywhere;
//! the mirror holds open errors only (about half a kilobyte each, no record content).
//!
//! Retry data (the records' content, written at ingest by the RetryStoreActor, one message per
//! page, key = page id) is not mirrored: it is read on demand. Kafka cannot look a key up, but it can look a time
//! up, and a record's retry data is produced within `server.request_timeout_ms` of the record's
//! `received_at`: `find_retry_data` asks for the offsets at `received_at - margin` on every
//! partition of the retry topic and reads forward to `received_at + request timeout + margin`,
//! keeping only the wanted keys. Memory is bounded by the wanted records; the read by the
//! traffic of that window.
//!
//! One file per job: `entry` (what an error is, its key, a record's retry data), `store` (the
//! mirrored errors topic and its trace-key index), `retry_data` (reading retry data back),
//! `republish` (sending records again, as pages written by `crate::wire`).

pub mod entry;
pub mod republish;
pub mod retry_data;
pub mod store;

pub use entry::{error_key, ErrorEntry, RetryData};
pub use republish::{republish, Republish};
pub use retry_data::{find_retry_data, RetryLookup, RETRY_LOOKUP_BATCH, RETRY_LOOKUP_CLOCK_MARGIN};
pub use store::ErrorsStore;
