//! Settings: embedded defaults, then one TOML file, then `HOOKPIPE_*__*` environment
//! overrides; validated once at load, with every error naming the key that is wrong.
//!
//! One file per section (`server`, `kafka`, `pipeline`, `worker`, `listener`), each with its
//! defaults and its own `problems()`; `env` applies the overrides, `error` names the problems.

use std::collections::HashSet;
use std::path::Path;

pub mod body_format;
pub mod cloudevents;
pub mod dedup;
pub mod env;
pub mod error;
mod from_text;
pub mod handshake;
pub mod import_wait;
pub mod kafka;
pub mod listener;
pub mod pipeline;
pub mod recipe;
pub mod resource_path;
pub mod schema;
pub mod server;
pub mod verification;
pub mod worker;

use serde::Deserialize;

use cloudevents::OutputFormat;
use env::apply_env_override;
use error::{single, ConfigError, ConfigErrors};
use kafka::{Compression, KafkaSettings};
use listener::{parse_body_format, ListenerConfig};
use pipeline::PipelineSettings;
use server::{parse_listen, ServerSettings};
use worker::{parse_metrics_listen, WorkerSettings};

/// The whole configuration of one hookpipe instance.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerSettings,
    /// Kafka producer and topics.
    #[serde(default)]
    pub kafka: KafkaSettings,
    /// Actor chain tuning.
    #[serde(default)]
    pub pipeline: PipelineSettings,
    /// Import workers (`hookpipe worker`): consumer group and targets.
    #[serde(default)]
    pub worker: WorkerSettings,
    /// Listeners defined in the file (read-only through the API).
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
}

/// The largest configuration file read (listeners with inline schemas included).
const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// A UTF-8 file of at most `max` bytes; longer (a device such as `/dev/zero` included, whose
/// size says 0) is an error, found after reading `max + 1` bytes, never more.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|error| error.to_string())?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("longer than {max} bytes"));
    }
    String::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())
}

impl Settings {
    /// Reads `path` (if given), applies the process environment, deserializes and validates.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigErrors> {
        let text = match path {
            Some(path) => read_capped(path, MAX_CONFIG_BYTES)
                .map_err(|error| single("<file>", format!("cannot read {}: {error}", path.display())))?,
            None => String::new(),
        };
        Settings::from_toml_env_in(&text, std::env::vars(), path.and_then(Path::parent))
    }

    /// Parses TOML text, applies `HOOKPIPE_*__*` overrides from `env`, deserializes and validates
    /// (files the configuration names, as a listener's `schema.file`, relative to the current folder).
    pub fn from_toml_and_env(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigErrors> {
        Settings::from_toml_env_in(text, env, None)
    }

    /// [`Settings::from_toml_and_env`] for a file in `base`: what it names is read from there.
    fn from_toml_env_in(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
        base: Option<&Path>,
    ) -> Result<Settings, ConfigErrors> {
        let mut root: toml::Table = text
            .parse()
            .map_err(|error: toml::de::Error| single(toml_error_key(&error), toml_error_message(&error)))?;
        for (name, value) in env {
            apply_env_override(&mut root, &name, &value)?;
        }
        let mut errors = take_unparsable_text(&mut root);
        let mut settings: Settings = serde_path_to_error::deserialize(toml::Value::Table(root))
            .map_err(|error| single(dotted_key(error.path()), error.into_inner().to_string()))?;
        errors.extend(settings.read_schema_files(base));
        if let Err(problems) = settings.validate() {
            errors.extend(problems.0);
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Checks the values that types alone cannot, collecting every problem: each section's own
    /// `problems()`, then the rules across listeners (unique ids and public ids, a
    /// `server.public_id_secret` for the listeners whose public id is derived).
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let mut errors = Vec::new();
        let sections = [
            ("server", self.server.problems()),
            ("kafka", self.kafka.problems(self.server.request_timeout_ms)),
            ("worker", self.worker.problems()),
            ("pipeline", self.pipeline.problems()),
        ];
        for (section, problems) in sections {
            errors.extend(ConfigErrors::from_problems(problems).within(section).0);
        }

        let mut seen_ids = HashSet::new();
        let mut seen_public = HashSet::new();
        for listener in &self.listeners {
            let mut problems = Vec::new();
            if !seen_ids.insert(listener.id.clone()) {
                problems.push(("id".to_string(), "is defined twice".to_string()));
            }
            problems.extend(listener.problems());
            problems.extend(listener.ordering_output_problem(self.kafka.output_format));
            if let Some(public_id) = &listener.public_id {
                if !seen_public.insert(public_id.clone()) {
                    problems.push(("public_id".into(), "is used by another listener".into()));
                }
            }
            errors.extend(
                ConfigErrors::from_problems(problems)
                    .within(&format!("listeners[{}]", listener.id))
                    .0,
            );
            if listener.public_id.is_none() && self.server.public_id_secret.is_none() {
                errors.push(ConfigError {
                    key: "server.public_id_secret".into(),
                    message: format!(
                        "is required to derive the public id of listener `{}` (or set its public_id)",
                        listener.id
                    ),
                });
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Reads the listeners' `schema.file`s into their `schema.document`; a listener whose file
    /// cannot be read loses its schema here (so nothing else is said about it) and the problem
    /// is named at its `schema.file`.
    fn read_schema_files(&mut self, base: Option<&Path>) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        for listener in &mut self.listeners {
            let Some(schema) = &mut listener.schema else { continue };
            if let Err(message) = schema.read_file(base) {
                listener.schema = None;
                errors.push(ConfigError {
                    key: format!("listeners[{}].schema.file", listener.id),
                    message,
                });
            }
        }
        errors
    }

    /// Topics the import workers consume: `worker.topics`, else every pages topic.
    pub fn worker_topics(&self) -> Vec<String> {
        if self.worker.topics.is_empty() {
            self.pages_topics()
        } else {
            self.worker.topics.clone()
        }
    }

    /// Topics of pages: the default one and every listener's own.
    pub fn pages_topics(&self) -> Vec<String> {
        let mut topics = vec![self.kafka.pages_topic.clone()];
        for listener in &self.listeners {
            if let Some(topic) = &listener.topic {
                if !topics.contains(topic) {
                    topics.push(topic.clone());
                }
            }
        }
        topics
    }

    /// The URL senders use, as configured or derived from the listen address (`https://` with
    /// `[server.tls]`).
    pub fn external_base_url(&self) -> String {
        self.server
            .external_base_url
            .clone()
            .unwrap_or_else(|| format!("{}://{}", self.server.scheme(), self.server.listen))
    }
}

/// The parser's message; toml gives an empty one for some errors (a file cut inside a table
/// header, found by fuzz/config): then a generic one, never the file's text (it may hold secrets).
fn toml_error_message(error: &toml::de::Error) -> String {
    let message = error.message().trim();
    if message.is_empty() {
        "invalid TOML".to_string()
    } else {
        message.to_string()
    }
}

/// The dotted key of a deserialization error, as the user would write it: `listeners[0].id`,
/// with a key that is empty or not a bare TOML key quoted (`"".x`, `"a.b"`), so that no problem
/// names an empty key; `<root>` for the file itself.
fn dotted_key(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let bare = |key: &str| {
        !key.is_empty()
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
    };
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                if bare(key) {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    if out.is_empty() {
        "<root>".into()
    } else {
        out
    }
}

fn toml_error_key(error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => format!("<file> at byte {}", span.start),
        None => "<file>".into(),
    }
}

/// Values written as text and parsed when deserialized (addresses, closed sets), checked first
/// with the parsers their types deserialize with: a wrong one is taken out of the tree (its
/// default stands in) and reported with every other problem and under its listener's id, where
/// a deserialization error would stop at the first and name the listener by index. A value of
/// the wrong TOML type is left for deserialization to name.
fn take_unparsable_text(root: &mut toml::Table) -> Vec<ConfigError> {
    type Check = fn(&str) -> Option<String>;
    let section_values: [(&str, &str, Check); 4] = [
        ("server", "listen", |text| parse_listen(text).err()),
        ("kafka", "compression", |text| Compression::parse(text).err()),
        ("kafka", "output_format", |text| OutputFormat::parse(text).err()),
        ("worker", "metrics_listen", |text| parse_metrics_listen(text).err()),
    ];
    let mut errors = Vec::new();
    for (section, field, check) in section_values {
        let Some(table) = root.get_mut(section).and_then(toml::Value::as_table_mut) else {
            continue;
        };
        if let Some(message) = table.get(field).and_then(toml::Value::as_str).and_then(check) {
            table.remove(field);
            errors.push(ConfigError {
                key: format!("{section}.{field}"),
                message,
            });
        }
    }
    let listeners = root.get_mut("listeners").and_then(toml::Value::as_array_mut);
    for listener in listeners.into_iter().flatten().filter_map(toml::Value::as_table_mut) {
        let id = listener
            .get("id")
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let output_format = listener.get("output_format").and_then(toml::Value::as_str);
        if let Some(message) = output_format.and_then(|text| OutputFormat::parse(text).err()) {
            listener.remove("output_format");
            errors.push(ConfigError {
                key: format!("listeners[{id}].output_format"),
                message,
            });
        }
        let Some(content) = listener.get_mut("content").and_then(toml::Value::as_table_mut) else {
            continue;
        };
        let Some(names) = content
            .get("accept")
            .and_then(toml::Value::as_array)
            .and_then(|accept| accept.iter().map(toml::Value::as_str).collect::<Option<Vec<&str>>>())
        else {
            continue;
        };
        let problems: Vec<String> = names
            .into_iter()
            .filter_map(|name| parse_body_format(name).err())
            .collect();
        if !problems.is_empty() {
            content.remove("accept");
            errors.extend(problems.into_iter().map(|message| ConfigError {
                key: format!("listeners[{id}].content.accept"),
                message,
            }));
        }
    }
    errors
}

/// What the unit tests of every section start from: a valid file with one listener.
#[cfg(test)]
pub(crate) mod test_support {
    /// A valid configuration with one listener, `orders`; tests append keys to it.
    pub const BASE: &str = r#"
[server]
public_id_secret = "0123456789abcdef0123"
[[listeners]]
id = "orders"
"#;

    /// An environment from `(name, value)` pairs.
    pub fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{env, BASE};
    use super::*;

    /// fuzz/corpus/config/crash-ba1776ee…: the example file cut at 4096 bytes made a problem
    /// without a message.
    #[test]
    fn a_toml_error_always_says_why() {
        let example = include_str!("../../config/hookpipe.toml");
        for cut in [4096, 1, 2, 9, 10] {
            let text = &example[..cut.min(example.len())];
            if let Err(errors) = Settings::from_toml_and_env(text, env(&[])) {
                for error in &errors.0 {
                    assert!(!error.message.is_empty(), "cut at {cut}: no message at {}", error.key);
                }
            }
        }
        let errors = Settings::from_toml_and_env("[server", env(&[])).unwrap_err();
        assert!(!errors.0[0].message.is_empty());
    }

    #[test]
    fn defaults_are_valid() {
        let settings = Settings::from_toml_and_env(BASE, env(&[])).unwrap();
        assert_eq!(settings.listeners[0].page_size, 20);
        assert_eq!(settings.listeners[0].rate_limit.capacity, 1000);
        assert_eq!(settings.kafka.pages_topic, "hookpipe.pages");
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let errors = Settings::from_toml_and_env("[kafka]\nbrokerz = \"x\"\n", env(&[]))
            .unwrap_err()
            .0;
        assert!(errors[0].message.contains("brokerz"), "{errors:?}");
        let errors = Settings::from_toml_and_env(BASE, env(&[("HOOKPIPE_LISTENERS__ORDERS__PAGE_SIZE", "many")]))
            .unwrap_err()
            .0;
        assert_eq!(errors[0].key, "listeners[0].page_size");
    }

    /// Found by the `config` fuzz target: an empty quoted key named a problem with an empty key
    /// ("unknown field ``" at ``).
    #[test]
    fn empty_and_quoted_keys_are_named_as_written() {
        for (text, key) in [
            ("[\"\"]\n", "\"\""),
            ("''.''._r = \"x\"\n", "\"\""),
            ("[kafka]\n\"\" = 1\n", "kafka.\"\""),
            ("[kafka.\"a.b\"]\nx = 1\n", "kafka.\"a.b\""),
            ("[[listeners]]\nid = \"a\"\n\"x y\" = 1\n", "listeners[0].\"x y\""),
        ] {
            let errors = Settings::from_toml_and_env(text, env(&[])).unwrap_err().0;
            assert!(!errors[0].key.is_empty(), "{text:?}: {errors:?}");
            assert_eq!(errors[0].key, key, "{text:?}: {errors:?}");
        }
    }

    #[test]
    fn public_id_secret_required_without_explicit_ids() {
        let errors = Settings::from_toml_and_env("[[listeners]]\nid = \"a\"\n", env(&[]))
            .unwrap_err()
            .0;
        assert_eq!(errors[0].key, "server.public_id_secret");
    }
}
