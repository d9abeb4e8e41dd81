//! What one stage of the actor chain costs: a request forwarded through N no-op stages
//! (`Stage::forward`: mailbox permit, actix envelope, the handler's boxed future forwarding to
//! the next stage) on one actix thread, as the chain runs on each HTTP thread; the last stage
//! answers the request's `Reply`, which the sender awaits, as the Receiver does. The difference
//! between 5 and 1 stages, divided by 4, is the cost of a hop.
//!
//! cargo bench --bench stage -- --warm-up-time 1 --measurement-time 3

use std::time::{Duration, Instant};

use actix::prelude::*;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::future::join_all;

use hookpipe::pipeline::reply::Reply;
use hookpipe::pipeline::{Accepted, Admitted, Stage};

/// A request: the hops it made so far and its answer.
struct Ping {
    hops: usize,
    reply: Reply,
}

impl Message for Ping {
    type Result = ();
}

/// A stage that does nothing but forward to the next one (the last answers).
struct Hop {
    next: Option<Stage<Ping>>,
}

impl Actor for Hop {
    type Context = Context<Self>;
}

impl Handler<Admitted<Ping>> for Hop {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, admitted: Admitted<Ping>, _: &mut Context<Self>) -> Self::Result {
        let Ping { hops, reply } = admitted.into_message();
        match self.next.clone() {
            Some(next) => Box::pin(async move {
                let _ = next.forward(Ping { hops: hops + 1, reply }).await;
            }),
            None => {
                reply.accept(Accepted {
                    record_count: hops,
                    ..Accepted::default()
                });
                Box::pin(async {})
            }
        }
    }
}

fn chain(stages: usize) -> Stage<Ping> {
    let mut next = None;
    for _ in 0..stages {
        next = Some(Stage::start("bench", 1024, Hop { next }));
    }
    next.expect("at least one stage")
}

/// Sends one request into the chain and waits for its answer: the hops it made.
async fn request(entry: &Stage<Ping>) -> usize {
    let (reply, awaited) = Reply::new();
    let _ = entry.forward(Ping { hops: 1, reply }).await;
    awaited.outcome().await.map_or(0, |accepted| accepted.record_count)
}

fn bench_stages(c: &mut Criterion) {
    let system = actix::System::new();
    let mut group = c.benchmark_group("stage");
    group.throughput(Throughput::Elements(1));
    for stages in [1usize, 5] {
        let entry = system.block_on(async move { chain(stages) });
        assert_eq!(system.block_on(request(&entry)), stages, "every stage forwards once");
        // One message at a time: the latency of the chain.
        group.bench_function(format!("{stages}_stages/sequential"), |b| {
            b.iter_custom(|iterations| {
                let entry = entry.clone();
                system.block_on(async move {
                    let start = Instant::now();
                    for _ in 0..iterations {
                        std::hint::black_box(request(&entry).await);
                    }
                    start.elapsed()
                })
            })
        });
        // 64 in flight, as with 64 connections: time per message.
        group.bench_function(format!("{stages}_stages/64_in_flight"), |b| {
            b.iter_custom(|iterations| {
                let entry = entry.clone();
                system.block_on(async move {
                    let rounds = iterations.div_ceil(64);
                    let start = Instant::now();
                    for _ in 0..rounds {
                        join_all((0..64).map(|_| request(&entry))).await;
                    }
                    let per_round = start.elapsed() / rounds.max(1) as u32;
                    (per_round / 64 * iterations as u32).max(Duration::from_nanos(1))
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_stages);
criterion_main!(benches);
