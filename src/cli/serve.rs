//! `hookpipe serve`: the listener tier. Starts an in-process Kafka cluster when no brokers are
//! configured (and creates its topics, which its admin API cannot), decides the secrets key,
//! listens at once (answering 503 until Kafka is available), prints where it listens, serves,
//! and flushes the producer when it stops.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::cli::{load, ServiceArgs, LOG_TARGET};
use crate::config::Settings;
use crate::kafka::embedded::EmbeddedCluster;
use crate::pipeline::rate_limit::bucket::MonotonicClock;

/// Runs the listener tier until the server stops (SIGTERM drains first, `crate::shutdown`).
pub fn run(args: ServiceArgs) -> ExitCode {
    let mut settings = match load(args.config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    crate::telemetry::init(args.log_json);

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
            let embedded_bootstrap = cluster.bootstrap_servers();
            announce_embedded_cluster(&embedded_bootstrap);
            embedded_bootstrap
        }
        None => settings.kafka.brokers.clone(),
    };
    if let Err(error) = decide_secrets_key(&mut settings, embedded.is_some()) {
        eprintln!("{error}");
        return ExitCode::FAILURE;
    }

    let result = actix_web::rt::System::new().block_on(serve(&settings, &bootstrap, embedded.as_ref()));
    drop(embedded);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookpipe: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The warning and the three lines that tell a newcomer the data is not durable and how to read it.
fn announce_embedded_cluster(bootstrap: &str) {
    tracing::warn!(
        target: LOG_TARGET,
        bootstrap = %bootstrap,
        "NO KAFKA BROKERS CONFIGURED: using an in-process mock cluster. NOTHING IS DURABLE; \
         data is lost when hookpipe stops. Set kafka.brokers (or HOOKPIPE_KAFKA__BROKERS) for production."
    );
    println!("embedded Kafka (in memory, not durable) at {bootstrap}");
    println!("  read pages with: hookpipe tail --brokers {bootstrap} --from-beginning");
    println!(
        "  import them with: HOOKPIPE_KAFKA__BROKERS={bootstrap} HOOKPIPE_KAFKA__CREATE_TOPICS=false hookpipe worker"
    );
}

/// Without `server.secrets_key`: an ephemeral key for the embedded cluster, whose state dies with
/// the process anyway; with real brokers, a warning that the API cannot store secrets.
fn decide_secrets_key(settings: &mut Settings, embedded: bool) -> Result<(), String> {
    if settings.server.secrets_key.is_some() {
        return Ok(());
    }
    if embedded {
        // The state dies with the process, so a key that dies with it seals just as well.
        let key = crate::secrets_at_rest::generate_key()
            .map_err(|error| format!("cannot generate an ephemeral secrets key: {error}"))?;
        settings.server.secrets_key = Some(key);
        tracing::info!(
            target: LOG_TARGET,
            "no server.secrets_key: listener secrets in the embedded cluster are sealed with an \
             ephemeral random key generated at start (it dies with the process, as the state does)"
        );
    } else if settings.server.admin_token.is_some() {
        tracing::warn!(
            target: LOG_TARGET,
            "NO SECRETS KEY: server.secrets_key (HOOKPIPE_SERVER__SECRETS_KEY) is not set, so the \
             management API refuses (409) to store listeners with secrets; secrets are never written \
             to Kafka in clear. Set it to base64 of 32 random bytes (`openssl rand -base64 32`)."
        );
    }
    Ok(())
}

/// How long the producer may take to deliver what is queued when the server stops.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Inside the actix system: topics of the embedded cluster, the listen address at once, the
/// server once Kafka is available, its URLs, the final flush.
async fn serve(settings: &Settings, bootstrap: &str, embedded: Option<&EmbeddedCluster>) -> Result<(), String> {
    if let Some(cluster) = embedded {
        // The embedded cluster's admin API cannot create topics: they are created directly.
        crate::kafka::topics::provision(settings, bootstrap, Some(cluster)).await?;
    }
    let starting = App::listen(settings)?;
    let base = settings.external_base_url();
    println!(
        "hookpipe listening on {}://{} (public base URL {base})",
        settings.server.scheme(),
        starting.addr()
    );
    if embedded.is_none() {
        tracing::info!(
            target: LOG_TARGET,
            brokers = %bootstrap,
            "connecting to Kafka: until the topics and shared state are available, /healthz answers \
             200, /readyz and webhooks 503 with Retry-After"
        );
    }
    let Some(app) = starting
        .finish(
            settings,
            bootstrap,
            Arc::new(MonotonicClock::default()),
            embedded.is_some(),
        )
        .await?
    else {
        tracing::info!(target: LOG_TARGET, "stopped before Kafka was available");
        return Ok(());
    };
    tracing::info!(target: LOG_TARGET, "Kafka available: serving webhooks");
    if settings.server.admin_token.is_none() {
        tracing::warn!(
            target: LOG_TARGET,
            "management API is off: set server.admin_token (or HOOKPIPE_SERVER__ADMIN_TOKEN) to enable /api/v1"
        );
    }
    for listener in app.registry.all() {
        let mut url = listener.public_url(&base);
        if listener.verifier.uses_url_token() {
            url.push_str("/<url token>");
        }
        println!("listener {:<20} {url}", listener.id());
    }
    // SIGTERM: fail /readyz, serve for server.drain_ms, stop accepting, finish, flush.
    actix_web::rt::spawn(app.drain.clone().on_signal(app.handle()));
    app.run(FLUSH_TIMEOUT).await
}
