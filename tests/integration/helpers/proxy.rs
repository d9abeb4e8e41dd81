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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
        if shared.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        if shared.blackhole.load(Ordering::SeqCst) {
            shared.remember(&client, None);
            std::thread::spawn(move || swallow(client));
            continue;
        }
        let Ok(upstream) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(2)) else {
            drop(client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
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
    let (line, delayed) = sync_channel::<(Instant, Vec<u8>)>(DELAY_LINE_CHUNKS);
    let writer = std::thread::spawn(move || deliver(delayed, to));
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if shared.blackhole.load(Ordering::SeqCst) {
                    dropped.store(true, Ordering::SeqCst);
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
}

/// Queues a chunk for delivery after the current latency; false once the writer is gone.
fn send_delayed(line: &SyncSender<(Instant, Vec<u8>)>, shared: &Shared, chunk: &[u8]) -> bool {
    let due = Instant::now() + Duration::from_millis(shared.latency_ms.load(Ordering::SeqCst));
    line.send((due, chunk.to_vec())).is_ok()
}

/// Writes each chunk once it is due, in order; returns the stream once the line is closed or a
/// write failed.
fn deliver(delayed: Receiver<(Instant, Vec<u8>)>, mut to: TcpStream) -> TcpStream {
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
