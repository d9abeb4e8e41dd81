//! Buckets held by the whole fleet: how each instance's share of a bucket is computed from the
//! heartbeats in `kafka.fleet_topic` (pure logic, no I/O; the topic side is `fleet_feed`).
//!
//! Every `heartbeat_ms` each instance publishes a heartbeat: its observed demand per bucket
//! (requests per second asking for a token, smoothed) and, for every other member it counts, the
//! offset of that member's heartbeat it counted. Each instance then holds, of every bucket
//! (capacity and refill alike), the share
//!
//! ```text
//! share_i = (claim_i + floor) / ((claim_i + floor) + Σ_{j live, j ≠ i} (demand_j + floor))
//! ```
//!
//! where `demand_j` is the demand of j's latest heartbeat i has read, `floor` is
//! [`FLOOR_FRACTION`] of the bucket's rate (so an idle instance still refills, and a newly busy
//! one gets tokens before the next re-division), and `claim_i` is the *smallest* demand i
//! published that some other member may still be counting: from the heartbeat of i each member
//! says it counted, onwards, plus those sent and not read back yet. Every member counts i with
//! a demand at least `claim_i`, so each member's denominator holds at least the claims of all
//! the others, and the shares in force never add up to more than the whole bucket: the fleet
//! holds at most `capacity` tokens and refills at most `rate` per second.
//!
//! An instance no live member counts yet (it just joined) holds nothing until they do; an
//! instance alone holds the whole bucket. Members whose latest heartbeat is `member_timeout_ms`
//! older than this instance's own latest heartbeat read back are dropped: when this instance's
//! own heartbeats stop coming back (Kafka unreachable), nobody is dropped and the shares stay
//! as they were.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::bucket::WHOLE_SHARE_PPM;

/// The key of `server.global_rate_limit` among the buckets (listener ids cannot contain `*`).
pub const GLOBAL: &str = "*";
/// Each member weighs at least this fraction of a bucket's rate, in requests per second.
pub const FLOOR_FRACTION: f64 = 0.05;
/// Own heartbeats kept for claims; more are only kept while a member still counts an old one.
const OWN_HISTORY_LIMIT: usize = 256;
/// Version of [`Heartbeat`].
pub const HEARTBEAT_VERSION: u32 = 1;

/// One instance's heartbeat, the value of a record keyed by its member key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// [`HEARTBEAT_VERSION`].
    pub version: u32,
    /// `server.instance_id` (or `<hostname>:<port>`), for operators.
    pub instance: String,
    /// Counts this process's heartbeats from 0.
    pub seq: u64,
    /// When it was sent, Unix ms (the sender's clock).
    pub at_ms: i64,
    /// Observed demand per bucket (listener id, or [`GLOBAL`]), requests per second; a bucket
    /// not named has none.
    #[serde(default)]
    pub demand: BTreeMap<String, f64>,
    /// Member key → offset of that member's heartbeat the sender's shares counted.
    #[serde(default)]
    pub counted: BTreeMap<String, i64>,
}

impl Heartbeat {
    /// The demand for `bucket`.
    pub fn demand_of(&self, bucket: &str) -> f64 {
        self.demand.get(bucket).copied().unwrap_or(0.0)
    }
}

/// The latest heartbeat of another member, and where it is in the topic.
#[derive(Debug, Clone)]
struct Member {
    offset: i64,
    heartbeat: Heartbeat,
}

/// A heartbeat of this instance read back from the topic.
#[derive(Debug, Clone)]
struct Own {
    offset: i64,
    demand: BTreeMap<String, f64>,
}

/// A heartbeat of this instance sent and not read back yet.
#[derive(Debug, Clone)]
struct Pending {
    sent_at_ms: i64,
    demand: BTreeMap<String, f64>,
}

/// This instance's view of the fleet, fed with every heartbeat in topic order.
#[derive(Debug)]
pub struct FleetView {
    me: String,
    timeout_ms: i64,
    /// How long a heartbeat sent may still be read by others (beyond it, it was lost).
    pending_expiry_ms: i64,
    members: HashMap<String, Member>,
    own: VecDeque<Own>,
    pending: BTreeMap<u64, Pending>,
    /// `at_ms` of the newest own heartbeat read back: the clock members are dropped by.
    clock_ms: Option<i64>,
    next_seq: u64,
}

impl FleetView {
    /// The view of the member keyed `me`; members are dropped after `timeout_ms`, and a heartbeat
    /// not read back within `pending_expiry_ms` is taken as lost.
    pub fn new(me: &str, timeout_ms: i64, pending_expiry_ms: i64) -> FleetView {
        FleetView {
            me: me.to_string(),
            timeout_ms,
            pending_expiry_ms,
            members: HashMap::new(),
            own: VecDeque::new(),
            pending: BTreeMap::new(),
            clock_ms: None,
            next_seq: 0,
        }
    }

    /// This member's key.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Applies the record at `offset` keyed `key`: a heartbeat, or `None` for a member that left.
    /// Returns whether it was this instance's first heartbeat read back (it joined).
    pub fn apply(&mut self, offset: i64, key: &str, heartbeat: Option<Heartbeat>) -> bool {
        if key == self.me {
            let Some(heartbeat) = heartbeat else { return false };
            let first = self.own.is_empty();
            self.pending.retain(|seq, _| *seq > heartbeat.seq);
            self.clock_ms = Some(
                self.clock_ms
                    .map_or(heartbeat.at_ms, |clock| clock.max(heartbeat.at_ms)),
            );
            self.own.push_back(Own {
                offset,
                demand: heartbeat.demand,
            });
            return first;
        }
        match heartbeat {
            Some(heartbeat) => {
                self.members.insert(key.to_string(), Member { offset, heartbeat });
            }
            None => {
                self.members.remove(key);
            }
        }
        false
    }

    /// When the newest own heartbeat read back was sent (Unix ms, this instance's clock).
    pub fn newest_own_ms(&self) -> Option<i64> {
        self.clock_ms
    }

    /// Whether this instance's own heartbeat has come back: its shares are the fleet's from now.
    pub fn joined(&self) -> bool {
        !self.own.is_empty()
    }

    /// Whether every live member counts this instance: from now on it holds a share (a starting
    /// instance is not ready before, so a balancer sends it nothing while it would refuse all).
    pub fn counted(&self) -> bool {
        self.joined() && self.anchor().is_some()
    }

    /// The mean demand of the live members, per bucket: what a joining instance presumes its own
    /// will be (a balancer gives it about as much as the others).
    pub fn presumed_demand(&self) -> BTreeMap<String, f64> {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        let mut members = 0;
        for (_, member) in self.live() {
            members += 1;
            for (bucket, demand) in &member.heartbeat.demand {
                *sums.entry(bucket.clone()).or_default() += demand;
            }
        }
        for sum in sums.values_mut() {
            *sum = (*sum / f64::from(members.max(1))).floor();
        }
        sums.retain(|_, demand| *demand > 0.0);
        sums
    }

    /// Whether another member is live (a joining instance with company starts with no tokens).
    pub fn has_company(&self) -> bool {
        self.live().next().is_some()
    }

    /// Live members, this one included once it joined.
    pub fn member_count(&self) -> usize {
        usize::from(self.joined()) + self.live().count()
    }

    fn live(&self) -> impl Iterator<Item = (&String, &Member)> {
        let oldest = self.clock_ms.map(|clock| clock - self.timeout_ms);
        self.members
            .iter()
            .filter(move |(_, member)| oldest.is_none_or(|oldest| member.heartbeat.at_ms >= oldest))
    }

    /// Drops members not heard from for the timeout, heartbeats taken as lost, and own
    /// heartbeats no member can be counting any more.
    pub fn prune(&mut self, now_ms: i64) {
        if let Some(clock) = self.clock_ms {
            let oldest = clock - self.timeout_ms;
            self.members.retain(|_, member| member.heartbeat.at_ms >= oldest);
        }
        let expiry = self.pending_expiry_ms;
        self.pending.retain(|_, pending| now_ms - pending.sent_at_ms <= expiry);
        let keep_from = match self.anchor() {
            Some(anchor) => self.anchor_index(anchor),
            None => self.own.len().saturating_sub(OWN_HISTORY_LIMIT),
        };
        self.own.drain(..keep_from.min(self.own.len().saturating_sub(1)));
    }

    /// The oldest own heartbeat offset a live member counts; `i64::MAX` when alone; `None` when
    /// a live member does not count this instance at all.
    fn anchor(&self) -> Option<i64> {
        let mut anchor = i64::MAX;
        for (_, member) in self.live() {
            anchor = anchor.min(*member.heartbeat.counted.get(&self.me)?);
        }
        Some(anchor)
    }

    /// Index in `own` of the latest own heartbeat at or before `anchor` (0 when none is).
    fn anchor_index(&self, anchor: i64) -> usize {
        self.own.iter().rposition(|own| own.offset <= anchor).unwrap_or(0)
    }

    /// The smallest demand for `bucket` that a live member may be counting this instance with.
    fn claim(&self, bucket: &str, anchor: i64) -> f64 {
        let demand = |map: &BTreeMap<String, f64>| map.get(bucket).copied().unwrap_or(0.0);
        let from = self.anchor_index(anchor);
        self.own
            .iter()
            .skip(from)
            .map(|own| demand(&own.demand))
            .chain(self.pending.values().map(|pending| demand(&pending.demand)))
            .fold(f64::INFINITY, f64::min)
    }

    /// This instance's share of `bucket` (refilled at `rate` per second), parts per million:
    /// whole before it joined (a single instance) and while alone, nothing while a live member
    /// does not count it yet. Rounded down, so the shares of the fleet never add up to more.
    pub fn share_ppm(&self, bucket: &str, rate: f64) -> u32 {
        if !self.joined() {
            return WHOLE_SHARE_PPM;
        }
        let Some(anchor) = self.anchor() else { return 0 };
        if !self.has_company() {
            return WHOLE_SHARE_PPM;
        }
        let floor = FLOOR_FRACTION * rate.max(1.0);
        let claim = self.claim(bucket, anchor);
        let mine = if claim.is_finite() { claim } else { 0.0 } + floor;
        let others: f64 = self
            .live()
            .map(|(_, member)| member.heartbeat.demand_of(bucket) + floor)
            .sum();
        let share = mine / (mine + others) * f64::from(WHOLE_SHARE_PPM);
        (share.floor() as u32).min(WHOLE_SHARE_PPM)
    }

    /// The next heartbeat of this instance, named `instance`, at `now_ms` with `demand`: it
    /// counts every live member as the view holds them now, and its demand bounds this
    /// instance's claims until it is read back. Compute the shares it speaks for after this,
    /// under the same lock, before sending it.
    pub fn next_heartbeat(&mut self, instance: &str, now_ms: i64, demand: BTreeMap<String, f64>) -> Heartbeat {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(
            seq,
            Pending {
                sent_at_ms: now_ms,
                demand: demand.clone(),
            },
        );
        let counted = self.live().map(|(key, member)| (key.clone(), member.offset)).collect();
        Heartbeat {
            version: HEARTBEAT_VERSION,
            instance: instance.to_string(),
            seq,
            at_ms: now_ms,
            demand,
            counted,
        }
    }

    /// A heartbeat that could not be sent: it bounds no claim.
    pub fn not_sent(&mut self, seq: u64) {
        self.pending.remove(&seq);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: i64 = 3000;
    const RATE: f64 = 300.0;

    /// A fleet simulated over one log: every member reads every record in order, at once
    /// (`deliver`), or only up to some point (`deliver_to`).
    struct Fleet {
        views: Vec<FleetView>,
        log: Vec<(String, Option<Heartbeat>)>,
        read: Vec<usize>,
    }

    impl Fleet {
        fn new(names: &[&str]) -> Fleet {
            Fleet {
                views: names.iter().map(|name| FleetView::new(name, TIMEOUT, 10_000)).collect(),
                log: Vec::new(),
                read: vec![0; names.len()],
            }
        }

        /// Member `index` sends a heartbeat at `now` with `demand` for bucket `l`.
        fn beat(&mut self, index: usize, now: i64, demand: f64) {
            let view = &mut self.views[index];
            let heartbeat = view.next_heartbeat("i", now, BTreeMap::from([("l".to_string(), demand)]));
            self.log.push((view.me().to_string(), Some(heartbeat)));
        }

        fn deliver_to(&mut self, index: usize) {
            while self.read[index] < self.log.len() {
                let at = self.read[index];
                let (key, heartbeat) = self.log[at].clone();
                self.views[index].apply(at as i64, &key, heartbeat);
                self.read[index] += 1;
            }
        }

        fn deliver(&mut self) {
            for index in 0..self.views.len() {
                self.deliver_to(index);
            }
        }

        /// Every member beats with its demand, then everyone reads everything, `rounds` times.
        fn settle(&mut self, now: &mut i64, demands: &[f64], rounds: usize) {
            for _ in 0..rounds {
                *now += 250;
                for (index, demand) in demands.iter().enumerate() {
                    self.beat(index, *now, *demand);
                }
                self.deliver();
                for view in &mut self.views {
                    view.prune(*now);
                }
            }
        }

        fn shares(&self) -> Vec<u32> {
            self.views.iter().map(|view| view.share_ppm("l", RATE)).collect()
        }
    }

    fn total(shares: &[u32]) -> u32 {
        shares.iter().sum()
    }

    #[test]
    fn a_lone_instance_holds_the_whole_bucket_before_and_after_joining() {
        let mut fleet = Fleet::new(&["a"]);
        assert_eq!(fleet.shares(), [WHOLE_SHARE_PPM], "not joined: a single instance");
        let mut now = 0;
        fleet.settle(&mut now, &[500.0], 3);
        assert!(fleet.views[0].joined());
        assert_eq!(fleet.shares(), [WHOLE_SHARE_PPM]);
        assert_eq!(fleet.views[0].member_count(), 1);
    }

    #[test]
    fn skewed_demand_is_divided_in_proportion_with_a_floor() {
        let mut fleet = Fleet::new(&["a", "b", "c"]);
        let mut now = 0;
        // 80/15/5 of 600 requests per second.
        fleet.settle(&mut now, &[480.0, 90.0, 30.0], 4);
        let shares = fleet.shares();
        assert!(
            total(&shares) <= WHOLE_SHARE_PPM && total(&shares) > WHOLE_SHARE_PPM - 10,
            "{shares:?}"
        );
        let floor = FLOOR_FRACTION * RATE;
        let weights = [480.0 + floor, 90.0 + floor, 30.0 + floor];
        let sum: f64 = weights.iter().sum();
        for (share, weight) in shares.iter().zip(weights) {
            let expected = weight / sum * 1e6;
            assert!((f64::from(*share) - expected).abs() < 2.0, "{shares:?}");
        }
        // The idle-ish member still gets more than its bare proportion: the floor.
        assert!(f64::from(shares[2]) > 30.0 / 600.0 * 1e6);
        for view in &fleet.views {
            assert_eq!(view.member_count(), 3);
        }
    }

    #[test]
    fn idle_members_share_equally() {
        let mut fleet = Fleet::new(&["a", "b", "c"]);
        let mut now = 0;
        fleet.settle(&mut now, &[0.0, 0.0, 0.0], 3);
        assert_eq!(fleet.shares(), [333_333, 333_333, 333_333]);
    }

    #[test]
    fn a_member_joining_holds_nothing_until_everyone_counts_it() {
        let mut fleet = Fleet::new(&["a", "b", "c"]);
        let mut now = 0;
        // a and b run; c has not started.
        for _ in 0..3 {
            now += 250;
            fleet.beat(0, now, 200.0);
            fleet.beat(1, now, 200.0);
            fleet.deliver_to(0);
            fleet.deliver_to(1);
        }
        assert_eq!(fleet.views[0].share_ppm("l", RATE), 500_000);
        // c starts: reads the log, sends its first heartbeat, reads it back.
        now += 10;
        fleet.deliver_to(2);
        fleet.beat(2, now, 0.0);
        fleet.deliver_to(2);
        assert!(fleet.views[2].joined() && fleet.views[2].has_company());
        assert_eq!(fleet.views[2].share_ppm("l", RATE), 0, "a and b do not count c yet");
        assert!(!fleet.views[2].counted());
        assert_eq!(
            fleet.views[2].presumed_demand(),
            BTreeMap::from([("l".to_string(), 200.0)])
        );
        // a and b read c's heartbeat: their shares drop at once (c weighs its floor at least).
        fleet.deliver_to(0);
        fleet.deliver_to(1);
        let shares = fleet.shares();
        assert!(shares[0] < 500_000 && shares[2] == 0, "{shares:?}");
        assert!(total(&shares) <= WHOLE_SHARE_PPM);
        // a counts c in its next heartbeat, b not yet: c still holds nothing.
        now += 250;
        fleet.beat(0, now, 200.0);
        fleet.deliver_to(2);
        assert_eq!(fleet.views[2].share_ppm("l", RATE), 0);
        fleet.beat(1, now, 200.0);
        fleet.deliver_to(2);
        assert!(fleet.views[2].counted());
        assert!(fleet.views[2].share_ppm("l", RATE) > 0);
        assert!(total(&fleet.shares()) <= WHOLE_SHARE_PPM);
        // c gets busy: after a few rounds the bucket is divided equally.
        fleet.deliver();
        fleet.settle(&mut now, &[200.0, 200.0, 200.0], 4);
        assert_eq!(fleet.shares(), [333_333, 333_333, 333_333]);
    }

    #[test]
    fn a_member_leaving_gives_its_share_back() {
        let mut fleet = Fleet::new(&["a", "b", "c"]);
        let mut now = 0;
        fleet.settle(&mut now, &[100.0, 100.0, 100.0], 3);
        // c leaves cleanly: a tombstone.
        fleet.log.push(("c".to_string(), None));
        fleet.deliver();
        let views = &fleet.views;
        assert_eq!(views[0].share_ppm("l", RATE), 500_000);
        assert_eq!(views[1].share_ppm("l", RATE), 500_000);
        assert_eq!(views[0].member_count(), 2);
    }

    #[test]
    fn a_stale_member_is_dropped_after_the_timeout_only() {
        let mut fleet = Fleet::new(&["a", "b", "c"]);
        let mut now = 0;
        fleet.settle(&mut now, &[100.0, 100.0, 100.0], 3);
        // c stops (killed): a and b keep beating.
        let mut rounds = 0;
        while fleet.views[0].member_count() == 3 {
            now += 250;
            rounds += 1;
            fleet.beat(0, now, 100.0);
            fleet.beat(1, now, 100.0);
            fleet.deliver_to(0);
            fleet.deliver_to(1);
            fleet.views[0].prune(now);
            fleet.views[1].prune(now);
            let shares = [fleet.views[0].share_ppm("l", RATE), fleet.views[1].share_ppm("l", RATE)];
            if fleet.views[0].member_count() == 3 {
                assert_eq!(shares, [333_333, 333_333], "c still counted at {now}");
            }
            assert!(rounds < 20);
        }
        // Dropped once its last heartbeat is older than the timeout, not before.
        assert_eq!(rounds, (TIMEOUT / 250 + 1) as usize);
        assert_eq!(fleet.views[0].share_ppm("l", RATE), 500_000);
        assert_eq!(fleet.views[1].share_ppm("l", RATE), 500_000);
    }

    #[test]
    fn an_instance_whose_heartbeats_stop_coming_back_keeps_its_shares() {
        let mut fleet = Fleet::new(&["a", "b"]);
        let mut now = 0;
        fleet.settle(&mut now, &[300.0, 100.0], 3);
        let before = fleet.views[0].share_ppm("l", RATE);
        // Kafka unreachable for a: its heartbeats are sent but nothing is read back, for far
        // longer than the timeout. b is not dropped: a's clock does not move.
        for _ in 0..40 {
            now += 250;
            let _ = fleet.views[0].next_heartbeat("a", now, BTreeMap::from([("l".to_string(), 300.0)]));
            fleet.views[0].prune(now);
        }
        assert_eq!(fleet.views[0].member_count(), 2);
        assert_eq!(fleet.views[0].share_ppm("l", RATE), before);
    }

    /// Demand rising on every member at once: each sees its own new demand before the others
    /// do. Claims stay at what the others count, so the shares never add up to more than one.
    #[test]
    fn shares_never_add_up_to_more_than_the_bucket_while_demand_moves() {
        let mut fleet = Fleet::new(&["a", "b", "c"]);
        let mut now = 0;
        fleet.settle(&mut now, &[0.0, 0.0, 0.0], 3);
        let patterns: [[f64; 3]; 6] = [
            [1000.0, 1000.0, 1000.0],
            [0.0, 1000.0, 0.0],
            [1000.0, 0.0, 1000.0],
            [800.0, 150.0, 50.0],
            [50.0, 150.0, 800.0],
            [0.0, 0.0, 0.0],
        ];
        for (round, demands) in patterns.iter().cycle().take(30).enumerate() {
            now += 250;
            // Members beat and read in different orders each round; shares are checked after
            // every single step.
            for step in 0..3 {
                let index = (round + step) % 3;
                fleet.beat(index, now, demands[index]);
                fleet.deliver_to(index);
                assert!(
                    total(&fleet.shares()) <= WHOLE_SHARE_PPM,
                    "round {round}: {:?}",
                    fleet.shares()
                );
            }
            fleet.deliver_to(round % 3);
            assert!(
                total(&fleet.shares()) <= WHOLE_SHARE_PPM,
                "round {round}: {:?}",
                fleet.shares()
            );
            fleet.deliver();
            assert!(
                total(&fleet.shares()) <= WHOLE_SHARE_PPM,
                "round {round}: {:?}",
                fleet.shares()
            );
        }
    }

    #[test]
    fn heartbeats_are_json_with_a_version() {
        let mut view = FleetView::new("a/1", TIMEOUT, 10_000);
        let heartbeat = view.next_heartbeat("a", 5, BTreeMap::from([("l".to_string(), 1.5)]));
        let text = serde_json::to_string(&heartbeat).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"instance":"a","seq":0,"at_ms":5,"demand":{"l":1.5},"counted":{}}"#
        );
        assert_eq!(serde_json::from_str::<Heartbeat>(&text).unwrap(), heartbeat);
    }
}
