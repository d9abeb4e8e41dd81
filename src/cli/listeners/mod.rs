//! `hookpipe listeners …`: list, show, create, update and delete listeners, their URLs, secrets,
//! sample and mock output through a running server's management API (`/api/v1/listeners`); the
//! debug window is [`debug`]. One function per operation; the HTTP round trips are covered by
//! `tests/cli_listeners.rs`.

pub mod debug;
pub mod input;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Map, Value};

use crate::api_model::{ListenerList, ListenerSource, ListenerUrl, ListenerView, MockSent};
use crate::cli::client::{connect, finish, listener_path, CliError, Client, Method, Output};
use crate::cli::render::{
    describe_secret, is_secret_view, key_value_lines, optional_cell, pretty_json, render_table, sanitize_line,
};
use crate::cli::ApiArgs;

use debug::DebugAction;
use input::merge_sets;

/// `hookpipe listeners`: global options and the operation.
#[derive(Args, Debug)]
pub struct ListenersArgs {
    /// Which server, and raw JSON or readable text.
    #[command(flatten)]
    pub api: ApiArgs,
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

/// Runs `hookpipe listeners …`: prints the result on stdout, errors on stderr.
pub fn run(args: ListenersArgs) -> ExitCode {
    finish("listeners", execute(args))
}

fn execute(args: ListenersArgs) -> Result<(), CliError> {
    let client = connect(args.api.server)?;
    let output = Output { json: args.api.json };
    match args.command {
        ListenersCommand::List => list(&client, &output),
        ListenersCommand::Show { id } => show(&client, &output, &id),
        ListenersCommand::Create { file } => create(&client, &output, &file),
        ListenersCommand::Update { id, file, set } => update(&client, &output, &id, file.as_deref(), &set),
        ListenersCommand::Delete { id } => delete(&client, &output, &id),
        ListenersCommand::Url { id, regenerate } => url(&client, &output, &id, regenerate),
        ListenersCommand::Secrets { id, action } => secrets(&client, &output, &id, action),
        ListenersCommand::Sample { id, set_file } => sample(&client, &output, &id, set_file.as_deref()),
        ListenersCommand::Mock { id, set_file, send } => mock(&client, &output, &id, set_file.as_deref(), send),
        ListenersCommand::Debug { id, action } => debug::execute(&client, &output, &id, action),
    }
}

fn list(client: &Client, output: &Output) -> Result<(), CliError> {
    let reply = client.call(Method::Get, "/listeners", None)?;
    output.print_as(&reply, listeners_table)
}

fn show(client: &Client, output: &Output, id: &str) -> Result<(), CliError> {
    let reply = client.call(Method::Get, &listener_path(id, &[]), None)?;
    output.print(&reply, key_value_lines)
}

fn create(client: &Client, output: &Output, file: &Path) -> Result<(), CliError> {
    let body = input::read_json_file(file)?;
    if !body.is_object() {
        return Err(CliError::Local(format!("{}: must hold a JSON object", file.display())));
    }
    let reply = client.call(Method::Post, "/listeners", Some(&body))?;
    let created: ListenerView = reply.read_as()?;
    output.print(&reply, |view| {
        format!(
            "created listener {}\n{}",
            sanitize_line(&created.id),
            key_value_lines(view)
        )
    })
}

fn update(
    client: &Client,
    output: &Output,
    id: &str,
    patch_file: Option<&Path>,
    set: &[String],
) -> Result<(), CliError> {
    let mut patch = match patch_file {
        Some(file) => input::read_json_file(file)?,
        None => Value::Object(Map::new()),
    };
    if !patch.is_object() {
        return Err(CliError::Local("the merge patch must be a JSON object".into()));
    }
    merge_sets(&mut patch, set).map_err(CliError::Usage)?;
    let reply = client.call(Method::Put, &listener_path(id, &[]), Some(&patch))?;
    output.print(&reply, |view| {
        format!("updated listener {id}\n{}", key_value_lines(view))
    })
}

fn delete(client: &Client, output: &Output, id: &str) -> Result<(), CliError> {
    let reply = client.call(Method::Delete, &listener_path(id, &[]), None)?;
    output.print(&reply, |_| format!("deleted listener {id}\n"))
}

fn url(client: &Client, output: &Output, id: &str, regenerate: bool) -> Result<(), CliError> {
    let path = listener_path(id, &["url"]);
    let method = if regenerate { Method::Post } else { Method::Get };
    let reply = client.call(method, &path, None)?;
    output.print_as(&reply, |answer: &ListenerUrl| {
        format!("{}\n", sanitize_line(&answer.url))
    })
}

fn secrets(client: &Client, output: &Output, id: &str, action: SecretsAction) -> Result<(), CliError> {
    match action {
        SecretsAction::Add {
            secret,
            username,
            password,
        } => {
            let body = match (secret, username, password) {
                (Some(given_secret), _, _) => {
                    serde_json::json!({ "secret": input::from_stdin_if_dash(given_secret, "secret")? })
                }
                (None, Some(basic_username), Some(basic_password)) => serde_json::json!({
                    "username": basic_username,
                    "password": input::from_stdin_if_dash(basic_password, "password")?,
                }),
                _ => return Err(CliError::Usage("give --secret, or --username with --password".into())),
            };
            let reply = client.call(Method::Post, &listener_path(id, &["secrets"]), Some(&body))?;
            output.print_as(&reply, |view| secrets_summary(id, "added", view))
        }
        SecretsAction::Retire { fingerprint } => {
            let path = listener_path(id, &["secrets", &fingerprint]);
            let reply = client.call(Method::Delete, &path, None)?;
            output.print_as(&reply, |view| secrets_summary(id, "retired", view))
        }
    }
}

fn sample(client: &Client, output: &Output, id: &str, set_file: Option<&Path>) -> Result<(), CliError> {
    let path = listener_path(id, &["sample"]);
    match set_file {
        None => {
            let reply = client.call(Method::Get, &path, None)?;
            output.print(&reply, pretty_json)
        }
        Some(file) => {
            let body = input::records_body(input::read_json_file(file)?)?;
            let count = body["records"].as_array().map_or(0, Vec::len);
            let reply = client.call(Method::Put, &path, Some(&body))?;
            output.print(&reply, |_| format!("sample of {id} set ({count} records)\n"))
        }
    }
}

fn mock(client: &Client, output: &Output, id: &str, set_file: Option<&Path>, send: bool) -> Result<(), CliError> {
    let path = listener_path(id, &["mock"]);
    if send {
        let reply = client.call(Method::Post, &listener_path(id, &["mock", "send"]), None)?;
        output.print_as(&reply, |sent: &MockSent| {
            format!(
                "sent {} mock records (request id {})\n",
                sent.records,
                sanitize_line(&sent.request_id)
            )
        })
    } else if let Some(file) = set_file {
        let body = input::records_body(input::read_json_file(file)?)?;
        let count = body["records"].as_array().map_or(0, Vec::len);
        let reply = client.call(Method::Put, &path, Some(&body))?;
        output.print(&reply, |_| format!("mock output of {id} set ({count} records)\n"))
    } else {
        let reply = client.call(Method::Get, &path, None)?;
        output.print(&reply, pretty_json)
    }
}

/// `list`: ID, NAME, SOURCE, VERIFICATION, TOPIC, URL.
pub fn listeners_table(page: &ListenerList) -> String {
    if page.listeners.is_empty() {
        return "no listeners\n".to_string();
    }
    let rows: Vec<Vec<String>> = page
        .listeners
        .iter()
        .map(|view| {
            let source = match view.source {
                ListenerSource::Config => "config",
                ListenerSource::Api => "api",
            };
            vec![
                sanitize_line(&view.id),
                optional_cell(Some(&view.name)),
                source.to_string(),
                sanitize_line(view.verification_type()),
                sanitize_line(&view.topic),
                sanitize_line(&view.url),
            ]
        })
        .collect();
    render_table(&["ID", "NAME", "SOURCE", "VERIFICATION", "TOPIC", "URL"], &rows)
}

/// After `secrets add|retire`: the fingerprints now accepted.
fn secrets_summary(id: &str, verb: &str, view: &ListenerView) -> String {
    let verification = &view.verification;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::client::typed;
    use serde_json::json;

    fn view(id: &str, name: &str, source: &str, verification: Value, topic: &str, url: &str) -> Value {
        json!({"id": id, "name": name, "public_id": "abc", "url": url, "source": source, "topic": topic,
               "content": {"accept": ["json"]}, "page_size": 20, "response": {"status": 204},
               "verification": verification, "rate_limit": {}, "do_not_store_retry_data": false})
    }

    #[test]
    fn listeners_table_shows_id_source_verification_topic_and_url() {
        let response: ListenerList = typed(json!({"listeners": [
            view("orders", "Orders", "config", json!({"type": "hmac", "secrets": [{"fingerprint": "1a2b3c4d"}]}),
                 "hookpipe.pages", "http://127.0.0.1:8080/hooks/abc"),
            view("forms", "", "api", json!({"type": "none"}), "hookpipe.forms", "http://127.0.0.1:8080/hooks/def"),
        ]}));
        let table = listeners_table(&response);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "ID      NAME    SOURCE  VERIFICATION  TOPIC           URL");
        assert_eq!(
            lines[1],
            "orders  Orders  config  hmac          hookpipe.pages  http://127.0.0.1:8080/hooks/abc"
        );
        assert_eq!(
            lines[2],
            "forms   -       api     none          hookpipe.forms  http://127.0.0.1:8080/hooks/def"
        );
        assert_eq!(listeners_table(&typed(json!({"listeners": []}))), "no listeners\n");
    }

    #[test]
    fn secrets_summary_lists_every_kind() {
        let tokens = json!({"type": "secret_url", "tokens": [{"fingerprint": "aa"}, {"fingerprint": "bb"}]});
        let listener: ListenerView = typed(view("o", "", "api", tokens, "t", "u"));
        assert_eq!(
            secrets_summary("o", "added", &listener),
            "added; secrets of o now: aa, bb\n"
        );
        let listener: ListenerView = typed(view("o", "", "api", json!({"type": "none"}), "t", "u"));
        assert_eq!(
            secrets_summary("o", "retired", &listener),
            "retired; secrets of o now: none\n"
        );
    }

    #[test]
    fn a_listener_view_missing_what_the_api_type_requires_is_refused_not_guessed() {
        let reply = crate::cli::client::Reply {
            status: 200,
            body: r#"{"listeners": [{"id": "x", "verification": null}]}"#.into(),
        };
        let error = reply.read_as::<ListenerList>().unwrap_err().to_string();
        assert!(error.contains("an unexpected body"), "{error}");
        // Fields the type does not name yet are kept, not refused.
        let listener: ListenerView = typed({
            let mut value = view("o", "", "api", json!({"type": "none"}), "t", "u");
            value["handshake"] = json!({"kind": "echo"});
            value
        });
        assert_eq!(listener.more["handshake"], json!({"kind": "echo"}));
    }
}
