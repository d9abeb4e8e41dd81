//! `hookpipe errors …`: list, inspect, retry and resolve a listener's import errors through a
//! running server's management API (`/api/v1/listeners/{id}/errors`). One function per operation;
//! the HTTP round trips are covered by `tests/cli_listeners.rs`.

use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};

use crate::api_model::{ErrorDetail, ErrorList, RetryOne, RetryReport, RetryRequest};
use crate::cli::client::{connect, finish, listener_path, CliError, Client, Method, Output};
use crate::cli::render::{optional_cell, ordered_key_value_lines, pretty_json, render_table, sanitize_line, truncate};
use crate::cli::ApiArgs;

/// Keys `errors show` prints first, in this order.
const ERROR_LEADING_KEYS: &[&str] = &[
    "listener_id",
    "record_id",
    "trace_key",
    "data_uri",
    "error",
    "target_status",
    "attempt",
    "tries",
    "failed_at",
    "received_at",
    "request_id",
    "can_retry",
    "retry_unavailable",
    "retry_requested_at",
];

/// `hookpipe errors`: global options and the operation.
#[derive(Args, Debug)]
pub struct ErrorsArgs {
    /// Which server, and raw JSON or readable text.
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: ErrorsCommand,
}

/// One errors operation.
#[derive(Subcommand, Debug)]
pub enum ErrorsCommand {
    /// A listener's open import errors, newest first.
    List {
        /// Listener id.
        listener: String,
        /// Errors per page (1-1000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Errors to skip (for the next page).
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// One error in full, with the record's retry data when it is stored.
    Show {
        /// Listener id.
        listener: String,
        /// The failed record's id.
        record_id: String,
    },
    /// Republish failed records for another import attempt (they keep their ids).
    #[command(group(ArgGroup::new("which").required(true).args(["record_ids", "all"])))]
    Retry {
        /// Listener id.
        listener: String,
        /// Record ids to retry.
        record_ids: Vec<String>,
        /// Retry every open error of the listener.
        #[arg(long)]
        all: bool,
    },
    /// Close an error by hand (the record is not imported).
    Resolve {
        /// Listener id.
        listener: String,
        /// The failed record's id.
        record_id: String,
    },
}

/// Runs `hookpipe errors …`: prints the result on stdout, errors on stderr.
pub fn run(args: ErrorsArgs) -> ExitCode {
    finish("errors", execute(args))
}

fn execute(args: ErrorsArgs) -> Result<(), CliError> {
    let client = connect(args.api.server)?;
    let output = Output { json: args.api.json };
    match args.command {
        ErrorsCommand::List {
            listener,
            limit,
            offset,
        } => list(&client, &output, &listener, limit, offset),
        ErrorsCommand::Show { listener, record_id } => show(&client, &output, &listener, &record_id),
        ErrorsCommand::Retry {
            listener,
            record_ids,
            all,
        } => retry(&client, &output, &listener, &record_ids, all),
        ErrorsCommand::Resolve { listener, record_id } => resolve(&client, &output, &listener, &record_id),
    }
}

fn list(client: &Client, output: &Output, listener: &str, limit: usize, offset: usize) -> Result<(), CliError> {
    let path = format!("{}?limit={limit}&offset={offset}", listener_path(listener, &["errors"]));
    let reply = client.call(Method::Get, &path, None)?;
    output.print_as(&reply, errors_table)
}

fn show(client: &Client, output: &Output, listener: &str, record_id: &str) -> Result<(), CliError> {
    let path = listener_path(listener, &["errors", record_id]);
    let reply = client.call(Method::Get, &path, None)?;
    output.print_as(&reply, error_details)
}

/// One record through its own route; several (or `--all`) through the batch route.
fn retry(client: &Client, output: &Output, listener: &str, record_ids: &[String], all: bool) -> Result<(), CliError> {
    if all || record_ids.len() != 1 {
        let request = if all {
            RetryRequest {
                all: Some(true),
                record_ids: None,
            }
        } else {
            RetryRequest {
                all: None,
                record_ids: Some(record_ids.to_vec()),
            }
        };
        let body = serde_json::to_value(&request).unwrap_or_default();
        let reply = client.call(
            Method::Post,
            &listener_path(listener, &["errors", "retry"]),
            Some(&body),
        )?;
        output.print_as(&reply, retry_summary)
    } else {
        let path = listener_path(listener, &["errors", &record_ids[0], "retry"]);
        let reply = client.call(Method::Post, &path, None)?;
        output.print_as(&reply, |one: &RetryOne| match one.republished.first() {
            Some(id) => format!("republished {} (attempt {})\n", sanitize_line(id), one.attempt),
            None => "nothing republished\n".to_string(),
        })
    }
}

fn resolve(client: &Client, output: &Output, listener: &str, record_id: &str) -> Result<(), CliError> {
    let path = listener_path(listener, &["errors", record_id, "resolve"]);
    let reply = client.call(Method::Post, &path, None)?;
    output.print(&reply, |_| format!("resolved {}\n", sanitize_line(record_id)))
}

/// `errors list`: FAILED AT, RECORD ID, TRACE KEY, STATUS, ATTEMPT, RETRY, ERROR, and where the
/// next page starts.
pub fn errors_table(page: &ErrorList) -> String {
    let total = page.total;
    if page.errors.is_empty() {
        return if total == 0 {
            "no open errors\n".to_string()
        } else {
            format!("no errors at this offset ({total} in all)\n")
        };
    }
    let rows: Vec<Vec<String>> = page
        .errors
        .iter()
        .map(|error| {
            let retry = if error.retry_requested_at.is_some() {
                "pending"
            } else if error.can_retry {
                "yes"
            } else {
                "no"
            };
            vec![
                sanitize_line(&error.failed_at),
                sanitize_line(&error.record_id),
                optional_cell(Some(&error.trace_key)),
                optional_cell(error.target_status),
                error.attempt.to_string(),
                retry.to_string(),
                truncate(&optional_cell(Some(&error.error)), 80),
            ]
        })
        .collect();
    let mut out = render_table(
        &[
            "FAILED AT",
            "RECORD ID",
            "TRACE KEY",
            "STATUS",
            "ATTEMPT",
            "RETRY",
            "ERROR",
        ],
        &rows,
    );
    let offset = page.offset;
    let shown = page.errors.len() as u64;
    if offset + shown < total {
        out.push_str(&format!(
            "{shown} of {total} errors shown; next page: --offset {}\n",
            offset + shown
        ));
    }
    out
}

/// `errors show`: the error's fields, then the record's retry data (or why there is none).
fn error_details(detail: &ErrorDetail) -> String {
    let summary = serde_json::to_value(&detail.error).unwrap_or_default();
    let mut out = ordered_key_value_lines(&summary, ERROR_LEADING_KEYS);
    match (&detail.retry_data, &detail.error.retry_unavailable) {
        (Some(data), _) => {
            out.push_str("retry data:\n");
            out.push_str(&pretty_json(&data.record));
        }
        (None, Some(reason)) => out.push_str(&format!("retry data: none — {}\n", sanitize_line(reason))),
        (None, None) => out.push_str("retry data: none\n"),
    }
    out
}

/// `errors retry` of several records: what was republished, refused and not found.
fn retry_summary(report: &RetryReport) -> String {
    let ids = |items: &[String]| items.iter().map(|id| sanitize_line(id)).collect::<Vec<_>>();
    let republished = ids(&report.republished);
    let mut out = match republished.len() {
        0 => "nothing republished\n".to_string(),
        count => format!("republished {count} records: {}\n", republished.join(", ")),
    };
    for refused in &report.refused {
        out.push_str(&format!(
            "refused {}: {}\n",
            sanitize_line(&refused.record_id),
            sanitize_line(&refused.reason)
        ));
    }
    let not_found = ids(&report.not_found);
    if !not_found.is_empty() {
        out.push_str(&format!("no open error for: {}\n", not_found.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::typed;
    use serde_json::{json, Value};

    /// An error as the API lists it, with `fields` changed.
    fn error(fields: Value) -> Value {
        let mut value = json!({"listener_id": "orders", "record_id": "r", "trace_key": "", "error": "", "attempt": 1,
            "tries": 1, "failed_at": "2026-11-30T10:00:00Z", "failed_at_ms": 0, "page_id": "p", "topic": "t",
            "retry_data_stored": true, "can_retry": true});
        for (key, field) in fields.as_object().unwrap() {
            value[key] = field.clone();
        }
        value
    }

    fn page(total: u64, offset: u64, errors: Vec<Value>) -> ErrorList {
        typed(json!({"listener_id": "orders", "total": total, "limit": 50, "offset": offset, "errors": errors}))
    }

    #[test]
    fn errors_table_marks_retry_state_and_the_next_page() {
        let response = page(
            3,
            0,
            vec![
                error(
                    json!({"failed_at": "2026-11-30T10:00:02Z", "record_id": "r-1", "trace_key": "A-1", "target_status": 422,
             "attempt": 1, "can_retry": true, "retry_requested_at": null, "error": "HTTP 422: unknown sku"}),
                ),
                error(
                    json!({"failed_at": "2026-11-30T10:00:01Z", "record_id": "r-0", "trace_key": "A-0", "target_status": null,
             "attempt": 2, "can_retry": false, "error": "cannot reach\nthe target"}),
                ),
            ],
        );
        assert_eq!(
            errors_table(&response),
            "FAILED AT             RECORD ID  TRACE KEY  STATUS  ATTEMPT  RETRY  ERROR\n\
             2026-11-30T10:00:02Z  r-1        A-1        422     1        yes    HTTP 422: unknown sku\n\
             2026-11-30T10:00:01Z  r-0        A-0        -       2        no     cannot reach\\nthe target\n\
             2 of 3 errors shown; next page: --offset 2\n"
        );
        assert_eq!(errors_table(&page(0, 0, vec![])), "no open errors\n");
        assert_eq!(
            errors_table(&page(3, 5, vec![])),
            "no errors at this offset (3 in all)\n"
        );
    }

    #[test]
    fn details_show_the_retry_data_or_why_there_is_none() {
        let mut shown = error(json!({"record_id": "r-1", "can_retry": true}));
        shown["retry_data"] = json!({"topic": "t", "page_id": "p", "record": {"id": "r-1", "data": {"sku": "S-1"}}});
        let with = error_details(&typed(shown));
        assert!(
            with.contains("retry data:\n") && with.contains("\"sku\": \"S-1\""),
            "{with}"
        );
        let mut shown = error(json!({"record_id": "r-1", "can_retry": false,
            "retry_unavailable": "listener `p` does not store retry data"}));
        shown["retry_data"] = Value::Null;
        let without = error_details(&typed(shown));
        assert!(
            without.ends_with("retry data: none — listener `p` does not store retry data\n"),
            "{without}"
        );
    }

    #[test]
    fn retry_summaries_say_what_happened_to_each_record() {
        assert_eq!(
            retry_summary(&typed(
                json!({"republished": ["a", "b"], "refused": [{"record_id": "c", "reason": "expired"}],
                                  "not_found": ["d"]})
            )),
            "republished 2 records: a, b\nrefused c: expired\nno open error for: d\n"
        );
        assert_eq!(
            retry_summary(&typed(json!({"republished": [], "refused": [], "not_found": []}))),
            "nothing republished\n"
        );
    }

    #[test]
    fn errors_table_shows_pending_retries_and_empty_fields_as_dashes() {
        let response = page(
            2,
            0,
            vec![
                error(json!({"record_id": "r", "retry_requested_at": "2026-11-30T10:00:00Z", "can_retry": false})),
                error(json!({"record_id": "s", "can_retry": false})),
            ],
        );
        assert_eq!(
            errors_table(&response),
            "FAILED AT             RECORD ID  TRACE KEY  STATUS  ATTEMPT  RETRY    ERROR\n\
             2026-11-30T10:00:00Z  r          -          -       1        pending  -\n\
             2026-11-30T10:00:00Z  s          -          -       1        no       -\n"
        );
    }
}
