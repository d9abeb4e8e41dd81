//! `[worker]`: the import workers (`hookpipe worker`) — their consumer group, deadlines,
//! metrics address, and the target each listener's records are imported into.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use serde::{Deserialize, Deserializer};

use super::from_text::deserialize_from_text;
use super::kafka::validate_topic_name;
use crate::secret::Secret;

/// Import workers: the consumer group they share and where each listener's records go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// Kafka consumer group of the workers; partitions of the pages topics are spread over its members.
    #[serde(default = "default_worker_group_id")]
    pub group_id: String,
    /// Topics to consume; empty means every pages topic of this configuration (`kafka.pages_topic`
    /// and each listener's `topic`). An entry starting with `^` is a regular expression.
    #[serde(default)]
    pub topics: Vec<String>,
    /// Address of the worker's `GET /metrics` listener (`host:port`, port 0 picks one); written
    /// empty (`""`) it is `None`: no metrics listener.
    #[serde(
        default = "default_worker_metrics_listen",
        deserialize_with = "deserialize_metrics_listen"
    )]
    pub metrics_listen: Option<SocketAddr>,
    /// How often stored offsets are committed; at most this much finished work is imported
    /// again after a crash.
    #[serde(default = "default_worker_commit_interval_ms")]
    pub commit_interval_ms: u64,
    /// Longest one page may take, retries included; records still failing then are recorded as
    /// errors. The consumer's `max.poll.interval.ms` is this plus a minute.
    #[serde(default = "default_worker_page_timeout_ms")]
    pub page_timeout_ms: u64,
    /// Consumer group session timeout (`session.timeout.ms`): how soon a crashed worker's
    /// partitions move to the others.
    #[serde(default = "default_worker_session_timeout_ms")]
    pub session_timeout_ms: u64,
    /// Seconds a SIGTERM waits for the page in hand; a page still unfinished then is left
    /// uncommitted (imported again by the next owner of its partition).
    #[serde(default = "default_worker_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Largest record (serialized, in bytes) whose retry data is kept with its error; a bigger
    /// record's error is recorded without it (and says so). Bounds the errors topic's messages
    /// (brokers refuse messages over ~1 MB by default) and every instance's errors mirror.
    #[serde(default = "default_worker_retry_data_max_bytes")]
    pub retry_data_max_bytes: usize,
    /// Ordering keys imported at once (threads), for pages of listeners with an `ordering_key`:
    /// a key retried with backoff holds one of them, the other keys use the rest.
    #[serde(default = "default_worker_key_concurrency")]
    pub key_concurrency: usize,
    /// Records of ordered pages a worker holds at most (read and not yet settled: being
    /// imported, waiting behind their key, or done behind an earlier page of their partition);
    /// at the cap the worker stops fetching until half of them are settled.
    #[serde(default = "default_worker_max_held_records")]
    pub max_held_records: usize,
    /// Target of listeners without an entry in `targets`; none: their records are recorded as errors.
    #[serde(default)]
    pub default_target: Option<TargetConfig>,
    /// Targets by listener id.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            group_id: default_worker_group_id(),
            topics: Vec::new(),
            metrics_listen: default_worker_metrics_listen(),
            commit_interval_ms: default_worker_commit_interval_ms(),
            page_timeout_ms: default_worker_page_timeout_ms(),
            session_timeout_ms: default_worker_session_timeout_ms(),
            shutdown_timeout_secs: default_worker_shutdown_timeout_secs(),
            retry_data_max_bytes: default_worker_retry_data_max_bytes(),
            key_concurrency: default_worker_key_concurrency(),
            max_held_records: default_worker_max_held_records(),
            default_target: None,
            targets: BTreeMap::new(),
        }
    }
}

fn default_worker_group_id() -> String {
    "hookpipe-workers".into()
}
/// Next to the serve tier's 8080, on loopback: expose it deliberately.
fn default_worker_metrics_listen() -> Option<SocketAddr> {
    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9091)))
}
/// librdkafka's `auto.commit.interval.ms` default is 5 s; 1 s bounds re-imports after a crash tighter.
fn default_worker_commit_interval_ms() -> u64 {
    1_000
}
/// Four minutes: librdkafka's default `max.poll.interval.ms` (5 min) minus room for error writes.
fn default_worker_page_timeout_ms() -> u64 {
    240_000
}
/// 10 s (librdkafka's default before 2.0, and Kafka's `group.min.session.timeout.ms` allows it):
/// a restarted worker rejoins its group only once its previous membership expired (Tansu 0.6
/// rebalances only then), so librdkafka's 45 s default kept its partitions idle that long.
fn default_worker_session_timeout_ms() -> u64 {
    10_000
}
/// Kubernetes' default termination grace period.
fn default_worker_shutdown_timeout_secs() -> u64 {
    30
}

/// 256 KiB: webhook records are far smaller; an error with its retry data stays well under
/// Kafka's default 1 MB message limit.
fn default_worker_retry_data_max_bytes() -> usize {
    256 * 1024
}
/// 8: a few keys in retry leave most threads importing; each thread is idle but for its target's
/// answers, so more cost little.
fn default_worker_key_concurrency() -> usize {
    8
}
/// 10,000 records: at the 256 KiB retry data cap, under 3 GB in the worst case; webhook records
/// of a few KB take tens of MB.
fn default_worker_max_held_records() -> usize {
    10_000
}
/// Highest `retry_data_max_bytes`: the entry around the record must fit Kafka's default
/// `message.max.bytes` (1,000,000) too.
pub const MAX_RETRY_DATA_BYTES: usize = 900_000;

/// Parses `worker.metrics_listen`: empty (off) or `host:port` with an IP address.
pub fn parse_metrics_listen(text: &str) -> Result<Option<SocketAddr>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| "must be empty (off) or host:port with an IP address, e.g. 127.0.0.1:9091".to_string())
}

fn deserialize_metrics_listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<SocketAddr>, D::Error> {
    deserialize_from_text(deserializer, parse_metrics_listen)
}

impl WorkerSettings {
    /// Problems with these settings, as `(key relative to [worker], message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut push = |key: String, message: String| problems.push((key, message));
        if self.group_id.trim().is_empty() {
            push("group_id".into(), "must not be empty".into());
        }
        for (index, topic) in self.topics.iter().enumerate() {
            if !topic.starts_with('^') {
                if let Err(message) = validate_topic_name(topic) {
                    push(format!("topics[{index}]"), message);
                }
            }
        }
        if self.commit_interval_ms == 0 {
            push("commit_interval_ms".into(), "must be at least 1".into());
        }
        if !(1_000..=86_000_000).contains(&self.page_timeout_ms) {
            push("page_timeout_ms".into(), "must be between 1000 and 86000000".into());
        }
        if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
            push("session_timeout_ms".into(), "must be between 1000 and 3600000".into());
        }
        if !(1_024..=MAX_RETRY_DATA_BYTES).contains(&self.retry_data_max_bytes) {
            push(
                "retry_data_max_bytes".into(),
                format!("must be between 1024 and {MAX_RETRY_DATA_BYTES}"),
            );
        }
        if !(1..=256).contains(&self.key_concurrency) {
            push("key_concurrency".into(), "must be between 1 and 256".into());
        }
        if !(1..=1_000_000).contains(&self.max_held_records) {
            push("max_held_records".into(), "must be between 1 and 1000000".into());
        }
        if let Some(target) = &self.default_target {
            for (key, message) in target.problems() {
                push(format!("default_target.{key}"), message);
            }
        }
        for (listener, target) in &self.targets {
            for (key, message) in target.problems() {
                push(format!("targets.{listener}.{key}"), message);
            }
        }
        problems
    }
}

/// Where a listener's records are imported.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetConfig {
    /// POST JSON to an HTTP endpoint.
    Http(HttpTargetConfig),
    /// Append JSON lines (one record per line) to a file.
    File {
        /// The file; created if missing, appended to.
        path: String,
    },
    /// Print JSON lines (one record per line) on standard output.
    Stdout,
}

/// An HTTP import target.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTargetConfig {
    /// `http://` or `https://` URL receiving the POSTs.
    pub url: String,
    /// PEM file of the CA certificates to trust for an https `url` instead of the built-in
    /// Mozilla roots (a private CA, or the target's own self-signed certificate).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// `page`: one POST per page (`{"type":"page",…,"records":[…]}`); `record`: one POST per record.
    #[serde(default)]
    pub mode: ImportMode,
    /// Extra request headers (not secrets: use `auth`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Credentials sent in `Authorization`.
    #[serde(default)]
    pub auth: Option<TargetAuth>,
    /// Deadline of one request, connection included.
    #[serde(default = "default_target_timeout_ms")]
    pub timeout_ms: u64,
    /// Tries per record, the first included; retried on connection errors, 5xx and 429.
    #[serde(default = "default_target_max_attempts")]
    pub max_attempts: u32,
    /// First backoff; doubles per try, with jitter, up to `max_backoff_ms`.
    #[serde(default = "default_target_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest backoff between tries (a `Retry-After` may ask for more, within `worker.page_timeout_ms`).
    #[serde(default = "default_target_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// The target answers a 2xx with a JSON array of per-record results in request order,
    /// `{"ok":true}` or `{"ok":false,"error":"…"}` (`"retryable":true` to have it retried).
    #[serde(default)]
    pub per_record_results: bool,
}

/// How records are grouped into requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// One request per page.
    #[default]
    Page,
    /// One request per record.
    Record,
}

/// Credentials of an HTTP target.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetAuth {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// `Authorization: Basic …`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: Secret,
    },
}

fn default_target_timeout_ms() -> u64 {
    10_000
}
fn default_target_max_attempts() -> u32 {
    5
}
fn default_target_initial_backoff_ms() -> u64 {
    500
}
fn default_target_max_backoff_ms() -> u64 {
    30_000
}

impl TargetConfig {
    /// Problems with this target, as `(key relative to the target, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        match self {
            TargetConfig::Http(http) => {
                let rest = http
                    .url
                    .strip_prefix("http://")
                    .or_else(|| http.url.strip_prefix("https://"));
                if rest.is_none_or(|rest| rest.is_empty() || rest.starts_with('/')) {
                    problems.push(("url".into(), "must be an http:// or https:// URL with a host".into()));
                }
                if let Some(ca_file) = &http.ca_file {
                    if !http.url.starts_with("https://") {
                        problems.push(("ca_file".into(), "is only used with an https:// url".into()));
                    } else if let Err(message) = crate::tls::ca_certificates(std::path::Path::new(ca_file)) {
                        problems.push(("ca_file".into(), message));
                    }
                }
                for (name, value) in &http.headers {
                    let token = !name.is_empty()
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
                    if !token {
                        problems.push((format!("headers.{name}"), "is not a valid header name".into()));
                    }
                    if value.chars().any(|c| c.is_control() && c != '\t') {
                        problems.push((
                            format!("headers.{name}"),
                            "value must not contain control characters".into(),
                        ));
                    }
                    if name.eq_ignore_ascii_case("authorization") {
                        problems.push((
                            format!("headers.{name}"),
                            "put credentials in `auth`, which keeps them out of logs".into(),
                        ));
                    }
                }
                if http.timeout_ms == 0 {
                    problems.push(("timeout_ms".into(), "must be at least 1".into()));
                }
                if !(1..=100).contains(&http.max_attempts) {
                    problems.push(("max_attempts".into(), "must be between 1 and 100".into()));
                }
                if http.initial_backoff_ms == 0 || http.initial_backoff_ms > http.max_backoff_ms {
                    problems.push((
                        "initial_backoff_ms".into(),
                        "must be at least 1 and at most max_backoff_ms".into(),
                    ));
                }
            }
            TargetConfig::File { path } => {
                if path.trim().is_empty() {
                    problems.push(("path".into(), "must not be empty".into()));
                }
            }
            TargetConfig::Stdout => {}
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::{ImportMode, TargetConfig};
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    #[test]
    fn worker_targets_parse_with_defaults() {
        let text = format!(
            "{BASE}\n[worker.default_target]\ntype = \"stdout\"\n\
             [worker.targets.orders]\ntype = \"http\"\nurl = \"http://crm.internal:8000/import\"\n\
             auth = {{ type = \"bearer\", token = \"t0ken\" }}\n"
        );
        let settings = Settings::from_toml_and_env(&text, env(&[("HOOKPIPE_WORKER__GROUP_ID", "imports")])).unwrap();
        assert_eq!(settings.worker.group_id, "imports");
        assert_eq!(settings.worker_topics(), vec!["hookpipe.pages".to_string()]);
        assert!(matches!(settings.worker.default_target, Some(TargetConfig::Stdout)));
        let TargetConfig::Http(http) = &settings.worker.targets["orders"] else {
            panic!("an http target");
        };
        assert_eq!(http.mode, ImportMode::Page);
        assert_eq!((http.timeout_ms, http.max_attempts), (10_000, 5));
        assert!(!format!("{http:?}").contains("t0ken"), "secrets stay out of Debug");
        assert_eq!(settings.kafka.errors_topic, "hookpipe.errors");
        assert_eq!(settings.kafka.retry_retention_hours, 168);
        assert_eq!(settings.worker.retry_data_max_bytes, 256 * 1024);
    }

    #[test]
    fn https_targets_take_an_optional_ca_file() {
        let target = |extra: &str| format!("{BASE}\n[worker.default_target]\ntype = \"http\"\n{extra}\n");
        let ok = Settings::from_toml_and_env(&target("url = \"https://crm.example.com/in\""), env(&[])).unwrap();
        assert!(matches!(ok.worker.default_target, Some(TargetConfig::Http(_))));
        let errors = |extra: &str| {
            Settings::from_toml_and_env(&target(extra), env(&[]))
                .unwrap_err()
                .0
                .into_iter()
                .map(|e| (e.key, e.message))
                .collect::<Vec<_>>()
        };
        let missing = errors("url = \"https://crm.example.com\"\nca_file = \"/nonexistent/ca.pem\"");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, "worker.default_target.ca_file");
        assert!(missing[0].1.contains("cannot read /nonexistent/ca.pem"), "{missing:?}");
        let plain = errors("url = \"http://crm.example.com\"\nca_file = \"/etc/hostname\"");
        assert_eq!(plain[0].0, "worker.default_target.ca_file");
        assert!(plain[0].1.contains("https"), "{plain:?}");
        let no_host = errors("url = \"https://\"");
        assert_eq!(no_host[0].0, "worker.default_target.url");
    }

    #[test]
    fn worker_errors_name_the_key() {
        let text = format!(
            "{BASE}\n[worker]\nretry_data_max_bytes = 1000000\nmetrics_listen = \"nowhere\"\ntopics = [\"bad topic\", \"^hookpipe\\\\..*\"]\n\
             [worker.default_target]\ntype = \"http\"\nurl = \"ftp://crm.example.com\"\nmax_attempts = 0\n\
             [worker.targets.orders]\ntype = \"http\"\nurl = \"http://h\"\nheaders = {{ Authorization = \"x\" }}\n"
        );
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for expected in [
            "worker.metrics_listen",
            "worker.topics[0]",
            "worker.default_target.url",
            "worker.default_target.max_attempts",
            "worker.targets.orders.headers.Authorization",
            "worker.retry_data_max_bytes",
        ] {
            assert!(keys.contains(&expected), "{expected} in {keys:?}");
        }
        assert_eq!(keys.len(), 6, "{keys:?}");
        let errors =
            Settings::from_toml_and_env(&format!("{BASE}\n[worker.default_target]\ntype = \"ftp\"\n"), env(&[]))
                .unwrap_err()
                .0;
        assert!(errors[0].key.starts_with("worker.default_target"), "{errors:?}");
    }

    #[test]
    fn ordered_import_limits_have_defaults_and_bounds() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(
            (settings.worker.key_concurrency, settings.worker.max_held_records),
            (8, 10_000)
        );
        let text = format!("{BASE}\n[worker]\nkey_concurrency = 0\nmax_held_records = 0\n");
        let errors = Settings::from_toml_and_env(&text, env(&[])).unwrap_err().0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["worker.key_concurrency", "worker.max_held_records"]);
        let set = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_WORKER__KEY_CONCURRENCY", "32")])).unwrap();
        assert_eq!(set.worker.key_concurrency, 32);
    }

    #[test]
    fn metrics_listen_is_an_address_or_off() {
        assert_eq!(
            Settings::default().worker.metrics_listen,
            Some("127.0.0.1:9091".parse().unwrap())
        );
        let off = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_WORKER__METRICS_LISTEN", "")])).unwrap();
        assert_eq!(off.worker.metrics_listen, None);
        let any_port =
            Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_WORKER__METRICS_LISTEN", "127.0.0.1:0")])).unwrap();
        assert_eq!(any_port.worker.metrics_listen, Some("127.0.0.1:0".parse().unwrap()));
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_WORKER__METRICS_LISTEN", "nowhere")]))
            .unwrap_err()
            .0;
        assert_eq!(
            errors[0].to_string(),
            "worker.metrics_listen: must be empty (off) or host:port with an IP address, e.g. 127.0.0.1:9091"
        );
    }
}
