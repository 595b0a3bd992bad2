//! ember-train's integration tests, one binary (each file under tests/ would link Burn again).

/// mimalloc, kept warm (feature `mimalloc`, on by default): as the `ember` command runs.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember_train::allocator::Allocator = ember_train::allocator::Allocator;

mod config;
mod corpus;
mod custom;
mod finetune;
mod multi_device;
mod optimizers;
mod recipes;
mod search;
mod training;
mod viz;
mod weights;
mod wgpu;

use ember_train::Backend;
use ember_train::config::{OptimizerKind, ScheduleKind, TrainConfig};
use std::path::{Path, PathBuf};

/// The MNIST subset the repository ships (`data/mnist-subset`).
pub fn mnist_subset() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")
}

/// A quick LeNet run on the MNIST subset (1,536 training images, 2 epochs of Adam with a
/// cosine schedule), on Flex with one loader thread and no progress lines: what the tests
/// change.
pub fn quick_mnist(out: &Path) -> TrainConfig {
    let mut c = TrainConfig {
        model: "lenet5_modern".into(),
        ..TrainConfig::default()
    };
    c.data.data_dir = Some(mnist_subset());
    c.data.train_limit = Some(1536);
    c.optim.optimizer = OptimizerKind::Adam;
    c.optim.lr = 2e-3;
    c.schedule.kind = ScheduleKind::Cosine;
    c.train_loop.epochs = 2;
    c.train_loop.batch_size = 32;
    c.runtime.backend = Backend::Flex;
    c.runtime.workers = 1;
    c.runtime.out = out.to_path_buf();
    c.runtime.log_every_secs = 1e9;
    c
}
