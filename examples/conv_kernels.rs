//! Where a CNN's training time goes, one convolution at a time: forward, input gradient and
//! weight gradient of every distinct convolution of a model, timed on the backend's kernels
//! (Burn's `conv2d` and `conv2d_weight_backward`; the input gradient through autodiff, minus
//! the forward pass, as Burn does not export it), with GFLOP/s.
//! `benches/torch_conv_kernels.py` does the same with PyTorch's kernels.
//!
//! ```text
//! cargo run --release --example conv_kernels -- --model resnet18_cifar --batch-size 128
//! python3 benches/torch_conv_kernels.py --model resnet18_cifar --batch-size 128
//! ```
//!
//! Prints one JSON line per (convolution, pass): shape, how many times the model uses it,
//! median milliseconds of `--reps` runs, and GFLOP/s (2 x multiply-adds / time).

/// mimalloc, kept warm (feature `mimalloc`, on by default): the binary chooses the allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: ember::train::allocator::Allocator = ember::train::allocator::Allocator;

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{conv2d, conv2d_weight_backward};
use burn::tensor::ops::ConvOptions;
use clap::Parser;
use ember::models::ModelConfig;
use ember::train::Backend;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "resnet18_cifar")]
    model: String,
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    #[arg(long, default_value_t = 3)]
    reps: usize,
    #[arg(long, default_value = "auto")]
    backend: Backend,
}

/// A convolution's shape: the key that groups a model's identical layers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shape {
    c_in: usize,
    c_out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    groups: usize,
    input: [usize; 2],
}

/// One timed pass over a convolution (forward, input gradient or weight gradient).
type Pass<'a> = Box<dyn Fn() + 'a>;

fn median_ms(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let device = args.backend.device()?;
    device.seed(0);
    let config = ModelConfig::from_name(&args.model)?;

    // The model's convolutions, read off its summary rows (`conv 3x3/2 p1 g32`).
    let [_, h0, _] = config.canonical_input();
    let summary = config.summary(&args.model, config.canonical_input(), &device)?;
    let mut shapes: BTreeMap<Shape, usize> = BTreeMap::new();
    for row in &summary.layers {
        if let Some(spec) = row.kind.strip_prefix("conv ") {
            *shapes.entry(parse_conv(spec, row, h0)?).or_default() += 1;
        }
    }

    for (s, count) in shapes {
        let n = args.batch_size;
        let [h, w] = s.input;
        let out = [0, 1].map(|i| (s.input[i] + 2 * s.padding[i] - s.kernel[i]) / s.stride[i] + 1);
        let x = Tensor::<4>::random([n, s.c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
        let weight = Tensor::<4>::random(
            [s.c_out, s.c_in / s.groups, s.kernel[0], s.kernel[1]],
            Distribution::Normal(0.0, 0.1),
            &device,
        );
        let dy = Tensor::<4>::random(
            [n, s.c_out, out[0], out[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let options = ConvOptions::new(s.stride, s.padding, [1, 1], s.groups);
        let macs = (n * s.c_out * out[0] * out[1] * (s.c_in / s.groups) * s.kernel[0] * s.kernel[1])
            as f64;
        let ad = device.clone().autodiff();
        let x_ad = Tensor::<4>::from_data(x.to_data(), &ad);
        let w_ad = Tensor::<4>::from_data(weight.to_data(), &ad);
        let dy_ad = Tensor::<4>::from_data(dy.to_data(), &ad);
        let forward_ad = median_ms(args.reps, || {
            conv2d(x_ad.clone(), w_ad.clone(), None, options.clone()).into_data();
        });
        let passes: [(&str, Pass); 3] = [
            (
                "forward",
                Box::new(|| {
                    conv2d(x.clone(), weight.clone(), None, options.clone()).into_data();
                }),
            ),
            (
                "input_grad",
                Box::new(|| {
                    let x = x_ad.clone().require_grad();
                    let y = conv2d(x.clone(), w_ad.clone(), None, options.clone());
                    let grads = (y * dy_ad.clone()).sum().backward();
                    x.grad(&grads).map(|g| g.into_data());
                }),
            ),
            (
                "weight_grad",
                Box::new(|| {
                    conv2d_weight_backward(x.clone(), weight.clone(), dy.clone(), options.clone())
                        .into_data();
                }),
            ),
        ];
        for (pass, f) in passes {
            let mut ms = median_ms(args.reps, f);
            if pass == "input_grad" {
                ms = (ms - forward_ad).max(1e-3);
            }
            println!(
                "{}",
                serde_json::json!({
                    "framework": format!("ember {}", args.backend.resolve().backend.name()),
                    "model": args.model, "batch": n, "c_in": s.c_in, "c_out": s.c_out,
                    "kernel": s.kernel, "stride": s.stride, "padding": s.padding,
                    "groups": s.groups, "input": s.input, "uses": count, "pass": pass,
                    "ms": (ms * 1000.0).round() / 1000.0,
                    "gflops": (2.0 * macs / (ms * 1e6) * 10.0).round() / 10.0,
                })
            );
        }
    }
    Ok(())
}

/// A [`Shape`] from a summary row's kind (`3x3/2 p1 g32`), its output shape and parameter
/// count (input channels: weights / (C_out k k), so a 1x1 convolution with a bias counts one
/// channel too many). The input size follows from the row's jump (product of strides up to
/// it), checked against the output size.
fn parse_conv(spec: &str, row: &ember::models::LayerRow, h0: usize) -> anyhow::Result<Shape> {
    let pair = |t: &str| -> anyhow::Result<[usize; 2]> {
        let v: Vec<usize> = t.split('x').map(str::parse).collect::<Result<_, _>>()?;
        Ok(if v.len() == 1 {
            [v[0], v[0]]
        } else {
            [v[0], v[1]]
        })
    };
    let mut parts = spec.split_whitespace();
    let (k, s) = parts
        .next()
        .and_then(|ks| ks.split_once('/'))
        .ok_or_else(|| anyhow::anyhow!("unexpected conv row {spec}"))?;
    let (kernel, stride) = (pair(k)?, pair(s)?);
    let (mut padding, mut groups) = ([0, 0], 1);
    for part in parts {
        if let Some(p) = part.strip_prefix('p') {
            let v: Vec<usize> = p.split(',').map(str::parse).collect::<Result<_, _>>()?;
            padding = [v[0], v[1 % v.len()]];
        } else if let Some(g) = part.strip_prefix('g') {
            groups = g.parse()?;
        } else if part.starts_with('d') {
            anyhow::bail!("dilated convolutions are not timed here ({spec})");
        }
    }
    let c_out = row.output_shape[0];
    let out = [row.output_shape[1], row.output_shape[2]];
    let taps = c_out * kernel[0] * kernel[1];
    let weights = if row.params.is_multiple_of(taps) {
        row.params
    } else {
        row.params - c_out
    };
    let c_in = weights / taps * groups;
    let size = |i: usize| {
        let from_jump = h0 * stride[i] / row.jump.max(1);
        let fits =
            |n: usize| (n + 2 * padding[i]).saturating_sub(kernel[i]) / stride[i] + 1 == out[i];
        if fits(from_jump) {
            from_jump
        } else {
            (out[i] - 1) * stride[i] + kernel[i] - 2 * padding[i]
        }
    };
    Ok(Shape {
        c_in,
        c_out,
        kernel,
        stride,
        padding,
        groups,
        input: [size(0), size(1)],
    })
}
