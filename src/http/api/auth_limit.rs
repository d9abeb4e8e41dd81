//! Failed management-API authentications per peer: after `max_failures` wrong or missing tokens
//! within a window, the peer is answered 429 (with `Retry-After`) for a window without its token
//! being looked at, so guessing the admin token is held to `max_failures` tries per window and
//! per address. Pure logic with an injected clock; the API's `authorize` is its one user.
//!
//! Memory is bounded: at most `max_peers` peers are tracked. Expired entries are pruned when the
//! table is full; if none is expired, the entry that matters least (not locked out, oldest
//! window first) makes room. IPv6 peers are keyed by their /64, which one host usually holds
//! whole, so rotating through its own addresses gains an attacker nothing.
//!
//! The peer is the TCP peer address. Behind a load balancer every request comes from the
//! balancer, so the limit then holds for all clients of that balancer together (hookpipe has no
//! trusted-proxy setting, and a forwarded header from an untrusted sender would let an attacker
//! pick a fresh "peer" per guess).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::pipeline::rate_limit::bucket::SharedClock;

/// Peers tracked at most (a few hundred kilobytes).
pub const MAX_TRACKED_PEERS: usize = 4096;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The failure counts of the peers that failed lately.
pub struct AuthFailures {
    max_failures: u32,
    window_nanos: u64,
    max_peers: usize,
    clock: SharedClock,
    peers: Mutex<HashMap<IpAddr, Failures>>,
}

/// One peer's failures in its current window.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start: u64,
    /// Refused without a look at the token until then (0: not locked out).
    locked_until: u64,
}

impl AuthFailures {
    /// A table allowing `max_failures` failures per `window` (0 failures: no limit).
    pub fn new(max_failures: u32, window: Duration, max_peers: usize, clock: SharedClock) -> AuthFailures {
        AuthFailures {
            max_failures,
            window_nanos: (window.as_nanos() as u64).max(1),
            max_peers: max_peers.max(1),
            clock,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when `peer` may present a token now, else the whole seconds until it may.
    pub fn check(&self, peer: IpAddr) -> Result<(), u64> {
        if self.max_failures == 0 {
            return Ok(());
        }
        let now = self.clock.now_nanos();
        let peers = self.peers.lock().expect("auth failures lock");
        match peers.get(&key(peer)) {
            Some(failures) if failures.locked_until > now => {
                Err((failures.locked_until - now).div_ceil(NANOS_PER_SEC).max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong or missing token from `peer`; `true` when this failure locked it out.
    pub fn record_failure(&self, peer: IpAddr) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let now = self.clock.now_nanos();
        let peer = key(peer);
        let mut peers = self.peers.lock().expect("auth failures lock");
        if !peers.contains_key(&peer) && peers.len() >= self.max_peers {
            self.make_room(&mut peers, now);
        }
        let failures = peers.entry(peer).or_insert(Failures {
            count: 0,
            window_start: now,
            locked_until: 0,
        });
        if now.saturating_sub(failures.window_start) >= self.window_nanos {
            *failures = Failures {
                count: 0,
                window_start: now,
                locked_until: 0,
            };
        }
        failures.count = failures.count.saturating_add(1);
        if failures.count == self.max_failures {
            failures.locked_until = now + self.window_nanos;
            return true;
        }
        false
    }

    /// A right token from `peer`: its failures are forgotten.
    pub fn record_success(&self, peer: IpAddr) {
        if self.max_failures == 0 {
            return;
        }
        self.peers.lock().expect("auth failures lock").remove(&key(peer));
    }

    /// Peers tracked now.
    pub fn tracked_peers(&self) -> usize {
        self.peers.lock().expect("auth failures lock").len()
    }

    /// Drops every expired entry; if none was, the least useful one.
    fn make_room(&self, peers: &mut HashMap<IpAddr, Failures>, now: u64) {
        let window = self.window_nanos;
        peers.retain(|_, f| f.locked_until > now || now.saturating_sub(f.window_start) < window);
        if peers.len() < self.max_peers {
            return;
        }
        // Peers not locked out first, oldest window first; among locked-out ones, the one
        // whose lockout ends first.
        let victim = peers
            .iter()
            .min_by_key(|(_, f)| {
                let locked = f.locked_until > now;
                (locked, if locked { f.locked_until } else { f.window_start })
            })
            .map(|(peer, _)| *peer);
        if let Some(victim) = victim {
            peers.remove(&victim);
        }
    }
}

/// The table key of a peer: IPv4 as it is (an IPv4-mapped IPv6 address as its IPv4), IPv6 by /64.
fn key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pipeline::rate_limit::bucket::ManualClock;

    fn table(max_failures: u32, max_peers: usize) -> (AuthFailures, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        (
            AuthFailures::new(max_failures, Duration::from_secs(60), max_peers, clock.clone()),
            clock,
        )
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_nth_failure_locks_the_peer_out_for_a_window_then_it_may_try_again() {
        let (failures, clock) = table(3, 16);
        let peer = ip("203.0.113.7");
        assert!(!failures.record_failure(peer));
        assert!(!failures.record_failure(peer));
        assert_eq!(failures.check(peer), Ok(()), "two failures of three: still allowed");
        assert!(failures.record_failure(peer), "the third failure locks out");
        assert_eq!(failures.check(peer), Err(60));
        clock.advance(Duration::from_millis(59_500));
        assert_eq!(failures.check(peer), Err(1), "Retry-After rounds up");
        assert_eq!(
            failures.check(ip("203.0.113.8")),
            Ok(()),
            "other peers are not affected"
        );
        clock.advance(Duration::from_millis(500));
        assert_eq!(failures.check(peer), Ok(()));
        // A new window: the count starts again.
        assert!(!failures.record_failure(peer));
        assert_eq!(failures.check(peer), Ok(()));
    }

    #[test]
    fn failures_spread_over_more_than_a_window_do_not_add_up() {
        let (failures, clock) = table(3, 16);
        let peer = ip("198.51.100.1");
        for _ in 0..10 {
            failures.record_failure(peer);
            failures.record_failure(peer);
            clock.advance(Duration::from_secs(61));
        }
        assert_eq!(failures.check(peer), Ok(()));
    }

    #[test]
    fn a_right_token_forgets_the_failures() {
        let (failures, _clock) = table(3, 16);
        let peer = ip("198.51.100.2");
        failures.record_failure(peer);
        failures.record_failure(peer);
        failures.record_success(peer);
        failures.record_failure(peer);
        failures.record_failure(peer);
        assert_eq!(failures.check(peer), Ok(()));
        assert_eq!(failures.tracked_peers(), 1);
    }

    #[test]
    fn ipv6_peers_count_by_64_prefix_and_mapped_ipv4_as_ipv4() {
        let (failures, _clock) = table(2, 16);
        failures.record_failure(ip("2001:db8:1:2::1"));
        assert!(failures.record_failure(ip("2001:db8:1:2:ffff::9")), "same /64");
        assert!(failures.check(ip("2001:db8:1:2::abcd")).is_err());
        assert_eq!(failures.check(ip("2001:db8:1:3::1")), Ok(()), "another /64");
        failures.record_failure(ip("192.0.2.1"));
        assert!(failures.record_failure(ip("::ffff:192.0.2.1")));
        assert!(failures.check(ip("192.0.2.1")).is_err());
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_locked_out_peers_over_fresh_ones() {
        let (failures, clock) = table(2, 8);
        let locked = ip("192.0.2.200");
        failures.record_failure(locked);
        failures.record_failure(locked);
        for n in 0..1000u32 {
            failures.record_failure(IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n)));
            assert!(failures.tracked_peers() <= 8);
        }
        assert!(
            failures.check(locked).is_err(),
            "a spray of other addresses does not unlock a peer"
        );
        // Once everything expired, a full table is pruned, not merely shifted.
        clock.advance(Duration::from_secs(61));
        failures.record_failure(ip("192.0.2.201"));
        assert_eq!(failures.tracked_peers(), 1);
    }

    #[test]
    fn zero_failures_means_no_limit_and_no_memory() {
        let (failures, _clock) = table(0, 8);
        for _ in 0..100 {
            assert!(!failures.record_failure(ip("192.0.2.9")));
        }
        assert_eq!(failures.check(ip("192.0.2.9")), Ok(()));
        assert_eq!(failures.tracked_peers(), 0);
    }
}
