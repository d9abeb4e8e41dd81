//! `[server]`: the HTTP tier — where it listens, its limits and deadlines, and the keys of the
//! management API, of public ids and of secrets at rest.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::from_text::deserialize_from_text;
use super::listener::RateLimitOptions;
use crate::secret::Secret;

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to bind, `host:port` with an IP address.
    #[serde(default = "default_listen", deserialize_with = "deserialize_listen")]
    pub listen: SocketAddr,
    /// Base URL senders use to reach this tier (the load balancer's), without trailing slash.
    /// Printed listener URLs and URL-signing schemes (Twilio) use it.
    #[serde(default)]
    pub external_base_url: Option<String>,
    /// Key from which stable, unguessable public ids are derived for listeners without an
    /// explicit `public_id`. Keep it secret: whoever knows it can compute the public URLs.
    #[serde(default)]
    pub public_id_secret: Option<Secret>,
    /// HTTP threads (actix calls them workers; not import workers); 0 means one per core.
    #[serde(default)]
    pub workers: usize,
    /// Requests processed at once by this instance; above it, 503 + `Retry-After`.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// Requests of listeners with `response.wait = "import"` waiting for their import at once on
    /// this instance; above it, 503 + `Retry-After` before anything is published.
    #[serde(default = "default_max_import_waits")]
    pub max_import_waits: usize,
    /// Requests whose body is being read at once by this instance (slow senders wait here, not
    /// in `max_in_flight`); above it, 503 + `Retry-After`.
    #[serde(default = "default_max_body_readers")]
    pub max_body_readers: usize,
    /// Deadline for a request from the end of its body to its answer (includes the Kafka ack).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Deadline for reading a request body; slow senders get 408.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Default body size limit of a listener, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Seconds to finish in-flight requests on SIGTERM, once the drain period is over.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// On SIGTERM, how long the instance keeps answering while `/readyz` already says 503, so
    /// the load balancer's health check takes it out of rotation before it stops accepting.
    #[serde(default = "default_drain_ms")]
    pub drain_ms: u64,
    /// Bearer token of the management API (`/api/v1`); unset, the API is off.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// Wrong or missing management-API tokens one peer (client address; IPv6 by /64) may send
    /// within `admin_auth_window_secs`; the next requests of that peer get 429 with
    /// `Retry-After` for a window, their token unread. 0 turns the limit off.
    #[serde(default = "default_admin_auth_max_failures")]
    pub admin_auth_max_failures: u32,
    /// The window of `admin_auth_max_failures`, and the lockout's length, in seconds.
    #[serde(default = "default_admin_auth_window_secs")]
    pub admin_auth_window_secs: u64,
    /// Name of this instance in debug captures; default `<hostname>:<port>`.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// An optional bucket for the whole instance, checked after the listener's own.
    #[serde(default)]
    pub global_rate_limit: Option<RateLimitOptions>,
    /// Rate limits held by the whole fleet rather than each instance (`pipeline::rate_limit::fleet`).
    #[serde(default)]
    pub fleet_rate_limit: FleetRateLimit,
    /// Key sealing the secrets of API-created listeners in the state topic (AES-256-GCM), base64
    /// of 32 random bytes. Unset with the embedded cluster: an ephemeral key is generated. Unset
    /// with real brokers: API writes carrying secrets are refused (409).
    #[serde(default)]
    pub secrets_key: Option<Secret>,
    /// Former `secrets_key`s, used only to open values sealed before a rotation.
    #[serde(default)]
    pub previous_secrets_keys: Vec<Secret>,
    /// TLS on the listen address itself, for deployments without a TLS-terminating load
    /// balancer; unset, the listener speaks plain HTTP.
    #[serde(default)]
    pub tls: Option<TlsSettings>,
}

/// `[server.fleet_rate_limit]`: every listener's bucket (and `global_rate_limit`) divided among
/// the live instances by heartbeats in `kafka.fleet_topic` (README, "Rate limits across the
/// fleet"). Off with the embedded cluster, where an instance is always alone.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetRateLimit {
    /// Divide the buckets among the fleet; off, each instance holds every bucket whole (a fleet of
    /// N instances then accepts N times the rate).
    #[serde(default = "default_fleet_enabled")]
    pub enabled: bool,
    /// How often an instance publishes its heartbeat and re-divides its shares, ms.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// An instance whose heartbeat is older than this is dropped and its shares re-divided, ms.
    #[serde(default = "default_member_timeout_ms")]
    pub member_timeout_ms: u64,
}

impl Default for FleetRateLimit {
    fn default() -> Self {
        FleetRateLimit {
            enabled: default_fleet_enabled(),
            heartbeat_ms: default_heartbeat_ms(),
            member_timeout_ms: default_member_timeout_ms(),
        }
    }
}

/// On: a fleet is what hookpipe is deployed as, and a lone instance behaves exactly as without it.
fn default_fleet_enabled() -> bool {
    true
}
/// 250 ms: shares follow demand within about a second; 4 small messages a second per instance.
fn default_heartbeat_ms() -> u64 {
    250
}
/// 3 s: twelve heartbeats missed, well above the clock skew of NTP-synchronised hosts.
fn default_member_timeout_ms() -> u64 {
    3000
}
/// Bounds of `heartbeat_ms`.
const HEARTBEAT_MS: std::ops::RangeInclusive<u64> = 50..=10_000;

impl FleetRateLimit {
    /// Problems, as `(key relative to [server.fleet_rate_limit], message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if !HEARTBEAT_MS.contains(&self.heartbeat_ms) {
            problems.push((
                "heartbeat_ms".to_string(),
                format!("must be between {} and {}", HEARTBEAT_MS.start(), HEARTBEAT_MS.end()),
            ));
        }
        if self.member_timeout_ms < 4 * self.heartbeat_ms || self.member_timeout_ms > 600_000 {
            problems.push((
                "member_timeout_ms".to_string(),
                "must be at least 4 heartbeats (4 × heartbeat_ms) and at most 600000 (10 minutes)".to_string(),
            ));
        }
        problems
    }
}

/// `[server.tls]`: the certificate and key the ingest listener serves (read at start, and again
/// on SIGHUP). Relative paths are from the working directory, as the worker's `ca_file`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of the certificate chain: the server's certificate first, then intermediates.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM file of its private key: PKCS#8 (`BEGIN PRIVATE KEY`), RSA (`BEGIN RSA PRIVATE KEY`)
    /// or SEC1 (`BEGIN EC PRIVATE KEY`).
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// A path that is set and not empty.
fn given(path: &Option<PathBuf>) -> Option<&Path> {
    path.as_deref().filter(|path| !path.as_os_str().is_empty())
}

impl TlsSettings {
    /// Both files, when both are given (validation requires them).
    pub fn files(&self) -> Option<(&Path, &Path)> {
        Some((given(&self.cert_file)?, given(&self.key_file)?))
    }

    /// Problems, as `(key relative to [server.tls], message)`: a file missing from the settings,
    /// or a pair that does not load (unreadable, not PEM, no certificate or key, a key that is
    /// not the certificate's).
    pub fn problems(&self) -> Vec<(String, String)> {
        let Some((cert_file, key_file)) = self.files() else {
            let mut problems = Vec::new();
            for (key, path, what) in [
                ("cert_file", &self.cert_file, "the PEM file of the certificate chain"),
                ("key_file", &self.key_file, "the PEM file of the private key"),
            ] {
                if given(path).is_none() {
                    problems.push((key.to_string(), format!("is required with [server.tls] ({what})")));
                }
            }
            return problems;
        };
        match crate::tls::server::load(cert_file, key_file) {
            Ok(_) => Vec::new(),
            Err(error) => vec![(error.file().key().to_string(), error.to_string())],
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: default_listen(),
            external_base_url: None,
            public_id_secret: None,
            workers: 0,
            max_in_flight: default_max_in_flight(),
            max_body_readers: default_max_body_readers(),
            max_import_waits: default_max_import_waits(),
            request_timeout_ms: default_request_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            max_body_bytes: default_max_body_bytes(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            drain_ms: default_drain_ms(),
            global_rate_limit: None,
            fleet_rate_limit: FleetRateLimit::default(),
            admin_token: None,
            admin_auth_max_failures: default_admin_auth_max_failures(),
            admin_auth_window_secs: default_admin_auth_window_secs(),
            instance_id: None,
            secrets_key: None,
            previous_secrets_keys: Vec::new(),
            tls: None,
        }
    }
}

/// 127.0.0.1:8080: loopback, so that an instance is reachable from the network only when told to.
fn default_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))
}
fn default_max_in_flight() -> usize {
    4096
}
/// Four times the in-flight cap: a slowloris of that many bodies costs ~20 KB each (soak figures)
/// and leaves every processing slot to senders whose body has arrived.
fn default_max_body_readers() -> usize {
    16_384
}
/// 1024: a wait keeps at most `import_wait::MAX_DETAILED` results and as many failures in full
/// (~100 KiB at worst, a few hundred bytes for one record), so the cap bounds memory at ~100 MiB;
/// raise it for fleets whose senders mostly wait.
fn default_max_import_waits() -> usize {
    1024
}
/// Largest `max_import_waits` accepted.
const MAX_IMPORT_WAITS: usize = 1_000_000;
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_body_read_timeout_ms() -> u64 {
    10_000
}
/// 10 MB, the body limit of the product hookpipe replaces.
fn default_max_body_bytes() -> usize {
    10 * 1024 * 1024
}
fn default_shutdown_timeout_secs() -> u64 {
    30
}
/// 5 s: two failed checks of a balancer probing `/readyz` every 2 s (haproxy `inter 2s fall 2`,
/// Kubernetes `periodSeconds: 2, failureThreshold: 2`) plus a second of margin.
fn default_drain_ms() -> u64 {
    5_000
}
/// 10 failures a minute: a person mistyping the token is never in the way, while guessing a
/// 16-character token at 10 tries a minute per address is hopeless.
fn default_admin_auth_max_failures() -> u32 {
    10
}
fn default_admin_auth_window_secs() -> u64 {
    60
}
/// Longest `admin_auth_window_secs` accepted: a day.
const MAX_ADMIN_AUTH_WINDOW_SECS: u64 = 86_400;
/// Longest drain period accepted: beyond it, an orchestrator's grace period would kill first.
const MAX_DRAIN_MS: u64 = 300_000;

/// Parses `server.listen`: `host:port` with an IP address (a name would need a resolver).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| "must be host:port with an IP address, e.g. 127.0.0.1:8080".to_string())
}

fn deserialize_listen<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SocketAddr, D::Error> {
    deserialize_from_text(deserializer, parse_listen)
}

/// Shortest `admin_token` and `public_id_secret`: guessing one must stay out of reach.
const MIN_TOKEN_LEN: usize = 16;

impl ServerSettings {
    /// Problems with these settings, as `(key relative to [server], message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let mut push = |key: &str, message: String| problems.push((key.to_string(), message));
        if let Some(base) = &self.external_base_url {
            if !(base.starts_with("http://") || base.starts_with("https://")) || base.ends_with('/') {
                push(
                    "external_base_url",
                    "must start with http:// or https:// and have no trailing slash".into(),
                );
            }
        }
        if self.max_in_flight == 0 {
            push("max_in_flight", "must be at least 1".into());
        }
        if !(1..=MAX_IMPORT_WAITS).contains(&self.max_import_waits) {
            push("max_import_waits", format!("must be between 1 and {MAX_IMPORT_WAITS}"));
        }
        if self.max_body_readers == 0 {
            push("max_body_readers", "must be at least 1".into());
        }
        if let Some(global) = &self.global_rate_limit {
            if !global.problems().is_empty() {
                push(
                    "global_rate_limit",
                    "capacity and refill_per_sec must be at least 1".into(),
                );
            }
        }
        for (key, message) in self.fleet_rate_limit.problems() {
            push(&format!("fleet_rate_limit.{key}"), message);
        }
        if self.drain_ms > MAX_DRAIN_MS {
            push("drain_ms", format!("must be at most {MAX_DRAIN_MS} (5 minutes)"));
        }
        if self.max_body_bytes == 0 {
            push("max_body_bytes", "must be at least 1".into());
        }
        if let Some(message) = too_short(self.admin_token.as_ref()) {
            push("admin_token", message);
        }
        if !(1..=MAX_ADMIN_AUTH_WINDOW_SECS).contains(&self.admin_auth_window_secs) {
            push(
                "admin_auth_window_secs",
                format!("must be between 1 and {MAX_ADMIN_AUTH_WINDOW_SECS} (a day)"),
            );
        }
        if let Some(key) = &self.secrets_key {
            if let Err(message) = crate::secrets_at_rest::parse_key(key.expose()) {
                push("secrets_key", message);
            }
        }
        for (index, key) in self.previous_secrets_keys.iter().enumerate() {
            if let Err(message) = crate::secrets_at_rest::parse_key(key.expose()) {
                push(&format!("previous_secrets_keys[{index}]"), message);
            }
        }
        if let Some(message) = too_short(self.public_id_secret.as_ref()) {
            push("public_id_secret", message);
        }
        if let Some(tls) = &self.tls {
            for (key, message) in tls.problems() {
                push(&format!("tls.{key}"), message);
            }
        }
        problems
    }

    /// The listener's URL scheme: `https` with `[server.tls]`, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The problem of a token or secret shorter than [`MIN_TOKEN_LEN`], if set.
fn too_short(secret: Option<&Secret>) -> Option<String> {
    secret
        .filter(|secret| secret.expose().len() < MIN_TOKEN_LEN)
        .map(|_| format!("must be at least {MIN_TOKEN_LEN} characters"))
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{env, BASE};
    use crate::config::Settings;

    #[test]
    fn secrets_keys_must_be_32_bytes_of_base64() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__SECRETS_KEY", key),
                ("HOOKPIPE_SERVER__PREVIOUS_SECRETS_KEYS", &format!("[\"{key}\"]")),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.secrets_key.unwrap().expose(), key);
        assert_eq!(settings.server.previous_secrets_keys.len(), 1);
        let errors = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__SECRETS_KEY", "too-short"),
                (
                    "HOOKPIPE_SERVER__PREVIOUS_SECRETS_KEYS",
                    &format!("[\"{key}\", \"c2hvcnQ=\"]"),
                ),
            ]),
        )
        .unwrap_err()
        .0;
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["server.secrets_key", "server.previous_secrets_keys[1]"]);
        assert!(!errors[0].message.contains("too-short"), "{}", errors[0].message);
    }

    #[test]
    fn fleet_rate_limits_are_on_by_default_and_their_periods_are_checked() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        let fleet = &settings.server.fleet_rate_limit;
        assert_eq!(
            (fleet.enabled, fleet.heartbeat_ms, fleet.member_timeout_ms),
            (true, 250, 3000)
        );
        assert_eq!(settings.kafka.fleet_topic, "hookpipe.fleet");
        let settings =
            Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_SERVER__FLEET_RATE_LIMIT__ENABLED", "false")])).unwrap();
        assert!(!settings.server.fleet_rate_limit.enabled);
        for (heartbeat, timeout, key) in [
            ("10", "3000", "server.fleet_rate_limit.heartbeat_ms"),
            ("500", "1000", "server.fleet_rate_limit.member_timeout_ms"),
        ] {
            let errors = Settings::from_toml_and_env(
                BASE,
                env(&[
                    ("HOOKPIPE_SERVER__FLEET_RATE_LIMIT__HEARTBEAT_MS", heartbeat),
                    ("HOOKPIPE_SERVER__FLEET_RATE_LIMIT__MEMBER_TIMEOUT_MS", timeout),
                ]),
            )
            .unwrap_err()
            .0;
            let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
            assert_eq!(keys, [key], "{heartbeat} / {timeout}");
        }
    }

    #[test]
    fn the_admin_auth_limit_has_defaults_env_overrides_and_a_bounded_window() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(
            (
                settings.server.admin_auth_max_failures,
                settings.server.admin_auth_window_secs
            ),
            (10, 60)
        );
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__ADMIN_AUTH_MAX_FAILURES", "3"),
                ("HOOKPIPE_SERVER__ADMIN_AUTH_WINDOW_SECS", "300"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (
                settings.server.admin_auth_max_failures,
                settings.server.admin_auth_window_secs
            ),
            (3, 300)
        );
        for bad in ["0", "86401"] {
            let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_SERVER__ADMIN_AUTH_WINDOW_SECS", bad)]))
                .unwrap_err()
                .0;
            assert_eq!(errors[0].key, "server.admin_auth_window_secs", "{bad}");
        }
    }

    #[test]
    fn listen_is_parsed_once_and_a_bad_one_is_named_with_the_other_problems() {
        let settings = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_SERVER__LISTEN", "[::1]:9000")])).unwrap();
        assert_eq!(settings.server.listen, "[::1]:9000".parse().unwrap());
        assert_eq!(settings.external_base_url(), "http://[::1]:9000");
        assert_eq!(Settings::default().server.listen.to_string(), "127.0.0.1:8080");

        let text = "[server]\npublic_id_secret = \"0123456789abcdef0123\"\nlisten = \"nowhere\"\nmax_in_flight = 0\n\
                    [[listeners]]\nid = \"orders\"\npage_size = 0\n";
        let errors = Settings::from_toml_and_env(text, env(&[])).unwrap_err().0;
        let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "server.listen: must be host:port with an IP address, e.g. 127.0.0.1:8080",
                "server.max_in_flight: must be at least 1",
                "listeners[orders].page_size: must be between 1 and 10000",
            ]
        );
        let errors = Settings::from_toml_and_env("[server]\nlisten = 8080\n", env(&[]))
            .unwrap_err()
            .0;
        assert_eq!(
            errors[0].key, "server.listen",
            "a value of the wrong type names the key"
        );
    }

    /// A directory with a self-signed pair (`cert.pem`, `key.pem`) and the key of another
    /// certificate (`other-key.pem`), removed on drop.
    struct TlsFiles(std::path::PathBuf);

    impl TlsFiles {
        fn new() -> TlsFiles {
            let dir = std::env::temp_dir().join(format!("hookpipe-config-tls-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
            let other = rcgen::generate_simple_self_signed(vec!["other".to_string()]).unwrap();
            std::fs::write(dir.join("cert.pem"), certified.cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), certified.key_pair.serialize_pem()).unwrap();
            std::fs::write(dir.join("other-key.pem"), other.key_pair.serialize_pem()).unwrap();
            TlsFiles(dir)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for TlsFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn tls_is_off_by_default_and_set_from_the_file_or_the_environment() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert!(settings.server.tls.is_none());
        assert_eq!(settings.server.scheme(), "http");

        let files = TlsFiles::new();
        let text = format!(
            "{BASE}\n[server.tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            files.path("cert.pem"),
            files.path("key.pem")
        );
        let settings = Settings::from_toml_and_env(&text, env(&[])).unwrap();
        let tls = settings.server.tls.as_ref().unwrap();
        assert_eq!(tls.files().unwrap().0, std::path::Path::new(&files.path("cert.pem")));
        assert_eq!(settings.external_base_url(), "https://127.0.0.1:8080");

        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__TLS__CERT_FILE", &files.path("cert.pem")),
                ("HOOKPIPE_SERVER__TLS__KEY_FILE", &files.path("key.pem")),
                ("HOOKPIPE_SERVER__LISTEN", "0.0.0.0:8443"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.server.scheme(), "https");
        assert_eq!(settings.external_base_url(), "https://0.0.0.0:8443");
        let settings = Settings::from_toml_and_env(
            BASE,
            env(&[
                ("HOOKPIPE_SERVER__TLS__CERT_FILE", &files.path("cert.pem")),
                ("HOOKPIPE_SERVER__TLS__KEY_FILE", &files.path("key.pem")),
                ("HOOKPIPE_SERVER__EXTERNAL_BASE_URL", "https://hooks.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.external_base_url(), "https://hooks.example.com");
    }

    #[test]
    fn a_tls_pair_that_does_not_load_is_named_at_its_key() {
        let files = TlsFiles::new();
        let errors = |pairs: &[(&str, &str)]| -> Vec<String> {
            Settings::from_toml_and_env(BASE, env(pairs))
                .unwrap_err()
                .0
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let (cert, key) = (files.path("cert.pem"), files.path("key.pem"));
        let found = errors(&[("HOOKPIPE_SERVER__TLS__CERT_FILE", &cert)]);
        assert_eq!(
            found,
            ["server.tls.key_file: is required with [server.tls] (the PEM file of the private key)"]
        );
        let found = errors(&[
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", &key),
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", ""),
        ]);
        assert_eq!(
            found,
            ["server.tls.cert_file: is required with [server.tls] (the PEM file of the certificate chain)"]
        );
        let missing = files.path("missing.pem");
        let found = errors(&[
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", &missing),
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", &key),
        ]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(&format!("server.tls.cert_file: cannot read {missing}: ")),
            "{found:?}"
        );
        let found = errors(&[
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", &cert),
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", &cert),
        ]);
        assert!(
            found[0].starts_with("server.tls.key_file: ") && found[0].contains("holds no PEM private key"),
            "{found:?}"
        );
        let found = errors(&[
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", &key),
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", &key),
        ]);
        assert!(
            found[0].starts_with("server.tls.cert_file: ") && found[0].contains("holds no PEM certificate"),
            "{found:?}"
        );
        let other = files.path("other-key.pem");
        let found = errors(&[
            ("HOOKPIPE_SERVER__TLS__CERT_FILE", &cert),
            ("HOOKPIPE_SERVER__TLS__KEY_FILE", &other),
        ]);
        assert_eq!(
            found,
            [format!(
                "server.tls.key_file: {other} does not match the certificate of {cert}"
            )]
        );
        let errors = Settings::from_toml_and_env("[server.tls]\ncert = \"x\"\n", env(&[]))
            .unwrap_err()
            .0;
        assert!(
            errors[0].message.contains("cert"),
            "unknown keys are refused: {errors:?}"
        );
    }
}
