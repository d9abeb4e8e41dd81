//! `hookpipe listeners …` and `hookpipe errors …`: command-line clients of a running server's
//! management API (`/api/v1/listeners`, `/api/v1/listeners/{id}/errors`). Pure helpers (merge-patch builder, tables, key/value rendering) are
//! unit-tested below; the HTTP round trips are covered by `tests/cli_listeners.rs`.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Map, Value};

/// Server used when neither `--server` nor `$HOOKPIPE_SERVER` is given: `server.listen`'s default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// Environment variable naming the server.
pub const SERVER_ENV: &str = "HOOKPIPE_SERVER";

/// Environment variable holding the admin token. Never a flag: flags end up in shell history
/// and in `ps` output.
pub const TOKEN_ENV: &str = "HOOKPIPE_ADMIN_TOKEN";

/// Environment variable naming a PEM file of CA certificates to trust for an https server
/// instead of the built-in Mozilla roots.
pub const CA_FILE_ENV: &str = "HOOKPIPE_CA_FILE";

/// Largest response body read; debug logs carry captured bodies, so allow more than one body.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// Keys `show` prints first, in this order; the rest follow alphabetically.
const VIEW_LEADING_KEYS: &[&str] = &[
    "id",
    "name",
    "description",
    "source",
    "public_id",
    "url",
    "created_at",
    "updated_at",
];

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

/// `hookpipe listeners`: global options and the operation.
#[derive(Args, Debug)]
pub struct ListenersArgs {
    /// Base URL of the hookpipe server [default: $HOOKPIPE_SERVER, else http://127.0.0.1:8080].
    /// The admin token is read from $HOOKPIPE_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Print the server's raw JSON response instead of readable text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ListenersCommand,
}

/// One management operation.
#[derive(Subcommand, Debug)]
pub enum ListenersCommand {
    /// List every listener (from the configuration file and created through the API).
    List,
    /// Show one listener's settings (secrets as fingerprints).
    Show {
        /// Listener id.
        id: String,
    },
    /// Create a listener from a JSON file of listener settings (the keys of `[[listeners]]`).
    Create {
        /// JSON file (`-` reads standard input).
        #[arg(long, short, value_name = "FILE")]
        file: PathBuf,
    },
    /// Change a listener: a JSON merge patch from a file and/or `--set key=value` pairs.
    #[command(group(ArgGroup::new("patch").required(true).multiple(true).args(["file", "set"])))]
    Update {
        /// Listener id.
        id: String,
        /// JSON merge patch file (`-` reads standard input); omitted keys are kept.
        #[arg(long, short, value_name = "FILE")]
        file: Option<PathBuf>,
        /// A dotted key and a value (`page_size=50`, `response.status=202`); the value is
        /// JSON when it parses as JSON, else a string; `key=null` removes the key. Repeatable.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Delete a listener created through the API.
    Delete {
        /// Listener id.
        id: String,
    },
    /// Print the listener's public URL (with its token for secret-URL listeners).
    Url {
        /// Listener id.
        id: String,
        /// Generate a new public id (and a new URL token for secret-URL listeners).
        #[arg(long)]
        regenerate: bool,
    },
    /// Add or retire verification secrets (key rotation).
    Secrets {
        /// Listener id.
        id: String,
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Print the latest sample (pretty JSON), or replace it with records from a file.
    Sample {
        /// Listener id.
        id: String,
        /// JSON file: `{"records": [...]}` or a bare array of records (`-` reads standard input).
        #[arg(long, value_name = "FILE")]
        set_file: Option<PathBuf>,
    },
    /// Print the mock output, replace it from a file, or send it through the pipeline.
    Mock {
        /// Listener id.
        id: String,
        /// JSON file: `{"records": [...]}` or a bare array of records (`-` reads standard input).
        #[arg(long, value_name = "FILE", conflicts_with = "send")]
        set_file: Option<PathBuf>,
        /// Publish the mock records as if a sender had posted them.
        #[arg(long)]
        send: bool,
    },
    /// Open, close or inspect the listener's debug window and its captured requests.
    Debug {
        /// Listener id.
        id: String,
        #[command(subcommand)]
        action: DebugAction,
    },
}

/// `secrets ID …`.
#[derive(Subcommand, Debug)]
pub enum SecretsAction {
    /// Add a secret, token or (basic auth) credential; the old ones keep working until retired.
    #[command(group(ArgGroup::new("new_secret").required(true).args(["secret", "username"])))]
    Add {
        /// The secret or token (`-` reads one line from standard input, keeping it out of history).
        #[arg(long, value_name = "SECRET")]
        secret: Option<String>,
        /// Basic-auth username (with --password).
        #[arg(long, requires = "password")]
        username: Option<String>,
        /// Basic-auth password (`-` reads one line from standard input).
        #[arg(long, requires = "username")]
        password: Option<String>,
    },
    /// Retire a secret by the fingerprint `show` prints.
    Retire {
        /// Fingerprint of the secret.
        fingerprint: String,
    },
}

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
    /// Base URL of the hookpipe server [default: $HOOKPIPE_SERVER, else http://127.0.0.1:8080].
    /// The admin token is read from $HOOKPIPE_ADMIN_TOKEN.
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Print the server's raw JSON response instead of readable text.
    #[arg(long, global = true)]
    pub json: bool,
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

/// Why a command failed; decides the message and the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or environment (exit 2, like clap's own usage errors).
    #[error("{0}")]
    Usage(String),
    /// A local problem, such as an unreadable file (exit 1).
    #[error("{0}")]
    Local(String),
    /// No HTTP answer from the server (exit 1).
    #[error("cannot reach the hookpipe server at {server}: {source} (set --server or ${SERVER_ENV})")]
    Unreachable {
        /// The server as configured.
        server: String,
        /// The transport error.
        #[source]
        source: ureq::Error,
    },
    /// The server answered with an error status (exit 1).
    #[error("{}", api_error_message(*.status, .message, .field.as_deref()))]
    Api {
        /// HTTP status.
        status: u16,
        /// The server's `error` (or the start of a non-JSON body).
        message: String,
        /// The server's `field`, naming the offending key.
        field: Option<String>,
    },
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Usage(_) => ExitCode::from(2),
            _ => ExitCode::FAILURE,
        }
    }
}

fn api_error_message(status: u16, message: &str, field: Option<&str>) -> String {
    let mut text = format!("server answered {status}: {}", sanitize_line(message));
    // The server usually names the field in its message already; say it once.
    if let Some(field) = field.filter(|field| !message.contains(field)) {
        text.push_str(&format!(" (field: {})", sanitize_line(field)));
    }
    if status == 401 {
        text.push_str(&format!(
            "\nhint: ${TOKEN_ENV} must equal the server's server.admin_token"
        ));
    }
    text
}

/// Runs `hookpipe listeners …`: prints the result on stdout, errors on stderr.
pub fn run(args: ListenersArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookpipe listeners: {error}");
            error.exit_code()
        }
    }
}

/// A client of `--server` (else `$HOOKPIPE_SERVER`, else the default) with `$HOOKPIPE_ADMIN_TOKEN`.
fn connect(server: Option<String>) -> Result<Client, CliError> {
    let server = server
        .or_else(|| std::env::var(SERVER_ENV).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    // Checked at the first request, so local mistakes (a bad --set, a missing file) come first.
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let ca_file = std::env::var(CA_FILE_ENV).ok().filter(|f| !f.is_empty());
    Client::new(&server, token, ca_file.as_deref().map(std::path::Path::new))
}

/// Runs `hookpipe errors …`: prints the result on stdout, errors on stderr.
pub fn run_errors(args: ErrorsArgs) -> ExitCode {
    match execute_errors(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookpipe errors: {error}");
            error.exit_code()
        }
    }
}

fn execute_errors(args: ErrorsArgs) -> Result<(), CliError> {
    let client = connect(args.server)?;
    let output = Output { json: args.json };
    match args.command {
        ErrorsCommand::List {
            listener,
            limit,
            offset,
        } => {
            let path = format!(
                "{}?limit={limit}&offset={offset}",
                listener_path(&listener, &["errors"])
            );
            let reply = client.call(Method::Get, &path, None)?;
            output.print(&reply, errors_table)
        }
        ErrorsCommand::Show { listener, record_id } => {
            let path = listener_path(&listener, &["errors", &record_id]);
            let reply = client.call(Method::Get, &path, None)?;
            output.print(&reply, error_details)
        }
        ErrorsCommand::Retry {
            listener,
            record_ids,
            all,
        } => {
            let reply = if all || record_ids.len() != 1 {
                let body = if all {
                    serde_json::json!({ "all": true })
                } else {
                    serde_json::json!({ "record_ids": record_ids })
                };
                client.call(
                    Method::Post,
                    &listener_path(&listener, &["errors", "retry"]),
                    Some(&body),
                )?
            } else {
                let path = listener_path(&listener, &["errors", &record_ids[0], "retry"]);
                client.call(Method::Post, &path, None)?
            };
            output.print(&reply, retry_summary)
        }
        ErrorsCommand::Resolve { listener, record_id } => {
            let path = listener_path(&listener, &["errors", &record_id, "resolve"]);
            let reply = client.call(Method::Post, &path, None)?;
            output.print(&reply, |_| format!("resolved {}\n", sanitize_line(&record_id)))
        }
    }
}

fn execute(args: ListenersArgs) -> Result<(), CliError> {
    let client = connect(args.server)?;
    let output = Output { json: args.json };
    match args.command {
        ListenersCommand::List => {
            let reply = client.call(Method::Get, "/listeners", None)?;
            output.print(&reply, listeners_table)
        }
        ListenersCommand::Show { id } => {
            let reply = client.call(Method::Get, &listener_path(&id, &[]), None)?;
            output.print(&reply, key_value_lines)
        }
        ListenersCommand::Create { file } => {
            let body = read_json_file(&file)?;
            if !body.is_object() {
                return Err(CliError::Local(format!("{}: must hold a JSON object", file.display())));
            }
            let reply = client.call(Method::Post, "/listeners", Some(&body))?;
            output.print(&reply, |view| {
                format!("created listener {}\n{}", text_of(&view["id"]), key_value_lines(view))
            })
        }
        ListenersCommand::Update { id, file, set } => {
            let mut patch = match &file {
                Some(file) => read_json_file(file)?,
                None => Value::Object(Map::new()),
            };
            if !patch.is_object() {
                return Err(CliError::Local("the merge patch must be a JSON object".into()));
            }
            merge_sets(&mut patch, &set).map_err(CliError::Usage)?;
            let reply = client.call(Method::Put, &listener_path(&id, &[]), Some(&patch))?;
            output.print(&reply, |view| {
                format!("updated listener {id}\n{}", key_value_lines(view))
            })
        }
        ListenersCommand::Delete { id } => {
            let reply = client.call(Method::Delete, &listener_path(&id, &[]), None)?;
            output.print(&reply, |_| format!("deleted listener {id}\n"))
        }
        ListenersCommand::Url { id, regenerate } => {
            let path = listener_path(&id, &["url"]);
            let reply = if regenerate {
                client.call(Method::Post, &path, None)?
            } else {
                client.call(Method::Get, &path, None)?
            };
            output.print(&reply, |value| format!("{}\n", text_of(&value["url"])))
        }
        ListenersCommand::Secrets { id, action } => match action {
            SecretsAction::Add {
                secret,
                username,
                password,
            } => {
                let body = match (secret, username, password) {
                    (Some(secret), _, _) => serde_json::json!({ "secret": from_stdin_if_dash(secret, "secret")? }),
                    (None, Some(username), Some(password)) => serde_json::json!({
                        "username": username,
                        "password": from_stdin_if_dash(password, "password")?,
                    }),
                    _ => return Err(CliError::Usage("give --secret, or --username with --password".into())),
                };
                let reply = client.call(Method::Post, &listener_path(&id, &["secrets"]), Some(&body))?;
                output.print(&reply, |view| secrets_summary(&id, "added", view))
            }
            SecretsAction::Retire { fingerprint } => {
                let path = listener_path(&id, &["secrets", &fingerprint]);
                let reply = client.call(Method::Delete, &path, None)?;
                output.print(&reply, |view| secrets_summary(&id, "retired", view))
            }
        },
        ListenersCommand::Sample { id, set_file } => {
            let path = listener_path(&id, &["sample"]);
            match set_file {
                None => {
                    let reply = client.call(Method::Get, &path, None)?;
                    output.print(&reply, pretty_json)
                }
                Some(file) => {
                    let body = records_body(read_json_file(&file)?)?;
                    let count = body["records"].as_array().map_or(0, Vec::len);
                    let reply = client.call(Method::Put, &path, Some(&body))?;
                    output.print(&reply, |_| format!("sample of {id} set ({count} records)\n"))
                }
            }
        }
        ListenersCommand::Mock { id, set_file, send } => {
            let path = listener_path(&id, &["mock"]);
            if send {
                let reply = client.call(Method::Post, &listener_path(&id, &["mock", "send"]), None)?;
                output.print(&reply, |value| {
                    format!(
                        "sent {} mock records (request id {})\n",
                        text_of(&value["records"]),
                        text_of(&value["request_id"])
                    )
                })
            } else if let Some(file) = set_file {
                let body = records_body(read_json_file(&file)?)?;
                let count = body["records"].as_array().map_or(0, Vec::len);
                let reply = client.call(Method::Put, &path, Some(&body))?;
                output.print(&reply, |_| format!("mock output of {id} set ({count} records)\n"))
            } else {
                let reply = client.call(Method::Get, &path, None)?;
                output.print(&reply, pretty_json)
            }
        }
        ListenersCommand::Debug { id, action } => {
            let path = listener_path(&id, &["debug"]);
            match action {
                DebugAction::Start { minutes } => {
                    let body = match minutes {
                        Some(minutes) => serde_json::json!({ "duration_minutes": minutes }),
                        None => serde_json::json!({}),
                    };
                    let reply = client.call(Method::Post, &path, Some(&body))?;
                    output.print(&reply, |value| debug_status_line(&id, value))
                }
                DebugAction::Stop => {
                    let reply = client.call(Method::Delete, &path, None)?;
                    output.print(&reply, |_| format!("debug window of {id} closed\n"))
                }
                DebugAction::Status => {
                    let reply = client.call(Method::Get, &path, None)?;
                    output.print(&reply, |value| debug_status_line(&id, value))
                }
                DebugAction::Logs { request_id: None } => {
                    let reply = client.call(Method::Get, &listener_path(&id, &["debug", "logs"]), None)?;
                    output.print(&reply, captures_table)
                }
                DebugAction::Logs {
                    request_id: Some(request_id),
                } => {
                    let path = listener_path(&id, &["debug", "logs", &request_id]);
                    let reply = client.call(Method::Get, &path, None)?;
                    output.print(&reply, capture_details)
                }
            }
        }
    }
}

/// Prints a successful reply: raw with `--json`, else rendered.
struct Output {
    json: bool,
}

impl Output {
    fn print(&self, reply: &Reply, render: impl FnOnce(&Value) -> String) -> Result<(), CliError> {
        if self.json {
            if !reply.body.trim().is_empty() {
                println!("{}", reply.body.trim_end());
            }
            return Ok(());
        }
        let value = if reply.body.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&reply.body).map_err(|error| {
                CliError::Local(format!(
                    "the server answered {} with a body that is not JSON ({error}): {}",
                    reply.status,
                    sanitize_line(&truncate(&reply.body, 200))
                ))
            })?
        };
        print!("{}", render(&value));
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// A successful (2xx) answer.
struct Reply {
    status: u16,
    body: String,
}

/// The management API at one server, with the bearer token.
struct Client {
    agent: ureq::Agent,
    /// As the user gave it, for messages.
    server: String,
    /// `scheme://host:port[/prefix]/api/v1`.
    api_base: String,
    token: Option<String>,
}

impl Client {
    fn new(server: &str, token: Option<String>, ca_file: Option<&std::path::Path>) -> Result<Client, CliError> {
        let api_base = api_base(server).map_err(CliError::Usage)?;
        let tls = crate::tls::client_config(ca_file).map_err(|e| CliError::Usage(format!("${CA_FILE_ENV}: {e}")))?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            // Above the server's request deadline: `mock --send` waits for Kafka's acks.
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Client {
            agent,
            server: server.to_string(),
            api_base,
            token,
        })
    }

    fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, CliError> {
        let Some(token) = &self.token else {
            return Err(CliError::Usage(format!(
                "${TOKEN_ENV} is not set: export the server's server.admin_token"
            )));
        };
        let url = format!("{}{path}", self.api_base);
        let authorization = format!("Bearer {token}");
        let result = match method {
            Method::Get => self.agent.get(&url).header("Authorization", &authorization).call(),
            Method::Delete => self.agent.delete(&url).header("Authorization", &authorization).call(),
            Method::Post | Method::Put => {
                let request = match method {
                    Method::Post => self.agent.post(&url),
                    _ => self.agent.put(&url),
                }
                .header("Authorization", &authorization);
                match body {
                    Some(body) => request.send_json(body),
                    None => request.send_empty(),
                }
            }
        };
        let mut response = result.map_err(|source| CliError::Unreachable {
            server: self.server.clone(),
            source,
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|source| CliError::Unreachable {
                server: self.server.clone(),
                source,
            })?;
        if (200..300).contains(&status) {
            Ok(Reply { status, body: text })
        } else {
            Err(api_error(status, &text))
        }
    }
}

/// The API error of a non-2xx answer: the JSON `error` and `field`, else the start of the body.
fn api_error(status: u16, body: &str) -> CliError {
    let parsed = serde_json::from_str::<Value>(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|value| value.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            let text = truncate(body.trim(), 200);
            if text.is_empty() {
                "(no error message)".to_string()
            } else {
                text
            }
        });
    let field = parsed
        .as_ref()
        .and_then(|value| value.get("field"))
        .and_then(Value::as_str)
        .map(str::to_string);
    CliError::Api { status, message, field }
}

/// `http://host:port` → `http://host:port/api/v1` (https likewise); accepts a trailing `/` or
/// `/api/v1`, and a bare `host:port` (http).
fn api_base(server: &str) -> Result<String, String> {
    let trimmed = server.trim();
    let (scheme, rest) = trimmed.split_once("://").unwrap_or(("http", trimmed));
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("{server}: the server must be an http:// or https:// URL"));
    }
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix("/api/v1").unwrap_or(rest).trim_end_matches('/');
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{server}: the server URL has no host"));
    }
    Ok(format!("{scheme}://{rest}/api/v1"))
}

/// `/listeners/{id}/{segments…}`, every segment percent-encoded.
fn listener_path(id: &str, segments: &[&str]) -> String {
    let mut path = format!("/listeners/{}", encode_segment(id));
    for segment in segments {
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    path
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn read_json_file(path: &Path) -> Result<Value, CliError> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Local(format!("reading standard input: {e}")))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError::Local(format!("{}: {e}", path.display())))?
    };
    serde_json::from_str(&text).map_err(|e| CliError::Local(format!("{}: not valid JSON: {e}", path.display())))
}

/// `{"records": [...]}` as given, or a bare array wrapped into it.
fn records_body(value: Value) -> Result<Value, CliError> {
    match value {
        Value::Array(records) => Ok(serde_json::json!({ "records": records })),
        Value::Object(ref object) if object.get("records").is_some_and(Value::is_array) => Ok(value),
        _ => Err(CliError::Local(
            "the file must hold {\"records\": [...]} or an array of records".into(),
        )),
    }
}

/// `-` reads one line from standard input so secrets stay out of shell history and `ps`.
fn from_stdin_if_dash(value: String, what: &str) -> Result<String, CliError> {
    if value != "-" {
        return Ok(value);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Local(format!("reading the {what} from standard input: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_string();
    if line.is_empty() {
        return Err(CliError::Usage(format!("no {what} on standard input")));
    }
    Ok(line)
}

/// Merges `key=value` pairs into a JSON merge patch: dotted keys make nested objects, values are
/// JSON when they parse as JSON (`50`, `true`, `null`, `["json"]`, `"007"`), else strings.
pub fn merge_sets(patch: &mut Value, pairs: &[String]) -> Result<(), String> {
    for pair in pairs {
        let Some((key, raw_value)) = pair.split_once('=') else {
            return Err(format!("--set {pair}: expected KEY=VALUE"));
        };
        let segments: Vec<&str> = key.trim().split('.').collect();
        if segments.iter().any(|segment| segment.is_empty()) {
            return Err(format!("--set {pair}: bad key {key:?}"));
        }
        let value = serde_json::from_str::<Value>(raw_value).unwrap_or_else(|_| Value::String(raw_value.to_string()));
        let (last, parents) = segments.split_last().expect("split yields at least one segment");
        let mut node = &mut *patch;
        let mut walked = String::new();
        for segment in parents {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(segment);
            let object = node.as_object_mut().expect("only objects are descended into");
            let child = object
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                return Err(format!("--set {pair}: {walked} is already set to a value"));
            }
            node = child;
        }
        let object = node.as_object_mut().expect("only objects are descended into");
        if object.get(*last).is_some_and(Value::is_object) && !value.is_object() {
            return Err(format!("--set {pair}: {key} already has sub-keys set"));
        }
        object.insert(last.to_string(), value);
    }
    Ok(())
}

/// Columns padded to their widest cell, two spaces apart; the last column is not padded.
pub fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(index) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if index + 1 < row.len() {
                let pad = widths[index].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `list`: ID, NAME, SOURCE, VERIFICATION, TOPIC, URL.
pub fn listeners_table(response: &Value) -> String {
    let listeners = response["listeners"].as_array().cloned().unwrap_or_default();
    if listeners.is_empty() {
        return "no listeners\n".to_string();
    }
    let rows: Vec<Vec<String>> = listeners
        .iter()
        .map(|view| {
            let verification = match &view["verification"]["type"] {
                Value::Null => "none".to_string(),
                other => cell(other),
            };
            let topic = match &view["topic"] {
                Value::Null => "(default)".to_string(),
                other => cell(other),
            };
            vec![
                cell(&view["id"]),
                cell(&view["name"]),
                cell(&view["source"]),
                verification,
                topic,
                cell(&view["url"]),
            ]
        })
        .collect();
    render_table(&["ID", "NAME", "SOURCE", "VERIFICATION", "TOPIC", "URL"], &rows)
}

/// `debug logs`: TIME, STATUS, METHOD, LATENCY, VERIFICATION, REQUEST ID.
pub fn captures_table(response: &Value) -> String {
    let captures = response["captures"].as_array().cloned().unwrap_or_default();
    if captures.is_empty() {
        return "no captured requests\n".to_string();
    }
    let rows: Vec<Vec<String>> = captures
        .iter()
        .map(|capture| {
            let latency = match &capture["latency_ms"] {
                Value::Null => "-".to_string(),
                other => format!("{} ms", cell(other)),
            };
            vec![
                cell(&capture["time"]),
                cell(&capture["status"]),
                cell(&capture["method"]),
                latency,
                cell(&capture["verification"]),
                cell(&capture["request_id"]),
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

/// `errors list`: FAILED AT, RECORD ID, TRACE KEY, STATUS, ATTEMPT, RETRY, ERROR, and where the
/// next page starts.
pub fn errors_table(response: &Value) -> String {
    let errors = response["errors"].as_array().cloned().unwrap_or_default();
    let total = response["total"].as_u64().unwrap_or(0);
    if errors.is_empty() {
        return if total == 0 {
            "no open errors\n".to_string()
        } else {
            format!("no errors at this offset ({total} in all)\n")
        };
    }
    let rows: Vec<Vec<String>> = errors
        .iter()
        .map(|error| {
            let retry = if error["retry_requested_at"].is_string() {
                "pending"
            } else if error["can_retry"] == Value::Bool(true) {
                "yes"
            } else {
                "no"
            };
            vec![
                cell(&error["failed_at"]),
                cell(&error["record_id"]),
                cell(&error["trace_key"]),
                cell(&error["target_status"]),
                cell(&error["attempt"]),
                retry.to_string(),
                truncate(&cell(&error["error"]), 80),
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
    let offset = response["offset"].as_u64().unwrap_or(0);
    let shown = errors.len() as u64;
    if offset + shown < total {
        out.push_str(&format!(
            "{shown} of {total} errors shown; next page: --offset {}\n",
            offset + shown
        ));
    }
    out
}

/// `errors show`: the error's fields, then the record's retry data (or why there is none).
fn error_details(error: &Value) -> String {
    let mut summary = error.clone();
    let retry_data = summary.as_object_mut().and_then(|o| o.remove("retry_data"));
    let mut out = ordered_key_value_lines(&summary, ERROR_LEADING_KEYS);
    match retry_data {
        Some(Value::Object(data)) => {
            out.push_str("retry data:\n");
            let record = data.get("record").cloned().unwrap_or(Value::Null);
            out.push_str(&pretty_json(&record));
        }
        _ => out.push_str("retry data: none\n"),
    }
    out
}

/// `errors retry`: what was republished, refused and not found.
fn retry_summary(reply: &Value) -> String {
    let ids = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| items.iter().map(cell).collect())
            .unwrap_or_default()
    };
    let republished = ids(&reply["republished"]);
    let mut out = match (republished.len(), reply.get("attempt")) {
        (0, _) => "nothing republished\n".to_string(),
        (1, Some(attempt)) => format!("republished {} (attempt {})\n", republished[0], cell(attempt)),
        (count, _) => format!("republished {count} records: {}\n", republished.join(", ")),
    };
    for refused in reply["refused"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "refused {}: {}\n",
            cell(&refused["record_id"]),
            cell(&refused["reason"])
        ));
    }
    let not_found = ids(&reply["not_found"]);
    if !not_found.is_empty() {
        out.push_str(&format!("no open error for: {}\n", not_found.join(", ")));
    }
    out
}

/// `show`: `key: value` lines, nested keys dotted, secrets as their fingerprints.
pub fn key_value_lines(value: &Value) -> String {
    ordered_key_value_lines(value, VIEW_LEADING_KEYS)
}

/// `key: value` lines, `leading` keys first, then the rest in the object's (alphabetical) order.
fn ordered_key_value_lines(value: &Value, leading: &[&str]) -> String {
    let mut pairs = Vec::new();
    if let Value::Object(object) = value {
        for key in leading {
            if let Some(child) = object.get(*key) {
                flatten(key, child, &mut pairs);
            }
        }
        for (key, child) in object {
            if !leading.contains(&key.as_str()) {
                flatten(key, child, &mut pairs);
            }
        }
    } else {
        pairs.push(("value".to_string(), cell(value)));
    }
    let width = pairs.iter().map(|(key, _)| key.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (key, text) in pairs {
        let pad = width - key.chars().count();
        out.push_str(&format!("{key}: {}{text}\n", " ".repeat(pad)));
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (key, child) in object {
                flatten(&format!("{prefix}.{}", sanitize_line(key)), child, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(is_secret_view) => {
            let described: Vec<String> = items.iter().map(describe_secret).collect();
            out.push((prefix.to_string(), described.join(", ")));
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(|item| !item.is_object() && !item.is_array()) => {
            let described: Vec<String> = items.iter().map(cell).collect();
            out.push((prefix.to_string(), described.join(", ")));
        }
        other => out.push((prefix.to_string(), cell(other))),
    }
}

/// A secret as the API shows it: `{"fingerprint": …}`, with `username` for basic credentials.
fn is_secret_view(item: &Value) -> bool {
    item.get("fingerprint").is_some_and(Value::is_string)
}

fn describe_secret(item: &Value) -> String {
    match item.get("username") {
        Some(username) => format!("{} ({})", cell(username), cell(&item["fingerprint"])),
        None => cell(&item["fingerprint"]),
    }
}

/// After `secrets add|retire`: the fingerprints now accepted.
fn secrets_summary(id: &str, verb: &str, view: &Value) -> String {
    let verification = &view["verification"];
    let active: Vec<String> = ["secrets", "tokens", "auth_tokens", "credentials"]
        .iter()
        .filter_map(|key| verification.get(*key).and_then(Value::as_array))
        .flatten()
        .filter(|item| is_secret_view(item))
        .map(describe_secret)
        .collect();
    let list = if active.is_empty() {
        "none".to_string()
    } else {
        active.join(", ")
    };
    format!("{verb}; secrets of {id} now: {list}\n")
}

fn debug_status_line(id: &str, value: &Value) -> String {
    if value["open"].as_bool() == Some(true) {
        format!("debug window of {id} open until {}\n", cell(&value["until"]))
    } else {
        format!("debug window of {id} closed\n")
    }
}

fn pretty_json(value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    format!("{}\n", sanitize_keep_lines(&text))
}

/// A JSON value as one line of text: strings unquoted, null as `-`, containers as compact JSON.
fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_string(),
        Value::String(text) if text.is_empty() => "-".to_string(),
        Value::String(text) => sanitize_line(text),
        other => sanitize_line(&other.to_string()),
    }
}

/// Like `cell` but without the `-` placeholders, for prose.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => sanitize_line(text),
        Value::Null => String::new(),
        other => sanitize_line(&other.to_string()),
    }
}

/// One line with control characters escaped, so server-provided text (listener names, captured
/// headers) cannot move the cursor or inject terminal escape sequences.
fn sanitize_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Like `sanitize_line`, keeping line breaks and tabs.
fn sanitize_keep_lines(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|part| sanitize_line(part.strip_suffix('\r').unwrap_or(part)))
                .collect::<Vec<_>>()
                .join("\t")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sets(pairs: &[&str]) -> Result<Value, String> {
        let mut patch = json!({});
        merge_sets(&mut patch, &pairs.iter().map(|p| p.to_string()).collect::<Vec<_>>())?;
        Ok(patch)
    }

    #[test]
    fn sets_build_a_nested_merge_patch_with_json_values() {
        let patch = sets(&[
            "page_size=50",
            "response.status=202",
            "response.media_type=json",
            "name=Orders from Shopify",
            "content.accept=[\"json\",\"xml\"]",
            "do_not_store_retry_data=true",
            "data_uri_template=null",
            "description=",
            "public_id=\"0123456789\"",
            "trace_key_template={{order_id}}",
            "resource_path=a=b",
        ])
        .unwrap();
        assert_eq!(
            patch,
            json!({
                "page_size": 50,
                "response": {"status": 202, "media_type": "json"},
                "name": "Orders from Shopify",
                "content": {"accept": ["json", "xml"]},
                "do_not_store_retry_data": true,
                "data_uri_template": null,
                "description": "",
                "public_id": "0123456789",
                "trace_key_template": "{{order_id}}",
                "resource_path": "a=b",
            })
        );
    }

    #[test]
    fn sets_merge_into_a_file_patch_and_later_values_win() {
        let mut patch = json!({"response": {"status": 200, "body": "ok"}, "page_size": 5});
        merge_sets(
            &mut patch,
            &["response.status=202".into(), "page_size=7".into(), "page_size=8".into()],
        )
        .unwrap();
        assert_eq!(
            patch,
            json!({"response": {"status": 202, "body": "ok"}, "page_size": 8})
        );
    }

    #[test]
    fn bad_sets_are_refused_with_the_offending_pair() {
        for (pairs, expected) in [
            (&["page_size"][..], "expected KEY=VALUE"),
            (&["=5"][..], "bad key"),
            (&["response..status=1"][..], "bad key"),
            (&["response.=1"][..], "bad key"),
            (&["page_size=5", "page_size.x=1"][..], "page_size is already set"),
            (&["response.status=1", "response=2"][..], "already has sub-keys"),
        ] {
            let error = sets(pairs).unwrap_err();
            assert!(error.contains(expected), "{pairs:?}: {error}");
        }
        // Replacing sub-keys by a whole object is fine: it is a merge patch too.
        assert_eq!(
            sets(&["response.status=1", "response={\"status\":2}"]).unwrap(),
            json!({"response": {"status": 2}})
        );
    }

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let table = render_table(
            &["ID", "NAME", "URL"],
            &[
                vec!["orders".into(), "Orders".into(), "http://h/hooks/1".into()],
                vec!["f".into(), "Forms and more".into(), "-".into()],
            ],
        );
        assert_eq!(
            table,
            "ID      NAME            URL\n\
             orders  Orders          http://h/hooks/1\n\
             f       Forms and more  -\n"
        );
    }

    #[test]
    fn listeners_table_shows_id_source_verification_topic_and_url() {
        let response = json!({"listeners": [
            {"id": "orders", "name": "Orders", "source": "config", "topic": null,
             "verification": {"type": "hmac", "secrets": [{"fingerprint": "1a2b3c4d"}]},
             "url": "http://127.0.0.1:8080/hooks/abc"},
            {"id": "forms", "name": "", "source": "api", "topic": "hookpipe.forms",
             "verification": {"type": "none"}, "url": "http://127.0.0.1:8080/hooks/def"},
        ]});
        let table = listeners_table(&response);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "ID      NAME    SOURCE  VERIFICATION  TOPIC           URL");
        assert_eq!(
            lines[1],
            "orders  Orders  config  hmac          (default)       http://127.0.0.1:8080/hooks/abc"
        );
        assert_eq!(
            lines[2],
            "forms   -       api     none          hookpipe.forms  http://127.0.0.1:8080/hooks/def"
        );
        assert_eq!(listeners_table(&json!({"listeners": []})), "no listeners\n");
    }

    #[test]
    fn show_lines_lead_with_identity_and_print_fingerprints() {
        let view = json!({
            "page_size": 20,
            "verification": {"type": "basic", "credentials": [
                {"username": "shop", "fingerprint": "1a2b3c4d"},
                {"username": "shop2", "fingerprint": "5e6f7a8b"}]},
            "content": {"accept": ["json", "xml"], "max_body_bytes": null},
            "source": "api",
            "id": "orders",
            "name": "Orders\u{1b}[2J",
            "url": "http://h/hooks/x",
            "response": {},
        });
        assert_eq!(
            key_value_lines(&view),
            "id:                       orders\n\
             name:                     Orders\\u{1b}[2J\n\
             source:                   api\n\
             url:                      http://h/hooks/x\n\
             content.accept:           json, xml\n\
             content.max_body_bytes:   -\n\
             page_size:                20\n\
             response:                 {}\n\
             verification.credentials: shop (1a2b3c4d), shop2 (5e6f7a8b)\n\
             verification.type:        basic\n"
        );
    }

    #[test]
    fn captures_table_and_details() {
        let logs = json!({"captures": [
            {"time": "2026-11-30T10:00:01Z", "status": 204, "method": "POST", "latency_ms": 3,
             "verification": "ok", "request_id": "0193-b", "headers": {}, "body": "", "body_truncated": false},
            {"time": "2026-11-30T10:00:00Z", "status": 401, "method": "POST", "latency_ms": 12,
             "verification": "failed", "request_id": "0193-a", "headers": {}, "body": "", "body_truncated": false},
        ]});
        assert_eq!(
            captures_table(&logs),
            "TIME                  STATUS  METHOD  LATENCY  VERIFICATION  REQUEST ID\n\
             2026-11-30T10:00:01Z  204     POST    3 ms     ok            0193-b\n\
             2026-11-30T10:00:00Z  401     POST    12 ms    failed        0193-a\n"
        );
        assert_eq!(captures_table(&json!({"captures": []})), "no captured requests\n");

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

    #[test]
    fn secrets_summary_lists_every_kind() {
        let view =
            json!({"verification": {"type": "secret_url", "tokens": [{"fingerprint": "aa"}, {"fingerprint": "bb"}]}});
        assert_eq!(
            secrets_summary("o", "added", &view),
            "added; secrets of o now: aa, bb\n"
        );
        let view = json!({"verification": {"type": "none"}});
        assert_eq!(
            secrets_summary("o", "retired", &view),
            "retired; secrets of o now: none\n"
        );
    }

    #[test]
    fn server_urls_are_normalized_to_the_api_base() {
        assert_eq!(
            api_base("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080/api/v1"
        );
        assert_eq!(api_base("http://h:1/").unwrap(), "http://h:1/api/v1");
        assert_eq!(api_base("http://h:1/api/v1/").unwrap(), "http://h:1/api/v1");
        assert_eq!(api_base("h:1").unwrap(), "http://h:1/api/v1");
        assert_eq!(api_base("http://h/prefix").unwrap(), "http://h/prefix/api/v1");
        assert_eq!(api_base("HTTPS://h:8443/").unwrap(), "https://h:8443/api/v1");
        assert!(api_base("ftp://h").unwrap_err().contains("https://"));
        assert!(api_base("http://").unwrap_err().contains("no host"));
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(
            listener_path("orders", &["secrets", "1a2b"]),
            "/listeners/orders/secrets/1a2b"
        );
        assert_eq!(listener_path("a/b c", &[]), "/listeners/a%2Fb%20c");
        assert_eq!(listener_path("../x", &["url"]), "/listeners/..%2Fx/url");
    }

    #[test]
    fn api_errors_carry_message_field_and_a_token_hint() {
        let error = api_error(400, r#"{"error":"must be between 1 and 10000","field":"page_size"}"#);
        assert_eq!(
            error.to_string(),
            "server answered 400: must be between 1 and 10000 (field: page_size)"
        );
        let error = api_error(
            400,
            r#"{"error":"page_size: must be between 1 and 10000","field":"page_size"}"#,
        );
        assert_eq!(
            error.to_string(),
            "server answered 400: page_size: must be between 1 and 10000"
        );
        let error = api_error(401, r#"{"error":"unauthorized"}"#);
        assert!(error.to_string().contains("HOOKPIPE_ADMIN_TOKEN"), "{error}");
        let error = api_error(502, "<html>Bad Gateway</html>");
        assert_eq!(error.to_string(), "server answered 502: <html>Bad Gateway</html>");
        assert!(matches!(api_error(404, ""), CliError::Api { ref message, .. } if message == "(no error message)"));
    }

    #[test]
    fn errors_table_marks_retry_state_and_the_next_page() {
        let response = json!({"total": 3, "offset": 0, "limit": 2, "errors": [
            {"failed_at": "2026-11-30T10:00:02Z", "record_id": "r-1", "trace_key": "A-1", "target_status": 422,
             "attempt": 1, "can_retry": true, "retry_requested_at": null, "error": "HTTP 422: unknown sku"},
            {"failed_at": "2026-11-30T10:00:01Z", "record_id": "r-0", "trace_key": "A-0", "target_status": null,
             "attempt": 2, "can_retry": false, "error": "cannot reach\nthe target"},
        ]});
        assert_eq!(
            errors_table(&response),
            "FAILED AT             RECORD ID  TRACE KEY  STATUS  ATTEMPT  RETRY  ERROR\n\
             2026-11-30T10:00:02Z  r-1        A-1        422     1        yes    HTTP 422: unknown sku\n\
             2026-11-30T10:00:01Z  r-0        A-0        -       2        no     cannot reach\\nthe target\n\
             2 of 3 errors shown; next page: --offset 2\n"
        );
        assert_eq!(errors_table(&json!({"total": 0, "errors": []})), "no open errors\n");
        assert_eq!(
            errors_table(&json!({"total": 3, "offset": 5, "errors": []})),
            "no errors at this offset (3 in all)\n"
        );
    }

    #[test]
    fn retry_summaries_say_what_happened_to_each_record() {
        assert_eq!(
            retry_summary(&json!({"republished": ["r-1"], "attempt": 2})),
            "republished r-1 (attempt 2)\n"
        );
        assert_eq!(
            retry_summary(
                &json!({"republished": ["a", "b"], "refused": [{"record_id": "c", "reason": "expired"}],
                                  "not_found": ["d"]})
            ),
            "republished 2 records: a, b\nrefused c: expired\nno open error for: d\n"
        );
        assert_eq!(retry_summary(&json!({"republished": []})), "nothing republished\n");
    }

    #[test]
    fn records_files_may_be_bare_arrays() {
        assert_eq!(records_body(json!([{"a": 1}])).unwrap(), json!({"records": [{"a": 1}]}));
        assert_eq!(records_body(json!({"records": []})).unwrap(), json!({"records": []}));
        assert!(records_body(json!({"a": 1})).is_err());
    }
}
