//! The `hookpipe` command line: serve | worker | check-config | tail | listeners | errors.

/// jemalloc rather than glibc malloc: see Cargo.toml.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use hookpipe::config::Settings;
use hookpipe::kafka::embedded::EmbeddedCluster;
use hookpipe::kafka::tail::{StartAt, TopicReader};
use hookpipe::pipeline::rate_limit::bucket::MonotonicClock;

/// Default configuration file, relative to the working directory.
const DEFAULT_CONFIG: &str = "config/hookpipe.toml";

#[derive(Parser)]
#[command(name = "hookpipe", version, about = "Webhooks in, verified pages on Kafka out")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the listener tier.
    Serve {
        /// Configuration file (default: $HOOKPIPE_CONFIG, then config/hookpipe.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
    /// Run an import worker: consume pages and import them into the listeners' targets.
    Worker {
        /// Configuration file (default: $HOOKPIPE_CONFIG, then config/hookpipe.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log JSON lines instead of human-readable text.
        #[arg(long)]
        log_json: bool,
    },
    /// Validate a configuration file (with the environment's overrides) and list every error.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the pages arriving on a topic.
    Tail {
        /// Bootstrap servers (default: kafka.brokers of the configuration).
        #[arg(long)]
        brokers: Option<String>,
        /// Topic (default: kafka.pages_topic of the configuration).
        #[arg(long)]
        topic: Option<String>,
        /// Start from the oldest stored page instead of new ones only.
        #[arg(long)]
        from_beginning: bool,
        /// Print each page indented instead of one line per page.
        #[arg(long)]
        pretty: bool,
        /// Stop after this many pages.
        #[arg(long)]
        count: Option<usize>,
        /// Configuration file to read defaults from.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage listeners through a running server's management API ($HOOKPIPE_ADMIN_TOKEN).
    Listeners(hookpipe::cli::ListenersArgs),
    /// List, inspect, retry and resolve import errors through a running server's API ($HOOKPIPE_ADMIN_TOKEN).
    Errors(hookpipe::cli::ErrorsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, log_json } => serve(config, log_json),
        Command::CheckConfig { file } => check_config(&file),
        Command::Tail {
            brokers,
            topic,
            from_beginning,
            pretty,
            count,
            config,
        } => tail(config, brokers, topic, from_beginning, pretty, count),
        Command::Listeners(args) => hookpipe::cli::run(args),
        Command::Errors(args) => hookpipe::cli::run_errors(args),
        Command::Worker { config, log_json } => worker(config, log_json),
    }
}

fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit
        .or_else(|| std::env::var_os("HOOKPIPE_CONFIG").map(PathBuf::from))
        .or_else(|| {
            let default = PathBuf::from(DEFAULT_CONFIG);
            default.exists().then_some(default)
        })
}

fn load(path: Option<PathBuf>) -> Result<Settings, ExitCode> {
    Settings::load(config_path(path).as_deref()).map_err(|errors| {
        for error in &errors.0 {
            eprintln!("config error: {error}");
        }
        ExitCode::from(2)
    })
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match Settings::load(Some(file)) {
        Ok(settings) => {
            println!("{}: ok ({} listeners)", file.display(), settings.listeners.len());
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in &errors.0 {
                println!("error: {error}");
            }
            println!("{}: {} error(s)", file.display(), errors.0.len());
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>, log_json: bool) -> ExitCode {
    let mut settings = match load(config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    hookpipe::telemetry::init(log_json);

    // The embedded cluster lives on this thread for the whole run.
    let embedded = if settings.kafka.brokers.trim().is_empty() {
        match EmbeddedCluster::start() {
            Ok(cluster) => Some(cluster),
            Err(error) => {
                eprintln!("cannot start the embedded Kafka cluster: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let bootstrap = match &embedded {
        Some(cluster) => {
            let bootstrap = cluster.bootstrap_servers();
            tracing::warn!(
                bootstrap = %bootstrap,
                "NO KAFKA BROKERS CONFIGURED: using an in-process mock cluster. NOTHING IS DURABLE; \
                 data is lost when hookpipe stops. Set kafka.brokers (or HOOKPIPE_KAFKA__BROKERS) for production."
            );
            println!("embedded Kafka (in memory, not durable) at {bootstrap}");
            println!("  read pages with: hookpipe tail --brokers {bootstrap} --from-beginning");
            println!(
                "  import them with: HOOKPIPE_KAFKA__BROKERS={bootstrap} HOOKPIPE_KAFKA__CREATE_TOPICS=false hookpipe worker"
            );
            bootstrap
        }
        None => settings.kafka.brokers.clone(),
    };
    if settings.server.secrets_key.is_none() {
        if embedded.is_some() {
            // The state dies with the process, so a key that dies with it seals just as well.
            match hookpipe::secrets_at_rest::generate_key() {
                Ok(key) => settings.server.secrets_key = Some(key),
                Err(error) => {
                    eprintln!("cannot generate an ephemeral secrets key: {error}");
                    return ExitCode::FAILURE;
                }
            }
            tracing::info!(
                "no server.secrets_key: listener secrets in the embedded cluster are sealed with an \
                 ephemeral random key generated at start (it dies with the process, as the state does)"
            );
        } else if settings.server.admin_token.is_some() {
            tracing::warn!(
                "NO SECRETS KEY: server.secrets_key (HOOKPIPE_SERVER__SECRETS_KEY) is not set, so the \
                 management API refuses (409) to store listeners with secrets; secrets are never written \
                 to Kafka in clear. Set it to base64 of 32 random bytes (`openssl rand -base64 32`)."
            );
        }
    }

    let result = actix_web::rt::System::new().block_on(async {
        // The embedded cluster's admin API cannot create topics: create them directly.
        if let Some(cluster) = &embedded {
            let mut topics = settings.pages_topics();
            topics.push(settings.kafka.state_topic.clone());
            topics.push(settings.kafka.debug_topic.clone());
            topics.push(settings.kafka.errors_topic.clone());
            topics.push(settings.kafka.retry_topic.clone());
            for topic in &topics {
                cluster
                    .create_topic(topic, settings.kafka.topic_partitions)
                    .map_err(|e| format!("cannot create topic {topic}: {e}"))?;
            }
        }
        let running = hookpipe::http::start(
            &settings,
            &bootstrap,
            Arc::new(MonotonicClock::default()),
            embedded.is_some(),
        )
        .await?;
        if settings.server.admin_token.is_none() {
            tracing::warn!(
                "management API is off: set server.admin_token (or HOOKPIPE_SERVER__ADMIN_TOKEN) to enable /api/v1"
            );
        }
        let base = settings.external_base_url();
        println!("hookpipe listening on http://{} (public base URL {base})", running.addr);
        for listener in running.registry.all() {
            let mut url = listener.public_url(&base);
            if listener.verifier.uses_url_token() {
                url.push_str("/<url token>");
            }
            println!("listener {:<20} {url}", listener.id());
        }
        running.server.await.map_err(|e| format!("server error: {e}"))?;
        tracing::info!("server stopped; flushing the producer");
        running
            .producer
            .flush(Duration::from_secs(10))
            .map_err(|e| format!("producer flush failed: {e}"))
    });
    drop(embedded);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookpipe: {error}");
            ExitCode::FAILURE
        }
    }
}

fn worker(config: Option<PathBuf>, log_json: bool) -> ExitCode {
    let settings = match load(config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    hookpipe::telemetry::init(log_json);
    let bootstrap = settings.kafka.brokers.trim().to_string();
    if bootstrap.is_empty() {
        eprintln!(
            "hookpipe worker: kafka.brokers is empty; a worker needs the brokers the serve tier uses \
             (with the embedded default, `hookpipe serve` prints its address: set HOOKPIPE_KAFKA__BROKERS to it)"
        );
        return ExitCode::from(2);
    }
    let shutdown = hookpipe::worker::Shutdown::for_settings(&settings);
    if let Err(error) = hookpipe::worker::stop_on_signals(shutdown.clone()) {
        eprintln!("hookpipe worker: {error}");
        return ExitCode::FAILURE;
    }
    let worker = match hookpipe::worker::Worker::start(&settings, &bootstrap) {
        Ok(worker) => worker,
        Err(error) => {
            eprintln!("hookpipe worker: {error}");
            return ExitCode::FAILURE;
        }
    };
    // On stderr: standard output belongs to a `stdout` target's records.
    eprintln!(
        "hookpipe worker consuming {} as group {}",
        worker.topics().join(", "),
        settings.worker.group_id
    );
    if let Some(addr) = worker.metrics_addr() {
        eprintln!("worker metrics on http://{addr}/metrics");
    }
    worker.run(&shutdown);
    ExitCode::SUCCESS
}

fn tail(
    config: Option<PathBuf>,
    brokers: Option<String>,
    topic: Option<String>,
    from_beginning: bool,
    pretty: bool,
    count: Option<usize>,
) -> ExitCode {
    let settings = match load(config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let Some(brokers) = brokers.or_else(|| Some(settings.kafka.brokers.clone()).filter(|b| !b.is_empty())) else {
        eprintln!("no brokers: pass --brokers (hookpipe serve prints the embedded cluster's address)");
        return ExitCode::from(2);
    };
    let topic = topic.unwrap_or_else(|| settings.kafka.pages_topic.clone());
    let from = if from_beginning {
        StartAt::Beginning
    } else {
        StartAt::End
    };
    let reader = match TopicReader::open(&settings.kafka, &brokers, &topic, from, Duration::from_secs(10)) {
        Ok(reader) => reader,
        Err(error) => {
            eprintln!("hookpipe tail: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("reading {topic} from {brokers} (Ctrl-C to stop)");
    let mut printed = 0;
    while count.is_none_or(|count| printed < count) {
        match reader.next(Duration::from_millis(500)) {
            Ok(None) => {}
            Ok(Some(message)) => {
                let text = match serde_json::from_slice::<serde_json::Value>(&message.payload) {
                    Ok(value) if pretty => serde_json::to_string_pretty(&value).unwrap_or_default(),
                    Ok(value) => value.to_string(),
                    Err(_) => String::from_utf8_lossy(&message.payload).into_owned(),
                };
                println!("{text}");
                printed += 1;
            }
            Err(error) => {
                eprintln!("hookpipe tail: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
