//! Forward and forward+backward throughput (images/s) of every zoo model on the CPU backend.
//!
//! `cargo bench --bench models` (all models; the 224x224 ones take a while on 2 cores), or
//! `cargo bench --bench models -- resnet18_cifar` for one; `EMBER_BENCH_BATCH=4` for another
//! batch size (default 32), `EMBER_BENCH_BACKEND=wgpu` for another backend. Criterion reports
//! throughput in elements/s, here images/s. `benches/torch_models.py` measures PyTorch on the
//! same models; results go to docs/benchmarks.md.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ember::models::registry::entries;
use ember::train::Backend;
use std::time::Duration;

/// Batch size unless `EMBER_BENCH_BATCH` says otherwise: a training-sized batch.
const DEFAULT_BATCH: usize = 32;

fn bench_models(c: &mut Criterion) {
    let backend = std::env::var("EMBER_BENCH_BACKEND")
        .ok()
        .and_then(|s| s.parse::<Backend>().ok())
        .unwrap_or(Backend::Flex);
    let batch: usize = std::env::var("EMBER_BENCH_BATCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_BATCH);
    let device = backend.device().expect("backend compiled in");
    device.seed(0);
    let train_device = device.clone().autodiff();

    let mut group = c.benchmark_group(format!("models/{backend}"));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(batch as u64));

    for entry in entries() {
        let [ch, h, w] = entry.config.canonical_input();
        let id = format!("{} {ch}x{h}x{w} b{batch}", entry.name);
        let model = entry
            .config
            .init(&device)
            .expect("registry configs are valid");
        let images =
            Tensor::<4>::random([batch, ch, h, w], Distribution::Normal(0.0, 1.0), &device);
        group.bench_function(BenchmarkId::new("forward", &id), |b| {
            b.iter(|| {
                let logits = model.forward(images.clone());
                logits.into_data()
            })
        });

        let model = entry.config.init(&train_device).expect("valid");
        let images = Tensor::<4>::random(
            [batch, ch, h, w],
            Distribution::Normal(0.0, 1.0),
            &train_device,
        );
        group.bench_function(BenchmarkId::new("forward+backward", &id), |b| {
            b.iter(|| {
                let loss = model.forward(images.clone()).sum();
                loss.backward()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_models);
criterion_main!(benches);
