//! Listeners at run time: compiled templates, verifier and public id, and the registry the
//! Receiver resolves `/hooks/{public_id}` against. [`ListenerConfig::compile`] is the one way a
//! listener's configuration becomes a [`Listener`]: at startup, in the registry and on an API write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::body_format::BodyFormat;
use crate::config::cloudevents::{default_source, OutputFormat};
use crate::config::error::{single, ConfigErrors};
use crate::config::listener::{response_content_type, ListenerConfig};
use crate::config::resource_path::ResourcePath;
use crate::config::Settings;
use crate::pipeline::handshake::Handshakes;
use crate::pipeline::page::ordering::{key_at_path, OrderingKey};
use crate::pipeline::parse::records::Record;
use crate::pipeline::rate_limit::bucket::{BucketShares, LeakyBucket};
use crate::pipeline::schema::ListenerSchema;
use crate::pipeline::verify::scheme::Verifier;
use crate::templates::TemplateSet;
use crate::wire::cloudevents::Mode;

const TRACE_KEY: &str = "trace_key";
const DATA_URI: &str = "data_uri";
const RESPONSE_BODY: &str = "response_body";
const FAILURE_BODY: &str = "failure_body";
const EVENT_TYPE: &str = "event_type";
const ORDERING_KEY: &str = "ordering_key";

/// A listener ready to serve: everything that can fail was checked when it was compiled.
pub struct Listener {
    /// Its configuration as written.
    pub config: ListenerConfig,
    /// The unguessable id in its public URL.
    pub public_id: String,
    /// Topic its pages go to.
    pub topic: String,
    /// Its compiled schema, if it has one: a listener without one never validates. Shared by
    /// the listener's successive compilations while its schema does not change.
    pub schema: Option<Arc<ListenerSchema>>,
    /// Topic its quarantined records go to (`kafka.quarantine_topic`).
    pub quarantine_topic: String,
    /// Parsed resource path.
    pub resource_path: Option<ResourcePath>,
    /// Accepted body formats.
    pub accept: Vec<BodyFormat>,
    /// Body size limit in bytes.
    pub max_body_bytes: usize,
    /// Compiled verification.
    pub verifier: Verifier,
    /// Compiled handshake rules.
    pub handshakes: Handshakes,
    /// This listener's leaky bucket, shared by all HTTP threads (and kept across updates
    /// that do not change its settings).
    pub bucket: Arc<LeakyBucket>,
    /// When this instance last wrote the listener's sample (kept across updates, as the bucket).
    pub sample_clock: Arc<SampleClock>,
    /// Where it is defined.
    pub source: Source,
    /// `Content-Type` of the success body.
    pub response_content_type: String,
    /// How it publishes CloudEvents, one per record; `None`: it publishes pages.
    pub events: Option<EventOutput>,
    /// How its records' ordering key is found; `None`: the listener has none.
    pub ordering: Option<OrderingKey>,
    /// Its series of the per-request counters, looked up once.
    pub counters: crate::telemetry::ListenerCounters,
    templates: TemplateSet,
}

/// How a listener publishing CloudEvents (`output_format`) writes them (`wire::cloudevents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOutput {
    /// Binary or structured content mode.
    pub mode: Mode,
    /// Every event's `source`.
    pub source: String,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("id", &self.config.id)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl ListenerConfig {
    /// Checks this listener against every rule ([`ListenerConfig::problems`]) and compiles it.
    /// The error holds every problem, keyed relative to the listener (`page_size`,
    /// `verification.secrets`); nothing is compiled unless there is none.
    pub fn compile(&self, settings: &Settings) -> Result<Listener, ConfigErrors> {
        self.compile_reusing(settings, None)
    }

    /// [`ListenerConfig::compile`], taking `previous`'s compiled schema when this listener's
    /// schema is the same: the registry rebuilds every listener when one changes, and a schema
    /// is compiled again only when it changed.
    pub fn compile_reusing(&self, settings: &Settings, previous: Option<&Listener>) -> Result<Listener, ConfigErrors> {
        let mut problems = self.problems_besides_schema();
        problems.extend(self.ordering_output_problem(settings.kafka.output_format));
        let reused = previous
            .filter(|previous| previous.config.schema == self.schema)
            .and_then(|previous| previous.schema.clone());
        let schema = match (reused, &self.schema) {
            (Some(schema), _) => Some(schema),
            (None, None) => None,
            (None, Some(options)) => match ListenerSchema::compile(options) {
                Ok(schema) => Some(Arc::new(schema)),
                Err(problem) => {
                    problems.push(problem);
                    None
                }
            },
        };
        if !problems.is_empty() {
            return Err(ConfigErrors::from_problems(problems));
        }
        // `problems()` has refused whatever fails below; should the two ever disagree, the
        // listener is refused with the key, never the process.
        let public_id = match &self.public_id {
            Some(public_id) => public_id.clone(),
            None => {
                let secret = settings
                    .server
                    .public_id_secret
                    .as_ref()
                    .ok_or_else(|| single("public_id", "is required when server.public_id_secret is not set"))?;
                derive_public_id(secret.expose(), &self.id)
            }
        };
        let mut templates = TemplateSet::new(self.strict_templates);
        for (name, key, template) in [
            (TRACE_KEY, "trace_key_template", &self.trace_key_template),
            (DATA_URI, "data_uri_template", &self.data_uri_template),
            (RESPONSE_BODY, "response.body", &self.response.body),
            (FAILURE_BODY, "response.failure_body", &self.response.failure_body),
            (
                EVENT_TYPE,
                "cloudevents.type_template",
                &self
                    .cloudevents
                    .as_ref()
                    .and_then(|options| options.type_template.clone()),
            ),
        ] {
            if let Some(template) = template {
                templates.add(name, template).map_err(|message| single(key, message))?;
            }
        }
        let mode = match self.output_format.unwrap_or(settings.kafka.output_format) {
            OutputFormat::Page => None,
            OutputFormat::CloudEventsBinary => Some(Mode::Binary),
            OutputFormat::CloudEventsStructured => Some(Mode::Structured),
        };
        let events = mode.map(|mode| EventOutput {
            mode,
            source: self
                .cloudevents
                .as_ref()
                .and_then(|options| options.source.clone())
                .unwrap_or_else(|| default_source(&self.id)),
        });
        let ordering = match self.ordering_key.as_deref() {
            None => None,
            Some(text) => {
                let ordering = OrderingKey::parse(text).map_err(|message| single("ordering_key", message))?;
                if ordering == OrderingKey::Template {
                    templates
                        .add(ORDERING_KEY, text)
                        .map_err(|message| single("ordering_key", message))?;
                }
                Some(ordering)
            }
        };
        let resource_path = self
            .resource_path
            .as_deref()
            .map(ResourcePath::parse)
            .transpose()
            .map_err(|message| single("resource_path", message))?;
        let verifier = self
            .verification
            .compile()
            .map_err(|message| single("verification", message))?;
        let handshakes = Handshakes::compile(self).map_err(|(key, message)| single(key, message))?;
        let response_content_type = response_content_type(&self.response.media_type)
            .ok_or_else(|| single("response.media_type", "is not a media type"))?;
        Ok(Listener {
            public_id,
            topic: self.topic.clone().unwrap_or_else(|| settings.kafka.pages_topic.clone()),
            schema,
            quarantine_topic: settings.kafka.quarantine_topic.clone(),
            resource_path,
            accept: self.content.accept.clone(),
            max_body_bytes: self.content.max_body_bytes.unwrap_or(settings.server.max_body_bytes),
            verifier,
            handshakes,
            sample_clock: Arc::default(),
            bucket: Arc::new(LeakyBucket::new(
                self.rate_limit.capacity,
                self.rate_limit.refill_per_sec,
            )),
            source: Source::Config,
            response_content_type,
            events,
            ordering,
            counters: Default::default(),
            templates,
            config: self.clone(),
        })
    }
}

impl Listener {
    /// The listener's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Whether a trace key template is set.
    pub fn has_trace_key_template(&self) -> bool {
        self.templates.has(TRACE_KEY)
    }

    /// Renders the trace key template over a record.
    pub fn render_trace_key(&self, record: &Record) -> Result<String, String> {
        self.render(TRACE_KEY, record)
    }

    /// Renders the data URI template over a record, if one is set.
    pub fn render_data_uri(&self, record: &Record) -> Option<Result<String, String>> {
        self.templates.has(DATA_URI).then(|| self.render(DATA_URI, record))
    }

    /// The record's ordering key when the listener has one (`Some(Ok)`; empty when the record
    /// has no value there), or why its template failed.
    pub fn ordering_key_of(&self, record: &Record) -> Option<Result<String, String>> {
        Some(match self.ordering.as_ref()? {
            OrderingKey::Path(path) => Ok(key_at_path(&record.to_value(), path).unwrap_or_default()),
            OrderingKey::Template => self.render(ORDERING_KEY, record),
        })
    }

    /// Whether the success response has a body template.
    pub fn has_response_body(&self) -> bool {
        self.templates.has(RESPONSE_BODY)
    }

    /// Renders the success body over the request context.
    pub fn render_response_body(&self, context: &serde_json::Value) -> Result<String, String> {
        self.render(RESPONSE_BODY, context)
    }

    /// Renders the failure body of a request that waited for its import (`response.failure_body`),
    /// if one is set.
    pub fn render_failure_body(&self, context: &serde_json::Value) -> Option<Result<String, String>> {
        self.templates
            .has(FAILURE_BODY)
            .then(|| self.render(FAILURE_BODY, context))
    }

    /// Renders the CloudEvents `type` template over `context` (the request and the record), if
    /// one is set.
    pub fn render_event_type<T: serde::Serialize>(&self, context: &T) -> Option<Result<String, String>> {
        self.templates.has(EVENT_TYPE).then(|| self.render(EVENT_TYPE, context))
    }

    /// Whether the CloudEvents `type` has a template.
    pub fn has_event_type_template(&self) -> bool {
        self.templates.has(EVENT_TYPE)
    }

    fn render<T: serde::Serialize>(&self, name: &str, data: &T) -> Result<String, String> {
        self.templates.render(name, data)
    }

    /// The full URL senders post to (without a secret-URL token).
    pub fn public_url(&self, base_url: &str) -> String {
        format!("{base_url}/hooks/{}", self.public_id)
    }
}

/// A stable, unguessable public id: HMAC-SHA256(secret, listener id), 32 hex characters.
pub fn derive_public_id(secret: &str, listener_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"hookpipe public id\0");
    mac.update(listener_id.as_bytes());
    let digest = mac.finalize().into_bytes();
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a listener is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The configuration file: read-only through the API.
    Config,
    /// The management API (stored in Kafka).
    Api,
}

/// An immutable view of every listener.
#[derive(Default)]
struct Snapshot {
    by_public_id: HashMap<String, Arc<Listener>>,
    by_id: HashMap<String, Arc<Listener>>,
}

/// All listeners of this instance, by public id and by id. Reads take a snapshot and never
/// block each other; changes (API writes seen through Kafka) build a new snapshot and swap it.
#[derive(Default)]
pub struct Registry {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Open debug windows: listener id → end (Unix ms).
    debug_windows: RwLock<HashMap<String, i64>>,
    /// Gives new buckets their share of the fleet's (`fleet_feed`); unset, they are whole.
    shares: std::sync::OnceLock<Arc<dyn BucketShares>>,
}

impl Registry {
    /// Builds the registry from the configured listeners.
    pub fn from_settings(settings: &Settings) -> Result<Registry, String> {
        let registry = Registry::default();
        registry.rebuild(settings, Vec::new())?;
        Ok(registry)
    }

    /// Replaces the listeners with the configured ones plus `api` (listeners stored through the
    /// API). A configured listener that does not compile is an error naming it (the file was
    /// validated at load, so it cannot happen after `Settings::load`); a stored one is skipped
    /// with an error log, never taking the others down. Buckets survive when a listener's rate
    /// limit did not change.
    pub fn rebuild(&self, settings: &Settings, api: Vec<ListenerConfig>) -> Result<(), String> {
        let previous = self.snapshot();
        let mut snapshot = Snapshot::default();
        let shares = self.shares.get().map(|shares| &**shares);
        let previous_of = |id: &str| previous.by_id.get(id).map(|listener| &**listener);
        for config in &settings.listeners {
            let listener = config
                .compile_reusing(settings, previous_of(&config.id))
                .map_err(|errors| errors.within(&format!("listeners[{}]", config.id)).to_string())?;
            snapshot.insert(listener, &previous, shares);
        }
        for config in api {
            let id = config.id.clone();
            if snapshot.by_id.contains_key(&id) {
                tracing::warn!(listener = %id, "stored listener shadows a configured one; ignored");
                continue;
            }
            match config.compile_reusing(settings, previous_of(&id)) {
                Ok(mut listener) => {
                    listener.source = Source::Api;
                    snapshot.insert(listener, &previous, shares);
                }
                Err(error) => tracing::error!(listener = %id, %error, "stored listener is invalid; ignored"),
            }
        }
        if let Some(shares) = shares {
            for gone in previous.by_id.keys().filter(|id| !snapshot.by_id.contains_key(*id)) {
                shares.forget(gone);
            }
        }
        *self.snapshot.write().unwrap_or_else(|poison| poison.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    /// From now on, a bucket created by [`Registry::rebuild`] gets its share from `shares`.
    pub fn set_shares(&self, shares: Arc<dyn BucketShares>) {
        let _ = self.shares.set(shares);
    }

    /// The listener behind a public id.
    pub fn get(&self, public_id: &str) -> Option<Arc<Listener>> {
        // Looked up under the read lock: no clone of the snapshot on every request.
        let snapshot = self.snapshot.read().unwrap_or_else(|poison| poison.into_inner());
        snapshot.by_public_id.get(public_id).cloned()
    }

    /// The listener with this id.
    pub fn by_id(&self, id: &str) -> Option<Arc<Listener>> {
        self.snapshot().by_id.get(id).cloned()
    }

    /// Every listener, sorted by id.
    pub fn all(&self) -> Vec<Arc<Listener>> {
        let mut listeners: Vec<_> = self.snapshot().by_id.values().cloned().collect();
        listeners.sort_by(|a, b| a.id().cmp(b.id()));
        listeners
    }

    /// Replaces the open debug windows (listener id → end, Unix ms).
    pub fn set_debug_windows(&self, windows: HashMap<String, i64>) {
        *self.debug_windows.write().unwrap_or_else(|poison| poison.into_inner()) = windows;
    }

    /// The end of the listener's debug window, if one is open at `now_ms`.
    pub fn debug_window(&self, listener_id: &str, now_ms: i64) -> Option<i64> {
        let windows = self.debug_windows.read().unwrap_or_else(|poison| poison.into_inner());
        windows.get(listener_id).copied().filter(|until| *until > now_ms)
    }

    /// How many debug windows are open at `now_ms`.
    pub fn open_debug_windows(&self, now_ms: i64) -> usize {
        let windows = self.debug_windows.read().unwrap_or_else(|poison| poison.into_inner());
        windows.values().filter(|until| **until > now_ms).count()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }
}

impl Snapshot {
    fn insert(&mut self, mut listener: Listener, previous: &Snapshot, shares: Option<&dyn BucketShares>) {
        let mut reused = false;
        if let Some(old) = previous.by_id.get(listener.id()) {
            let unchanged = old.config.rate_limit.capacity == listener.config.rate_limit.capacity
                && old.config.rate_limit.refill_per_sec == listener.config.rate_limit.refill_per_sec;
            if unchanged {
                listener.bucket = old.bucket.clone();
                reused = true;
            }
            listener.sample_clock = old.sample_clock.clone();
        }
        if let (false, Some(shares)) = (reused, shares) {
            // Before the snapshot is swapped in: no request sees the bucket whole.
            shares.adopt(listener.id(), &listener.bucket);
        }
        let listener = Arc::new(listener);
        self.by_public_id.insert(listener.public_id.clone(), listener.clone());
        self.by_id.insert(listener.id().to_string(), listener);
    }
}

/// An instance writes a listener's sample at most this often.
pub const SAMPLE_INTERVAL_MS: i64 = 1000;

/// When this instance last took a listener's turn to write its sample: one atomic per
/// listener, so deciding whether a request's records are worth keeping costs a load, and
/// taking the turn (only once a request was accepted with records) a compare-and-swap.
#[derive(Debug, Default)]
pub struct SampleClock {
    last_written_ms: AtomicI64,
}

impl SampleClock {
    /// Whether a sample is due at `now_ms`: a request keeps its records only then.
    pub fn is_due(&self, now_ms: i64) -> bool {
        let last = self.last_written_ms.load(Ordering::Relaxed);
        last == 0 || now_ms - last >= SAMPLE_INTERVAL_MS
    }

    /// Takes the turn at `now_ms` if it is due and no other request took it first.
    pub fn try_claim(&self, now_ms: i64) -> bool {
        let last = self.last_written_ms.load(Ordering::Relaxed);
        (last == 0 || now_ms - last >= SAMPLE_INTERVAL_MS)
            && self
                .last_written_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let text = "[server]\npublic_id_secret = \"0123456789abcdef0123\"\n[[listeners]]\nid = \"orders\"\n";
        Settings::from_toml_and_env(text, Vec::new()).unwrap()
    }

    #[test]
    fn compile_checks_every_rule_and_names_each_problem() {
        let settings = settings();
        let mut config = settings.listeners[0].clone();
        let listener = config.compile(&settings).unwrap();
        assert_eq!(listener.public_id, derive_public_id("0123456789abcdef0123", "orders"));
        assert_eq!(
            (listener.topic.as_str(), listener.source),
            ("hookpipe.pages", Source::Config)
        );
        assert_eq!(listener.accept, [BodyFormat::Json, BodyFormat::Xml, BodyFormat::Form]);

        config.page_size = 0;
        config.response.status = 302;
        config.content.accept.clear();
        let errors = config.compile(&settings).unwrap_err();
        let found: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            found,
            [
                "content.accept: must list at least one format",
                "page_size: must be between 1 and 10000",
                "response.status: must be 200, 201, 202 or 204",
            ]
        );
    }

    /// What the API's writes and the registry compile refuses as the file's check does
    /// (`config::listener`): an ordering key on a listener that publishes CloudEvents.
    #[test]
    fn compile_refuses_an_ordering_key_with_cloudevents_output() {
        let settings = settings();
        let mut config = settings.listeners[0].clone();
        config.ordering_key = Some("customer_id".into());
        assert!(config.compile(&settings).is_ok());
        config.output_format = Some(crate::config::cloudevents::OutputFormat::CloudEventsStructured);
        let Err(errors) = config.compile(&settings) else {
            panic!("an ordering key with CloudEvents output compiled")
        };
        assert_eq!(errors.0[0].key, "ordering_key", "{errors:?}");
    }

    #[test]
    fn a_configured_listener_that_does_not_compile_stops_the_registry_naming_it() {
        let mut settings = settings();
        settings.listeners[0].page_size = 0;
        let error = Registry::from_settings(&settings).err().expect("an invalid listener");
        assert_eq!(error, "listeners[orders].page_size: must be between 1 and 10000");
    }

    #[test]
    fn a_schema_is_compiled_again_only_when_it_changes() {
        let text = "[server]\npublic_id_secret = \"0123456789abcdef0123\"\n[[listeners]]\nid = \"orders\"\n\
                    [listeners.schema.document]\ntype = \"object\"\n";
        let settings = Settings::from_toml_and_env(text, Vec::new()).unwrap();
        let registry = Registry::from_settings(&settings).unwrap();
        let first = registry.by_id("orders").unwrap().schema.clone().unwrap();
        let mut stored = settings.listeners[0].clone();
        stored.id = "stored".into();
        stored.public_id = Some("0123456789abcdefstored".into());
        registry.rebuild(&settings, vec![stored.clone()]).unwrap();
        let again = registry.by_id("orders").unwrap().schema.clone().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "unchanged: reused");
        let stored_schema = registry.by_id("stored").unwrap().schema.clone().unwrap();
        stored.schema.as_mut().unwrap().policy = crate::config::schema::SchemaPolicy::Quarantine;
        registry.rebuild(&settings, vec![stored]).unwrap();
        let changed = registry.by_id("stored").unwrap().schema.clone().unwrap();
        assert!(!Arc::ptr_eq(&stored_schema, &changed), "changed: compiled again");
        assert_eq!(changed.policy, crate::config::schema::SchemaPolicy::Quarantine);

        // A schema that does not compile is the listener's problem, after its other ones.
        let mut config = settings.listeners[0].clone();
        config.page_size = 0;
        config.schema.as_mut().unwrap().document = Some(serde_json::json!({"type": 5}));
        let found: Vec<String> = config
            .compile(&settings)
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.key.clone())
            .collect();
        assert_eq!(found, ["page_size", "schema.document"]);
    }

    #[test]
    fn public_ids_are_stable_and_distinct() {
        let a = derive_public_id("0123456789abcdef", "orders");
        assert_eq!(a, derive_public_id("0123456789abcdef", "orders"));
        assert_ne!(a, derive_public_id("0123456789abcdef", "orders2"));
        assert_ne!(a, derive_public_id("0123456789abcdeX", "orders"));
        assert_eq!(a.len(), 32);
    }
}
