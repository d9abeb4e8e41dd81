//! The ceiling of the load benchmark: a bare actix-web server (same actix-web version and
//! worker count as hookpipe) whose only handler reads the whole body and answers 204.
//! Whatever hookpipe costs above this is the cost of hookpipe itself.
//!
//! Started by `benches/load.sh`:
//!
//!     ceiling serve --listen 127.0.0.1:18081 [--workers N]
//!
//! Under a plain `cargo bench` (no `serve` argument) it prints a note and exits, so it never
//! blocks the micro-benchmarks.

use std::time::Duration;

use actix_web::web::{self, BytesMut};
use actix_web::{App, HttpResponse, HttpServer};
use futures_util::StreamExt;

/// Same cap as hookpipe's default `server.max_body_bytes`.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Reads the body chunk by chunk (as hookpipe's Receiver does) and answers 204.
async fn sink(mut payload: web::Payload) -> HttpResponse {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) if body.len() + chunk.len() <= MAX_BODY_BYTES => body.extend_from_slice(&chunk),
            Ok(_) => return HttpResponse::PayloadTooLarge().finish(),
            Err(_) => return HttpResponse::BadRequest().finish(),
        }
    }
    std::hint::black_box(&body);
    HttpResponse::NoContent().finish()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("serve") {
        println!(
            "ceiling: load-benchmark helper, started by benches/load.sh (`ceiling serve --listen ADDR`); nothing to do"
        );
        return Ok(());
    }
    let mut listen = "127.0.0.1:18081".to_owned();
    // hookpipe's default: one worker per core.
    let mut workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--listen" => listen = rest.next().expect("--listen ADDR").clone(),
            "--workers" => workers = rest.next().and_then(|n| n.parse().ok()).expect("--workers N"),
            other => panic!("unknown argument {other}"),
        }
    }
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(|| App::new().default_service(web::to(sink)))
            // The same server settings hookpipe uses (src/http/mod.rs).
            .workers(workers)
            .max_connection_rate(1024)
            .client_request_timeout(Duration::from_secs(10))
            .shutdown_timeout(1)
            .bind(listen.as_str())?;
        let addr = server.addrs()[0];
        println!("ceiling listening on http://{addr} ({workers} workers)");
        server.run().await
    })
}
