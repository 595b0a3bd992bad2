//! RandAugment (Cubuk et al. 2020, "RandAugment: Practical automated data augmentation with a
//! reduced search space") and TrivialAugment Wide (Müller & Hutter 2021, "TrivialAugment:
//! Tuning-free Yet State-of-the-Art Data Augmentation"), with torchvision's op set, magnitude
//! tables and kernels (`transforms/autoaugment.py`, `functional_tensor.py`), so that a recipe
//! written for torchvision means the same here.
//!
//! torchvision applies these ops to `uint8` images; Ember's images are `f32` in [0, 1], so the
//! ops that are defined on 8-bit levels (posterize, solarize's threshold, equalize) read the
//! image as levels `round(255 v)`, and the others skip torchvision's truncation back to
//! `uint8` (the results differ from torchvision's by less than one grey level). They belong
//! before `normalize`: they assume values in [0, 1].

use super::color::{adjust_brightness, adjust_contrast, adjust_saturation, blend};
use crate::Image;
use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

/// One of the ops RandAugment and TrivialAugment choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AugmentOp {
    /// The image unchanged.
    Identity,
    /// Horizontal shear about the top-left corner: output `(x, y)` reads input `(x + m y, y)`.
    ShearX,
    /// Vertical shear about the top-left corner: output `(x, y)` reads input `(x, y + m x)`.
    ShearY,
    /// Shift right by `m` pixels (truncated to an integer).
    TranslateX,
    /// Shift down by `m` pixels (truncated to an integer).
    TranslateY,
    /// Rotate by `m` degrees counter-clockwise about the centre.
    Rotate,
    /// Blend with black: factor `1 + m`.
    Brightness,
    /// Blend with the grey image (saturation): factor `1 + m`.
    Color,
    /// Blend with the mean grey level: factor `1 + m`.
    Contrast,
    /// Blend with a 3x3 smoothed image (centre weight 5 of 13), borders kept: factor `1 + m`.
    Sharpness,
    /// Keep the top `m` bits of each 8-bit level.
    Posterize,
    /// Invert every level at or above `m` (of 255).
    Solarize,
    /// Stretch each channel to the full range [0, 1].
    AutoContrast,
    /// Equalise each channel's histogram of 8-bit levels (PIL's `ImageOps.equalize`).
    Equalize,
}

impl AugmentOp {
    /// The ops in torchvision's order (that of its augmentation-space tables).
    pub const ALL: [AugmentOp; 14] = [
        AugmentOp::Identity,
        AugmentOp::ShearX,
        AugmentOp::ShearY,
        AugmentOp::TranslateX,
        AugmentOp::TranslateY,
        AugmentOp::Rotate,
        AugmentOp::Brightness,
        AugmentOp::Color,
        AugmentOp::Contrast,
        AugmentOp::Sharpness,
        AugmentOp::Posterize,
        AugmentOp::Solarize,
        AugmentOp::AutoContrast,
        AugmentOp::Equalize,
    ];

    /// Whether a random sign is drawn for the magnitude.
    fn signed(self) -> bool {
        use AugmentOp::*;
        matches!(
            self,
            ShearX
                | ShearY
                | TranslateX
                | TranslateY
                | Rotate
                | Brightness
                | Color
                | Contrast
                | Sharpness
        )
    }

    /// The magnitude of bin `bin` of `bins` (unsigned), for an `h x w` image: torchvision's
    /// `linspace(0, top, bins)[bin]`, posterize's `8 - round(bin / ((bins - 1) / span))` bits
    /// and solarize's `linspace(255, 0, bins)[bin]`. `wide` picks TrivialAugment Wide's table
    /// (shear 0.99, translate 32 px, rotate 135 degrees, enhancements 0.99, posterize down to 2
    /// bits) over RandAugment's (0.3, 150/331 of the side, 30, 0.9, 4 bits).
    pub fn magnitude(self, bin: usize, bins: usize, [h, w]: [usize; 2], wide: bool) -> f64 {
        use AugmentOp::*;
        let bins = bins.max(2);
        let at = |top: f64| top * bin as f64 / (bins - 1) as f64;
        let side = |s: usize| {
            if wide { 32.0 } else { 150.0 / 331.0 * s as f64 }
        };
        let enhance = if wide { 0.99 } else { 0.9 };
        match self {
            Identity | AutoContrast | Equalize => 0.0,
            ShearX | ShearY => at(if wide { 0.99 } else { 0.3 }),
            TranslateX => at(side(w)),
            TranslateY => at(side(h)),
            Rotate => at(if wide { 135.0 } else { 30.0 }),
            Brightness | Color | Contrast | Sharpness => at(enhance),
            Posterize => {
                let span: f32 = if wide { 6.0 } else { 4.0 };
                // torchvision: `(arange(bins) / ((bins - 1) / span)).round()`, in f32.
                let step = (bins - 1) as f32 / span;
                8.0 - (bin as f32 / step).round_ties_even() as f64
            }
            Solarize => 255.0 - at(255.0),
        }
    }

    /// Applies the op at magnitude `m` (signed where the op is).
    pub fn apply(self, img: Image, m: f64) -> Image {
        use AugmentOp::*;
        match self {
            Identity => img,
            ShearX => affine(&img, Affine::shear([m.atan(), 0.0])),
            ShearY => affine(&img, Affine::shear([0.0, m.atan()])),
            TranslateX => affine(&img, Affine::translate([m.trunc(), 0.0])),
            TranslateY => affine(&img, Affine::translate([0.0, m.trunc()])),
            Rotate => affine(&img, Affine::rotate(m)),
            Brightness => adjust_brightness(img, (1.0 + m) as f32),
            Color => adjust_saturation(img, (1.0 + m) as f32),
            Contrast => adjust_contrast(img, (1.0 + m) as f32),
            Sharpness => adjust_sharpness(img, (1.0 + m) as f32),
            Posterize => posterize(img, m as u32),
            Solarize => solarize(img, m as f32),
            AutoContrast => autocontrast(img),
            Equalize => equalize(img),
        }
    }
}

/// RandAugment: `num_ops` ops drawn uniformly (with replacement), each at bin `magnitude` of
/// `bins`, its sign drawn at random where the op has one.
pub(crate) fn rand_augment(
    mut img: Image,
    num_ops: usize,
    magnitude: usize,
    bins: usize,
    rng: &mut dyn RngCore,
) -> Image {
    for _ in 0..num_ops {
        let op = AugmentOp::ALL[rng.random_range(0..AugmentOp::ALL.len())];
        let m = op.magnitude(magnitude, bins, [img.height, img.width], false);
        let m = if op.signed() && rng.random::<bool>() {
            -m
        } else {
            m
        };
        img = op.apply(img, m);
    }
    img
}

/// TrivialAugment Wide: one op drawn uniformly, at a uniformly drawn bin of `bins` (of the
/// wide table), with a random sign where the op has one.
pub(crate) fn trivial_augment_wide(img: Image, bins: usize, rng: &mut dyn RngCore) -> Image {
    let op = AugmentOp::ALL[rng.random_range(0..AugmentOp::ALL.len())];
    // torchvision draws a bin only for ops with a table (not identity, autocontrast, equalize).
    let m = match op {
        AugmentOp::Identity | AugmentOp::AutoContrast | AugmentOp::Equalize => 0.0,
        _ => op.magnitude(
            rng.random_range(0..bins.max(1)),
            bins,
            [img.height, img.width],
            true,
        ),
    };
    let m = if op.signed() && rng.random::<bool>() {
        -m
    } else {
        m
    };
    op.apply(img, m)
}

/// An affine map in torchvision's terms: rotation (degrees), translation (pixels), shear
/// (radians, x and y) and centre (pixels from the top-left corner; `None` is the image's
/// centre).
struct Affine {
    angle: f64,
    translate: [f64; 2],
    shear: [f64; 2],
    center: Option<[f64; 2]>,
}

impl Affine {
    fn shear(shear: [f64; 2]) -> Self {
        // torchvision shears about the top-left corner (`center=[0, 0]`).
        Affine {
            angle: 0.0,
            translate: [0.0, 0.0],
            shear,
            center: Some([0.0, 0.0]),
        }
    }
    fn translate(translate: [f64; 2]) -> Self {
        Affine {
            angle: 0.0,
            translate,
            shear: [0.0, 0.0],
            center: None,
        }
    }
    fn rotate(degrees: f64) -> Self {
        // `F.rotate` passes `-angle` to the affine matrix: positive is counter-clockwise.
        Affine {
            angle: -degrees,
            translate: [0.0, 0.0],
            shear: [0.0, 0.0],
            center: None,
        }
    }

    /// The inverse map (output to input) as a 2x3 matrix in coordinates centred on the
    /// image: torchvision's `_get_inverse_affine_matrix`, `M^-1 = C RSS^-1 C^-1 T^-1`.
    fn inverse(&self, [h, w]: [usize; 2]) -> [f64; 6] {
        let [cx, cy] = match self.center {
            Some([x, y]) => [x - w as f64 * 0.5, y - h as f64 * 0.5],
            None => [0.0, 0.0],
        };
        let [tx, ty] = self.translate;
        let rot = self.angle.to_radians();
        let [sx, sy] = self.shear;
        let a = (rot - sy).cos() / sy.cos();
        let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
        let c = (rot - sy).sin() / sy.cos();
        let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
        let mut m = [d, -b, 0.0, -c, a, 0.0];
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty) + cx;
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty) + cy;
        m
    }
}

/// Resamples `img` under `map` with nearest-neighbour interpolation, zeros outside: torchvision's
/// `_gen_affine_grid` + `grid_sample(mode="nearest", align_corners=False)`. Output pixel
/// `(i, j)` sits at `(j - w/2 + 1/2, i - h/2 + 1/2)` from the centre; its source point,
/// mapped back to pixel indices (`+ w/2 - 1/2`), is rounded half to even as `nearbyint` does.
fn affine(img: &Image, map: Affine) -> Image {
    let (h, w) = (img.height, img.width);
    let m = map.inverse([h, w]);
    let plane = h * w;
    let mut out = Image::zeros(img.channels, h, w);
    for i in 0..h {
        let y = i as f64 - h as f64 * 0.5 + 0.5;
        for j in 0..w {
            let x = j as f64 - w as f64 * 0.5 + 0.5;
            let u = (m[0] * x + m[1] * y + m[2] + w as f64 * 0.5 - 0.5).round_ties_even();
            let v = (m[3] * x + m[4] * y + m[5] + h as f64 * 0.5 - 0.5).round_ties_even();
            if u < 0.0 || v < 0.0 || u >= w as f64 || v >= h as f64 {
                continue;
            }
            let src = v as usize * w + u as usize;
            for c in 0..img.channels {
                out.data[c * plane + i * w + j] = img.data[c * plane + src];
            }
        }
    }
    out
}

/// Sharpness: blend with the image smoothed by `[[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13` on
/// its interior (the border pixels are their own smoothed value), as PIL and torchvision do.
pub fn adjust_sharpness(mut img: Image, factor: f32) -> Image {
    let (h, w) = (img.height, img.width);
    if h <= 2 || w <= 2 {
        return img;
    }
    let plane = h * w;
    for c in 0..img.channels {
        let src = img.data[c * plane..(c + 1) * plane].to_vec();
        for i in 1..h - 1 {
            for j in 1..w - 1 {
                let mut sum = 0.0f32;
                for di in 0..3 {
                    for dj in 0..3 {
                        let k = if di == 1 && dj == 1 { 5.0 } else { 1.0 };
                        sum += k * src[(i + di - 1) * w + j + dj - 1];
                    }
                }
                let at = i * w + j;
                img.data[c * plane + at] = blend(src[at], sum / 13.0, factor);
            }
        }
    }
    img
}

/// `v` as an 8-bit level.
fn level(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Keeps the top `bits` bits of each level (`level & !(2^(8 - bits) - 1)`).
pub fn posterize(mut img: Image, bits: u32) -> Image {
    let bits = bits.min(8);
    let mask = (0xffu32 << (8 - bits)) as u8;
    img.data
        .iter_mut()
        .for_each(|v| *v = (level(*v) & mask) as f32 / 255.0);
    img
}

/// Levels at or above `threshold` (of 255) become `255 - level`: `v -> 1 - v`.
pub fn solarize(mut img: Image, threshold: f32) -> Image {
    // A small margin: `v` holds `level / 255` in f32, which times 255 can fall just below
    // `level`.
    let t = (threshold - 1e-3) / 255.0;
    img.data
        .iter_mut()
        .for_each(|v| *v = if *v >= t { 1.0 - *v } else { *v });
    img
}

/// Each channel stretched so that its darkest value is 0 and its brightest 1 (a flat channel
/// is left as it is).
pub fn autocontrast(mut img: Image) -> Image {
    let plane = img.height * img.width;
    for c in 0..img.channels {
        let ch = &mut img.data[c * plane..(c + 1) * plane];
        let (lo, hi) = ch
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        if hi > lo {
            let scale = 1.0 / (hi - lo);
            ch.iter_mut()
                .for_each(|v| *v = ((*v - lo) * scale).clamp(0.0, 1.0));
        }
    }
    img
}

/// Histogram equalisation of each channel's 8-bit levels (PIL's `ImageOps.equalize`, as
/// torchvision's `_scale_channel` writes it): `step = floor(sum of the histogram but its
/// last non-empty bin / 255)`; level `l` becomes `floor((cdf(l - 1) + floor(step / 2)) /
/// step)`, clamped to 255; a channel with `step = 0` is left as it is.
pub fn equalize(mut img: Image) -> Image {
    let plane = img.height * img.width;
    for c in 0..img.channels {
        let ch = &mut img.data[c * plane..(c + 1) * plane];
        let mut hist = [0usize; 256];
        ch.iter().for_each(|&v| hist[level(v) as usize] += 1);
        let last = hist.iter().rposition(|&n| n > 0).unwrap_or(0);
        let step = (hist.iter().sum::<usize>() - hist[last]) / 255;
        if step == 0 {
            continue;
        }
        let mut lut = [0u8; 256];
        let mut cdf = 0usize;
        for (l, n) in hist.iter().enumerate() {
            lut[l] = ((cdf + step / 2) / step).min(255) as u8;
            cdf += n;
        }
        ch.iter_mut()
            .for_each(|v| *v = lut[level(*v) as usize] as f32 / 255.0);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        let data = (0..c * h * w)
            .map(|i| ((i * 37) % 256) as f32 / 255.0)
            .collect();
        Image::from_vec(c, h, w, data).unwrap()
    }

    #[test]
    fn magnitude_tables_are_torchvisions() {
        let s = [32, 32];
        // RandAugment, magnitude 9 of 31 bins.
        assert!((AugmentOp::ShearX.magnitude(9, 31, s, false) - 0.09).abs() < 1e-12);
        assert!((AugmentOp::Rotate.magnitude(9, 31, s, false) - 9.0).abs() < 1e-12);
        let t = AugmentOp::TranslateX.magnitude(9, 31, s, false);
        assert!((t - 150.0 / 331.0 * 32.0 * 0.3).abs() < 1e-9, "{t}");
        assert_eq!(AugmentOp::Posterize.magnitude(9, 31, s, false), 7.0);
        assert_eq!(AugmentOp::Posterize.magnitude(30, 31, s, false), 4.0);
        assert_eq!(AugmentOp::Posterize.magnitude(30, 31, s, true), 2.0);
        assert_eq!(AugmentOp::Solarize.magnitude(0, 31, s, false), 255.0);
        assert_eq!(AugmentOp::Solarize.magnitude(30, 31, s, false), 0.0);
        assert_eq!(AugmentOp::TranslateY.magnitude(30, 31, s, true), 32.0);
        assert!((AugmentOp::Rotate.magnitude(30, 31, s, true) - 135.0).abs() < 1e-12);
    }

    #[test]
    fn translation_shifts_and_fills_with_zeros() {
        let img = ramp(1, 4, 5);
        let out = AugmentOp::TranslateX.apply(img.clone(), 2.7);
        for y in 0..4 {
            assert_eq!(out.at(0, y, 0), 0.0);
            assert_eq!(out.at(0, y, 1), 0.0);
            for x in 2..5 {
                assert_eq!(out.at(0, y, x), img.at(0, y, x - 2));
            }
        }
        let up = AugmentOp::TranslateY.apply(img.clone(), -1.0);
        assert_eq!(up.at(0, 0, 3), img.at(0, 1, 3));
        assert_eq!(up.at(0, 3, 3), 0.0);
    }

    #[test]
    fn a_quarter_turn_is_a_transpose_and_flip() {
        let img = ramp(2, 6, 6);
        let out = AugmentOp::Rotate.apply(img.clone(), 90.0);
        // Counter-clockwise: the top row becomes the left column, read bottom to top.
        for c in 0..2 {
            for y in 0..6 {
                for x in 0..6 {
                    assert_eq!(out.at(c, y, x), img.at(c, x, 5 - y), "{c} {y} {x}");
                }
            }
        }
    }

    #[test]
    fn shear_x_moves_each_row_by_m_times_its_centre() {
        let img = ramp(1, 4, 8);
        let out = AugmentOp::ShearX.apply(img.clone(), 1.0);
        // Output (i, j) reads input column j + (i + 1/2) rounded half to even, row i.
        for i in 0..4 {
            for j in 0..8 {
                let u = (j as f64 + (i as f64 + 0.5)).round_ties_even();
                let want = if u >= 8.0 {
                    0.0
                } else {
                    img.at(0, i, u as usize)
                };
                assert_eq!(out.at(0, i, j), want, "{i} {j}");
            }
        }
    }

    #[test]
    fn level_ops_follow_their_8_bit_definitions() {
        let img = Image::from_planar_u8(1, 1, 4, &[0, 100, 200, 255]);
        let p = posterize(img.clone(), 2);
        let levels: Vec<u8> = p.data.iter().map(|&v| level(v)).collect();
        assert_eq!(levels, [0, 64, 192, 192]);
        let s = solarize(img.clone(), 200.0);
        let levels: Vec<u8> = s.data.iter().map(|&v| level(v)).collect();
        assert_eq!(levels, [0, 100, 55, 0]);
        let a = autocontrast(Image::from_planar_u8(1, 1, 3, &[50, 100, 200]));
        let levels: Vec<u8> = a.data.iter().map(|&v| level(v)).collect();
        assert_eq!(levels, [0, 85, 255]);
    }

    #[test]
    fn equalize_spreads_a_narrow_histogram() {
        // 1,020 pixels on 4 levels, 255 each: step 3, and the cdf puts them at 0, 85, 170, 255.
        let bytes: Vec<u8> = (0..1020).map(|i| 100 + (i % 4) as u8).collect();
        let out = equalize(Image::from_planar_u8(1, 30, 34, &bytes));
        let mut levels: Vec<u8> = out.data.iter().map(|&v| level(v)).collect();
        levels.sort();
        levels.dedup();
        assert_eq!(levels, [0, 85, 170, 255]);
        // Too few pixels for a step (255 * 1 > the count below the top level): unchanged.
        let few = Image::from_planar_u8(1, 2, 2, &[1, 2, 3, 4]);
        assert_eq!(equalize(few.clone()).data, few.data);
    }

    #[test]
    fn sharpness_zero_is_the_smoothed_interior_and_keeps_the_border() {
        let img = ramp(1, 5, 5);
        let out = adjust_sharpness(img.clone(), 0.0);
        for x in 0..5 {
            assert_eq!(out.at(0, 0, x), img.at(0, 0, x));
        }
        let mut sum = 0.0;
        for dy in 0..3 {
            for dx in 0..3 {
                let k = if dy == 1 && dx == 1 { 5.0 } else { 1.0 };
                sum += k * img.at(0, 1 + dy, 1 + dx);
            }
        }
        assert!((out.at(0, 2, 2) - sum / 13.0).abs() < 1e-6);
    }
}
