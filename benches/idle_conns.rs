//! Holds many idle keep-alive HTTP/1.1 connections open against a server, for the memory
//! scenario of the load benchmark (`benches/load.sh`, scenario E).
//!
//!     idle_conns hold --addr 127.0.0.1:18080 --count 10000 --secs 60 [--path /healthz] [--interval-ms 4000]
//!
//! Each connection sends one `GET path` and then sits idle. actix-web closes a connection
//! that stays idle longer than its keep-alive (5 s by default, in hookpipe and in the ceiling
//! alike), so every connection repeats its GET every `--interval-ms` (with jitter); a
//! connection the server closes anyway is reopened and counted. Prints `ready <open>` once
//! every connection is open (at most 60 s of opening), holds them `--secs` more, then prints
//! a JSON summary and exits. Under a plain `cargo bench` (no
//! `hold` argument) it prints a note and exits.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::rt::net::TcpStream;
use actix_web::rt::time::{sleep, timeout};

#[derive(Default)]
struct Counters {
    open: Cell<usize>,
    connects: Cell<usize>,
    failed_connects: Cell<usize>,
    reopened: Cell<usize>,
    requests: Cell<usize>,
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Reads one response (headers plus a `Content-Length` body, if any).
async fn read_response(stream: &TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                return Ok(());
            }
        }
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
}

/// One connection's life: connect, GET, idle, GET, …, reconnecting when the server closes it.
async fn hold(
    addr: SocketAddr,
    request: Rc<Vec<u8>>,
    interval: Duration,
    seed: u64,
    deadline: Rc<Cell<Instant>>,
    counters: Rc<Counters>,
) {
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut buffer = Vec::with_capacity(512);
    let mut first = true;
    while Instant::now() < deadline.get() {
        let stream = match timeout(Duration::from_secs(5), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => stream,
            _ => {
                counters.failed_connects.set(counters.failed_connects.get() + 1);
                sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        counters.connects.set(counters.connects.get() + 1);
        if !first {
            counters.reopened.set(counters.reopened.get() + 1);
        }
        first = false;
        counters.open.set(counters.open.get() + 1);
        while Instant::now() < deadline.get() {
            let ok = async {
                write_all(&stream, &request).await?;
                read_response(&stream, &mut buffer).await
            };
            if !matches!(timeout(Duration::from_secs(10), ok).await, Ok(Ok(()))) {
                break;
            }
            counters.requests.set(counters.requests.get() + 1);
            // Jitter in [-10 %, +0 %) of the interval keeps the pings spread and under keep-alive.
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let jitter = interval.as_millis() as u64 / 10 * ((rng >> 33) % 1000) / 1000;
            let pause = interval.saturating_sub(Duration::from_millis(jitter));
            let remaining = deadline.get().saturating_duration_since(Instant::now());
            sleep(pause.min(remaining)).await;
        }
        counters.open.set(counters.open.get() - 1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("hold") {
        println!(
            "idle_conns: load-benchmark helper, started by benches/load.sh (`idle_conns hold ...`); nothing to do"
        );
        return;
    }
    let (mut addr, mut count, mut secs, mut path, mut interval_ms) =
        (None::<SocketAddr>, 10_000usize, 60u64, "/healthz".to_owned(), 4_000u64);
    let mut rest = args[1..].iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--addr" => addr = Some(value.parse().expect("--addr HOST:PORT")),
            "--count" => count = value.parse().expect("--count N"),
            "--secs" => secs = value.parse().expect("--secs N"),
            "--path" => path = value.clone(),
            "--interval-ms" => interval_ms = value.parse().expect("--interval-ms N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let addr = addr.expect("--addr is required");
    // Only loopback: this is a benchmark helper, never a tool against other hosts.
    assert!(
        addr.ip().is_loopback(),
        "idle_conns only connects to loopback addresses"
    );
    let request = Rc::new(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes());
    let counters = Rc::new(Counters::default());
    let started = Instant::now();
    // Set for real once every connection is open.
    let deadline = Rc::new(Cell::new(started + Duration::from_secs(60 + secs + 10)));
    actix_web::rt::System::new().block_on(async {
        let interval = Duration::from_millis(interval_ms);
        for index in 0..count {
            actix_web::rt::spawn(hold(
                addr,
                request.clone(),
                interval,
                index as u64,
                deadline.clone(),
                counters.clone(),
            ));
            // Open in batches so the listen backlog never overflows.
            if index % 200 == 199 {
                while counters.open.get() + counters.failed_connects.get() + 100 < index {
                    sleep(Duration::from_millis(5)).await;
                }
            }
        }
        let opened_by = started + Duration::from_secs(60);
        while counters.open.get() < count && Instant::now() < opened_by {
            sleep(Duration::from_millis(20)).await;
        }
        println!("ready {} in {:.1}s", counters.open.get(), started.elapsed().as_secs_f64());
        deadline.set(Instant::now() + Duration::from_secs(secs));
        let mut min_open = counters.open.get();
        while Instant::now() < deadline.get() {
            sleep(Duration::from_millis(250)).await;
            min_open = min_open.min(counters.open.get());
        }
        // Let the tasks see the deadline and close.
        sleep(Duration::from_millis(100)).await;
        println!(
            "{{\"target\":{count},\"min_open_after_ready\":{min_open},\"connects\":{},\"failed_connects\":{},\"reopened\":{},\"requests\":{}}}",
            counters.connects.get(),
            counters.failed_connects.get(),
            counters.reopened.get(),
            counters.requests.get()
        );
    });
}
