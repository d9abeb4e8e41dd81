//! A TCP proxy in front of the broker (std threads), to cut the network between hookpipe and a
//! broker that stays up: `cut` closes every connection and refuses new ones (accepted and closed
//! at once, as a dead link looks to a client), `restore` lets them through again.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

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
    stopping: AtomicBool,
    /// Both ends of every open connection (clones), to close them on `cut`.
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
}

impl Proxy {
    /// Listens on `127.0.0.1:port` and forwards every connection to `target`.
    pub fn start(port: u16, target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("proxy port free");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            target,
            cut: AtomicBool::new(false),
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

    /// Lets connections through again.
    pub fn restore(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Shared {
    fn close_all(&self) {
        for (client, upstream) in self.open.lock().unwrap().drain(..) {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
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
        let Ok(upstream) = TcpStream::connect_timeout(&shared.target, Duration::from_secs(2)) else {
            drop(client);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        if let (Ok(client_handle), Ok(upstream_handle)) = (client.try_clone(), upstream.try_clone()) {
            shared.open.lock().unwrap().push((client_handle, upstream_handle));
        }
        std::thread::spawn(move || pump(client, upstream_copy));
        std::thread::spawn(move || pump(upstream, client_copy));
    }
}

/// Copies `from` to `to` until either side closes, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
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
