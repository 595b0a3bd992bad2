//! # ember-data
//!
//! Real datasets in their real formats, and image augmentation with torchvision's definitions.
//!
//! * [`mnist`]: MNIST and Fashion-MNIST from the official IDX files (gzipped or not).
//! * [`cifar`]: CIFAR-10 and CIFAR-100 (fine or coarse labels) from the official binary format.
//! * [`folder`]: ImageFolder (one sub-folder per class, JPEG/PNG), from a directory or a `.tar.gz`.
//! * [`source`]: datasets by name (`mnist`, `cifar10`, `folder:PATH`...), downloaded with a
//!   progress bar and a checksum when missing ([`download`]).
//! * [`grid`]: a PNG of originals beside their augmented versions.
//! * [`split`]: seeded, optionally stratified, train/validation splits.
//! * [`loader`]: a parallel loader whose batches depend only on the seed.
//! * [`transform`]: flips, crops, resizes, colour jitter, normalisation, erasing and presets,
//!   seeded per item.
//!
//! Every dataset is a Burn [`Dataset`](burn::data::dataset::Dataset) of [`ImageItem`]s; every
//! problem with the bytes on disk is a [`DataError`] naming the file (and record) and what was
//! expected, never a panic.

pub mod cifar;
pub mod download;
pub mod error;
pub mod folder;
pub mod grid;
pub mod idx;
pub mod image;
pub mod loader;
pub mod mnist;
pub mod names;
pub mod source;
pub mod split;
pub mod transform;

pub use error::DataError;
pub use image::{Image, ImageItem};
pub use source::DatasetSpec;

/// Which part of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// The training set.
    Train,
    /// The official test set.
    Test,
}

/// What every Ember dataset tells about itself.
pub trait ClassificationDataset: burn::data::dataset::Dataset<ImageItem> {
    /// Class names, indexed by label.
    fn classes(&self) -> &[String];
    /// Label of item `index` without decoding its image (for stratified splits).
    fn label(&self, index: usize) -> Option<usize>;
    /// Where item `index` comes from, when that is a file a user can name (an ImageFolder's
    /// `class/image.jpg`): written to a run's `validation.txt`, so that another tool (the
    /// PyTorch parity script) can hold out exactly the same images.
    fn source(&self, _index: usize) -> Option<String> {
        None
    }
}
