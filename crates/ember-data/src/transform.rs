//! Image augmentation with torchvision's definitions, so that results can be compared.
//!
//! Every transform takes the image and a random generator. The loader seeds that generator
//! from `(seed, epoch, item index)`, so an item is augmented the same way whichever worker
//! handles it: a run is reproducible whatever the number of workers.
//!
//! Written by hand: Burn has no flips, crops, colour jitter or erasing, and the `image` crate's
//! operations work on `u8` buffers without torchvision's sampling rules.

use crate::Image;
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
    /// `(x - mean) / std` per channel.
    Normalize {
        /// Per-channel mean.
        mean: Vec<f32>,
        /// Per-channel standard deviation.
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

/// Mirror left-right.
pub fn hflip(img: &Image) -> Image {
    let mut out = img.clone();
    for c in 0..img.channels {
        for y in 0..img.height {
            for x in 0..img.width {
                *out.at_mut(c, y, x) = img.at(c, y, img.width - 1 - x);
            }
        }
    }
    out
}

/// Mirror top-bottom.
pub fn vflip(img: &Image) -> Image {
    let mut out = img.clone();
    let row = img.width;
    for c in 0..img.channels {
        for y in 0..img.height {
            let src = (c * img.height + (img.height - 1 - y)) * row;
            let dst = (c * img.height + y) * row;
            out.data[dst..dst + row].copy_from_slice(&img.data[src..src + row]);
        }
    }
    out
}

/// Pads every side by `p` pixels.
pub fn pad(img: &Image, p: usize, mode: PadMode) -> Image {
    if p == 0 {
        return img.clone();
    }
    let (h, w) = (img.height + 2 * p, img.width + 2 * p);
    let mut out = Image::zeros(img.channels, h, w);
    // Source coordinate of padded coordinate `i` along an axis of length `n`, or None for zero.
    let src = |i: usize, n: usize| -> Option<usize> {
        let i = i as isize - p as isize;
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match mode {
            PadMode::Zero => None,
            PadMode::Edge => Some(i.clamp(0, n - 1) as usize),
            PadMode::Reflect => {
                // reflect about the edge pixels, with period 2(n - 1)
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * (n - 1);
                let m = i.rem_euclid(period);
                Some(if m < n { m } else { period - m } as usize)
            }
        }
    };
    for c in 0..img.channels {
        for y in 0..h {
            let Some(sy) = src(y, img.height) else {
                continue;
            };
            for x in 0..w {
                if let Some(sx) = src(x, img.width) {
                    *out.at_mut(c, y, x) = img.at(c, sy, sx);
                }
            }
        }
    }
    out
}

fn check_crop(
    transform: &'static str,
    [h, w]: [usize; 2],
    img: &Image,
) -> Result<(), TransformError> {
    if h > img.height || w > img.width || h == 0 || w == 0 {
        return Err(TransformError::CropTooLarge {
            transform,
            crop_h: h,
            crop_w: w,
            h: img.height,
            w: img.width,
        });
    }
    Ok(())
}

/// The `h x w` window at (`top`, `left`); the caller guarantees it fits.
pub fn crop(img: &Image, top: usize, left: usize, h: usize, w: usize) -> Image {
    let mut out = Image::zeros(img.channels, h, w);
    for c in 0..img.channels {
        for y in 0..h {
            let src = (c * img.height + top + y) * img.width + left;
            let dst = (c * h + y) * w;
            out.data[dst..dst + w].copy_from_slice(&img.data[src..src + w]);
        }
    }
    out
}

/// Bilinear resize with half-pixel centres (PyTorch `align_corners=False`, no antialias).
pub fn resize(img: &Image, [oh, ow]: [usize; 2]) -> Result<Image, TransformError> {
    if oh == 0 || ow == 0 {
        return Err(TransformError::Invalid(format!(
            "resize: size {oh}x{ow} is empty"
        )));
    }
    if (oh, ow) == (img.height, img.width) {
        return Ok(img.clone());
    }
    // For each output coordinate: the two source indices and the weight of the second.
    let axis = |out: usize, inp: usize| -> Vec<(usize, usize, f32)> {
        let scale = inp as f32 / out as f32;
        (0..out)
            .map(|o| {
                let s = ((o as f32 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (s.floor() as usize).min(inp - 1);
                let i1 = (i0 + 1).min(inp - 1);
                (i0, i1, s - i0 as f32)
            })
            .collect()
    };
    let ys = axis(oh, img.height);
    let xs = axis(ow, img.width);
    let mut out = Image::zeros(img.channels, oh, ow);
    for c in 0..img.channels {
        for (oy, &(y0, y1, wy)) in ys.iter().enumerate() {
            for (ox, &(x0, x1, wx)) in xs.iter().enumerate() {
                let top = img.at(c, y0, x0) * (1.0 - wx) + img.at(c, y0, x1) * wx;
                let bottom = img.at(c, y1, x0) * (1.0 - wx) + img.at(c, y1, x1) * wx;
                *out.at_mut(c, oy, ox) = top * (1.0 - wy) + bottom * wy;
            }
        }
    }
    Ok(out)
}

/// torchvision's `RandomResizedCrop.get_params`: `(top, left, height, width)`.
pub fn resized_crop_params(
    img: &Image,
    scale: [f64; 2],
    ratio: [f64; 2],
    rng: &mut dyn RngCore,
) -> (usize, usize, usize, usize) {
    let (height, width) = (img.height, img.width);
    let area = (height * width) as f64;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * rng.random_range(scale[0]..=scale[1]);
        let aspect = rng.random_range(lr0..=lr1).exp();
        let w = (target * aspect).sqrt().round() as usize;
        let h = (target / aspect).sqrt().round() as usize;
        if 0 < w && w <= width && 0 < h && h <= height {
            let top = rng.random_range(0..=height - h);
            let left = rng.random_range(0..=width - w);
            return (top, left, h, w);
        }
    }
    // Fallback: the central crop with the ratio clamped into range.
    let in_ratio = width as f64 / height as f64;
    let (h, w) = if in_ratio < ratio[0] {
        ((width as f64 / ratio[0]).round() as usize, width)
    } else if in_ratio > ratio[1] {
        (height, (height as f64 * ratio[1]).round() as usize)
    } else {
        (height, width)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

/// Luma of pixel `i` of an RGB image.
fn luma(img: &Image, i: usize) -> f32 {
    let plane = img.height * img.width;
    0.299 * img.data[i] + 0.587 * img.data[plane + i] + 0.114 * img.data[2 * plane + i]
}

/// Grey-scale with `channels` (1 or 3) output channels.
pub fn grayscale(img: &Image, channels: usize) -> Result<Image, TransformError> {
    if channels != 1 && channels != 3 {
        return Err(TransformError::Invalid(format!(
            "grayscale: {channels} output channels, expected 1 or 3"
        )));
    }
    let plane = img.height * img.width;
    let grey: Vec<f32> = if img.channels >= 3 {
        (0..plane).map(|i| luma(img, i)).collect()
    } else {
        img.data[..plane].to_vec()
    };
    let data = grey.repeat(channels);
    Ok(Image::from_vec(channels, img.height, img.width, data).expect("sizes agree"))
}

/// `factor * a + (1 - factor) * b`, clamped to [0, 1] (torchvision's `_blend`).
fn blend(a: f32, b: f32, factor: f32) -> f32 {
    (factor * a + (1.0 - factor) * b).clamp(0.0, 1.0)
}

/// Brightness: blend with black.
pub fn adjust_brightness(mut img: Image, factor: f32) -> Image {
    img.data
        .iter_mut()
        .for_each(|v| *v = blend(*v, 0.0, factor));
    img
}

/// Contrast: blend with the mean grey level of the whole image.
pub fn adjust_contrast(mut img: Image, factor: f32) -> Image {
    let plane = img.height * img.width;
    let mean = if img.channels >= 3 {
        (0..plane).map(|i| luma(&img, i)).sum::<f32>() / plane as f32
    } else {
        img.data[..plane].iter().sum::<f32>() / plane as f32
    };
    img.data
        .iter_mut()
        .for_each(|v| *v = blend(*v, mean, factor));
    img
}

/// Saturation: blend with the grey-scale image (no effect on grey images).
pub fn adjust_saturation(mut img: Image, factor: f32) -> Image {
    if img.channels < 3 {
        return img;
    }
    let plane = img.height * img.width;
    for i in 0..plane {
        let g = luma(&img, i);
        for c in 0..3 {
            let v = &mut img.data[c * plane + i];
            *v = blend(*v, g, factor);
        }
    }
    img
}

/// Hue: rotate the hue by `shift` turns (in [-0.5, 0.5]) in HSV space.
pub fn adjust_hue(mut img: Image, shift: f32) -> Image {
    if img.channels < 3 {
        return img;
    }
    let plane = img.height * img.width;
    for i in 0..plane {
        let (r, g, b) = (img.data[i], img.data[plane + i], img.data[2 * plane + i]);
        let (h, s, v) = rgb_to_hsv(r, g, b);
        let (r, g, b) = hsv_to_rgb((h + shift).rem_euclid(1.0), s, v);
        img.data[i] = r;
        img.data[plane + i] = g;
        img.data[2 * plane + i] = b;
    }
    img
}

/// RGB in [0, 1] to (hue in [0, 1), saturation, value).
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let s = if max > 0.0 { delta / max } else { 0.0 };
    let h = if delta == 0.0 {
        0.0
    } else if max == r {
        ((g - b) / delta).rem_euclid(6.0) / 6.0
    } else if max == g {
        ((b - r) / delta + 2.0) / 6.0
    } else {
        ((r - g) / delta + 4.0) / 6.0
    };
    (h, s, max)
}

/// Inverse of [`rgb_to_hsv`].
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h6 = h * 6.0;
    let sector = (h6.floor() as i32).rem_euclid(6);
    let f = h6 - h6.floor();
    let p = v * (1.0 - s);
    let q = v * (1.0 - s * f);
    let t = v * (1.0 - s * (1.0 - f));
    match sector {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    }
}

fn color_jitter(
    img: Image,
    [b, c, s, h]: [f64; 4],
    rng: &mut dyn RngCore,
) -> Result<Image, TransformError> {
    if b < 0.0 || c < 0.0 || s < 0.0 || !(0.0..=0.5).contains(&h) {
        return Err(TransformError::Invalid(format!(
            "color_jitter: brightness, contrast and saturation must be >= 0 and hue in [0, 0.5], got {b}, {c}, {s}, {h}"
        )));
    }
    let factor = |x: f64, rng: &mut dyn RngCore| -> Option<f32> {
        (x > 0.0).then(|| rng.random_range((1.0 - x).max(0.0)..=1.0 + x) as f32)
    };
    // torchvision draws the order first, then each factor.
    let mut order = [0usize, 1, 2, 3];
    for i in (1..4).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let fb = factor(b, rng);
    let fc = factor(c, rng);
    let fs = factor(s, rng);
    let fh = (h > 0.0).then(|| rng.random_range(-h..=h) as f32);
    let mut img = img;
    for op in order {
        img = match (op, fb, fc, fs, fh) {
            (0, Some(f), ..) => adjust_brightness(img, f),
            (1, _, Some(f), ..) => adjust_contrast(img, f),
            (2, _, _, Some(f), _) => adjust_saturation(img, f),
            (3, _, _, _, Some(f)) => adjust_hue(img, f),
            _ => img,
        };
    }
    Ok(img)
}

fn normalize(mut img: Image, mean: &[f32], std: &[f32]) -> Result<Image, TransformError> {
    if mean.len() != img.channels || std.len() != img.channels {
        return Err(TransformError::ChannelMismatch {
            given: mean.len().max(std.len()),
            channels: img.channels,
        });
    }
    if std.iter().any(|&s| s <= 0.0) {
        return Err(TransformError::Invalid("normalize: std must be > 0".into()));
    }
    let plane = img.height * img.width;
    for c in 0..img.channels {
        for v in &mut img.data[c * plane..(c + 1) * plane] {
            *v = (*v - mean[c]) / std[c];
        }
    }
    Ok(img)
}

fn random_erasing(
    mut img: Image,
    p: f64,
    scale: [f64; 2],
    ratio: [f64; 2],
    value: f32,
    rng: &mut dyn RngCore,
) -> Image {
    if rng.random::<f64>() >= p {
        return img;
    }
    let (ih, iw) = (img.height, img.width);
    let area = (ih * iw) as f64;
    let (lr0, lr1) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let erase = area * rng.random_range(scale[0]..=scale[1]);
        let aspect = rng.random_range(lr0..=lr1).exp();
        let h = (erase * aspect).sqrt().round() as usize;
        let w = (erase / aspect).sqrt().round() as usize;
        if h == 0 || w == 0 || h >= ih || w >= iw {
            continue;
        }
        let top = rng.random_range(0..=ih - h);
        let left = rng.random_range(0..=iw - w);
        for c in 0..img.channels {
            for y in top..top + h {
                for x in left..left + w {
                    *img.at_mut(c, y, x) = value;
                }
            }
        }
        return img;
    }
    img
}

/// Dataset statistics used by the presets' `Normalize`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
}

impl Stats {
    /// MNIST's training-set statistics.
    pub fn mnist() -> Self {
        Self {
            mean: vec![0.1307],
            std: vec![0.3081],
        }
    }
    /// Fashion-MNIST's.
    pub fn fashion_mnist() -> Self {
        Self {
            mean: vec![0.2860],
            std: vec![0.3530],
        }
    }
    /// CIFAR-10's.
    pub fn cifar10() -> Self {
        Self {
            mean: vec![0.4914, 0.4822, 0.4465],
            std: vec![0.2470, 0.2435, 0.2616],
        }
    }
    /// CIFAR-100's.
    pub fn cifar100() -> Self {
        Self {
            mean: vec![0.5071, 0.4865, 0.4409],
            std: vec![0.2673, 0.2564, 0.2762],
        }
    }
    /// ImageNet's (torchvision's pretrained weights expect these).
    pub fn imagenet() -> Self {
        Self {
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
        }
    }

    /// The same statistics for images of `channels` channels: a folder of greyscale images
    /// normalised with RGB statistics gets their average (ImageNet's grey: 0.449 / 0.226); a
    /// one-channel statistic is repeated for colour images.
    pub fn for_channels(self, channels: usize) -> Self {
        let n = self.mean.len();
        if n == channels || n == 0 {
            return self;
        }
        if channels == 1 {
            let avg = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
            return Self {
                mean: vec![avg(&self.mean)],
                std: vec![avg(&self.std)],
            };
        }
        if n == 1 {
            return Self {
                mean: vec![self.mean[0]; channels],
                std: vec![self.std[0]; channels],
            };
        }
        self
    }
}

/// A named recipe: the training transforms and the evaluation transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// Only `Normalize` (and the resize to the model's input where needed).
    None,
    /// Pad-4 random crop, horizontal flip, normalize (the classic CIFAR recipe).
    Cifar,
    /// Random resized crop, horizontal flip, colour jitter 0.4, normalize; evaluation resizes
    /// the shorter side to 256/224 of the output and takes the centre crop.
    Imagenet,
}

crate::named_enum!(Preset => "augmentation preset");

impl Preset {
    /// Training transforms producing `size` images normalised with `stats`.
    pub fn train(self, size: [usize; 2], stats: &Stats) -> Vec<Transform> {
        let normalize = Transform::Normalize {
            mean: stats.mean.clone(),
            std: stats.std.clone(),
        };
        match self {
            Preset::None => vec![Transform::Resize { size }, normalize],
            Preset::Cifar => vec![
                Transform::Resize { size },
                Transform::RandomCrop {
                    size,
                    padding: 4,
                    pad_mode: PadMode::Zero,
                },
                Transform::RandomHorizontalFlip { p: 0.5 },
                normalize,
            ],
            Preset::Imagenet => vec![
                Transform::random_resized_crop(size),
                Transform::RandomHorizontalFlip { p: 0.5 },
                Transform::ColorJitter {
                    brightness: 0.4,
                    contrast: 0.4,
                    saturation: 0.4,
                    hue: 0.0,
                },
                normalize,
            ],
        }
    }

    /// Evaluation transforms (deterministic).
    pub fn eval(self, size: [usize; 2], stats: &Stats) -> Vec<Transform> {
        let normalize = Transform::Normalize {
            mean: stats.mean.clone(),
            std: stats.std.clone(),
        };
        match self {
            Preset::Imagenet => {
                // torchvision's Resize(256) + CenterCrop(224), scaled to `size`: the shorter
                // side to 256/224 of the crop, the aspect ratio kept (no stretching).
                let shorter = (size[0].max(size[1]) as f64 * 256.0 / 224.0).round() as usize;
                vec![
                    Transform::ResizeShorter { size: shorter },
                    Transform::CenterCrop { size },
                    normalize,
                ]
            }
            _ => vec![Transform::Resize { size }, normalize],
        }
    }
}

/// [`Transform::Cutout`]: zero the square of side `size` centred on a random pixel.
fn cutout(mut img: Image, size: usize, rng: &mut dyn RngCore) -> Image {
    if size == 0 || img.height == 0 || img.width == 0 {
        return img;
    }
    let cy = rng.random_range(0..img.height);
    let cx = rng.random_range(0..img.width);
    // The square [c - size/2, c - size/2 + size), as in the paper's reference code.
    let span = |c: usize, n: usize| {
        let lo = (c as isize - (size / 2) as isize).max(0) as usize;
        let hi = (c as isize - (size / 2) as isize + size as isize).clamp(0, n as isize) as usize;
        (lo, hi)
    };
    let ((y0, y1), (x0, x1)) = (span(cy, img.height), span(cx, img.width));
    let plane = img.height * img.width;
    for c in 0..img.channels {
        for y in y0..y1 {
            img.data[c * plane + y * img.width + x0..c * plane + y * img.width + x1].fill(0.0);
        }
    }
    img
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
