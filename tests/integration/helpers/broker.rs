//! A real Tansu broker per test: a child process on a free loopback port, killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// Where the Tansu binary is: `$HOOKPIPE_TANSU`, else the cache `scripts/test.sh` installs to.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HOOKPIPE_TANSU") {
        return PathBuf::from(path);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/hookpipe/tansu/bin/tansu")
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A Tansu broker process on a free loopback port, killed on drop.
pub struct Broker {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub bootstrap: String,
    port: u16,
    /// The port it tells clients to connect to (its own, or a proxy's in front of it).
    advertised_port: u16,
    storage: String,
    workdir: PathBuf,
}

impl Broker {
    /// A broker with in-memory storage.
    pub fn start() -> Broker {
        let workdir = std::env::temp_dir().join(format!("hookpipe-tansu-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).unwrap();
        let port = free_port();
        Broker::start_with(port, port, "memory://tansu/".into(), workdir)
    }

    /// A broker storing in SQLite under its own directory: survives kill and restart.
    pub fn start_durable() -> Broker {
        Broker::start_durable_on(free_port())
    }

    /// A durable broker on `port` (a port a server under test was told about before any broker
    /// listened there).
    pub fn start_durable_on(port: u16) -> Broker {
        let workdir = std::env::temp_dir().join(format!("hookpipe-tansu-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).unwrap();
        Broker::start_with(port, port, "sqlite://tansu.db".into(), workdir)
    }

    /// A durable broker on a free port that advertises `proxy_port` (a proxy in front of it), so
    /// that every connection of its clients goes through the proxy.
    pub fn start_durable_behind(proxy_port: u16) -> Broker {
        let workdir = std::env::temp_dir().join(format!("hookpipe-tansu-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&workdir).unwrap();
        Broker::start_with(free_port(), proxy_port, "sqlite://tansu.db".into(), workdir)
    }

    fn start_with(port: u16, advertised_port: u16, storage: String, workdir: PathBuf) -> Broker {
        let mut broker = Broker {
            child: None,
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            advertised_port,
            storage,
            workdir,
        };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let binary = tansu_binary();
        assert!(
            binary.exists(),
            "Tansu broker not found at {}: run scripts/test.sh (it installs Tansu) or set HOOKPIPE_TANSU",
            binary.display()
        );
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port);
        // Appended to, so a restarted broker's log follows the killed one's.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.workdir.join("tansu.log"))
            .unwrap();
        let child = Command::new(&binary)
            .current_dir(&self.workdir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
                "--storage-engine",
                &self.storage,
            ])
            .env(
                "RUST_LOG",
                std::env::var("HOOKPIPE_TANSU_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("RUST_BACKTRACE", "1")
            // Tansu logs on stdout (its tracing) and panics on stderr: both into the log.
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        // Generous: a restart on a loaded machine (SQLite storage reopened) can take a while.
        let deadline = Instant::now() + Duration::from_secs(40);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = self.child.as_mut().and_then(|child| child.try_wait().ok().flatten());
            assert!(
                Instant::now() < deadline && exited.is_none(),
                "tansu did not listen on {} in time (exit: {exited:?}); its log ends with:\n{}",
                self.port,
                tail(&self.log(), 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the broker process (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The broker's own address (not the proxy's it may advertise).
    pub fn addr(&self) -> std::net::SocketAddr {
        self.bootstrap.parse().unwrap()
    }

    /// What the broker wrote on stderr so far (its log, across restarts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.workdir.join("tansu.log")).unwrap_or_default()
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            // The workdir goes: a failing test shows what the broker said first.
            eprintln!(
                "tansu on {} (advertised port {}) logged {} panics; its log ends with:\n{}",
                self.bootstrap,
                self.advertised_port,
                self.log().matches("panicked").count(),
                tail(&self.log(), 60)
            );
        }
        // `HOOKPIPE_KEEP_BROKER_LOGS=DIR`: every broker's whole log is kept there.
        if let Some(dir) = std::env::var_os("HOOKPIPE_KEEP_BROKER_LOGS") {
            let kept = PathBuf::from(dir).join(format!("tansu-{}.log", self.port));
            let _ = std::fs::copy(self.workdir.join("tansu.log"), kept);
        }
        let _ = std::fs::remove_dir_all(&self.workdir);
    }
}
