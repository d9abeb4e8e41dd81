//! The integration tests: ONE test binary (linking actix and librdkafka once, not once per
//! file), one module per area, the shared harness in `helpers`. Each test starts its own Tansu
//! broker and its own server on port 0; `scripts/test.sh` runs them with nextest, which gives
//! every test its own process, so process-global state (the metrics registry) is never shared
//! between tests.

mod helpers;

mod admin_auth;
mod api;
mod bad_input;
mod balancer;
mod broker_down;
mod chaos;
mod cli;
mod cli_listeners;
mod cloudevents;
mod console;
mod dedup;
mod deploy_files;
mod fleet_rate_limit;
mod fleet_state;
mod formats;
mod handshake;
mod hostile;
mod import_wait;
mod ingest;
mod openapi;
mod ordering;
mod outage;
mod rate_limit;
mod retry_data;
mod schema;
mod state_topic;
mod tls;
mod verification;
mod worker;
mod worker_crash;
