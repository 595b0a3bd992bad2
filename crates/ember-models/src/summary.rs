//! Per-layer summaries: output shape, parameters, multiply-accumulates and receptive field.
//!
//! Burn has no forward hooks, so each model *describes* itself: [`Describe::describe`] walks
//! the same layers as `forward`, in the same order, and hands each Burn layer to a [`Tracer`].
//! The tracer reads the hyper-parameters from the layer itself (kernel, stride, padding,
//! dilation, groups, weight shapes), so a summary cannot drift from the weights; tests check
//! for every model that the summary's output shape equals the real forward's and that its
//! parameter total equals `Module::num_params`.
//!
//! The arithmetic, per spatial axis (PyTorch's definitions):
//! * output size `out = floor((in + 2p - d(k-1) - 1) / s) + 1` (ceil mode rounds up, but a
//!   window may not start in the right padding);
//! * parameters of a convolution `(k_h k_w c_in / groups + 1) c_out` (no `+1` without bias);
//! * multiply-accumulates of a convolution `out_h out_w c_out (k_h k_w c_in / groups)`, of a
//!   linear layer `d_in d_out`; normalisation, pooling and activations are not counted;
//! * receptive field `r' = r + (d(k-1)) j` and jump `j' = j s`, starting from `r = j = 1`.
//!   A dense layer sees the whole input: `r' = r + (size - 1) j`.
//! * where the field starts: unit `i` of a layer sees input pixels `[s + i j, s + i j + r)`,
//!   with `s' = s - p j` after a window with left padding `p` (so `s` may be negative: the
//!   field reaches into the padding). Branches that merge (concat, residual add) see the
//!   union of their fields.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a network cannot take an input: the layer where the shape breaks, and how.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("layer `{layer}` ({kind}) cannot take its input {input}: {reason}")]
pub struct SummaryError {
    /// Dotted path of the layer, e.g. `layer3.0.conv1`.
    pub layer: String,
    /// What the layer is, e.g. `conv 3x3/2`.
    pub kind: String,
    /// The shape the layer received, e.g. `64x1x1`.
    pub input: String,
    /// What was wrong.
    pub reason: String,
}

/// One row of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Dotted path of the layer in the module tree (the same names as the weights).
    pub name: String,
    /// Kind and hyper-parameters, e.g. `conv 3x3/1 p1`.
    pub kind: String,
    /// Output shape without the batch axis: `[C, H, W]`, or `[F]` after flattening.
    pub output_shape: Vec<usize>,
    /// Trainable parameters of this layer.
    pub params: usize,
    /// Multiply-accumulates for one image.
    pub macs: u64,
    /// Receptive field (in input pixels) of one output unit.
    pub receptive_field: usize,
    /// Distance in input pixels between neighbouring output units (product of strides).
    pub jump: usize,
    /// Input pixel where the field of the first unit starts (negative inside the padding);
    /// unit `i` sees `[start + i * jump, start + i * jump + receptive_field)` on each axis.
    #[serde(default)]
    pub receptive_field_start: i64,
}

impl LayerRow {
    /// The input window `[top, left, bottom, right)` that output unit `(y, x)` sees, clipped
    /// to an `h x w` image.
    pub fn field_of(&self, y: usize, x: usize, h: usize, w: usize) -> [usize; 4] {
        let span = |i: usize, size: usize| {
            let lo = self.receptive_field_start + (i * self.jump) as i64;
            let hi = lo + self.receptive_field as i64;
            (
                lo.clamp(0, size as i64) as usize,
                hi.clamp(0, size as i64) as usize,
            )
        };
        let (top, bottom) = span(y, h);
        let (left, right) = span(x, w);
        [top, left, bottom, right]
    }
}

/// A whole model's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Registry name or type of the model.
    pub model: String,
    /// `[C, H, W]` of one input image.
    pub input_shape: Vec<usize>,
    /// One row per layer, in forward order.
    pub layers: Vec<LayerRow>,
    /// Sum of the layers' parameters.
    pub total_params: usize,
    /// Sum of the layers' multiply-accumulates.
    pub total_macs: u64,
}

impl Summary {
    /// The row that ends the layer or block `name` (a tap name, see [`crate::taps`]): the
    /// row itself, or the last row inside it, e.g. `layer1.0.add` for the block `layer1.0`.
    pub fn row_of(&self, name: &str) -> Option<&LayerRow> {
        let prefix = format!("{name}.");
        self.layers
            .iter()
            .rev()
            .find(|r| r.name == name || r.name.starts_with(&prefix))
    }

    /// Shape of the network's output for one image.
    pub fn output_shape(&self) -> &[usize] {
        self.layers
            .last()
            .map(|row| row.output_shape.as_slice())
            .unwrap_or(&self.input_shape)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = |s: &[usize]| {
            s.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("x")
        };
        let name_w = self
            .layers
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        let kind_w = self
            .layers
            .iter()
            .map(|r| r.kind.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(f, "{} — input {}", self.model, shape(&self.input_shape))?;
        writeln!(
            f,
            "{:<name_w$}  {:<kind_w$}  {:>14}  {:>12}  {:>15}  {:>5}  {:>5}",
            "layer", "kind", "output", "params", "MACs", "RF", "jump"
        )?;
        writeln!(f, "{}", "-".repeat(name_w + kind_w + 66))?;
        for r in &self.layers {
            writeln!(
                f,
                "{:<name_w$}  {:<kind_w$}  {:>14}  {:>12}  {:>15}  {:>5}  {:>5}",
                r.name,
                r.kind,
                shape(&r.output_shape),
                group_digits(r.params as u64),
                group_digits(r.macs),
                r.receptive_field,
                r.jump
            )?;
        }
        writeln!(f, "{}", "-".repeat(name_w + kind_w + 66))?;
        writeln!(
            f,
            "total parameters: {}   total MACs: {} ({})",
            group_digits(self.total_params as u64),
            group_digits(self.total_macs),
            human_macs(self.total_macs)
        )
    }
}

/// `1.81 GMACs`, `416.5 KMACs`: the unit that keeps the figure readable.
pub fn human_macs(macs: u64) -> String {
    let m = macs as f64;
    if m >= 1e9 {
        format!("{:.2} GMACs", m / 1e9)
    } else if m >= 1e6 {
        format!("{:.1} MMACs", m / 1e6)
    } else {
        format!("{:.1} KMACs", m / 1e3)
    }
}

/// `1234567` -> `1,234,567`.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Where a [`ModuleVisitor`](burn::module::ModuleVisitor) is: the dotted path of the parameter
/// it visits, as the weights name it. Enum variants (`Model::LeNet`) are not part of that name.
#[derive(Debug, Clone, Default)]
pub struct ParamPath {
    parts: Vec<String>,
}

impl ParamPath {
    /// Call from `enter_module`.
    pub fn enter(&mut self, name: &str, container: &str) {
        let name = if container.starts_with("Enum:") {
            ""
        } else {
            name
        };
        self.parts.push(name.to_string());
    }

    /// Call from `exit_module`.
    pub fn exit(&mut self) {
        self.parts.pop();
    }

    /// The layer and the parameter's own name: (`layer1.0.conv1.conv`, `weight`).
    pub fn layer_and_name(&self) -> (String, &str) {
        let parts: Vec<&str> = self
            .parts
            .iter()
            .map(String::as_str)
            .filter(|p| !p.is_empty())
            .collect();
        match parts.split_last() {
            Some((name, layer)) => (layer.join("."), name),
            None => (String::new(), ""),
        }
    }
}

/// Trainable parameters of a module, as torchvision counts them.
///
/// Burn's `Module::num_params` also counts batch norm's running mean and variance (buffers,
/// not parameters); this visitor skips them by name.
pub fn count_params<M: burn::module::Module>(module: &M) -> usize {
    struct Counter {
        path: ParamPath,
        total: usize,
    }
    impl burn::module::ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.path.enter(name, container);
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let buffer = matches!(self.path.layer_and_name().1, "running_mean" | "running_var");
            if !buffer {
                self.total += numel(param);
            }
        }
    }
    let mut counter = Counter {
        path: ParamPath::default(),
        total: 0,
    };
    module.visit(&mut counter);
    counter.total
}

/// A model (or block) that can walk its layers through a [`Tracer`], mirroring `forward`.
pub trait Describe {
    /// Describes the layers in forward order, advancing the tracer's signal.
    fn describe(&self, t: &mut Tracer) -> Result<(), SummaryError>;
}

/// Summarises `model` for one input image of shape `[C, H, W]`.
pub fn summarize(
    model: &impl Describe,
    name: &str,
    input: [usize; 3],
) -> Result<Summary, SummaryError> {
    let mut t = Tracer::new(input);
    model.describe(&mut t)?;
    Ok(t.finish(name))
}

/// The signal at one point of the network: its shape and the geometry of one unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    /// Channels, or features once flattened.
    pub channels: usize,
    /// `[H, W]`; `None` once flattened.
    pub spatial: Option<[usize; 2]>,
    /// Receptive field per axis, in input pixels.
    pub rf: [usize; 2],
    /// Jump per axis, in input pixels.
    pub jump: [usize; 2],
    /// Where the first unit's field starts per axis, in input pixels (negative in the padding).
    pub start: [i64; 2],
}

impl Signal {
    fn shape(&self) -> Vec<usize> {
        match self.spatial {
            Some([h, w]) => vec![self.channels, h, w],
            None => vec![self.channels],
        }
    }

    fn shape_str(&self) -> String {
        self.shape()
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x")
    }
}

/// Walks a network symbolically, one layer at a time, collecting [`LayerRow`]s.
#[derive(Debug, Clone)]
pub struct Tracer {
    signal: Signal,
    scope: Vec<String>,
    rows: Vec<LayerRow>,
    input: [usize; 3],
}

/// `a` with its field widened to cover `b`'s too (branches that merge).
fn union_field(mut a: Signal, b: &Signal) -> Signal {
    for i in 0..2 {
        let end = (a.start[i] + a.rf[i] as i64).max(b.start[i] + b.rf[i] as i64);
        a.start[i] = a.start[i].min(b.start[i]);
        a.rf[i] = (end - a.start[i]) as usize;
        a.jump[i] = a.jump[i].max(b.jump[i]);
    }
    a
}

/// Number of elements of a (lazy) parameter, without materialising it.
fn numel<const D: usize>(p: &Param<Tensor<D>>) -> usize {
    p.lazy_shape().num_elements()
}

/// One axis of a sliding window; `None` when the window does not fit.
fn window_out(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: (usize, usize),
    dilation: usize,
    ceil: bool,
) -> Option<usize> {
    let effective = dilation * (kernel - 1) + 1;
    let padded = input + pad.0 + pad.1;
    if padded < effective || stride == 0 {
        return None;
    }
    let span = padded - effective;
    let mut out = if ceil {
        span.div_ceil(stride)
    } else {
        span / stride
    } + 1;
    // PyTorch's ceil mode: the last window must start inside the input or the left padding.
    if ceil && (out - 1) * stride >= input + pad.0 {
        out -= 1;
    }
    Some(out)
}

/// Padding per axis as ((top, bottom), (left, right)), as Burn computes it.
fn padding_pairs(
    padding: &PaddingConfig2d,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
) -> [(usize, usize); 2] {
    match padding {
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(*top, *bottom), (*left, *right)],
        PaddingConfig2d::Same => {
            let same = |k: usize, s: usize, n: usize| {
                let out = n.div_ceil(s);
                let total = if out > 0 {
                    ((out - 1) * s + k).saturating_sub(n)
                } else {
                    0
                };
                (total / 2, total - total / 2)
            };
            [
                same(kernel[0], stride[0], size[0]),
                same(kernel[1], stride[1], size[1]),
            ]
        }
    }
}

fn pad_str(p: [(usize, usize); 2]) -> String {
    let [(t, b), (l, r)] = p;
    if t == 0 && b == 0 && l == 0 && r == 0 {
        String::new()
    } else if t == b && l == r && t == l {
        format!(" p{t}")
    } else {
        format!(" p{t},{l},{b},{r}")
    }
}

fn k_str(k: [usize; 2]) -> String {
    format!("{}x{}", k[0], k[1])
}

fn s_str(s: [usize; 2]) -> String {
    if s[0] == s[1] {
        s[0].to_string()
    } else {
        format!("{}x{}", s[0], s[1])
    }
}

impl Tracer {
    /// A tracer for one image of shape `[C, H, W]`.
    pub fn new(input: [usize; 3]) -> Self {
        Self {
            signal: Signal {
                channels: input[0],
                spatial: Some([input[1], input[2]]),
                rf: [1, 1],
                jump: [1, 1],
                start: [0, 0],
            },
            scope: Vec::new(),
            rows: Vec::new(),
            input,
        }
    }

    /// The current signal (to start a branch from it).
    pub fn signal(&self) -> Signal {
        self.signal
    }

    /// Continues from `signal` (to start the next branch from the block's input).
    pub fn set_signal(&mut self, signal: Signal) {
        self.signal = signal;
    }

    /// Runs `f` with `name` pushed onto the layer path, e.g. `layer1` then `0` gives `layer1.0.conv1`.
    pub fn scoped<R>(&mut self, name: impl fmt::Display, f: impl FnOnce(&mut Self) -> R) -> R {
        self.scope.push(name.to_string());
        let out = f(self);
        self.scope.pop();
        out
    }

    fn path(&self, name: &str) -> String {
        let mut parts = self.scope.clone();
        parts.push(name.to_string());
        parts.join(".")
    }

    fn error(&self, name: &str, kind: &str, reason: impl Into<String>) -> SummaryError {
        SummaryError {
            layer: self.path(name),
            kind: kind.to_string(),
            input: self.signal.shape_str(),
            reason: reason.into(),
        }
    }

    fn push(&mut self, name: &str, kind: String, params: usize, macs: u64) {
        self.rows.push(LayerRow {
            name: self.path(name),
            kind,
            output_shape: self.signal.shape(),
            params,
            macs,
            receptive_field: self.signal.rf[0].max(self.signal.rf[1]),
            jump: self.signal.jump[0].max(self.signal.jump[1]),
            receptive_field_start: self.signal.start[0].min(self.signal.start[1]),
        });
    }

    fn spatial(&self, name: &str, kind: &str) -> Result<[usize; 2], SummaryError> {
        self.signal.spatial.ok_or_else(|| {
            self.error(
                name,
                kind,
                "expects an image-shaped input, got a flat vector",
            )
        })
    }

    /// A sliding window layer: updates shape and receptive field.
    #[allow(clippy::too_many_arguments)]
    fn window(
        &mut self,
        name: &str,
        kind: &str,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [(usize, usize); 2],
        dilation: [usize; 2],
        ceil: bool,
    ) -> Result<[usize; 2], SummaryError> {
        let [h, w] = self.spatial(name, kind)?;
        let oh = window_out(h, kernel[0], stride[0], pad[0], dilation[0], ceil);
        let ow = window_out(w, kernel[1], stride[1], pad[1], dilation[1], ceil);
        let (Some(oh), Some(ow)) = (oh, ow) else {
            let eff = [
                dilation[0] * (kernel[0] - 1) + 1,
                dilation[1] * (kernel[1] - 1) + 1,
            ];
            return Err(self.error(
                name,
                kind,
                format!(
                    "the padded input {}x{} is smaller than the {}x{} window; use a larger input image",
                    h + pad[0].0 + pad[0].1,
                    w + pad[1].0 + pad[1].1,
                    eff[0],
                    eff[1]
                ),
            ));
        };
        for a in 0..2 {
            self.signal.start[a] -= (pad[a].0 * self.signal.jump[a]) as i64;
            self.signal.rf[a] += dilation[a] * (kernel[a] - 1) * self.signal.jump[a];
            self.signal.jump[a] *= stride[a];
        }
        self.signal.spatial = Some([oh, ow]);
        Ok([oh, ow])
    }

    /// A [`Conv2d`].
    pub fn conv2d(&mut self, name: &str, conv: &Conv2d) -> Result<(), SummaryError> {
        let [c_out, c_in_per_group, kh, kw] = conv.weight.lazy_shape().dims();
        let k = [kh, kw];
        let [h, w] = self.spatial(name, "conv")?;
        let pad = padding_pairs(&conv.padding, [h, w], k, conv.stride);
        let mut kind = format!("conv {}/{}{}", k_str(k), s_str(conv.stride), pad_str(pad));
        if conv.dilation != [1, 1] {
            kind.push_str(&format!(" d{}", s_str(conv.dilation)));
        }
        if conv.groups != 1 {
            kind.push_str(&format!(" g{}", conv.groups));
        }
        let c_in = c_in_per_group * conv.groups;
        if self.signal.channels != c_in {
            return Err(self.error(
                name,
                &kind,
                format!(
                    "expects {c_in} input channels but receives {}",
                    self.signal.channels
                ),
            ));
        }
        let [oh, ow] = self.window(name, &kind, k, conv.stride, pad, conv.dilation, false)?;
        self.signal.channels = c_out;
        let params = numel(&conv.weight) + conv.bias.as_ref().map_or(0, numel);
        let macs = (oh * ow * c_out * c_in_per_group * kh * kw) as u64;
        self.push(name, kind, params, macs);
        Ok(())
    }

    /// A [`MaxPool2d`].
    pub fn max_pool2d(&mut self, name: &str, pool: &MaxPool2d) -> Result<(), SummaryError> {
        let [h, w] = self.spatial(name, "max pool")?;
        let pad = padding_pairs(&pool.padding, [h, w], pool.kernel_size, pool.stride);
        let kind = format!(
            "max pool {}/{}{}{}",
            k_str(pool.kernel_size),
            s_str(pool.stride),
            pad_str(pad),
            if pool.ceil_mode { " ceil" } else { "" }
        );
        self.window(
            name,
            &kind,
            pool.kernel_size,
            pool.stride,
            pad,
            pool.dilation,
            pool.ceil_mode,
        )?;
        self.push(name, kind, 0, 0);
        Ok(())
    }

    /// An [`AvgPool2d`].
    pub fn avg_pool2d(&mut self, name: &str, pool: &AvgPool2d) -> Result<(), SummaryError> {
        let [h, w] = self.spatial(name, "avg pool")?;
        let pad = padding_pairs(&pool.padding, [h, w], pool.kernel_size, pool.stride);
        let kind = format!(
            "avg pool {}/{}{}{}",
            k_str(pool.kernel_size),
            s_str(pool.stride),
            pad_str(pad),
            if pool.ceil_mode { " ceil" } else { "" }
        );
        self.window(
            name,
            &kind,
            pool.kernel_size,
            pool.stride,
            pad,
            [1, 1],
            pool.ceil_mode,
        )?;
        self.push(name, kind, 0, 0);
        Ok(())
    }

    /// An [`AdaptiveAvgPool2d`]: output size fixed, windows of about `in / out`.
    pub fn adaptive_avg_pool2d(
        &mut self,
        name: &str,
        pool: &AdaptiveAvgPool2d,
    ) -> Result<(), SummaryError> {
        let out = pool.output_size;
        let kind = format!("adaptive avg pool -> {}", k_str(out));
        let size = self.spatial(name, &kind)?;
        for a in 0..2 {
            // PyTorch's windows: start floor(i*in/out), end ceil((i+1)*in/out).
            let kernel = size[a].div_ceil(out[a]).max(1);
            let stride = (size[a] / out[a]).max(1);
            self.signal.rf[a] += (kernel - 1) * self.signal.jump[a];
            self.signal.jump[a] *= stride;
        }
        self.signal.spatial = Some(out);
        self.push(name, kind, 0, 0);
        Ok(())
    }

    /// A [`BatchNorm`] over the channel axis.
    pub fn batch_norm(&mut self, name: &str, bn: &BatchNorm) -> Result<(), SummaryError> {
        let [features] = bn.gamma.lazy_shape().dims();
        let kind = "batch norm".to_string();
        if features != self.signal.channels {
            return Err(self.error(
                name,
                &kind,
                format!(
                    "normalises {features} channels but receives {}",
                    self.signal.channels
                ),
            ));
        }
        self.push(name, kind, numel(&bn.gamma) + numel(&bn.beta), 0);
        Ok(())
    }

    /// A parameter-free layer that keeps the shape (local response norm, dropout...).
    pub fn same_shape(&mut self, name: &str, kind: &str) {
        self.push(name, kind.to_string(), 0, 0);
    }

    /// Flattens `[C, H, W]` into `[C*H*W]`; a dense layer then sees the whole input.
    pub fn flatten(&mut self, name: &str) {
        if let Some([h, w]) = self.signal.spatial {
            for (a, size) in [h, w].into_iter().enumerate() {
                self.signal.rf[a] += (size - 1) * self.signal.jump[a];
                self.signal.jump[a] *= size;
            }
            self.signal.channels *= h * w;
            self.signal.spatial = None;
            self.push(name, "flatten".to_string(), 0, 0);
        }
    }

    /// A [`Linear`] layer on a flat signal.
    pub fn linear(&mut self, name: &str, linear: &Linear) -> Result<(), SummaryError> {
        let [d_in, d_out] = linear.weight.lazy_shape().dims();
        let kind = format!("linear {d_in} -> {d_out}");
        if self.signal.spatial.is_some() {
            return Err(self.error(name, &kind, "expects a flat input; flatten first"));
        }
        if self.signal.channels != d_in {
            return Err(self.error(
                name,
                &kind,
                format!(
                    "expects {d_in} input features but receives {}; the input image size does not fit this network's dense layers",
                    self.signal.channels
                ),
            ));
        }
        self.signal.channels = d_out;
        let params = numel(&linear.weight) + linear.bias.as_ref().map_or(0, numel);
        self.push(name, kind, params, (d_in * d_out) as u64);
        Ok(())
    }

    /// Concatenates branches along the channel axis (Inception, DenseNet).
    pub fn concat(&mut self, name: &str, branches: &[Signal]) -> Result<(), SummaryError> {
        let kind = format!("concat of {}", branches.len());
        let Some(first) = branches.first() else {
            return Err(self.error(name, &kind, "no branch to concatenate"));
        };
        if let Some(b) = branches.iter().find(|b| b.spatial != first.spatial) {
            return Err(self.error(
                name,
                &kind,
                format!(
                    "branches disagree on spatial size: {} vs {}",
                    first.shape_str(),
                    b.shape_str()
                ),
            ));
        }
        let mut merged = *first;
        merged.channels = branches.iter().map(|b| b.channels).sum();
        for b in branches {
            merged = union_field(merged, b);
        }
        self.signal = merged;
        self.push(name, kind, 0, 0);
        Ok(())
    }

    /// Adds a shortcut to the current signal (ResNet): shapes must agree.
    pub fn add(&mut self, name: &str, shortcut: Signal) -> Result<(), SummaryError> {
        let kind = "add (residual)";
        if shortcut.shape() != self.signal.shape() {
            return Err(self.error(
                name,
                kind,
                format!(
                    "the shortcut has shape {} but the residual branch {}",
                    shortcut.shape_str(),
                    self.signal.shape_str()
                ),
            ));
        }
        let channels = self.signal.channels;
        self.signal = union_field(self.signal, &shortcut);
        self.signal.channels = channels;
        self.push(name, kind.to_string(), 0, 0);
        Ok(())
    }

    /// The finished summary.
    pub fn finish(self, model: &str) -> Summary {
        Summary {
            model: model.to_string(),
            input_shape: self.input.to_vec(),
            total_params: self.rows.iter().map(|r| r.params).sum(),
            total_macs: self.rows.iter().map(|r| r.macs).sum(),
            layers: self.rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_arithmetic_matches_pytorch() {
        // floor((in + 2p - d(k-1) - 1)/s) + 1
        assert_eq!(window_out(224, 11, 4, (2, 2), 1, false), Some(55));
        assert_eq!(window_out(55, 3, 2, (0, 0), 1, false), Some(27));
        assert_eq!(window_out(32, 3, 1, (2, 2), 2, false), Some(32));
        // GoogLeNet's ceil-mode pools: 112 -> 56 and 14 -> 7 (3x3/2), 7 -> 4 (2x2/2)
        assert_eq!(window_out(112, 3, 2, (0, 0), 1, true), Some(56));
        assert_eq!(window_out(14, 3, 2, (0, 0), 1, true), Some(7));
        assert_eq!(window_out(7, 2, 2, (0, 0), 1, true), Some(4));
        assert_eq!(window_out(7, 2, 2, (0, 0), 1, false), Some(3));
        // ceil mode may not start a window in the right padding: 5 with k2 s2 p1 -> 3, not 4
        assert_eq!(window_out(5, 2, 2, (1, 1), 1, true), Some(3));
        assert_eq!(window_out(2, 3, 1, (0, 0), 1, false), None);
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(61706), "61,706");
        assert_eq!(group_digits(11689512), "11,689,512");
    }
}
