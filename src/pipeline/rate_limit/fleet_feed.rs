//! The fleet topic (`kafka.fleet_topic`) side of fleet-wide buckets (`fleet` is the division
//! itself): every `heartbeat_ms` this instance measures the demand on each of its buckets,
//! publishes its heartbeat (key: its member key, `<instance id>/<random id of this process>`;
//! always partition 0, so every instance reads all heartbeats in one order), and re-divides its
//! shares. Heartbeats are read on the follower thread into the [`FleetView`].
//!
//! Nothing here is on the request path: a request takes a token from its bucket as before (one
//! mutex, no network); only the bucket's capacity and refill change, once per heartbeat.
//!
//! At start, [`start`] waits (up to [`JOIN_TIMEOUT`]) until the instance's first heartbeat comes
//! back: alone, it keeps its buckets whole and full, exactly as a single instance; with company,
//! it starts with empty buckets and no share until every live member counts it. Without the
//! topic (missing: asked of the brokers first, so the start does not wait for it; or unreadable)
//! it serves with whole buckets (as a single instance, logged) and joins once it can.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use super::bucket::{BucketShares, LeakyBucket, SharedClock};
use super::fleet::{FleetView, Heartbeat, GLOBAL};
use crate::config::Settings;
use crate::kafka::state::{Follower, Sink};
use crate::pipeline::listener::Registry;
use crate::pipeline::unix_millis_now;
use crate::telemetry::events::{FleetHeartbeat, FleetMembersChanged, FleetShare, FleetShareRemoved};

/// How long a start waits for the instance's first heartbeat to come back.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait before trying to open a missing or unreadable fleet topic again.
const OPEN_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// Weight of the latest heartbeat period in the smoothed demand.
const DEMAND_SMOOTHING: f64 = 0.3;
/// Demand below this (requests per second) is not published: the bucket is idle here.
const IDLE_DEMAND: f64 = 0.01;
/// The published demand of a bucket changes only when the measured one moves further than this
/// (relative) from it. A claim is the smallest demand published lately, so a demand that
/// jitters from one heartbeat to the next would make every instance claim less than the others
/// count it with, and the fleet accept less than the rate; with steady published values,
/// claims are exactly what the others count.
const DEMAND_HYSTERESIS: f64 = 0.2;
/// For this long after joining, an instance publishes for a bucket it has seen no traffic on yet
/// the mean demand of the others (`FleetView::presumed_demand`): it is counted with about its
/// part of the traffic from its first heartbeat on, rather than with nothing until it has
/// measured traffic a balancer only starts sending once it is ready. Its first traffic replaces
/// the presumption with the measured rate.
const WARM_UP: Duration = Duration::from_secs(5);
/// How long a leaving instance waits for its tombstone to be acknowledged.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(2);

/// The buckets this instance divides with the fleet.
struct Attached {
    registry: Weak<Registry>,
    global: Option<Arc<LeakyBucket>>,
}

/// Smoothed demand per bucket, what was last published of it, and when it was last measured.
struct Demand {
    rates: HashMap<String, f64>,
    published: HashMap<String, f64>,
    measured_at: Instant,
}

/// This instance's membership of the fleet: its view, its heartbeats, its shares.
pub struct FleetLimiter {
    instance: String,
    key: String,
    view: Mutex<FleetView>,
    follower: OnceLock<Follower>,
    attached: OnceLock<Attached>,
    clock: SharedClock,
    demand: Mutex<Demand>,
    /// Set when the instance joined a fleet with company: its buckets are emptied once attached.
    empty_on_join: AtomicBool,
    left: AtomicBool,
    members: AtomicUsize,
    /// When this instance's first heartbeat came back.
    joined_at: OnceLock<Instant>,
    /// Set when the fleet topic is missing or could not be opened: the start does not wait.
    topic_unavailable: AtomicBool,
    /// Listeners whose share series `hookpipe_rate_limit_fleet_share` is set.
    share_series: Mutex<BTreeSet<String>>,
}

/// Opens the fleet topic and joins the fleet in the background, waiting up to [`JOIN_TIMEOUT`]
/// for the join; `None` when fleet limits are off (`server.fleet_rate_limit.enabled = false`,
/// or the embedded cluster). Must run on the actix runtime.
pub async fn start(
    settings: &Settings,
    bootstrap: &str,
    clock: SharedClock,
    instance: &str,
) -> Option<Arc<FleetLimiter>> {
    let fleet = &settings.server.fleet_rate_limit;
    if !fleet.enabled || settings.kafka.brokers.trim().is_empty() {
        return None;
    }
    let key = format!("{instance}/{}", uuid::Uuid::new_v4().simple());
    let pending_expiry_ms = (settings.kafka.message_timeout_ms + fleet.member_timeout_ms) as i64;
    let limiter = Arc::new(FleetLimiter {
        instance: instance.to_string(),
        view: Mutex::new(FleetView::new(&key, fleet.member_timeout_ms as i64, pending_expiry_ms)),
        key,
        follower: OnceLock::new(),
        attached: OnceLock::new(),
        clock,
        demand: Mutex::new(Demand {
            rates: HashMap::new(),
            published: HashMap::new(),
            measured_at: Instant::now(),
        }),
        empty_on_join: AtomicBool::new(false),
        left: AtomicBool::new(false),
        members: AtomicUsize::new(1),
        joined_at: OnceLock::new(),
        topic_unavailable: AtomicBool::new(false),
        share_series: Mutex::new(BTreeSet::new()),
    });
    crate::telemetry::METRICS.rate_limit_fleet_members.set(1);
    spawn_heartbeats(
        Arc::downgrade(&limiter),
        settings.clone(),
        bootstrap.to_string(),
        Duration::from_millis(fleet.heartbeat_ms),
    );
    // Not ready (the starting server answers /readyz 503) until every live member counts it.
    let deadline = Instant::now() + JOIN_TIMEOUT;
    while !limiter.lock_view().counted() {
        if limiter.topic_unavailable.load(Ordering::Relaxed) {
            // Logged by the opener: nothing to join, so nothing to wait for.
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!(topic = %settings.kafka.fleet_topic, timeout_ms = JOIN_TIMEOUT.as_millis() as u64,
                "not joined to the fleet yet: holding every rate-limit bucket whole (as a single instance) until it is");
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    Some(limiter)
}

/// Opens the topic (retrying), then beats every `period` until the limiter goes or leaves.
fn spawn_heartbeats(limiter: Weak<FleetLimiter>, settings: Settings, bootstrap: String, period: Duration) {
    actix_web::rt::spawn(async move {
        let kafka = &settings.kafka;
        let spec = crate::kafka::topics::fleet_topic(kafka);
        let mut warned = false;
        loop {
            let Some(alive) = limiter.upgrade() else { return };
            let sink = Arc::new(ViewSink {
                limiter: Arc::downgrade(&alive),
            });
            // A missing topic is known at once; opening it would wait for it to show up.
            let opened = match crate::kafka::topics::exists(kafka, &bootstrap, &spec.name).await {
                Ok(false) => Err(format!(
                    "topic {} does not exist (kafka.create_topics = false?)",
                    spec.name
                )),
                Ok(true) | Err(_) => Follower::open(kafka, &bootstrap, &spec.name, spec.cleanup, false, sink).await,
            };
            match opened {
                Ok(follower) => {
                    let _ = alive.follower.set(follower);
                    if warned {
                        tracing::info!(topic = %spec.name, "fleet topic open: joining the fleet's rate limits");
                    }
                    break;
                }
                Err(error) => {
                    alive.topic_unavailable.store(true, Ordering::Relaxed);
                    if !warned {
                        tracing::warn!(topic = %spec.name, %error,
                            "cannot open the fleet topic; holding rate-limit buckets whole (as a single instance), retrying");
                        warned = true;
                    }
                }
            }
            drop(alive);
            actix_web::rt::time::sleep(OPEN_RETRY_INTERVAL).await;
        }
        let mut ticks = actix_web::rt::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(alive) = limiter.upgrade() else { return };
            if alive.left.load(Ordering::Relaxed) {
                return;
            }
            alive.beat();
        }
    });
}

impl FleetLimiter {
    fn lock_view(&self) -> MutexGuard<'_, FleetView> {
        // The view is never left half-updated.
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This instance's member key in the topic.
    pub fn member_key(&self) -> &str {
        &self.key
    }

    /// Divides `registry`'s buckets and `global` with the fleet from now on (once, at start).
    pub fn attach(&self, registry: &Arc<Registry>, global: Option<Arc<LeakyBucket>>) {
        let _ = self.attached.set(Attached {
            registry: Arc::downgrade(registry),
            global,
        });
        let buckets = self.buckets();
        let view = self.lock_view();
        self.apply_shares(&view, &buckets);
    }

    /// The buckets to divide: (key in heartbeats, bucket, listener id).
    fn buckets(&self) -> Vec<(String, Arc<LeakyBucket>, Option<String>)> {
        let Some(attached) = self.attached.get() else {
            return Vec::new();
        };
        let mut buckets: Vec<_> = attached
            .registry
            .upgrade()
            .map(|registry| registry.all())
            .unwrap_or_default()
            .into_iter()
            .map(|listener| {
                (
                    listener.id().to_string(),
                    listener.bucket.clone(),
                    Some(listener.id().to_string()),
                )
            })
            .collect();
        if let Some(global) = &attached.global {
            buckets.push((GLOBAL.to_string(), global.clone(), None));
        }
        buckets
    }

    /// Sets every bucket's share from `view` (nothing before the join: buckets stay whole), and
    /// empties them when the instance just joined a fleet with company.
    fn apply_shares(&self, view: &FleetView, buckets: &[(String, Arc<LeakyBucket>, Option<String>)]) {
        if !view.joined() || self.attached.get().is_none() {
            return;
        }
        let now = self.clock.now_nanos();
        let empty = self.empty_on_join.swap(false, Ordering::Relaxed);
        let mut series = self.share_series.lock().unwrap_or_else(PoisonError::into_inner);
        let listeners: BTreeSet<String> = buckets.iter().filter_map(|(_, _, listener)| listener.clone()).collect();
        // Listeners deleted since (`forget` removes them at once; this catches a division
        // that raced the deletion with the buckets of before).
        for gone in series.difference(&listeners) {
            FleetShareRemoved { listener: gone }.emit();
        }
        *series = listeners;
        drop(series);
        for (key, bucket, listener) in buckets {
            let share_ppm = view.share_ppm(key, f64::from(bucket.refill_per_sec()));
            bucket.set_share(share_ppm, now);
            if empty {
                bucket.empty(now);
            }
            FleetShare {
                listener: listener.as_deref(),
                share_ppm,
            }
            .emit();
        }
        let members = view.member_count();
        let previous = self.members.swap(members, Ordering::Relaxed);
        if previous != members {
            FleetMembersChanged {
                members,
                previous,
                member: &self.key,
            }
            .emit();
        }
    }

    /// Demand per bucket since the last heartbeat, smoothed, in requests per second: what to
    /// publish (see [`DEMAND_HYSTERESIS`]); at least `presumed` (see [`WARM_UP`]).
    fn measure(
        &self,
        buckets: &[(String, Arc<LeakyBucket>, Option<String>)],
        presumed: &BTreeMap<String, f64>,
    ) -> BTreeMap<String, f64> {
        let mut demand = self.demand.lock().unwrap_or_else(PoisonError::into_inner);
        let elapsed = demand.measured_at.elapsed().as_secs_f64().max(1e-3);
        demand.measured_at = Instant::now();
        let mut rates = HashMap::with_capacity(buckets.len());
        let mut published = HashMap::with_capacity(buckets.len());
        for (key, bucket, _) in buckets {
            let attempts = bucket.take_attempts();
            let rate = attempts as f64 / elapsed;
            let smoothed = match demand.rates.get(key) {
                Some(previous) => DEMAND_SMOOTHING * rate + (1.0 - DEMAND_SMOOTHING) * previous,
                // The first traffic here: its rate itself, not a ramp from nothing.
                None if attempts > 0 => rate,
                // None yet: what the others see, while warming up (`presumed` is empty after).
                None => continue,
            };
            rates.insert(key.clone(), smoothed);
            let before = demand.published.get(key).copied().unwrap_or(0.0);
            let now = published_demand(before, smoothed);
            if now > 0.0 {
                published.insert(key.clone(), now);
            }
        }
        // Buckets without traffic here yet (all of them before the buckets are attached, in the
        // first heartbeats of a start) are presumed to get the others' mean while warming up.
        for (key, presumed) in presumed {
            if !rates.contains_key(key) {
                published.insert(key.clone(), *presumed);
            }
        }
        demand.rates = rates;
        demand.published = published;
        demand
            .published
            .iter()
            .map(|(key, rate)| (key.clone(), *rate))
            .collect()
    }

    /// One heartbeat: measure, count the members, re-divide, publish.
    fn beat(&self) {
        let Some(follower) = self.follower.get() else { return };
        let buckets = self.buckets();
        let warming = self.joined_at.get().is_none_or(|at| at.elapsed() < WARM_UP);
        let presumed = match warming {
            true => self.lock_view().presumed_demand(),
            false => BTreeMap::new(),
        };
        let demand = self.measure(&buckets, &presumed);
        let now_ms = unix_millis_now();
        let (heartbeat, lag_ms) = {
            let mut view = self.lock_view();
            view.prune(now_ms);
            let heartbeat = view.next_heartbeat(&self.instance, now_ms, demand);
            // The shares this heartbeat speaks for (its `counted`), before it is sent.
            self.apply_shares(&view, &buckets);
            (heartbeat, view.newest_own_ms().map(|at| now_ms - at))
        };
        FleetHeartbeat {
            acknowledged: None,
            lag_ms: Some(lag_ms.unwrap_or(0)),
        }
        .emit();
        let bytes = serde_json::to_vec(&heartbeat).unwrap_or_default();
        // Nobody waits for the delivery (one lost heartbeat only delays a re-division), but its
        // outcome feeds the producer's availability: a heartbeat timed out while the broker was
        // away gets the handle replaced before librdkafka's bumped producer epoch reaches the
        // broker (Tansu 0.6 wedges on an epoch it never issued: README "Fault campaign").
        let outcome = |acknowledged| {
            FleetHeartbeat {
                acknowledged: Some(acknowledged),
                lag_ms: None,
            }
            .emit()
        };
        if let Err(error) = follower.enqueue_unawaited_to(Some(0), &self.key, Some(&bytes), outcome) {
            self.lock_view().not_sent(heartbeat.seq);
            outcome(false);
            tracing::debug!(%error, "heartbeat not sent");
        }
    }

    /// Leaves the fleet (after the server stopped): stops beating and publishes a tombstone, so
    /// the others re-divide at once instead of after the member timeout.
    pub async fn leave(&self) {
        self.left.store(true, Ordering::Relaxed);
        let Some(follower) = self.follower.get() else { return };
        match follower.enqueue_to(Some(0), &self.key, None) {
            Ok((delivery, _)) => {
                if !matches!(tokio::time::timeout(LEAVE_TIMEOUT, delivery).await, Ok(Ok(Ok(_)))) {
                    tracing::warn!(
                        "leaving the fleet not acknowledged; the others drop this instance after the member timeout"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot leave the fleet; the others drop this instance after the member timeout")
            }
        }
    }

    fn on_record(&self, offset: i64, key: &str, value: Option<&[u8]>) {
        let heartbeat = match value {
            None => None,
            Some(bytes) => match serde_json::from_slice::<Heartbeat>(bytes) {
                Ok(heartbeat) => Some(heartbeat),
                Err(error) => {
                    tracing::debug!(%key, offset, %error, "not a heartbeat; ignored");
                    return;
                }
            },
        };
        let joined = self.lock_view().apply(offset, key, heartbeat);
        if joined {
            // From now on the shares are the fleet's.
            let _ = self.joined_at.set(Instant::now());
            let buckets = self.buckets();
            let view = self.lock_view();
            self.empty_on_join.store(view.has_company(), Ordering::Relaxed);
            tracing::info!(member = %self.key, members = view.member_count(), "joined the fleet's rate limits");
            self.apply_shares(&view, &buckets);
        }
    }
}

/// The demand to publish, given what was published before and the smoothed measurement: kept
/// while the measurement stays within [`DEMAND_HYSTERESIS`] of it; 0 when idle.
fn published_demand(before: f64, measured: f64) -> f64 {
    if measured < IDLE_DEMAND {
        return 0.0;
    }
    if before > 0.0 && (measured - before).abs() <= DEMAND_HYSTERESIS * before {
        return before;
    }
    (measured * 100.0).round() / 100.0
}

impl BucketShares for FleetLimiter {
    fn adopt(&self, listener_id: &str, bucket: &LeakyBucket) {
        let view = self.lock_view();
        if view.joined() {
            let share_ppm = view.share_ppm(listener_id, f64::from(bucket.refill_per_sec()));
            bucket.set_share(share_ppm, self.clock.now_nanos());
        }
    }

    fn forget(&self, listener_id: &str) {
        let mut series = self.share_series.lock().unwrap_or_else(PoisonError::into_inner);
        if series.remove(listener_id) {
            FleetShareRemoved { listener: listener_id }.emit();
        }
    }
}

/// Feeds the follower's records into the view.
struct ViewSink {
    limiter: Weak<FleetLimiter>,
}

impl Sink for ViewSink {
    fn apply(&self, _key: &str, _value: Option<&[u8]>, _timestamp_ms: i64) {
        debug_assert!(false, "the follower calls apply_at");
    }

    fn apply_at(&self, offset: i64, key: &str, value: Option<&[u8]>, _timestamp_ms: i64) {
        if let Some(limiter) = self.limiter.upgrade() {
            limiter.on_record(offset, key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::rate_limit::bucket::MonotonicClock;
    use crate::pipeline::testing::settings;

    /// A limiter as `start` builds it, without Kafka (nothing beats; records are fed by hand).
    fn limiter(key: &str) -> Arc<FleetLimiter> {
        Arc::new(FleetLimiter {
            instance: "test".into(),
            key: key.into(),
            view: Mutex::new(FleetView::new(key, 3000, 10_000)),
            follower: OnceLock::new(),
            attached: OnceLock::new(),
            clock: Arc::new(MonotonicClock::default()),
            demand: Mutex::new(Demand {
                rates: HashMap::new(),
                published: HashMap::new(),
                measured_at: Instant::now(),
            }),
            empty_on_join: AtomicBool::new(false),
            left: AtomicBool::new(false),
            members: AtomicUsize::new(1),
            joined_at: OnceLock::new(),
            topic_unavailable: AtomicBool::new(false),
            share_series: Mutex::new(BTreeSet::new()),
        })
    }

    fn has_share_series(listener: &str) -> bool {
        let needle = format!("listener=\"{listener}\"");
        crate::telemetry::METRICS
            .render()
            .lines()
            .any(|line| line.starts_with("hookpipe_rate_limit_fleet_share{") && line.contains(&needle))
    }

    fn listeners(ids: &[&str]) -> crate::config::Settings {
        let toml: String = ids.iter().map(|id| format!("[[listeners]]\nid = \"{id}\"\n")).collect();
        settings(&toml)
    }

    #[test]
    fn the_share_series_of_a_deleted_listener_is_removed() {
        let (kept, deleted) = ("fleet-share-kept", "fleet-share-deleted");
        let registry =
            Arc::new(crate::pipeline::listener::Registry::from_settings(&listeners(&[kept, deleted])).unwrap());
        let limiter = limiter("me/1");
        registry.set_shares(limiter.clone());
        limiter.attach(&registry, None);
        // Its own first heartbeat read back: joined (alone), every bucket divided.
        let heartbeat = limiter
            .lock_view()
            .next_heartbeat("test", unix_millis_now(), BTreeMap::new());
        limiter.on_record(0, "me/1", Some(&serde_json::to_vec(&heartbeat).unwrap()));
        assert!(has_share_series(kept) && has_share_series(deleted));

        registry.rebuild(&listeners(&[kept]), Vec::new()).unwrap();
        assert!(!has_share_series(deleted), "removed with its listener");
        assert!(has_share_series(kept));
        // The next division does not bring it back, and removes one it raced with.
        limiter.share_series.lock().unwrap().insert("fleet-share-raced".into());
        FleetShare {
            listener: Some("fleet-share-raced"),
            share_ppm: 1,
        }
        .emit();
        let buckets = limiter.buckets();
        limiter.apply_shares(&limiter.lock_view(), &buckets);
        assert!(!has_share_series(deleted) && !has_share_series("fleet-share-raced"));
        assert!(has_share_series(kept));
    }

    #[test]
    fn published_demand_holds_still_while_the_measurement_jitters() {
        assert_eq!(published_demand(0.0, 100.0), 100.0);
        assert_eq!(published_demand(100.0, 115.0), 100.0);
        assert_eq!(published_demand(100.0, 85.0), 100.0);
        assert_eq!(published_demand(100.0, 130.0), 130.0);
        assert_eq!(published_demand(100.0, 70.004), 70.0);
        assert_eq!(published_demand(100.0, 0.001), 0.0, "idle");
        assert_eq!(published_demand(0.0, 0.005), 0.0);
    }
}
