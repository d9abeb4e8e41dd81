//! A TCP proxy in front of the broker (std threads), to fault the network between hookpipe and a
//! broker that stays up:
//!
//! - `cut` closes every connection and refuses new ones (accepted and closed at once, as a dead
//!   link looks to a client), `restore` lets them through again;
//! - `blackhole` keeps every connection open but forwards nothing: bytes are read and dropped,
//!   new connections are accepted and read but never answered. A connection that dropped bytes
//!   never forwards again (its stream lost bytes in the middle, as one through a dead link
//!   does once the link is back and the client has timed out on it): only connections opened
//!   after `restore` carry traffic, so the client must notice on its own;
//! - `set_latency` delays every chunk, in both directions, by a fixed time from when it was
//!   read (a delay line: in order, throughput unlimited), as a slow or distant broker does.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Chunks a direction of a connection holds in its delay line before its reader waits.
const DELAY_LINE_CHUNKS: usize = 4096;

/// A proxy from a loopback port to `target`, stopped on drop.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    target: SocketAddr,
    cut: AtomicBool,
    blackhole: AtomicBool,
    /// Added to every chunk, in milliseconds.
    latency_ms: AtomicU64,
    stopping: AtomicBool,
    /// Both ends of every open connection (clones), to close them on `cut`.
    open: Mutex<Vec<(TcpStream, Option<TcpStream>)>>,
    /// What it did so far, for `state` (a failing test prints it).
    counts: Counts,
}

/// Connections the proxy saw, by what became of them.
#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    /// Accepted and closed at once (cut).
    refused: AtomicU64,
    /// Accepted while blackholed: read and never answered.
    swallowed: AtomicU64,
    /// Accepted but the broker could not be reached.
    upstream_failed: AtomicU64,
    /// Forwarded to the broker.
    forwarded: AtomicU64,
    /// Directions of forwarded connections still pumping.
    pumping: AtomicI64,
    /// Forwarded connections that dropped bytes in a blackhole.
    dropped: AtomicU64,
    /// Chunks delivered, each way.
    chunks: AtomicU64,
}

impl Proxy {
    /// Listens on `127.0.0.1:port` and forwards every connection to `target`.
    pub fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("proxy port free");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
            blackhole: AtomicBool::new(false),
            latency_ms: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            counts: Counts::default(),
        });
        let accept_shared = shared.clone();
        let accept = std::thread::spawn(move || accept_loop(listener, accept_shared));
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// Cuts the network: every open connection is closed, new ones are closed as they come.
    pub fn cut(&self) {
        self.shared.cut.store(true, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Blackholes the network: nothing is forwarded any more and nothing is closed; bytes are
    /// read and dropped, new connections accepted, read and never answered.
    pub fn blackhole(&self) {
        self.shared.blackhole.store(true, Ordering::SeqCst);
    }

    /// Lets new connections through again (after `cut` or `blackhole`; connections that dropped
    /// bytes in a blackhole stay silent until their client closes them).
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
        self.shared.blackhole.store(false, Ordering::SeqCst);
    }

    /// Delays every chunk read from now on by `latency`, in each direction (`Duration::ZERO`:
    /// none; chunks already delayed keep their time, so the order holds).
    pub fn set_latency(&self, latency: Duration) {
        self.shared
            .latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Proxy {
    /// What the proxy did so far and what it holds (for a failing test's message).
    pub fn state(&self) -> String {
        let shared = &self.shared;
        let c = &shared.counts;
        format!(
            "proxy {} -> {}: cut {}, blackhole {}, latency {} ms, accept loop alive {}; connections \
             accepted {}, refused {}, swallowed {}, upstream failed {}, forwarded {} (of which dropped \
             bytes {}), directions pumping {}, chunks delivered {}, remembered {}",
            self.addr,
            shared.target,
            shared.cut.load(Ordering::SeqCst),
            shared.blackhole.load(Ordering::SeqCst),
            shared.latency_ms.load(Ordering::SeqCst),
            self.accept.as_ref().is_some_and(|accept| !accept.is_finished()),
            c.accepted.load(Ordering::SeqCst),
            c.refused.load(Ordering::SeqCst),
            c.swallowed.load(Ordering::SeqCst),
            c.upstream_failed.load(Ordering::SeqCst),
            c.forwarded.load(Ordering::SeqCst),
            c.dropped.load(Ordering::SeqCst),
            c.pumping.load(Ordering::SeqCst),
            c.chunks.load(Ordering::SeqCst),
            shared.open.lock().unwrap().len(),
        )
    }
}

impl Shared {
    fn close_all(&self) {
        for (client, upstream) in self.open.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
            if let Some(upstream) = upstream {
                let _ = upstream.shutdown(Shutdown::Both);
            }
        }
    }

    fn remember(&self, client: &TcpStream, upstream: Option<&TcpStream>) {
        let Ok(client) = client.try_clone() else { return };
        let upstream = upstream.and_then(|upstream| upstream.try_clone().ok());
        self.open.lock().unwrap().push((client, upstream));
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        shared.counts.accepted.fetch_add(1, Ordering::SeqCst);
        if shared.cut.load(Ordering::SeqCst) {
            shared.counts.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        if shared.blackhole.load(Ordering::SeqCst) {
            shared.counts.swallowed.fetch_add(1, Ordering::SeqCst);
            shared.remember(&client, None);
            std::thread::spawn(move || swallow(client));
            continue;
        }
        let Ok(upstream) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(2)) else {
            shared.counts.upstream_failed.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        shared.counts.forwarded.fetch_add(1, Ordering::SeqCst);
        shared.remember(&client, Some(&upstream));
        // Shared by both directions: once one dropped bytes, the connection is dead both ways.
        let dropped = Arc::new(AtomicBool::new(false));
        for (from, to) in [(client, upstream_copy), (upstream, client_copy)] {
            let (shared, dropped) = (shared.clone(), dropped.clone());
            std::thread::spawn(move || pump(from, to, shared, dropped));
        }
    }
}

/// Reads and drops everything a blackholed connection sends, until its client closes it.
fn swallow(mut client: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    while matches!(client.read(&mut buffer), Ok(n) if n > 0) {}
}

/// Copies `from` to `to` (through a delay line) until either side closes, then closes both.
fn pump(mut from: TcpStream, to: TcpStream, shared: Arc<Shared>, dropped: Arc<AtomicBool>) {
    shared.counts.pumping.fetch_add(1, Ordering::SeqCst);
    let (line, delayed) = sync_channel::<(Instant, Vec<u8>)>(DELAY_LINE_CHUNKS);
    let writer_shared = shared.clone();
    let writer = std::thread::spawn(move || deliver(delayed, to, &writer_shared));
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if shared.blackhole.load(Ordering::SeqCst) && !dropped.swap(true, Ordering::SeqCst) {
                    shared.counts.dropped.fetch_add(1, Ordering::SeqCst);
                }
                if dropped.load(Ordering::SeqCst) {
                    continue;
                }
                if !send_delayed(&line, &shared, &buffer[..n]) {
                    break;
                }
            }
        }
    }
    drop(line);
    let to = writer.join().expect("proxy writer");
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.counts.pumping.fetch_sub(1, Ordering::SeqCst);
}

/// Queues a chunk for delivery after the current latency; false once the writer is gone.
fn send_delayed(line: &SyncSender<(Instant, Vec<u8>)>, shared: &Shared, chunk: &[u8]) -> bool {
    let due = Instant::now() + Duration::from_millis(shared.latency_ms.load(Ordering::SeqCst));
    line.send((due, chunk.to_vec())).is_ok()
}

/// Writes each chunk once it is due, in order; returns the stream once the line is closed or a
/// write failed.
fn deliver(delayed: Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, shared: &Shared) -> TcpStream {
    for (due, chunk) in delayed {
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if to.write_all(&chunk).is_err() {
            // The other direction reads this stream: it ends too, and closes ours.
            let _ = to.shutdown(Shutdown::Both);
            break;
        }
        shared.counts.chunks.fetch_add(1, Ordering::SeqCst);
    }
    to
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.close_all();
        // Wakes the accept loop so it sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}
