//! Batch normalisation in two passes over the data, forward and backward.
//!
//! Burn's generic `batch_norm_train` computes the statistics and the output out of tensor
//! operations (a transposed copy, two means, a subtraction, a square, then subtract, divide,
//! multiply, add): about ten passes over an activation that is often the largest tensor of
//! the step, and the backward pass about as many. Here, for `x` of shape `[N, C, ...]` with
//! `M = N * (elements per channel and image)`:
//!
//! ```text
//! forward:  mean_c = sum x / M,  var_c = sum x^2 / M - mean_c^2   (one pass, f64 sums)
//!           y = x * a_c + (beta_c - mean_c * a_c),  a_c = gamma_c / sqrt(var_c + eps)
//! backward: xhat = (x - mean_c) / sqrt(var_c + eps)
//!           dbeta_c = sum dy,  dgamma_c = sum dy * xhat              (one pass)
//!           dx = gamma_c / sqrt(var_c + eps) * (dy - dbeta_c / M - xhat * dgamma_c / M)
//! ```
//!
//! The variance returned is the biased one, as Burn's generic implementation returns (the
//! module turns it into its running statistics). Statistics are summed in f64 for f32 and
//! f16 inputs, so the one-pass variance loses nothing against the two-pass form at the
//! sizes of a batch. Channels are summed in parallel, images written in parallel.

use crate::{FlexTensor, Layout};
use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{Bytes, Shape};

/// Element types with a native implementation (f16 and bf16 go through f32).
pub(crate) trait NormElement:
    bytemuck::Pod + burn_backend::Element + Copy + Send + Sync
{
    const DTYPE: DType;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl NormElement for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl NormElement for f64 {
    const DTYPE: DType = DType::F64;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// `[N, C, rest]` sizes of a batch-norm input.
#[derive(Clone, Copy)]
struct Dims {
    images: usize,
    channels: usize,
    spatial: usize,
}

impl Dims {
    fn of(shape: &Shape) -> Self {
        assert!(
            shape.num_dims() >= 2,
            "batch_norm: input must have a channel axis"
        );
        let (images, channels) = (shape[0], shape[1]);
        let spatial = shape.num_elements() / (images * channels).max(1);
        Self {
            images,
            channels,
            spatial,
        }
    }

    /// Elements per channel over the whole batch.
    fn per_channel(&self) -> usize {
        self.images * self.spatial
    }

    fn image_len(&self) -> usize {
        self.channels * self.spatial
    }
}

fn values<T: NormElement>(t: &FlexTensor) -> FlexTensor {
    let t = t.to_contiguous();
    assert_eq!(t.dtype(), T::DTYPE, "batch_norm: mixed dtypes");
    t
}

fn tensor<T: NormElement>(data: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape), T::DTYPE)
}

/// Per channel, the sum over images of `row(channel, start)`, where `start` is the flat index
/// of that image's row of the channel (`spatial` elements), in parallel over channels.
fn per_channel(d: Dims, row: impl Fn(usize, usize) -> (f64, f64) + Sync + Send) -> Vec<(f64, f64)> {
    let channel = |c: usize| {
        (0..d.images).fold((0.0, 0.0), |(s, q), n| {
            let (a, b) = row(c, (n * d.channels + c) * d.spatial);
            (s + a, q + b)
        })
    };
    #[cfg(feature = "rayon")]
    if d.images * d.image_len() >= crate::ops::PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        return (0..d.channels).into_par_iter().map(channel).collect();
    }
    (0..d.channels).map(channel).collect()
}

/// Independent accumulators per row sum: one chain of f64 additions waits out each add's
/// latency per element; eight of them vectorise (measured: the statistics and the
/// elementwise passes, written per element through a closure, were 15% of a DenseNet step).
const LANES: usize = 8;

/// `(sum a, sum a * (b - mu))` over a row in f64; with `b = a` and `mu = 0` the sum and the
/// sum of squares.
fn row_sums<T: NormElement>(a: &[T], b: &[T], mu: f64) -> (f64, f64) {
    let (mut s, mut q) = ([0.0f64; LANES], [0.0f64; LANES]);
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (a_rest, b_rest) = (a_chunks.remainder(), b_chunks.remainder());
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for j in 0..LANES {
            let v = ca[j].to_f64();
            s[j] += v;
            q[j] += v * (cb[j].to_f64() - mu);
        }
    }
    let (mut s, mut q) = (s.iter().sum::<f64>(), q.iter().sum::<f64>());
    for (va, vb) in a_rest.iter().zip(b_rest) {
        let v = va.to_f64();
        s += v;
        q += v * (vb.to_f64() - mu);
    }
    (s, q)
}

/// For every `(image, channel)` row, `f(channel, start, out_row)` with `start` the row's
/// flat index, in parallel over images.
fn map_rows<T: NormElement>(
    d: Dims,
    out: &mut [T],
    f: impl Fn(usize, usize, &mut [T]) + Sync + Send,
) {
    let image = |(n, chunk): (usize, &mut [T])| {
        for (c, row) in chunk.chunks_mut(d.spatial.max(1)).enumerate() {
            f(c, n * d.image_len() + c * d.spatial, row);
        }
    };
    let len = d.image_len().max(1);
    #[cfg(feature = "rayon")]
    if d.images * d.image_len() >= crate::ops::PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        out.par_chunks_mut(len).enumerate().for_each(image);
        return;
    }
    out.chunks_mut(len).enumerate().for_each(image);
}

/// `out = x * scale_c + shift_c` (computed in f64), row by row.
fn affine<T: NormElement>(d: Dims, xs: &[T], scale: &[f64], shift: &[f64], out: &mut [T]) {
    map_rows(d, out, |c, start, row| {
        let (a, b) = (scale[c], shift[c]);
        let x = &xs[start..start + row.len()];
        for (o, v) in row.iter_mut().zip(x) {
            *o = T::from_f64(v.to_f64() * a + b);
        }
    });
}

/// Training-mode forward: `(output, batch mean, biased batch variance)`.
pub(crate) fn batch_norm_train<T: NormElement>(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let x = values::<T>(&x);
    let (gamma, beta) = (values::<T>(&gamma), values::<T>(&beta));
    let shape = x.layout().shape().clone();
    let d = Dims::of(&shape);
    let xs: &[T] = x.storage();
    let m = d.per_channel().max(1) as f64;
    let sums = per_channel(d, |_, start| {
        let row = &xs[start..start + d.spatial];
        row_sums(row, row, 0.0)
    });
    let mean: Vec<f64> = sums.iter().map(|&(s, _)| s / m).collect();
    let var: Vec<f64> = sums
        .iter()
        .zip(&mean)
        .map(|(&(_, q), &mu)| (q / m - mu * mu).max(0.0))
        .collect();
    let (g, b): (&[T], &[T]) = (gamma.storage(), beta.storage());
    // y = x * scale + shift
    let scale: Vec<f64> = (0..d.channels)
        .map(|c| g[c].to_f64() / (var[c] + epsilon).sqrt())
        .collect();
    let shift: Vec<f64> = (0..d.channels)
        .map(|c| b[c].to_f64() - mean[c] * scale[c])
        .collect();
    let mut y = vec![T::from_f64(0.0); xs.len()];
    affine(d, xs, &scale, &shift, &mut y);
    let channels = Shape::from(vec![d.channels]);
    (
        tensor(y, shape),
        tensor(
            mean.into_iter().map(T::from_f64).collect(),
            channels.clone(),
        ),
        tensor(var.into_iter().map(T::from_f64).collect(), channels),
    )
}

/// Gradients of [`batch_norm_train`]: `(dx, dgamma, dbeta)`.
pub(crate) fn batch_norm_train_backward<T: NormElement>(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
    output_grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let x = values::<T>(&x);
    let dy = values::<T>(&output_grad);
    let (gamma, mean, variance) = (
        values::<T>(&gamma),
        values::<T>(&mean),
        values::<T>(&variance),
    );
    let shape = x.layout().shape().clone();
    let d = Dims::of(&shape);
    let (xs, dys): (&[T], &[T]) = (x.storage(), dy.storage());
    let (g, mu, var): (&[T], &[T], &[T]) = (gamma.storage(), mean.storage(), variance.storage());
    let inv_std: Vec<f64> = var
        .iter()
        .map(|v| 1.0 / (v.to_f64() + epsilon).sqrt())
        .collect();
    let mu: Vec<f64> = mu.iter().map(|v| v.to_f64()).collect();
    // Per channel: sum dy and sum dy * (x - mean).
    let sums = per_channel(d, |c, start| {
        let range = start..start + d.spatial;
        row_sums(&dys[range.clone()], &xs[range], mu[c])
    });
    let m = d.per_channel().max(1) as f64;
    let dbeta: Vec<f64> = sums.iter().map(|&(s, _)| s).collect();
    let dgamma: Vec<f64> = sums
        .iter()
        .zip(&inv_std)
        .map(|(&(_, sx), &is)| sx * is)
        .collect();
    // dx = k_c * (dy - dbeta/M - (x - mean) * inv_std^2 * dgamma_raw/M), k_c = gamma inv_std
    let k: Vec<f64> = (0..d.channels)
        .map(|c| g[c].to_f64() * inv_std[c])
        .collect();
    let mean_dy: Vec<f64> = dbeta.iter().map(|s| s / m).collect();
    let proj: Vec<f64> = (0..d.channels)
        .map(|c| sums[c].1 * inv_std[c] * inv_std[c] / m)
        .collect();
    let mut dx = vec![T::from_f64(0.0); xs.len()];
    map_rows(d, &mut dx, |c, start, row| {
        let (kc, mean_dy, mu, proj) = (k[c], mean_dy[c], mu[c], proj[c]);
        let range = start..start + row.len();
        for ((o, gy), x) in row.iter_mut().zip(&dys[range.clone()]).zip(&xs[range]) {
            let centred = x.to_f64() - mu;
            *o = T::from_f64(kc * (gy.to_f64() - mean_dy - centred * proj));
        }
    });
    let channels = Shape::from(vec![d.channels]);
    (
        tensor(dx, shape),
        tensor(
            dgamma.into_iter().map(T::from_f64).collect(),
            channels.clone(),
        ),
        tensor(dbeta.into_iter().map(T::from_f64).collect(), channels),
    )
}

/// Inference-mode forward with given statistics: `y = (x - mean) / sqrt(var + eps) * gamma
/// + beta`, in one pass.
pub(crate) fn batch_norm<T: NormElement>(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    epsilon: f64,
) -> FlexTensor {
    let x = values::<T>(&x);
    let shape = x.layout().shape().clone();
    let d = Dims::of(&shape);
    let xs: &[T] = x.storage();
    let [gamma, beta, mean, variance] = [gamma, beta, mean, variance].map(|t| values::<T>(&t));
    let (g, b, mu, var): (&[T], &[T], &[T], &[T]) = (
        gamma.storage(),
        beta.storage(),
        mean.storage(),
        variance.storage(),
    );
    let scale: Vec<f64> = (0..d.channels)
        .map(|c| g[c].to_f64() / (var[c].to_f64() + epsilon).sqrt())
        .collect();
    let shift: Vec<f64> = (0..d.channels)
        .map(|c| b[c].to_f64() - mu[c].to_f64() * scale[c])
        .collect();
    let mut y = vec![T::from_f64(0.0); xs.len()];
    affine(d, xs, &scale, &shift, &mut y);
    tensor(y, shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], shape: &[usize]) -> FlexTensor {
        tensor::<f64>(v.to_vec(), Shape::from(shape.to_vec()))
    }

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 1.0
            })
            .collect()
    }

    /// Forward and backward against the textbook formulas, evaluated per channel directly.
    #[test]
    fn matches_the_definition() {
        // Rows shorter than, not a multiple of, and many times the accumulators' width; the
        // last shape is large enough to run in parallel.
        for shape in [
            vec![3usize, 4, 5, 2],
            vec![6, 3],
            vec![2, 2, 7],
            vec![2, 3, 5, 7],
            vec![4, 3, 100, 90],
        ] {
            let n: usize = shape.iter().product();
            let (images, channels) = (shape[0], shape[1]);
            let spatial = n / (images * channels);
            let x = data(n, 1);
            let dy = data(n, 2);
            let gamma = data(channels, 3);
            let beta = data(channels, 4);
            let eps = 1e-5;
            let (y, mean, var) = batch_norm_train::<f64>(
                t(&x, &shape),
                t(&gamma, &[channels]),
                t(&beta, &[channels]),
                eps,
            );
            let (dx, dg, db) = batch_norm_train_backward::<f64>(
                t(&x, &shape),
                t(&gamma, &[channels]),
                mean.clone(),
                var.clone(),
                eps,
                t(&dy, &shape),
            );
            let idx = |b: usize, c: usize, s: usize| (b * channels + c) * spatial + s;
            let m = (images * spatial) as f64;
            for c in 0..channels {
                let xs: Vec<f64> = (0..images)
                    .flat_map(|b| (0..spatial).map(move |s| (b, s)))
                    .map(|(b, s)| x[idx(b, c, s)])
                    .collect();
                let mu = xs.iter().sum::<f64>() / m;
                let v = xs.iter().map(|a| (a - mu) * (a - mu)).sum::<f64>() / m;
                assert!((mean.storage::<f64>()[c] - mu).abs() < 1e-12);
                assert!((var.storage::<f64>()[c] - v).abs() < 1e-12);
                let is = 1.0 / (v + eps).sqrt();
                let (mut sdy, mut sdyx) = (0.0, 0.0);
                for b in 0..images {
                    for s in 0..spatial {
                        let i = idx(b, c, s);
                        let xhat = (x[i] - mu) * is;
                        assert!(
                            (y.storage::<f64>()[i] - (xhat * gamma[c] + beta[c])).abs() < 1e-12
                        );
                        sdy += dy[i];
                        sdyx += dy[i] * xhat;
                    }
                }
                // Sums of `m` terms, added in another order than here.
                assert!((db.storage::<f64>()[c] - sdy).abs() < 1e-12 * m);
                assert!((dg.storage::<f64>()[c] - sdyx).abs() < 1e-12 * m);
                for b in 0..images {
                    for s in 0..spatial {
                        let i = idx(b, c, s);
                        let xhat = (x[i] - mu) * is;
                        let want = gamma[c] * is * (dy[i] - sdy / m - xhat * sdyx / m);
                        assert!((dx.storage::<f64>()[i] - want).abs() < 1e-12);
                    }
                }
            }
            // Inference mode with these statistics equals the training output.
            let y2 = batch_norm::<f64>(
                t(&x, &shape),
                t(&gamma, &[channels]),
                t(&beta, &[channels]),
                mean,
                var,
                eps,
            );
            for (a, b) in y2.storage::<f64>().iter().zip(y.storage::<f64>()) {
                assert!((a - b).abs() < 1e-12);
            }
        }
    }
}
