//! The topics hookpipe owns, in one table (`owned_topics`: name, cleanup policy, retention), and
//! the one way they are created (`provision`). Brokers here do not auto-create topics, and an
//! existing topic keeps its own configuration: nothing here alters one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::embedded::EmbeddedCluster;
use crate::config::kafka::KafkaSettings;
use crate::config::Settings;

/// How long debug captures are kept: the debug topic's `retention.ms`, and its mirror's horizon.
pub const DEBUG_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long the brokers may take to create the topics.
const CREATE_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
/// Without it a broker that ignores CreateTopics (the embedded mock cluster) holds the request
/// for a minute (`socket.timeout.ms`).
const CREATE_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Brokers can take a while to show a freshly created topic's partitions with leaders.
const CREATED_TOPIC_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What a topic hookpipe owns is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicRole {
    /// Pages of listeners: `kafka.pages_topic` and each listener's `topic`.
    Pages,
    /// `kafka.state_topic`: listener definitions, samples, mock output, debug windows.
    State,
    /// `kafka.debug_topic`: debug captures.
    DebugLog,
    /// `kafka.errors_topic`: open import errors, each with its record's retry data.
    Errors,
    /// `kafka.quarantine_topic`: records that failed their listener's schema, with the errors.
    Quarantine,
    /// `kafka.dedup_topic`: delivery ids the fleet accepted (`pipeline::dedup`).
    Dedup,
    /// `kafka.fleet_topic`: the serve instances' heartbeats (`pipeline::rate_limit::fleet`).
    Fleet,
    /// `kafka.results_topic`: what the import worker did with the records of listeners that
    /// wait for their imports (`wire::results`).
    Results,
}

impl TopicRole {
    /// Whether `hookpipe serve` needs the topic to start. It can start without the errors topic
    /// (the errors view opens once the topic is there; a worker creates it too) and without the
    /// dedup topic.
    pub fn required_at_start(self) -> bool {
        // The dedup topic neither: until it is there, each instance deduplicates what it
        // accepted itself (`pipeline::dedup_feed::spawn_open`), and a deployment that creates its
        // topics by hand starts after an upgrade that added it.
        // Nor the fleet topic: until it is there, an instance holds its buckets whole, as a lone
        // instance does (`pipeline::rate_limit::fleet_feed`).
        // Nor the results topic: until it is there, a request that waits for its import is
        // answered 202 at once (its records are durable; nothing can say they were imported).
        !matches!(
            self,
            TopicRole::Errors | TopicRole::Dedup | TopicRole::Fleet | TopicRole::Results
        )
    }
}

/// How the brokers clean a topic up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cleanup {
    /// The brokers' defaults: how long pages are kept is the operator's choice.
    BrokerDefault,
    /// `cleanup.policy=compact`: the latest value of each key is kept.
    Compact,
    /// `cleanup.policy=delete` with this `retention.ms`.
    Delete {
        /// `retention.ms`.
        retention_ms: u64,
    },
    /// `cleanup.policy=delete` with this `retention.ms` and `segment.ms`: a topic read from the
    /// beginning at every start that must stay small (heartbeats), so segments roll that often
    /// and are deleted soon after.
    Ephemeral {
        /// `retention.ms` and `segment.ms`.
        retention_ms: u64,
    },
}

impl Cleanup {
    /// The topic configuration entries that say it.
    fn configs(self) -> Vec<(&'static str, String)> {
        match self {
            Cleanup::BrokerDefault => Vec::new(),
            Cleanup::Compact => vec![("cleanup.policy", "compact".to_string())],
            Cleanup::Delete { retention_ms } => vec![
                ("cleanup.policy", "delete".to_string()),
                ("retention.ms", retention_ms.to_string()),
            ],
            Cleanup::Ephemeral { retention_ms } => vec![
                ("cleanup.policy", "delete".to_string()),
                ("retention.ms", retention_ms.to_string()),
                ("segment.ms", retention_ms.to_string()),
            ],
        }
    }
}

/// A topic to create when it is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Its cleanup policy and retention.
    pub cleanup: Cleanup,
}

impl TopicSpec {
    /// A pages topic (the brokers' defaults).
    pub fn pages(name: &str) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            cleanup: Cleanup::BrokerDefault,
        }
    }

    /// A compacted topic.
    pub fn compacted(name: &str) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            cleanup: Cleanup::Compact,
        }
    }

    /// A topic whose messages are deleted after `retention_ms`.
    pub fn retained(name: &str, retention_ms: u64) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            cleanup: Cleanup::Delete { retention_ms },
        }
    }
}

/// One row of the table of the topics hookpipe owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTopic {
    /// What it is for.
    pub role: TopicRole,
    /// What to create.
    pub spec: TopicSpec,
}

/// The topics `hookpipe serve` owns, from `kafka.*` and the listeners' topics: every pages topic,
/// then the state, debug, errors and quarantine topics. A name given twice is listed once, with the first
/// role that names it (the order in which they were created before this table existed).
///
/// `kafka.retry_topic` is not among them: retry data is kept with each error (in the errors
/// topic) since ingest stopped writing it; the retry topic of earlier versions is only read,
/// while it exists, for the errors they recorded (`import_errors::find_retry_data`).
pub fn owned_topics(settings: &Settings) -> Vec<OwnedTopic> {
    let kafka = &settings.kafka;
    let mut rows: Vec<OwnedTopic> = settings
        .pages_topics()
        .iter()
        .map(|name| OwnedTopic {
            role: TopicRole::Pages,
            spec: TopicSpec::pages(name),
        })
        .collect();
    rows.push(OwnedTopic {
        role: TopicRole::State,
        spec: TopicSpec::compacted(&kafka.state_topic),
    });
    rows.push(OwnedTopic {
        role: TopicRole::DebugLog,
        spec: debug_topic(kafka),
    });
    rows.push(OwnedTopic {
        role: TopicRole::Errors,
        spec: TopicSpec::compacted(&kafka.errors_topic),
    });
    // Always there, as the pages topic is: a listener given a quarantine policy through the API
    // needs it at once. Kept as the operator's brokers keep pages.
    rows.push(OwnedTopic {
        role: TopicRole::Quarantine,
        spec: TopicSpec::pages(&kafka.quarantine_topic),
    });
    // Always there too: any listener may be given a dedup window through the API.
    rows.push(OwnedTopic {
        role: TopicRole::Dedup,
        spec: TopicSpec::retained(&kafka.dedup_topic, crate::config::dedup::MAX_WINDOW_SECS * 1000),
    });
    // And the heartbeats, so that rate limits hold for the fleet (not required to start).
    rows.push(OwnedTopic {
        role: TopicRole::Fleet,
        spec: fleet_topic(kafka),
    });
    // And the import results, for any listener that is (or will be) set to wait for its imports.
    rows.push(OwnedTopic {
        role: TopicRole::Results,
        spec: results_topic(kafka),
    });
    let mut seen = std::collections::HashSet::new();
    rows.retain(|row| seen.insert(row.spec.name.clone()));
    rows
}

/// How long heartbeats are kept: far longer than any member timeout, short enough that a start
/// reads a few thousand at most.
pub const FLEET_RETENTION: Duration = Duration::from_secs(60);

/// The fleet topic: heartbeats, kept `FLEET_RETENTION`.
pub fn fleet_topic(kafka: &KafkaSettings) -> TopicSpec {
    TopicSpec {
        name: kafka.fleet_topic.clone(),
        cleanup: Cleanup::Ephemeral {
            retention_ms: FLEET_RETENTION.as_millis() as u64,
        },
    }
}

/// How long import results are kept: far longer than any wait (`response.wait_timeout_ms` is at
/// most 2 minutes); every instance reads the topic from its end, so this only bounds the disk.
pub const RESULTS_RETENTION: Duration = Duration::from_secs(600);

/// The results topic: import results, kept `RESULTS_RETENTION`.
pub fn results_topic(kafka: &KafkaSettings) -> TopicSpec {
    TopicSpec {
        name: kafka.results_topic.clone(),
        cleanup: Cleanup::Ephemeral {
            retention_ms: RESULTS_RETENTION.as_millis() as u64,
        },
    }
}

/// The topics `hookpipe worker` creates: the pages topics it consumes (patterns cannot be
/// created), the errors topic and the results topic.
pub fn worker_topics(settings: &Settings) -> Vec<OwnedTopic> {
    let mut rows: Vec<OwnedTopic> = settings
        .worker_topics()
        .iter()
        .filter(|topic| !topic.starts_with('^'))
        .map(|name| OwnedTopic {
            role: TopicRole::Pages,
            spec: TopicSpec::pages(name),
        })
        .collect();
    rows.push(OwnedTopic {
        role: TopicRole::Errors,
        spec: TopicSpec::compacted(&settings.kafka.errors_topic),
    });
    rows.push(OwnedTopic {
        role: TopicRole::Results,
        spec: results_topic(&settings.kafka),
    });
    let mut seen = std::collections::HashSet::new();
    rows.retain(|row| seen.insert(row.spec.name.clone()));
    rows
}

/// The debug topic: captures are kept `DEBUG_RETENTION`.
pub fn debug_topic(kafka: &KafkaSettings) -> TopicSpec {
    TopicSpec::retained(&kafka.debug_topic, DEBUG_RETENTION.as_millis() as u64)
}

/// Creates the topics of `owned_topics` that are missing: with the embedded cluster through its
/// own call (its admin API cannot create topics; always, as nothing exists in it yet), otherwise
/// through the admin API unless `kafka.create_topics` is off, then waits until the topics it
/// created show every partition with a leader. Must run inside a Tokio runtime.
///
/// Afterwards the state, debug and errors topics are opened with `create = false`.
pub async fn provision(settings: &Settings, bootstrap: &str, embedded: Option<&EmbeddedCluster>) -> Result<(), String> {
    let owned = owned_topics(settings);
    if let Some(cluster) = embedded {
        for row in &owned {
            let topic = &row.spec.name;
            cluster
                .create_topic(topic, settings.kafka.topic_partitions)
                .map_err(|e| format!("cannot create topic {topic}: {e}"))?;
        }
        return Ok(());
    }
    if !settings.kafka.create_topics {
        return Ok(());
    }
    create_and_wait(&settings.kafka, bootstrap, &owned).await
}

/// Creates one pages topic unless it exists (a listener created through the API names its own).
pub async fn provision_topic(settings: &Settings, bootstrap: &str, topic: &str) -> Result<(), String> {
    create_missing(&settings.kafka, bootstrap, &[TopicSpec::pages(topic)]).await
}

/// Creates the topics of `worker_topics` that are missing and waits until the new ones are led
/// (the caller decides whether `kafka.create_topics` applies).
pub async fn provision_worker(settings: &Settings, bootstrap: &str) -> Result<(), String> {
    create_and_wait(&settings.kafka, bootstrap, &worker_topics(settings)).await
}

/// How long asking whether a topic exists may take.
const EXISTS_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `topic` exists, asked of the brokers once (on a blocking thread: metadata requests
/// block); `Err` when they do not answer. Asking does not create it (librdkafka's clients ask
/// without `allow_auto_topic_creation`).
pub async fn exists(kafka: &KafkaSettings, bootstrap: &str, topic: &str) -> Result<bool, String> {
    let (kafka, bootstrap, topic) = (kafka.clone(), bootstrap.to_string(), topic.to_string());
    let task = tokio::task::spawn_blocking(move || {
        let admin: AdminClient<DefaultClientContext> = super::base_client_config(&kafka, &bootstrap)
            .create()
            .map_err(|e| format!("cannot create Kafka admin client: {e}"))?;
        let metadata = admin
            .inner()
            .fetch_metadata(Some(&topic), EXISTS_TIMEOUT)
            .map_err(|e| format!("cannot read metadata: {e}"))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        Ok(found.is_some_and(|found| {
            found.error().map(RDKafkaErrorCode::from) != Some(RDKafkaErrorCode::UnknownTopicOrPartition)
        }))
    });
    task.await.map_err(|e| format!("the metadata request failed: {e}"))?
}

/// Creates each of `topics` that does not exist yet; any failure is an error.
pub async fn create_missing(kafka: &KafkaSettings, bootstrap: &str, topics: &[TopicSpec]) -> Result<(), String> {
    let outcomes = create_topics(kafka, bootstrap, topics).await?;
    let problems: Vec<String> = outcomes.into_values().filter_map(Result::err).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Creates the missing ones of `rows`, then waits for the new ones; a topic `hookpipe serve` can
/// start without only warns when it fails.
async fn create_and_wait(kafka: &KafkaSettings, bootstrap: &str, rows: &[OwnedTopic]) -> Result<(), String> {
    let specs: Vec<TopicSpec> = rows.iter().map(|row| row.spec.clone()).collect();
    let mut outcomes = create_topics(kafka, bootstrap, &specs).await?;
    let mut problems = Vec::new();
    let mut created = Vec::new();
    for row in rows {
        let name = &row.spec.name;
        match outcomes.remove(name) {
            Some(Ok(Created::New)) => created.push(row),
            Some(Ok(Created::Existed)) => {}
            Some(Err(problem)) => note_problem(row, problem, &mut problems),
            None => note_problem(row, format!("no answer about topic {name}"), &mut problems),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if created.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = created.iter().map(|row| row.spec.name.clone()).collect();
    let readiness = wait_until_led(kafka.clone(), bootstrap.to_string(), names, CREATED_TOPIC_READY_TIMEOUT).await?;
    for (row, ready) in created.iter().zip(readiness) {
        if let Err(problem) = ready {
            note_problem(row, problem, &mut problems);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn note_problem(row: &OwnedTopic, problem: String, problems: &mut Vec<String>) {
    if row.role.required_at_start() {
        problems.push(problem);
    } else {
        tracing::warn!(topic = %row.spec.name, %problem, "topic not provisioned; going on without it");
    }
}

/// What creating one topic did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Created {
    /// It was created now.
    New,
    /// It existed already (and keeps its own configuration).
    Existed,
}

/// Creates `topics` in one CreateTopics request; the outcome of each, by name. `Err` when the
/// request itself failed.
async fn create_topics(
    kafka: &KafkaSettings,
    bootstrap: &str,
    topics: &[TopicSpec],
) -> Result<HashMap<String, Result<Created, String>>, String> {
    if topics.is_empty() {
        return Ok(HashMap::new());
    }
    let admin: AdminClient<DefaultClientContext> = super::base_client_config(kafka, bootstrap)
        .create()
        .map_err(|e| format!("cannot create Kafka admin client: {e}"))?;
    // `NewTopic` borrows its configuration values.
    let configs: Vec<Vec<(&'static str, String)>> = topics.iter().map(|topic| topic.cleanup.configs()).collect();
    let new_topics: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&configs)
        .map(|(topic, entries)| {
            let mut new_topic = NewTopic::new(
                &topic.name,
                kafka.topic_partitions,
                TopicReplication::Fixed(kafka.replication_factor),
            );
            for (name, value) in entries {
                new_topic = new_topic.set(name, value);
            }
            new_topic
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(CREATE_OPERATION_TIMEOUT))
        .request_timeout(Some(CREATE_REQUEST_TIMEOUT));
    let names = || topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
    let results = admin
        .create_topics(new_topics.iter(), &options)
        .await
        .map_err(|e| format!("cannot create topics {}: {e}", names()))?;
    let mut outcomes = HashMap::with_capacity(results.len());
    for result in results {
        let (name, outcome) = match result {
            Ok(name) => (name, Ok(Created::New)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => (name, Ok(Created::Existed)),
            Err((name, code)) => {
                let problem = format!("cannot create topic {name}: {code}");
                (name, Err(problem))
            }
        };
        outcomes.insert(name, outcome);
    }
    Ok(outcomes)
}

/// Waits (on a blocking thread: metadata requests block) until each of `topics` shows every
/// partition with a leader, or `timeout` passes; the outcome of each, in order.
async fn wait_until_led(
    kafka: KafkaSettings,
    bootstrap: String,
    topics: Vec<String>,
    timeout: Duration,
) -> Result<Vec<Result<(), String>>, String> {
    let task = tokio::task::spawn_blocking(move || {
        let admin: AdminClient<DefaultClientContext> = super::base_client_config(&kafka, &bootstrap)
            .create()
            .map_err(|e| format!("cannot create Kafka admin client: {e}"))?;
        let deadline = Instant::now() + timeout;
        let mut outcomes: Vec<Option<Result<(), String>>> = vec![None; topics.len()];
        loop {
            let mut waiting = false;
            for (topic, outcome) in topics.iter().zip(outcomes.iter_mut()) {
                if outcome.is_some() {
                    continue;
                }
                let problem = match admin.inner().fetch_metadata(Some(topic), Duration::from_secs(5)) {
                    Err(error) => format!("cannot read metadata: {error}"),
                    Ok(metadata) => match super::led_partitions(&metadata, topic) {
                        Ok(_) => {
                            *outcome = Some(Ok(()));
                            continue;
                        }
                        Err(problem) => problem,
                    },
                };
                if Instant::now() >= deadline {
                    *outcome = Some(Err(format!("topic {topic} not available after {timeout:?}: {problem}")));
                } else {
                    waiting = true;
                }
            }
            if !waiting {
                return Ok(outcomes.into_iter().map(|outcome| outcome.unwrap_or(Ok(()))).collect());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    task.await
        .map_err(|e| format!("waiting for the created topics failed: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_settings(toml: &str) -> Settings {
        let text = format!("[server]\npublic_id_secret = \"0123456789abcdef0123\"\n{toml}");
        Settings::from_toml_and_env(&text, Vec::new()).unwrap()
    }

    #[test]
    fn the_table_lists_every_topic_serve_owns() {
        let settings = parse_settings(
            "[kafka]\nretry_topic = \"legacy\"\n[[listeners]]\nid = \"a\"\ntopic = \"shipments\"\n\
             [[listeners]]\nid = \"b\"\n[[listeners]]\nid = \"c\"\ntopic = \"shipments\"\n",
        );
        let table = owned_topics(&settings);
        let shown: Vec<(TopicRole, String, Cleanup)> = table
            .into_iter()
            .map(|row| (row.role, row.spec.name, row.spec.cleanup))
            .collect();
        assert_eq!(
            shown,
            vec![
                (TopicRole::Pages, "hookpipe.pages".to_string(), Cleanup::BrokerDefault),
                (TopicRole::Pages, "shipments".to_string(), Cleanup::BrokerDefault),
                (TopicRole::State, "hookpipe.state".to_string(), Cleanup::Compact),
                (
                    TopicRole::DebugLog,
                    "hookpipe.debug".to_string(),
                    Cleanup::Delete {
                        retention_ms: 86_400_000
                    }
                ),
                (TopicRole::Errors, "hookpipe.errors".to_string(), Cleanup::Compact),
                (
                    TopicRole::Quarantine,
                    "hookpipe.quarantine".to_string(),
                    Cleanup::BrokerDefault
                ),
                (
                    TopicRole::Dedup,
                    "hookpipe.dedup".to_string(),
                    Cleanup::Delete {
                        retention_ms: 604_800_000
                    }
                ),
                (
                    TopicRole::Fleet,
                    "hookpipe.fleet".to_string(),
                    Cleanup::Ephemeral { retention_ms: 60_000 }
                ),
                (
                    TopicRole::Results,
                    "hookpipe.results".to_string(),
                    Cleanup::Ephemeral { retention_ms: 600_000 }
                ),
            ]
        );
        assert_eq!(
            Cleanup::Delete { retention_ms: 5 }.configs(),
            [
                ("cleanup.policy", "delete".to_string()),
                ("retention.ms", "5".to_string())
            ]
        );
        assert_eq!(
            Cleanup::Ephemeral { retention_ms: 7 }.configs(),
            [
                ("cleanup.policy", "delete".to_string()),
                ("retention.ms", "7".to_string()),
                ("segment.ms", "7".to_string())
            ]
        );
        assert!(Cleanup::BrokerDefault.configs().is_empty());
    }

    #[test]
    fn a_name_given_twice_is_listed_once() {
        let settings = parse_settings("[kafka]\nstate_topic = \"shared\"\nerrors_topic = \"shared\"\n");
        let names: Vec<String> = owned_topics(&settings).into_iter().map(|row| row.spec.name).collect();
        assert_eq!(
            names,
            [
                "hookpipe.pages",
                "shared",
                "hookpipe.debug",
                "hookpipe.quarantine",
                "hookpipe.dedup",
                "hookpipe.fleet",
                "hookpipe.results"
            ]
        );
    }

    #[test]
    fn the_worker_creates_what_it_consumes_and_the_errors_topic() {
        let settings = parse_settings("[worker]\ntopics = [\"a\", \"^b.*\", \"a\"]\n");
        let shown: Vec<(TopicRole, String)> = worker_topics(&settings)
            .into_iter()
            .map(|row| (row.role, row.spec.name))
            .collect();
        assert_eq!(
            shown,
            [
                (TopicRole::Pages, "a".to_string()),
                (TopicRole::Errors, "hookpipe.errors".to_string()),
                (TopicRole::Results, "hookpipe.results".to_string())
            ]
        );
        let defaults = parse_settings("");
        let names: Vec<String> = worker_topics(&defaults).into_iter().map(|row| row.spec.name).collect();
        assert_eq!(names, ["hookpipe.pages", "hookpipe.errors", "hookpipe.results"]);
    }

    #[test]
    fn only_the_errors_dedup_fleet_and_results_topics_are_optional_at_start() {
        for role in [
            TopicRole::Pages,
            TopicRole::State,
            TopicRole::DebugLog,
            TopicRole::Quarantine,
        ] {
            assert!(role.required_at_start(), "{role:?}");
        }
        assert!(!TopicRole::Errors.required_at_start());
        assert!(!TopicRole::Dedup.required_at_start());
        assert!(!TopicRole::Fleet.required_at_start());
        assert!(!TopicRole::Results.required_at_start());
    }
}
