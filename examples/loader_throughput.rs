//! Loader throughput in images/s: decode + augment + batch into tensors, as training sees it.
//!
//! ```sh
//! cargo run --release --example loader_throughput -- [IMAGEFOLDER] [IMAGES]
//! ```
//!
//! `IMAGEFOLDER` is a folder of class folders or a `.tar.gz` of one (default: the CIFAR-10
//! JPEGs in ../shared/data). Prints one JSON line per (preset, workers). Compare with
//! `benches/torchvision_loader.py`, which does the same with torchvision's DataLoader.

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use burn::data::dataloader::DataLoader;
use burn::prelude::*;
use ember::data::folder::ImageFolder;
use ember::data::loader::{ImageLoader, LoaderConfig};
use ember::data::transform::{Preset, Stats, Transform};
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = args
        .first()
        .cloned()
        .unwrap_or_else(|| "../shared/data/cifar10/cifar10-train-jpg.tar.gz".into());
    let images: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let folder = Arc::new(ImageFolder::open(std::path::Path::new(&root))?);
    let device = Device::flex();
    let stats = Stats::cifar10();
    // The cifar preset with each automatic policy after the flip (timm's order: geometric,
    // then the policy, then normalisation).
    let with_policy = |policy: Transform| {
        let mut t = Preset::Cifar.train([32, 32], &stats);
        t.insert(t.len() - 1, policy);
        t
    };
    let pipelines = [
        (
            "Cifar",
            Preset::Cifar.train([32, 32], &stats),
            [32, 32],
            images,
        ),
        (
            "Cifar+RandAugment(2,9)",
            with_policy(Transform::RandAugment {
                num_ops: 2,
                magnitude: 9,
                num_magnitude_bins: 31,
            }),
            [32, 32],
            images,
        ),
        (
            "Cifar+TrivialAugmentWide",
            with_policy(Transform::TrivialAugmentWide {
                num_magnitude_bins: 31,
            }),
            [32, 32],
            images,
        ),
        (
            "Imagenet",
            Preset::Imagenet.train([224, 224], &stats),
            [224, 224],
            images / 5,
        ),
    ];
    for (preset, transforms, size, n) in pipelines {
        for workers in [1, 2] {
            let config = LoaderConfig {
                batch_size: 128,
                shuffle: true,
                seed: 0,
                workers,
                drop_last: false,
                total_batches: None,
                shard: None,
            };
            let loader =
                ImageLoader::new(folder.clone(), transforms.clone(), config, device.clone())?;
            let start = Instant::now();
            let mut seen = 0;
            for batch in loader.iter() {
                let batch = batch?;
                seen += batch.targets.dims()[0];
                if seen >= n {
                    break;
                }
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{{\"loader\":\"ember\",\"preset\":\"{preset}\",\"size\":{},\"workers\":{workers},\"batch\":128,\"images\":{seen},\"seconds\":{secs:.3},\"images_per_s\":{:.0}}}",
                size[0],
                seen as f64 / secs
            );
        }
    }
    Ok(())
}
