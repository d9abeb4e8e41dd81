//! The leaky bucket check: accepted, refused, and shared by two threads (every HTTP worker
//! shares a listener's bucket).
//!
//! cargo bench --bench rate_limit -- --warm-up-time 1 --measurement-time 2

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use hookpipe::pipeline::rate_limit::bucket::LeakyBucket;

fn bench_bucket(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate_limit");
    group.throughput(Throughput::Elements(1));

    // Refill outpaces the clock steps, so every call is accepted.
    let open = LeakyBucket::new(u32::MAX, u32::MAX);
    let mut now = 0u64;
    group.bench_function("accepted", |b| {
        b.iter(|| {
            now += 1_000;
            black_box(open.try_acquire(black_box(now)))
        })
    });

    // The default bucket, drained and with a frozen clock: every call is a 429.
    let drained = LeakyBucket::new(1000, 300);
    while drained.try_acquire(0).is_ok() {}
    group.bench_function("refused", |b| b.iter(|| black_box(drained.try_acquire(black_box(0)))));

    // Two threads hammering one bucket (the machine has 2 cores): time per call per thread.
    let shared = Arc::new(LeakyBucket::new(u32::MAX, u32::MAX));
    group.bench_function("contended_2_threads", |b| {
        b.iter_custom(|iterations| {
            let origin = Instant::now();
            let other = {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    for i in 0..iterations {
                        black_box(shared.try_acquire(i * 1_000).is_ok());
                    }
                })
            };
            let start = Instant::now();
            for i in 0..iterations {
                black_box(shared.try_acquire(i * 1_000).is_ok());
            }
            let mine = start.elapsed();
            other.join().expect("bench thread");
            // Count the slower of the two threads, without the spawn.
            (origin.elapsed() - (start - origin))
                .max(mine)
                .max(Duration::from_nanos(1))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_bucket);
criterion_main!(benches);
