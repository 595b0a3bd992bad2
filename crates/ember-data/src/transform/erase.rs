//! Random erasing (Zhong et al. 2020, torchvision's `RandomErasing`) and cutout (DeVries &
//! Taylor 2017).

use crate::Image;
use rand::{Rng, RngCore};

pub(crate) fn random_erasing(
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

/// [`Transform::Cutout`]: zero the square of side `size` centred on a random pixel.
pub(crate) fn cutout(mut img: Image, size: usize, rng: &mut dyn RngCore) -> Image {
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
