//! Grey, colour jitter and normalisation, with torchvision's formulas.

use super::TransformError;
use crate::Image;
use rand::{Rng, RngCore};

/// Luma of pixel `i` of an RGB image.
pub(crate) fn luma(img: &Image, i: usize) -> f32 {
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
pub(crate) fn blend(a: f32, b: f32, factor: f32) -> f32 {
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

pub(crate) fn color_jitter(
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

pub(crate) fn normalize(
    mut img: Image,
    mean: &[f32],
    std: &[f32],
) -> Result<Image, TransformError> {
    if mean.is_empty() && std.is_empty() {
        return Err(TransformError::Invalid(
            "normalize names no mean/std: a run's pipeline gives it the dataset's statistics; \
             alone it needs them"
                .into(),
        ));
    }
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
