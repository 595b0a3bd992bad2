//! Image augmentation with torchvision's definitions, so that results can be compared.
//!
//! Every transform takes the image and a random generator. The loader seeds that generator
//! from `(seed, epoch, item index)`, so an item is augmented the same way whichever worker
//! handles it: a run is reproducible whatever the number of workers.
//!
//! Written by hand: Burn has no flips, crops, colour jitter or erasing, and the `image` crate's
//! operations work on `u8` buffers without torchvision's sampling rules.

//! The files follow torchvision's `transforms/v2`: this one holds the [`Transform`] enum and
//! its `apply` (random parameters drawn, then a kernel applied), `geometry.rs` (flips, pads,
//! crops, resizing), `color.rs` (grey, jitter, normalisation), `erase.rs` (random erasing,
//! cutout) and `preset.rs` (dataset statistics and the named training pipelines).

mod auto;
mod color;
mod erase;
mod geometry;
mod preset;

pub use auto::{AugmentOp, adjust_sharpness, autocontrast, equalize, posterize, solarize};
pub use color::*;
pub use geometry::*;
pub use preset::{Augment, Preset, Stats};

use crate::Image;
use auto::{rand_augment, trivial_augment_wide};
use erase::{cutout, random_erasing};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Why a transform cannot apply to an image.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// A crop larger than the (padded) image.
    #[error("{transform}: crop {crop_h}x{crop_w} is larger than the image {h}x{w}")]
    CropTooLarge {
        /// The transform.
        transform: &'static str,
        /// Crop height.
        crop_h: usize,
        /// Crop width.
        crop_w: usize,
        /// Image height.
        h: usize,
        /// Image width.
        w: usize,
    },
    /// Mean/std of another length than the image has channels.
    #[error("normalize: {given} mean/std values for an image with {channels} channels")]
    ChannelMismatch {
        /// Values given.
        given: usize,
        /// Channels of the image.
        channels: usize,
    },
    /// A parameter out of its range.
    #[error("{0}")]
    Invalid(String),
}

/// How [`Transform::RandomCrop`] fills its padding (torchvision's `padding_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Zeros (torchvision `constant`, fill 0).
    #[default]
    Zero,
    /// Repeat the edge pixel.
    Edge,
    /// Mirror without repeating the edge: `c b | a b c d | c b`.
    Reflect,
}

/// One transform. Sizes are `[height, width]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Transform {
    /// Mirror left-right with probability `p`.
    RandomHorizontalFlip {
        /// Probability.
        p: f64,
    },
    /// Alternating flip (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds", section 3.6): half of
    /// the images, chosen once from the seed, are mirrored in even epochs and the other half in
    /// odd epochs, so every two epochs show each image both ways, where independent random
    /// flips repeat a view in half of the pairs. The choice depends on the seed, the item's
    /// index and the epoch's parity only (not on the per-item generator).
    AltFlip,
    /// Mirror top-bottom with probability `p`.
    RandomVerticalFlip {
        /// Probability.
        p: f64,
    },
    /// Pad every side by `padding`, then cut a `size` window at a uniform position.
    RandomCrop {
        /// Output size.
        size: [usize; 2],
        /// Padding on each side.
        padding: usize,
        /// Padding fill.
        #[serde(default)]
        pad_mode: PadMode,
    },
    /// Cut the central `size` window (top = round((H - h) / 2)).
    CenterCrop {
        /// Output size.
        size: [usize; 2],
    },
    /// Bilinear resize (half-pixel centres, `align_corners=False`, no antialiasing).
    Resize {
        /// Output size.
        size: [usize; 2],
    },
    /// Bilinear resize of the shorter side to `size`, keeping the aspect ratio (torchvision's
    /// `Resize(int)`: the longer side becomes `floor(size * long / short)`).
    ResizeShorter {
        /// Length of the shorter side after resizing.
        size: usize,
    },
    /// A crop of random area (fraction `scale` of the image) and aspect ratio (`ratio`,
    /// sampled log-uniformly), resized to `size`: torchvision's Inception-style crop.
    RandomResizedCrop {
        /// Output size.
        size: [usize; 2],
        /// Area fraction range, default `[0.08, 1.0]`.
        scale: [f64; 2],
        /// Aspect ratio range, default `[3/4, 4/3]`.
        ratio: [f64; 2],
    },
    /// Random brightness, contrast, saturation and hue, applied in a random order.
    /// Factors are drawn from `[max(0, 1 - x), 1 + x]`; the hue shift from `[-hue, hue]`.
    ColorJitter {
        /// Brightness strength.
        brightness: f64,
        /// Contrast strength.
        contrast: f64,
        /// Saturation strength.
        saturation: f64,
        /// Hue shift, at most 0.5 (half a turn).
        hue: f64,
    },
    /// Luma `0.299 R + 0.587 G + 0.114 B`, as `channels` (1 or 3) channels.
    Grayscale {
        /// Output channels.
        channels: usize,
    },
    /// `(x - mean) / std` per channel. In a run's pipeline ([`Augment`]) both may be left
    /// out (empty): the dataset's statistics.
    Normalize {
        /// Per-channel mean.
        #[serde(default)]
        mean: Vec<f32>,
        /// Per-channel standard deviation.
        #[serde(default)]
        std: Vec<f32>,
    },
    /// With probability `p`, set a random rectangle (area fraction `scale`, aspect `ratio`)
    /// to `value` (Zhong et al. 2017).
    RandomErasing {
        /// Probability.
        p: f64,
        /// Area fraction range, default `[0.02, 0.33]`.
        scale: [f64; 2],
        /// Aspect ratio range, default `[0.3, 3.3]`.
        ratio: [f64; 2],
        /// Fill value.
        value: f32,
    },
    /// Cutout (DeVries & Taylor 2017): a `size x size` square centred on a uniformly random
    /// pixel, clipped at the borders, set to 0 in every channel (the mean, after `Normalize`).
    /// Unlike `RandomErasing`, always applied and of fixed size; the centre may lie anywhere,
    /// so near the edges less than the full square is cut.
    Cutout {
        /// Side of the square.
        size: usize,
    },
    /// RandAugment (Cubuk et al. 2020), torchvision's `RandAugment`: `num_ops` ops drawn
    /// uniformly from the 14 of [`AugmentOp`], each at bin `magnitude` of
    /// `num_magnitude_bins` of its range (e.g. rotation up to 30 degrees), the sign drawn at
    /// random. Before `normalize` (it works on values in [0, 1]).
    RandAugment {
        /// Ops applied to each image.
        #[serde(default = "two")]
        num_ops: usize,
        /// Strength, a bin index below `num_magnitude_bins` (9 of 31: timm's `rand-m9`).
        #[serde(default = "nine")]
        magnitude: usize,
        /// Bins of each op's range.
        #[serde(default = "thirty_one")]
        num_magnitude_bins: usize,
    },
    /// TrivialAugment Wide (Müller & Hutter 2021), torchvision's `TrivialAugmentWide`: one op
    /// drawn uniformly at a uniformly drawn strength, from the wider ranges (rotation up to
    /// 135 degrees, translation up to 32 pixels). No knob to tune. Before `normalize`.
    TrivialAugmentWide {
        /// Bins of each op's range.
        #[serde(default = "thirty_one")]
        num_magnitude_bins: usize,
    },
    /// One op of RandAugment's set at a fixed, signed `magnitude` in its own unit (degrees,
    /// pixels, shear, `factor - 1`, bits, threshold of 255): for pictures and tests.
    AugmentOp {
        /// The op.
        op: AugmentOp,
        /// Its magnitude.
        #[serde(default)]
        magnitude: f64,
    },
    /// Apply `transforms` in order with probability `p`.
    RandomApply {
        /// The transforms.
        transforms: Vec<Transform>,
        /// Probability.
        p: f64,
    },
    /// Apply `transforms` in order.
    Compose {
        /// The transforms.
        transforms: Vec<Transform>,
    },
}

fn two() -> usize {
    2
}
fn nine() -> usize {
    9
}
fn thirty_one() -> usize {
    31
}

/// Which item of which epoch a transform sees: what [`Transform::AltFlip`] decides from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemKey {
    /// The run's seed.
    pub seed: u64,
    /// The epoch (0-based).
    pub epoch: u64,
    /// The item's index in its dataset.
    pub index: u64,
}

impl ItemKey {
    /// Whether [`Transform::AltFlip`] mirrors this item: a seeded coin per item, the same in
    /// every epoch, inverted in odd epochs.
    pub fn alt_flipped(self) -> bool {
        let coin = item_rng(self.seed ^ 0x0061_6c74_666c_6970, 0, self.index).random::<bool>();
        coin ^ (self.epoch % 2 == 1)
    }
}

/// Per-item random generator: independent of which worker or in which order items are seen.
pub fn item_rng(seed: u64, epoch: u64, index: u64) -> ChaCha8Rng {
    // splitmix64 finaliser over the three numbers: nearby inputs give unrelated streams.
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    };
    let key = mix(mix(mix(seed) ^ epoch.wrapping_mul(0x9e3779b97f4a7c15)) ^ index);
    ChaCha8Rng::seed_from_u64(key)
}

impl Transform {
    /// `RandomResizedCrop` with torchvision's default scale and ratio.
    pub fn random_resized_crop(size: [usize; 2]) -> Self {
        Transform::RandomResizedCrop {
            size,
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
        }
    }

    /// `RandomErasing` with torchvision's defaults (p 0.5, scale 0.02-0.33, ratio 0.3-3.3, 0).
    pub fn random_erasing() -> Self {
        Transform::RandomErasing {
            p: 0.5,
            scale: [0.02, 0.33],
            ratio: [0.3, 3.3],
            value: 0.0,
        }
    }

    /// Whether `pred` holds for this transform or one inside it (`compose`, `random_apply`).
    pub fn any(&self, pred: &dyn Fn(&Transform) -> bool) -> bool {
        pred(self)
            || match self {
                Transform::Compose { transforms } | Transform::RandomApply { transforms, .. } => {
                    transforms.iter().any(|t| t.any(pred))
                }
                _ => false,
            }
    }

    /// Applies the transform to an image outside any epoch (item 0 of epoch 0 of seed 0, for
    /// [`Transform::AltFlip`]); the loader uses [`apply_all`], which names the item.
    pub fn apply(&self, img: Image, rng: &mut dyn RngCore) -> Result<Image, TransformError> {
        self.apply_to(img, ItemKey::default(), rng)
    }

    /// Applies the transform to the item `key` names.
    pub fn apply_to(
        &self,
        img: Image,
        key: ItemKey,
        rng: &mut dyn RngCore,
    ) -> Result<Image, TransformError> {
        match self {
            Transform::AltFlip => Ok(if key.alt_flipped() { hflip(&img) } else { img }),
            Transform::RandomHorizontalFlip { p } => Ok(if rng.random::<f64>() < *p {
                hflip(&img)
            } else {
                img
            }),
            Transform::RandomVerticalFlip { p } => Ok(if rng.random::<f64>() < *p {
                vflip(&img)
            } else {
                img
            }),
            Transform::RandomCrop {
                size,
                padding,
                pad_mode,
            } => {
                let padded = pad(&img, *padding, *pad_mode);
                let [h, w] = *size;
                check_crop("random_crop", *size, &padded)?;
                let top = rng.random_range(0..=padded.height - h);
                let left = rng.random_range(0..=padded.width - w);
                Ok(crop(&padded, top, left, h, w))
            }
            Transform::CenterCrop { size } => {
                check_crop("center_crop", *size, &img)?;
                let [h, w] = *size;
                let top = ((img.height - h) as f64 / 2.0).round() as usize;
                let left = ((img.width - w) as f64 / 2.0).round() as usize;
                Ok(crop(&img, top, left, h, w))
            }
            Transform::Resize { size } => resize(&img, *size),
            Transform::ResizeShorter { size } => {
                let (h, w) = (img.height, img.width);
                let (oh, ow) = if h <= w {
                    (
                        *size,
                        (*size as u128 * w as u128 / h.max(1) as u128) as usize,
                    )
                } else {
                    (
                        (*size as u128 * h as u128 / w.max(1) as u128) as usize,
                        *size,
                    )
                };
                if (oh, ow) == (h, w) {
                    Ok(img)
                } else {
                    resize(&img, [oh, ow])
                }
            }
            Transform::RandomResizedCrop { size, scale, ratio } => {
                let (top, left, h, w) = resized_crop_params(&img, *scale, *ratio, rng);
                resize(&crop(&img, top, left, h, w), *size)
            }
            Transform::ColorJitter {
                brightness,
                contrast,
                saturation,
                hue,
            } => color_jitter(img, [*brightness, *contrast, *saturation, *hue], rng),
            Transform::Grayscale { channels } => grayscale(&img, *channels),
            Transform::Normalize { mean, std } => normalize(img, mean, std),
            Transform::RandomErasing {
                p,
                scale,
                ratio,
                value,
            } => Ok(random_erasing(img, *p, *scale, *ratio, *value, rng)),
            Transform::Cutout { size } => Ok(cutout(img, *size, rng)),
            Transform::RandAugment {
                num_ops,
                magnitude,
                num_magnitude_bins,
            } => {
                if *num_magnitude_bins < 2 || magnitude >= num_magnitude_bins {
                    return Err(TransformError::Invalid(format!(
                        "rand_augment: magnitude must be below num_magnitude_bins (at least 2), \
                         got {magnitude} of {num_magnitude_bins}"
                    )));
                }
                Ok(rand_augment(
                    img,
                    *num_ops,
                    *magnitude,
                    *num_magnitude_bins,
                    rng,
                ))
            }
            Transform::TrivialAugmentWide { num_magnitude_bins } => {
                if *num_magnitude_bins < 2 {
                    return Err(TransformError::Invalid(format!(
                        "trivial_augment_wide: num_magnitude_bins must be at least 2, got \
                         {num_magnitude_bins}"
                    )));
                }
                Ok(trivial_augment_wide(img, *num_magnitude_bins, rng))
            }
            Transform::AugmentOp { op, magnitude } => Ok(op.apply(img, *magnitude)),
            Transform::RandomApply { transforms, p } => {
                if rng.random::<f64>() < *p {
                    transforms
                        .iter()
                        .try_fold(img, |img, t| t.apply_to(img, key, rng))
                } else {
                    Ok(img)
                }
            }
            Transform::Compose { transforms } => transforms
                .iter()
                .try_fold(img, |img, t| t.apply_to(img, key, rng)),
        }
    }
}

/// Applies `transforms` to item `index` of epoch `epoch` with the run's `seed`.
pub fn apply_all(
    transforms: &[Transform],
    img: Image,
    seed: u64,
    epoch: u64,
    index: u64,
) -> Result<Image, TransformError> {
    let mut rng = item_rng(seed, epoch, index);
    let key = ItemKey { seed, epoch, index };
    transforms
        .iter()
        .try_fold(img, |img, t| t.apply_to(img, key, &mut rng))
}

/// An image that went through `transforms`, brought back to [0, 1] for display: undoes the
/// last `Normalize` (`x * std + mean`).
pub fn displayable(transforms: &[Transform], mut img: Image) -> Image {
    let stats = transforms.iter().rev().find_map(|t| match t {
        Transform::Normalize { mean, std } => Some((mean, std)),
        _ => None,
    });
    if let Some((mean, std)) = stats {
        let plane = img.height * img.width;
        for c in 0..img.channels.min(mean.len()).min(std.len()) {
            for v in &mut img.data[c * plane..(c + 1) * plane] {
                *v = *v * std[c] + mean[c];
            }
        }
    }
    img
}
