//! A data loader whose batches depend only on the seed, not on the number of workers.
//!
//! Written by hand because Burn's multi-threaded loader hands each worker a slice of the
//! dataset and yields batches in whatever order the workers finish, so two workers give other
//! batches than one. Here the batch order is fixed by a seeded shuffle of the indices, batch
//! `i` is built by worker `i mod W`, and batches are yielded in order; each item's augmentation
//! is seeded by `(seed, epoch, index)`. Decoding and augmentation run in the workers, off the
//! training thread, with two batches of prefetch per worker.

use crate::transform::{Transform, apply_all};
use crate::{DataError, ImageItem};
use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

/// A batch of images and their class indices.
#[derive(Debug, Clone)]
pub struct ImageBatch {
    /// `[N, C, H, W]`.
    pub images: Tensor<4>,
    /// `[N]` class indices.
    pub targets: Tensor<1, Int>,
}

/// How a loader walks its dataset.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Items per batch.
    pub batch_size: usize,
    /// Reshuffle every epoch (seeded); otherwise dataset order.
    pub shuffle: bool,
    /// Seed of the shuffles and of every item's augmentation.
    pub seed: u64,
    /// Worker threads; 0 builds batches on the calling thread.
    pub workers: usize,
    /// Drop a last, smaller batch.
    pub drop_last: bool,
    /// Batches of the whole run, when it ends part-way through an epoch (airbench's 9.9
    /// epochs): epoch `e` (0-based) yields at most `total_batches - e * num_batches()`.
    pub total_batches: Option<u64>,
    /// Data-parallel training: this process's part of every batch, `(rank, ranks)`. The
    /// batches are the single process's (same order, same augmentation of each image); rank
    /// `r` builds items `[r L / N, (r + 1) L / N)` of each batch of `L` (a short last batch can
    /// leave a rank none: its batch then has no images). Progress counts whole batches.
    pub shard: Option<(usize, usize)>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            batch_size: 64,
            shuffle: true,
            seed: 0,
            workers: 1,
            drop_last: false,
            total_batches: None,
            shard: None,
        }
    }
}

impl LoaderConfig {
    /// Dataset order, every item once: evaluation, feature maps, ensembles.
    pub fn in_order(batch_size: usize, workers: usize) -> Self {
        Self {
            batch_size,
            shuffle: false,
            seed: 0,
            workers,
            drop_last: false,
            total_batches: None,
            shard: None,
        }
    }
}

/// Items `[r L / N, (r + 1) L / N)` of `batch` (length `L`) for rank `r` of `N`: the ranks'
/// parts are disjoint, in order, cover the batch, and differ in length by at most one.
pub fn shard_of<T>(batch: &[T], rank: usize, ranks: usize) -> &[T] {
    let (l, n) = (batch.len(), ranks.max(1));
    &batch[rank * l / n..(rank + 1) * l / n]
}

/// The loader; implements Burn's [`DataLoader`], so it plugs into Burn's Learner.
pub struct ImageLoader {
    dataset: Arc<dyn Dataset<ImageItem>>,
    transforms: Arc<Vec<Transform>>,
    config: LoaderConfig,
    device: Device,
    /// Epochs started so far, shared by slices and device copies.
    epoch: Arc<AtomicU64>,
    /// The items this loader covers: `start..end` of the (shuffled) order.
    range: (usize, usize),
}

impl ImageLoader {
    /// A loader over `dataset` applying `transforms`, building batches on `device`.
    pub fn new(
        dataset: Arc<dyn Dataset<ImageItem>>,
        transforms: Vec<Transform>,
        config: LoaderConfig,
        device: Device,
    ) -> Result<Self, DataError> {
        if config.batch_size == 0 {
            return Err(DataError::Invalid("batch size must be at least 1".into()));
        }
        let n = dataset.len();
        Ok(Self {
            dataset,
            transforms: Arc::new(transforms),
            config,
            device,
            epoch: Arc::new(AtomicU64::new(0)),
            range: (0, n),
        })
    }

    /// The order of the item indices in `epoch`.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.config.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.config.seed ^ epoch.wrapping_mul(0x9e3779b97f4a7c15),
            );
            order.shuffle(&mut rng);
        }
        order[self.range.0..self.range.1].to_vec()
    }

    /// Sets the epoch counter (to resume a run where it stopped).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// Number of batches per epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.range.1 - self.range.0;
        if self.config.drop_last {
            n / self.config.batch_size
        } else {
            n.div_ceil(self.config.batch_size)
        }
    }
}

/// Everything a worker needs, cheap to clone.
#[derive(Clone)]
struct Job {
    dataset: Arc<dyn Dataset<ImageItem>>,
    transforms: Arc<Vec<Transform>>,
    seed: u64,
    epoch: u64,
    device: Device,
}

impl Job {
    fn item(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let item = self.dataset.get(index)?;
        let image = apply_all(
            &self.transforms,
            item.image,
            self.seed,
            self.epoch,
            index as u64,
        )
        .map_err(|e| DataError::Invalid(format!("item {index}: {e}")))?;
        Ok(ImageItem {
            image,
            label: item.label,
        })
    }

    fn batch(&self, indices: &[usize]) -> Result<ImageBatch, DatasetError> {
        if indices.is_empty() {
            // A rank's empty part of a short batch (`LoaderConfig::shard`).
            return Ok(ImageBatch {
                images: Tensor::zeros([0, 1, 1, 1], &self.device),
                targets: Tensor::zeros([0], &self.device),
            });
        }
        let items = indices
            .iter()
            .map(|&i| self.item(i).map(|it| (i, it)))
            .collect::<Result<Vec<_>, _>>()?;
        let (_, first) = &items[0];
        let (c, h, w) = (first.image.channels, first.image.height, first.image.width);
        let mut data = Vec::with_capacity(items.len() * c * h * w);
        let mut targets = Vec::with_capacity(items.len());
        for (index, item) in &items {
            let img = &item.image;
            if (img.channels, img.height, img.width) != (c, h, w) {
                return Err(DataError::WrongImage {
                    path: format!("item {index}").into(),
                    found: img.shape_str(),
                    expected: format!(
                        "{c}x{h}x{w} like the rest of its batch (add a Resize or crop transform)"
                    ),
                }
                .into());
            }
            data.extend_from_slice(&img.data);
            targets.push(item.label as i64);
        }
        let n = items.len();
        Ok(ImageBatch {
            images: Tensor::from_data(TensorData::new(data, [n, c, h, w]), &self.device),
            targets: Tensor::from_data(TensorData::new(targets, [n]), &self.device),
        })
    }
}

enum Pipeline {
    /// Batches built on demand by the iterator.
    Inline(Job),
    /// One channel per worker; batch `i` arrives on channel `i mod W`.
    Workers(Vec<Receiver<Result<ImageBatch, DatasetError>>>),
}

struct LoaderIter {
    pipeline: Pipeline,
    batches: Vec<Vec<usize>>,
    /// Items of each whole batch (a shard's progress counts whole batches).
    whole: Vec<usize>,
    next: usize,
    items_done: usize,
    items_total: usize,
}

impl Iterator for LoaderIter {
    type Item = Result<ImageBatch, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        let i = self.next;
        let indices = self.batches.get(i)?;
        let result = match &self.pipeline {
            Pipeline::Inline(job) => job.batch(indices),
            Pipeline::Workers(rx) => rx[i % rx.len()].recv().unwrap_or_else(|_| {
                Err(DataError::Invalid("a loader worker stopped (it panicked)".into()).into())
            }),
        };
        self.items_done += self.whole[i];
        self.next += 1;
        Some(result)
    }
}

impl DataLoaderIterator<ImageBatch> for LoaderIter {
    fn progress(&self) -> Progress {
        Progress::new(self.items_done, self.items_total, Some("images".into()))
    }
}

impl DataLoader<ImageBatch> for ImageLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst);
        let order = self.order(epoch);
        let mut batches: Vec<Vec<usize>> = order
            .chunks(self.config.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if self.config.drop_last
            && batches
                .last()
                .is_some_and(|b| b.len() < self.config.batch_size)
        {
            batches.pop();
        }
        if let Some(total) = self.config.total_batches {
            let left = total.saturating_sub(epoch * batches.len() as u64);
            batches.truncate(left.min(batches.len() as u64) as usize);
        }
        let whole: Vec<usize> = batches.iter().map(Vec::len).collect();
        let items_total = whole.iter().sum();
        if let Some((rank, ranks)) = self.config.shard {
            for b in &mut batches {
                *b = shard_of(b, rank, ranks).to_vec();
            }
        }
        let job = Job {
            dataset: self.dataset.clone(),
            transforms: self.transforms.clone(),
            seed: self.config.seed,
            epoch,
            device: self.device.clone(),
        };
        let pipeline = if self.config.workers == 0 {
            Pipeline::Inline(job)
        } else {
            let workers = self.config.workers;
            let receivers = (0..workers)
                .map(|w| {
                    let (tx, rx) = sync_channel(2);
                    let job = job.clone();
                    let mine: Vec<Vec<usize>> =
                        batches.iter().skip(w).step_by(workers).cloned().collect();
                    std::thread::spawn(move || {
                        for indices in mine {
                            // A closed channel means the epoch was abandoned: stop quietly.
                            if tx.send(job.batch(&indices)).is_err() {
                                break;
                            }
                        }
                    });
                    rx
                })
                .collect();
            Pipeline::Workers(receivers)
        };
        Box::new(LoaderIter {
            pipeline,
            batches,
            whole,
            next: 0,
            items_done: 0,
            items_total,
        })
    }

    fn num_items(&self) -> usize {
        self.range.1 - self.range.0
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            dataset: self.dataset.clone(),
            transforms: self.transforms.clone(),
            config: self.config.clone(),
            device: device.clone(),
            epoch: self.epoch.clone(),
            range: self.range,
        })
    }

    /// A part of every epoch's order, for one device of Burn's multi-device strategy, which
    /// slices the loader once and then iterates every slice once per epoch. Each slice counts
    /// its epochs itself, from the loader's epoch when sliced: with one shared counter, each
    /// slice's `iter` would advance it, so the slices would cut different shuffles and some
    /// images would be seen twice in an epoch and others not at all.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let begin = (self.range.0 + start).min(self.range.1);
        let end = (self.range.0 + end).min(self.range.1).max(begin);
        Arc::new(Self {
            dataset: self.dataset.clone(),
            transforms: self.transforms.clone(),
            config: self.config.clone(),
            device: self.device.clone(),
            epoch: Arc::new(AtomicU64::new(self.epoch.load(Ordering::SeqCst))),
            range: (begin, end),
        })
    }
}
