//! The HTTP client of a running server's management API (`/api/v1`), shared by `hookpipe
//! listeners …` and `hookpipe errors …`: which server, the bearer token, the request, the
//! answer, and [`CliError`], which decides the message and the exit code of a failed command.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cli::render::{sanitize_line, truncate};

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
    /// 2 for usage errors (as clap's own), 1 for everything else.
    pub fn exit_code(&self) -> ExitCode {
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

/// The result of a management command on the terminal: `hookpipe <command>: <error>` on stderr
/// and the error's exit code, or success.
pub fn finish(command: &str, result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookpipe {command}: {error}");
            error.exit_code()
        }
    }
}

/// A client of `--server` (else `$HOOKPIPE_SERVER`, else the default) with `$HOOKPIPE_ADMIN_TOKEN`.
pub fn connect(server: Option<String>) -> Result<Client, CliError> {
    let server = server
        .or_else(|| std::env::var(SERVER_ENV).ok().filter(|s| !s.trim().is_empty()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());
    // Checked at the first request, so local mistakes (a bad --set, a missing file) come first.
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    let ca_file = std::env::var(CA_FILE_ENV).ok().filter(|f| !f.is_empty());
    Client::new(&server, token, ca_file.as_deref().map(Path::new))
}

/// Prints a successful reply: raw with `--json`, else rendered.
pub struct Output {
    /// `--json`: the server's body as it came.
    pub json: bool,
}

impl Output {
    /// Prints the reply's JSON body through `render`.
    pub fn print(&self, reply: &Reply, render: impl FnOnce(&Value) -> String) -> Result<(), CliError> {
        self.print_as::<Value>(reply, render)
    }

    /// Prints the reply's body read as `T` ([`Reply::read_as`]) through `render`.
    pub fn print_as<T: DeserializeOwned + Default>(
        &self,
        reply: &Reply,
        render: impl FnOnce(&T) -> String,
    ) -> Result<(), CliError> {
        if self.json {
            if !reply.body.trim().is_empty() {
                println!("{}", reply.body.trim_end());
            }
            return Ok(());
        }
        let answer = reply.read_as::<T>()?;
        print!("{}", render(&answer));
        Ok(())
    }
}

/// An HTTP method of the management API.
#[derive(Clone, Copy)]
pub enum Method {
    /// Read.
    Get,
    /// Create or act.
    Post,
    /// Replace or patch.
    Put,
    /// Remove.
    Delete,
}

/// A successful (2xx) answer.
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The body read as `T`; an empty body is `T::default()` (for `Value`: null). A body that is
    /// JSON but not a `T` is refused like one that is not JSON.
    pub fn read_as<T: DeserializeOwned + Default>(&self) -> Result<T, CliError> {
        if self.body.trim().is_empty() {
            return Ok(T::default());
        }
        let value: Value = serde_json::from_str(&self.body)
            .map_err(|error| self.unreadable(&format!("a body that is not JSON ({error})")))?;
        serde_json::from_value(value).map_err(|error| self.unreadable(&format!("an unexpected body ({error})")))
    }

    /// The error for a 2xx body the command cannot read, quoting the body's start.
    fn unreadable(&self, what: &str) -> CliError {
        CliError::Local(format!(
            "the server answered {} with {what}: {}",
            self.status,
            sanitize_line(&truncate(&self.body, 200))
        ))
    }
}

/// The management API at one server, with the bearer token.
pub struct Client {
    agent: ureq::Agent,
    /// As the user gave it, for messages.
    server: String,
    /// `scheme://host:port[/prefix]/api/v1`.
    api_base: String,
    token: Option<String>,
}

impl Client {
    /// A client of `server` (see [`api_base`]), trusting `ca_file`'s certificates when given.
    pub fn new(server: &str, token: Option<String>, ca_file: Option<&Path>) -> Result<Client, CliError> {
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

    /// One request to `path` under the API base; a non-2xx answer is a [`CliError::Api`].
    pub fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Reply, CliError> {
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
pub fn api_error(status: u16, body: &str) -> CliError {
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
pub fn api_base(server: &str) -> Result<String, String> {
    let trimmed = server.trim();
    let (scheme, rest) = trimmed.split_once("://").unwrap_or(("http", trimmed));
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!("{server}: the server must be an http:// or https:// URL"));
    }
    let without_slashes = rest.trim_end_matches('/');
    let authority_and_prefix = without_slashes
        .strip_suffix("/api/v1")
        .unwrap_or(without_slashes)
        .trim_end_matches('/');
    if authority_and_prefix.is_empty() || authority_and_prefix.starts_with('/') {
        return Err(format!("{server}: the server URL has no host"));
    }
    Ok(format!("{scheme}://{authority_and_prefix}/api/v1"))
}

/// `/listeners/{id}/{segments…}`, every segment percent-encoded.
pub fn listener_path(id: &str, segments: &[&str]) -> String {
    let mut path = format!("/listeners/{}", encode_segment(id));
    for segment in segments {
        path.push('/');
        path.push_str(&encode_segment(segment));
    }
    path
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode_segment(segment: &str) -> String {
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

/// A JSON answer read as the typed view `T`, as [`Reply::read_as`] reads it: the renderers'
/// tests start from the JSON the server sends.
#[cfg(test)]
pub fn typed<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the test's JSON has the view's shape")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn replies_are_read_as_the_view_or_refused_with_the_body_start() {
        #[derive(Debug, Default, serde::Deserialize, PartialEq)]
        struct Page {
            #[serde(default)]
            items: Vec<String>,
        }
        let reply = |body: &str| Reply {
            status: 200,
            body: body.to_string(),
        };
        assert_eq!(
            reply(r#"{"items": ["a"], "other": 1}"#)
                .read_as::<Page>()
                .unwrap()
                .items,
            ["a"]
        );
        assert_eq!(reply(" ").read_as::<Page>().unwrap(), Page::default());
        assert_eq!(reply("").read_as::<Value>().unwrap(), Value::Null);
        let error = reply(r#"{"items": 5}"#).read_as::<Page>().unwrap_err().to_string();
        assert!(
            error.starts_with("the server answered 200 with an unexpected body ("),
            "{error}"
        );
        assert!(error.ends_with(r#"): {"items": 5}"#), "{error}");
        let error = reply("<html>\u{1b}[2J").read_as::<Value>().unwrap_err().to_string();
        assert!(
            error.starts_with("the server answered 200 with a body that is not JSON ("),
            "{error}"
        );
        assert!(error.ends_with("): <html>\\u{1b}[2J"), "{error}");
    }
}
