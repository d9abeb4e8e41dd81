//! TLS, on both sides: the rustls configuration of hookpipe's HTTP clients (`client`: import
//! targets, the management CLI) and of its own ingest listener when `server.tls` is set
//! (`server`: the certificate and key files, reloaded on SIGHUP), with the one piece of X.509
//! the server reads itself (`validity`: the certificate's expiry, for a metric).

pub mod client;
pub mod server;
pub mod validity;

pub use client::{ca_certificates, client_config};
