//! Pictures of what a network computes: its convolution kernels, the feature maps of one
//! image, the image patches that excite a unit most, and the per-layer gradient diagnostics.
//!
//! The maximally activating patches follow the book's recipe: run the held-out images
//! through the network, keep for each channel the `K` positions with the largest response,
//! and crop each from its image to the receptive field of that unit, as the summary's
//! receptive-field arithmetic places it ([`LayerRow::field_of`]).

use crate::error::{Result, TrainError};
use crate::inspect::plot::{Axes, Series, palette, panels_png};
use crate::training::classifier::Network;
use crate::training::diagnostics::{ActivationRow, GradientRow};
use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Int, Tensor};
use ember_data::loader::{ImageLoader, LoaderConfig};
use ember_data::transform::{Transform, apply_all, displayable};
use ember_data::{Image, ImageItem};
use ember_models::{LayerRow, ParamPath, Taps};
use image::{Rgb, RgbImage};
use plotters::style::RGBColor;
use std::path::Path;
use std::sync::Arc;

const GAP: usize = 2;
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);

/// Reads any float tensor back as `f32`s.
fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| TrainError::Training(format!("reading a tensor back: {e:?}")))
}

fn read_int<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| TrainError::Training(format!("reading a tensor back: {e:?}")))
}

/// The convolution kernels of `module`, `[c_out, c_in, kh, kw]`, by layer path (e.g.
/// `conv1.conv`), in parameter order.
pub fn conv_kernels<M: Module>(module: &M) -> Vec<(String, Tensor<4>)> {
    #[derive(Default)]
    struct Collect {
        path: ParamPath,
        found: Vec<(String, Tensor<4>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.path.enter(name, container);
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let dims = param.lazy_shape();
            let d = dims.as_slice();
            let (layer, name) = self.path.layer_and_name();
            if d.len() == 4 && name == "weight" {
                let w = param.val().reshape([d[0], d[1], d[2], d[3]]);
                self.found.push((layer, w));
            }
        }
    }
    let mut c = Collect::default();
    module.visit(&mut c);
    c.found
}

/// Paints `src` (an `h x w` grid of colours) scaled by `scale` at `(x0, y0)`.
fn blit(
    canvas: &mut RgbImage,
    x0: usize,
    y0: usize,
    h: usize,
    w: usize,
    scale: usize,
    src: &[[u8; 3]],
) {
    for y in 0..h * scale {
        for x in 0..w * scale {
            let c = src[(y / scale) * w + x / scale];
            canvas.put_pixel((x0 + x) as u32, (y0 + y) as u32, Rgb(c));
        }
    }
}

/// A grid of equal tiles, `cols` wide.
fn tile_grid(tiles: &[(usize, usize, Vec<[u8; 3]>)], cols: usize, min_tile: usize) -> RgbImage {
    let th = tiles.iter().map(|t| t.0).max().unwrap_or(1).max(1);
    let tw = tiles.iter().map(|t| t.1).max().unwrap_or(1).max(1);
    let scale = min_tile.div_ceil(th.max(tw)).max(1);
    let cols = cols.clamp(1, tiles.len().max(1));
    let rows = tiles.len().div_ceil(cols).max(1);
    let (ch, cw) = (th * scale, tw * scale);
    let mut canvas = RgbImage::from_pixel(
        (cols * (cw + GAP) + GAP) as u32,
        (rows * (ch + GAP) + GAP) as u32,
        BACKGROUND,
    );
    for (i, (h, w, px)) in tiles.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        blit(
            &mut canvas,
            GAP + c * (cw + GAP),
            GAP + r * (ch + GAP),
            *h,
            *w,
            scale,
            px,
        );
    }
    canvas
}

/// Blue (negative) - white (zero) - red (positive), for `t` in [-1, 1].
pub fn diverging(t: f32) -> [u8; 3] {
    let t = t.clamp(-1.0, 1.0);
    let fade = |a: f32| (255.0 * (1.0 - a)).round() as u8;
    if t >= 0.0 {
        [255, fade(t), fade(t)]
    } else {
        [fade(-t), fade(-t), 255]
    }
}

/// Viridis (dark blue - green - yellow), for `t` in [0, 1]: linear between five stops of
/// matplotlib's map.
pub fn viridis(t: f32) -> [u8; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [68.0, 1.0, 84.0],
        [59.0, 82.0, 139.0],
        [33.0, 145.0, 140.0],
        [94.0, 201.0, 98.0],
        [253.0, 231.0, 37.0],
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    } * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f32;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    [0, 1, 2].map(|k| (a[k] + (b[k] - a[k]) * f).round() as u8)
}

fn rgb_of(img: &Image) -> Vec<[u8; 3]> {
    img.to_rgb8()
        .chunks_exact(3)
        .map(|p| [p[0], p[1], p[2]])
        .collect()
}

/// The kernels `[c_out, c_in, kh, kw]` as a grid, one tile per output channel: in colour
/// when the layer reads RGB (each filter scaled by its own largest |w| around grey), else
/// the mean over input channels on a blue-white-red scale.
pub fn filter_grid(weights: &Tensor<4>) -> Result<RgbImage> {
    let [co, ci, kh, kw] = weights.dims();
    let v = read(weights.clone())?;
    let per_filter = ci * kh * kw;
    let plane = kh * kw;
    let tiles: Vec<_> = (0..co)
        .map(|o| {
            let f = &v[o * per_filter..(o + 1) * per_filter];
            let peak = f.iter().fold(1e-12f32, |m, x| m.max(x.abs()));
            let px: Vec<[u8; 3]> = if ci == 3 {
                (0..plane)
                    .map(|i| {
                        [0, 1, 2].map(|c| {
                            ((0.5 + f[c * plane + i] / (2.0 * peak)) * 255.0).round() as u8
                        })
                    })
                    .collect()
            } else {
                let mean: Vec<f32> = (0..plane)
                    .map(|i| (0..ci).map(|c| f[c * plane + i]).sum::<f32>() / ci as f32)
                    .collect();
                let peak = mean.iter().fold(1e-12f32, |m, x| m.max(x.abs()));
                mean.iter().map(|&x| diverging(x / peak)).collect()
            };
            (kh, kw, px)
        })
        .collect();
    let cols = (co as f64).sqrt().ceil() as usize;
    Ok(tile_grid(&tiles, cols, 64))
}

/// The input image, then each channel of `maps` (`[C, H, W]` of one image) scaled from its
/// own minimum to maximum on the viridis scale.
pub fn feature_grid(input: &Image, maps: &Tensor<3>) -> Result<RgbImage> {
    let [c, h, w] = maps.dims();
    let v = read(maps.clone())?;
    let mut tiles = vec![(input.height, input.width, rgb_of(input))];
    // Feature maps are smaller than the image: scale them to the image's size.
    let up = (input.height / h.max(1)).max(1);
    for ch in 0..c {
        let m = &v[ch * h * w..(ch + 1) * h * w];
        let (lo, hi) = m
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let span = (hi - lo).max(1e-12);
        let mut px = Vec::with_capacity(h * w * up * up);
        for y in 0..h * up {
            for x in 0..w * up {
                px.push(viridis((m[(y / up) * w + x / up] - lo) / span));
            }
        }
        tiles.push((h * up, w * up, px));
    }
    let cols = ((tiles.len() as f64).sqrt().ceil() as usize).max(4);
    Ok(tile_grid(&tiles, cols, 56))
}

/// The names of the layers and blocks whose outputs can be shown (tap points), in forward
/// order, for images of shape `input`.
pub fn layer_names<N: Network>(model: &N, input: [usize; 3], device: &Device) -> Vec<String> {
    let [c, h, w] = input;
    let mut taps = Taps::only(Vec::<String>::new());
    model.forward_tapped(Tensor::zeros([1, c, h, w], device), &mut taps);
    taps.points().to_vec()
}

/// The output of layer `name` for a batch of images, or an error listing the layers.
pub fn layer_output<N: Network>(model: &N, images: Tensor<4>, name: &str) -> Result<Tensor<4>> {
    let mut taps = Taps::only([name]);
    model.forward_tapped(images, &mut taps);
    match taps.get(name) {
        Some(t) => Ok(t.clone()),
        None => Err(TrainError::Config(format!(
            "no layer `{name}`; the layers with outputs to show are: {}",
            taps.points().join(", ")
        ))),
    }
}

/// One of the strongest responses of a channel: its value, the image and the position.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// Channel of the layer.
    pub channel: usize,
    /// The activation.
    pub value: f32,
    /// Index of the image in the dataset.
    pub index: usize,
    /// Row of the unit in the layer's output.
    pub y: usize,
    /// Column of the unit.
    pub x: usize,
}

/// For each of the first `channels` channels of layer `layer`, the `k` images of `dataset`
/// (after `transforms`) whose strongest unit responds most, strongest first (one patch per
/// image and channel, so that the `k` patches show `k` different images).
pub fn top_patches<N: Network>(
    model: &N,
    dataset: Arc<dyn Dataset<ImageItem>>,
    transforms: &[Transform],
    layer: &str,
    channels: usize,
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<Patch>>> {
    let loader = ImageLoader::new(
        dataset,
        transforms.to_vec(),
        LoaderConfig::in_order(128, 2),
        device.clone(),
    )?;
    let mut best: Vec<Vec<Patch>> = Vec::new();
    let mut seen = 0usize;
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Training(format!("reading a batch: {e}")))?;
        let out = layer_output(model, batch.images, layer)?;
        let [b, c, h, w] = out.dims();
        let n = channels.min(c);
        best.resize(n, Vec::new());
        let (values, positions) = out
            .narrow(1, 0, n)
            .reshape([b, n, h * w])
            .max_dim_with_indices(2);
        let values = read(values)?;
        let positions = read_int(positions)?;
        for i in 0..b {
            for (ch, list) in best.iter_mut().enumerate() {
                let value = values[i * n + ch];
                let pos = positions[i * n + ch].max(0) as usize;
                list.push(Patch {
                    channel: ch,
                    value,
                    index: seen + i,
                    y: pos / w,
                    x: pos % w,
                });
                // Strongest first; ties keep the earlier image.
                list.sort_by(|a, b| b.value.total_cmp(&a.value).then(a.index.cmp(&b.index)));
                list.truncate(k);
            }
        }
        seen += b;
    }
    Ok(best)
}

/// Image `index` of `dataset` as the network saw it through the (evaluation) `transforms`,
/// with the normalisation undone for display.
fn as_seen(
    dataset: &dyn Dataset<ImageItem>,
    transforms: &[Transform],
    index: usize,
) -> Result<Image> {
    let item = dataset
        .get(index)
        .map_err(|e| TrainError::Training(format!("image {index}: {e}")))?;
    let img = apply_all(transforms, item.image, 0, 0, index as u64)
        .map_err(|e| TrainError::Training(format!("image {index}: {e}")))?;
    Ok(displayable(transforms, img))
}

/// The patches as a grid, one row per channel: each crop is the unit's receptive field
/// (`row`), clipped to the image; the part of the field that lies in the padding is grey.
pub fn patch_grid(
    dataset: &dyn Dataset<ImageItem>,
    transforms: &[Transform],
    row: &LayerRow,
    patches: &[Vec<Patch>],
) -> Result<RgbImage> {
    let rf = row.receptive_field;
    let k = patches.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut tiles = Vec::new();
    for list in patches {
        for i in 0..k {
            let mut px = vec![[200u8, 200, 200]; rf * rf];
            if let Some(p) = list.get(i) {
                let img = as_seen(dataset, transforms, p.index)?;
                let rgb = rgb_of(&img);
                let [top, left, bottom, right] = row.field_of(p.y, p.x, img.height, img.width);
                // Where the clipped crop sits inside the full field.
                let oy =
                    (top as i64 - (row.receptive_field_start + (p.y * row.jump) as i64)) as usize;
                let ox =
                    (left as i64 - (row.receptive_field_start + (p.x * row.jump) as i64)) as usize;
                for y in top..bottom {
                    for x in left..right {
                        px[(oy + y - top) * rf + ox + x - left] = rgb[y * img.width + x];
                    }
                }
            }
            tiles.push((rf, rf, px));
        }
    }
    Ok(tile_grid(&tiles, k, 48))
}

/// Saves an image as PNG, naming the file in the error.
pub fn save_png(img: &RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| TrainError::file(path, format!("cannot encode the PNG: {e}")))?;
    crate::store::run::write_atomic(path, &bytes)
}

/// Three panels by layer (x: layers in forward order): gradient norm (log scale), activation
/// standard deviation, and fraction of zero activations, one line per epoch (light to dark).
pub fn diagnostics_png(grads: &[GradientRow], acts: &[ActivationRow], path: &Path) -> Result<()> {
    // The weights' layers only: a batch norm's scale and shift (in the CSV) have gradients of
    // another magnitude that would zig-zag between the convolutions.
    let is_norm = |layer: &str| {
        let last = layer.rsplit('.').next().unwrap_or(layer);
        last.starts_with("bn") || last.starts_with("norm")
    };
    let grads: Vec<GradientRow> = grads
        .iter()
        .filter(|r| !is_norm(&r.gradient.layer))
        .cloned()
        .collect();
    let grads = grads.as_slice();
    let g_layers = order(grads.iter().map(|r| r.gradient.layer.as_str()));
    let a_layers = order(acts.iter().map(|r| r.stats.layer.as_str()));
    let g = per_epoch(
        &g_layers,
        grads
            .iter()
            .map(|r| (r.epoch, r.gradient.layer.as_str(), r.gradient.grad_norm)),
    );
    let s = per_epoch(
        &a_layers,
        acts.iter()
            .map(|r| (r.epoch, r.stats.layer.as_str(), r.stats.std)),
    );
    let z = per_epoch(
        &a_layers,
        acts.iter()
            .map(|r| (r.epoch, r.stats.layer.as_str(), r.stats.zero_fraction)),
    );
    let axes = |title: &str, layers: &[String], log_y: bool| Axes {
        title: title.into(),
        x_desc: String::new(),
        y_desc: String::new(),
        log_y,
        x_names: Some(layers.to_vec()),
    };
    panels_png(
        &[
            (axes("Gradient norm ||g|| by layer", &g_layers, true), g),
            (axes("Activation std by layer", &a_layers, false), s),
            (axes("Fraction of zero activations", &a_layers, false), z),
        ],
        500,
        460,
        path,
    )
}

/// Distinct names in first-seen order.
fn order<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// One line per epoch (light to dark) of `(layer index, value)` points.
fn per_epoch<'a>(
    layers: &[String],
    values: impl Iterator<Item = (usize, &'a str, f64)>,
) -> Vec<Series> {
    let mut lines: Vec<(usize, Vec<(f64, f64)>)> = Vec::new();
    for (epoch, layer, v) in values {
        let Some(i) = layers.iter().position(|x| x == layer) else {
            continue;
        };
        match lines.iter_mut().find(|(e, _)| *e == epoch) {
            Some((_, pts)) => pts.push((i as f64, v)),
            None => lines.push((epoch, vec![(i as f64, v)])),
        }
    }
    lines.sort_by_key(|(e, _)| *e);
    let n = lines.len();
    lines
        .into_iter()
        .enumerate()
        .map(|(i, (epoch, mut points))| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            Series {
                label: format!("epoch {epoch}"),
                points,
                color: epoch_shade(i, n),
                dashed: false,
                markers_only: false,
            }
        })
        .collect()
}

/// Light (first epoch) to dark (last) shades of one hue.
fn epoch_shade(i: usize, n: usize) -> RGBColor {
    let base = palette(0);
    let t = if n <= 1 {
        1.0
    } else {
        i as f64 / (n - 1) as f64
    };
    let mix = |c: u8| (255.0 - (255.0 - c as f64) * (0.3 + 0.7 * t)).round() as u8;
    RGBColor(mix(base.0), mix(base.1), mix(base.2))
}

/// The highest-loss images of a report as a grid (fastai's `plot_top_losses`): each image as
/// the network saw it (through `transforms`, normalisation undone), captioned with its class,
/// the prediction, the loss and the probability of its class. `dataset` is the split the
/// report evaluated, in the same order.
pub fn top_losses_png(
    dataset: &dyn Dataset<ImageItem>,
    transforms: &[Transform],
    report: &crate::inspect::eval::EvalReport,
    path: &Path,
) -> Result<()> {
    use plotters::prelude::*;
    const COLS: usize = 4;
    const CAPTION: usize = 34;
    const MIN_SIDE: usize = 112;
    let top = &report.top_losses;
    if top.is_empty() {
        return Ok(());
    }
    let mut tiles = Vec::with_capacity(top.len());
    for t in top {
        let img = as_seen(dataset, transforms, t.index)?;
        tiles.push((img.height, img.width, rgb_of(&img)));
    }
    let th = tiles.iter().map(|t| t.0).max().unwrap_or(1).max(1);
    let tw = tiles.iter().map(|t| t.1).max().unwrap_or(1).max(1);
    let scale = MIN_SIDE.div_ceil(th.max(tw)).max(1);
    let (ch, cw) = (th * scale, (tw * scale).max(150));
    let cols = COLS.min(tiles.len());
    let rows = tiles.len().div_ceil(cols);
    let (width, height) = (
        cols * (cw + 4 * GAP) + GAP,
        rows * (ch + CAPTION + 4 * GAP) + GAP,
    );
    let mut canvas = RgbImage::from_pixel(width as u32, height as u32, BACKGROUND);
    for (i, (h, w, px)) in tiles.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let x0 = GAP + c * (cw + 4 * GAP) + (cw - w * scale) / 2;
        let y0 = GAP + r * (ch + CAPTION + 4 * GAP) + CAPTION;
        blit(&mut canvas, x0, y0, *h, *w, scale, px);
    }
    let mut raw = canvas.into_raw();
    {
        crate::inspect::plot::register_font();
        let root =
            BitMapBackend::with_buffer(&mut raw, (width as u32, height as u32)).into_drawing_area();
        let name = |c: usize| {
            report
                .classes
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.to_string())
        };
        for (i, t) in top.iter().enumerate() {
            let (r, c) = (i / cols, i % cols);
            let x = (GAP + c * (cw + 4 * GAP)) as i32;
            let y = (GAP + r * (ch + CAPTION + 4 * GAP)) as i32;
            let lines = [
                format!("true {}, predicted {}", name(t.actual), name(t.predicted)),
                format!("loss {:.2}, p {:.3}", t.loss, t.probability),
            ];
            for (l, text) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    text.clone(),
                    (x, y + 16 * l as i32),
                    ("sans-serif", 13).into_font().color(&BLACK),
                ))
                .map_err(|e| crate::inspect::plot::err(path, e))?;
            }
        }
        root.present()
            .map_err(|e| crate::inspect::plot::err(path, e))?;
    }
    let canvas = RgbImage::from_raw(width as u32, height as u32, raw)
        .ok_or_else(|| TrainError::file(path, "cannot draw the grid"))?;
    save_png(&canvas, path)
}
