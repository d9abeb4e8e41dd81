//! The JSON-lines target: one line per record (the record with its `listener_id` and `page_id`
//! added), appended to a file (flushed and synced before the page counts as imported) or
//! printed on standard output.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

use crate::config::worker::ImportMode;
use crate::telemetry::events::TargetAnswered;
use crate::worker::backoff::RetryPolicy;
use crate::worker::import::{Answer, Target};
use crate::worker::page::IncomingPage;

/// Where the lines go.
enum Sink {
    File { path: String, file: File },
    Stdout,
}

/// A JSON-lines file or standard output.
pub struct JsonLinesTarget {
    sink: Mutex<Sink>,
}

impl std::fmt::Debug for JsonLinesTarget {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("JsonLinesTarget")
    }
}

impl JsonLinesTarget {
    /// Appends to `path` (created if missing).
    pub fn file(path: &str) -> Result<JsonLinesTarget, String> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open {path} for appending: {e}"))?;
        Ok(JsonLinesTarget {
            sink: Mutex::new(Sink::File {
                path: path.to_string(),
                file,
            }),
        })
    }

    /// Prints on standard output.
    pub fn stdout() -> JsonLinesTarget {
        JsonLinesTarget {
            sink: Mutex::new(Sink::Stdout),
        }
    }
}

/// The lines of the chosen records, each ending in `\n`.
pub fn lines(page: &IncomingPage, records: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for index in records {
        let mut record = page.records[*index].clone();
        if let Value::Object(object) = &mut record {
            object.insert("listener_id".into(), page.listener_id.clone().into());
            object.insert("page_id".into(), page.page_id.clone().into());
        }
        // Serializing a Value into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &record);
        out.push(b'\n');
    }
    out
}

impl Target for JsonLinesTarget {
    fn send(&self, page: &IncomingPage, records: &[usize]) -> Answer {
        let bytes = lines(page, records);
        let mut sink = self.sink.lock().unwrap_or_else(|poison| poison.into_inner());
        let result = match &mut *sink {
            Sink::File { path, file } => file
                .write_all(&bytes)
                .and_then(|()| file.sync_data())
                .map_err(|e| format!("cannot append to {path}: {e}")),
            Sink::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(&bytes)
                    .and_then(|()| stdout.flush())
                    .map_err(|e| format!("cannot write to standard output: {e}"))
            }
        };
        let class = if result.is_ok() { "2xx" } else { "error" };
        TargetAnswered {
            listener: &page.listener_id,
            status_class: class,
        }
        .emit();
        match result {
            Ok(()) => Answer::Accepted(None),
            Err(error) => Answer::Retryable {
                status: None,
                error,
                retry_after: None,
            },
        }
    }

    fn mode(&self) -> ImportMode {
        ImportMode::Page
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_record_is_one_line_with_its_listener_and_page() {
        let page = IncomingPage {
            wait_for_import: false,
            listener_id: "l".into(),
            page_id: "p".into(),
            created_at: None,
            records: vec![json!({"id": "a", "data": "x\ny"}), json!({"id": "b", "data": 2})],
        };
        let text = String::from_utf8(lines(&page, &[1, 0])).unwrap();
        let parsed: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(
            parsed,
            vec![
                json!({"id": "b", "data": 2, "listener_id": "l", "page_id": "p"}),
                json!({"id": "a", "data": "x\ny", "listener_id": "l", "page_id": "p"}),
            ]
        );
    }
}
