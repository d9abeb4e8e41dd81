//! `hookpipe listeners debug ID …`: open, close and inspect a listener's debug window, and print
//! the requests it captured (`/api/v1/listeners/{id}/debug`).

use clap::Subcommand;
use serde_json::Value;

use crate::api_model::{CaptureList, DebugStart, DebugWindow};
use crate::cli::client::{listener_path, CliError, Client, Method, Output};
use crate::cli::render::{cell, ordered_key_value_lines, render_table, sanitize_keep_lines, sanitize_line};

/// Keys `debug logs --request` prints first, in this order.
const CAPTURE_LEADING_KEYS: &[&str] = &[
    "time",
    "request_id",
    "instance",
    "method",
    "path",
    "status",
    "outcome",
    "verification",
    "latency_ms",
];

/// `debug ID …`.
#[derive(Subcommand, Debug)]
pub enum DebugAction {
    /// Open a debug window; it closes by itself.
    Start {
        /// Minutes to keep it open [server default: 15, at most 60].
        #[arg(long, value_name = "N")]
        minutes: Option<u32>,
    },
    /// Close the debug window now.
    Stop,
    /// Whether the debug window is open, and until when.
    Status,
    /// The captured requests, newest first; or one capture in full.
    Logs {
        /// Show this request's capture (headers and body).
        #[arg(long = "request", value_name = "REQUEST_ID")]
        request_id: Option<String>,
    },
}

/// Runs one debug action on listener `id`.
pub fn execute(client: &Client, output: &Output, id: &str, action: DebugAction) -> Result<(), CliError> {
    let path = listener_path(id, &["debug"]);
    match action {
        DebugAction::Start { minutes } => {
            let body = DebugStart {
                duration_minutes: minutes.map(u64::from),
                duration_secs: None,
            };
            let body = serde_json::to_value(&body).unwrap_or_default();
            let reply = client.call(Method::Post, &path, Some(&body))?;
            output.print_as(&reply, |window| debug_status_line(id, window))
        }
        DebugAction::Stop => {
            let reply = client.call(Method::Delete, &path, None)?;
            output.print(&reply, |_| format!("debug window of {id} closed\n"))
        }
        DebugAction::Status => {
            let reply = client.call(Method::Get, &path, None)?;
            output.print_as(&reply, |window| debug_status_line(id, window))
        }
        DebugAction::Logs { request_id: None } => {
            let reply = client.call(Method::Get, &listener_path(id, &["debug", "logs"]), None)?;
            output.print_as(&reply, captures_table)
        }
        DebugAction::Logs {
            request_id: Some(request_id),
        } => {
            let capture_path = listener_path(id, &["debug", "logs", &request_id]);
            let reply = client.call(Method::Get, &capture_path, None)?;
            output.print(&reply, capture_details)
        }
    }
}

fn debug_status_line(id: &str, window: &DebugWindow) -> String {
    if window.open {
        format!(
            "debug window of {id} open until {}\n",
            sanitize_line(window.until.as_deref().unwrap_or("-"))
        )
    } else {
        format!("debug window of {id} closed\n")
    }
}

/// `debug logs`: TIME, STATUS, METHOD, LATENCY, VERIFICATION, REQUEST ID.
pub fn captures_table(response: &CaptureList) -> String {
    if response.captures.is_empty() {
        return "no captured requests\n".to_string();
    }
    let rows: Vec<Vec<String>> = response
        .captures
        .iter()
        .map(|capture| {
            let latency = match capture.latency_ms {
                None => "-".to_string(),
                Some(ms) => format!("{ms} ms"),
            };
            vec![
                sanitize_line(&capture.time),
                capture.status.to_string(),
                sanitize_line(&capture.method),
                latency,
                sanitize_line(&capture.verification),
                sanitize_line(&capture.request_id),
            ]
        })
        .collect();
    render_table(
        &["TIME", "STATUS", "METHOD", "LATENCY", "VERIFICATION", "REQUEST ID"],
        &rows,
    )
}

/// `debug logs --request`: the capture's fields, its headers, then its body.
fn capture_details(capture: &Value) -> String {
    let mut summary = capture.clone();
    let headers = summary.as_object_mut().and_then(|o| o.remove("headers"));
    let body = summary.as_object_mut().and_then(|o| o.remove("body"));
    let mut out = ordered_key_value_lines(&summary, CAPTURE_LEADING_KEYS);
    if let Some(Value::Object(headers)) = headers {
        out.push_str("headers:\n");
        for (name, value) in headers {
            out.push_str(&format!("  {}: {}\n", sanitize_line(&name), cell(&value)));
        }
    }
    match body {
        Some(Value::String(body)) if !body.is_empty() => {
            out.push_str("body:\n");
            // The body is whatever a sender posted: keep its lines, neutralize terminal escapes.
            out.push_str(&sanitize_keep_lines(&body));
            if !body.ends_with('\n') {
                out.push('\n');
            }
        }
        Some(Value::Null) | None => {}
        Some(Value::String(_)) => out.push_str("body: (empty)\n"),
        Some(other) => out.push_str(&format!("body: {other}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::typed;
    use serde_json::json;

    #[test]
    fn captures_table_and_details() {
        let capture = |time: &str, status: u16, latency: u64, verification: &str, id: &str| {
            json!({"time": time, "instance": "i-1", "listener_id": "orders", "request_id": id, "method": "POST",
                   "path": "/hooks/x", "query": "", "status": status, "outcome": "accepted", "latency_ms": latency,
                   "verification": verification, "headers": {}, "body": "", "body_truncated": false})
        };
        let logs: CaptureList = typed(json!({"captures": [
            capture("2026-11-30T10:00:01Z", 204, 3, "ok", "0193-b"),
            capture("2026-11-30T10:00:00Z", 401, 12, "failed", "0193-a"),
        ]}));
        assert_eq!(
            captures_table(&logs),
            "TIME                  STATUS  METHOD  LATENCY  VERIFICATION  REQUEST ID\n\
             2026-11-30T10:00:01Z  204     POST    3 ms     ok            0193-b\n\
             2026-11-30T10:00:00Z  401     POST    12 ms    failed        0193-a\n"
        );
        assert_eq!(
            captures_table(&typed(json!({"captures": []}))),
            "no captured requests\n"
        );
        assert_eq!(
            debug_status_line("o", &typed(json!({"open": true, "until": "2026-11-30T10:15:00Z"}))),
            "debug window of o open until 2026-11-30T10:15:00Z\n"
        );

        let details = capture_details(&json!({
            "request_id": "0193-a", "status": 401, "headers": {"content-type": "application/json"},
            "body": "{\"a\":1}\n\u{1b}]0;evil\u{7}", "body_truncated": false,
        }));
        assert_eq!(
            details,
            "request_id:     0193-a\n\
             status:         401\n\
             body_truncated: false\n\
             headers:\n  content-type: application/json\n\
             body:\n{\"a\":1}\n\\u{1b}]0;evil\\u{7}\n"
        );
    }
}
