//! Flips, padding, crops and resizing, with torchvision's sampling rules.

use super::{PadMode, TransformError};
use crate::Image;
use rand::{Rng, RngCore};

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

pub(crate) fn check_crop(
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
