//! The worker's `GET /metrics` (and `GET /healthz`): a tiny blocking HTTP/1.1 listener on one
//! thread. Scrapes are rare and small, so connections are served one at a time with short
//! deadlines; the worker needs no HTTP framework.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::telemetry::WORKER_METRICS;

/// A request head larger than this is refused.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// A client gets this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `listen` and serves on a thread named `worker-metrics`; returns the bound address.
pub fn start(listen: SocketAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind(listen).map_err(|e| format!("cannot bind worker.metrics_listen {listen}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("worker-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(error) = serve(stream) {
                    tracing::debug!(%error, "metrics connection failed");
                }
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(addr)
}

fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut buffer)?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
        if head.len() > MAX_HEAD_BYTES {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"too large\n",
            );
        }
    }
    let line = String::from_utf8_lossy(&head);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some("/metrics")) => {
            let body = WORKER_METRICS.render();
            respond(
                &mut stream,
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                body.as_bytes(),
            )
        }
        (Some("GET"), Some("/healthz")) => respond(&mut stream, "200 OK", "application/json", br#"{"status":"ok"}"#),
        (Some("GET"), _) => respond(
            &mut stream,
            "404 Not Found",
            "application/json",
            br#"{"error":"not found"}"#,
        ),
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "application/json",
            br#"{"error":"method not allowed"}"#,
        ),
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}
