//! 3x3 stride-1 convolutions by Winograd's minimal filtering algorithm F(2x2, 3x3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR 2016).
//!
//! Each 2x2 block of output ("tile") comes from the 4x4 input patch `d` under it:
//!
//! ```text
//! Y = A^T [ sum over ci of (G g G^T) ⊙ (B^T d B) ] A        g: one 3x3 kernel
//!
//!       | 1  0 -1  0 |        | 1    0    0  |
//! B^T = | 0  1  1  0 |    G = | 1/2  1/2  1/2|    A^T = | 1  1  1  0 |
//!       | 0 -1  1  0 |        | 1/2 -1/2  1/2|          | 0  1 -1 -1 |
//!       | 0  1  0 -1 |        | 0    0    1  |
//! ```
//!
//! 16 multiplications per tile and channel pair instead of im2col's 36 (2.25x fewer). The
//! sum over input channels is, for each of the 16 entries `xi` of a transformed tile, one
//! matrix product `M[xi] (C_out x tiles) = U[xi] (C_out x C_in) * V[xi] (C_in x tiles)`,
//! which is where the time goes, on the same `gemm` crate as the im2col path. The input
//! and output transforms are additions only, and move fewer bytes than im2col's 9 copies
//! of the input (V holds 4 values per input element).
//!
//! Used for f32 3x3 convolutions with stride 1, no dilation, one group and enough channels
//! for the products to dominate the transforms; that is every stride-1 3x3 layer of ResNet
//! and VGG past the stem; through [`super::conv2d_gemm`]'s transposed formulation, their input
//! gradients; and their weight gradients, by the forward pass's transforms differentiated
//! ([`weight_grad`]). F(2x2, 3x3)'s constants are 0, ±1 and 1/2, so it adds little rounding
//! error (the tests hold it to the same 1e-4 relative tolerance as im2col); the larger
//! F(4x4, 3x3) would save more multiplications but is known to lose accuracy in f32, so
//! it is not used.

use super::conv2d_gemm::{Geometry, gemm, num_threads, run_tasks, with_scratch};
use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

/// Fewest input and output channels for Winograd: the transforms cost per channel what
/// the products cost per channel pair, so with few channels the products no longer
/// dominate. A chosen bound, not a measured crossover (ResNet-18's smallest 3x3 layers
/// have 64 channels, and gain: 52 -> 38-47 ms at batch 128).
const MIN_CHANNELS: usize = 16;

/// Fewest input and output channels for the Winograd weight gradient. Its products are
/// `C_in x C_out` over tiles, so the transforms (per channel) and gemm's packing of both
/// operands (per row and column) weigh more against them than in the forward pass.
/// ResNet-18-CIFAR at batch 128, ms, im2col -> Winograd: 64 channels 48 -> 68-71, 128
/// channels 36-37 -> 38-41, 256 channels 38-39 -> 25-27, 512 channels 50-53 -> 25-29.
const WEIGHT_GRAD_MIN_CHANNELS: usize = 256;

/// Elements of the transformed-input buffer of one chunk of tiles (per thread), as for
/// im2col's column buffer.
const V_BUDGET: usize = 1 << 19;

/// Fewest tiles in a chunk, see [`forward`].
const MIN_TILES: usize = 256;

/// Whether this convolution runs through Winograd F(2x2, 3x3).
pub(crate) fn applies(g: &Geometry) -> bool {
    g.k_h == 3
        && g.k_w == 3
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.groups == 1
        && g.c_in >= MIN_CHANNELS
        && g.c_out >= MIN_CHANNELS
        && g.pad[0] <= 2
        && g.pad[1] <= 2
}

/// Whether this convolution's weight gradient runs through [`weight_grad`].
pub(crate) fn applies_to_weight_grad(g: &Geometry) -> bool {
    applies(g) && g.c_in.min(g.c_out) >= WEIGHT_GRAD_MIN_CHANNELS
}

/// `U[co][xi][ci] = (G g[co][ci] G^T)[xi]`, `[C_out, 16, C_in]`: as a gemm operand,
/// `U[xi]^T` is column-major `C_in x C_out` with column stride `16 C_in`. Split over
/// threads by output channel (512x512 kernels are 262,144 small transforms per call),
/// `LANES` input channels at a time, so that each entry is stored as one contiguous run.
fn transform_kernels(g: &Geometry, kernels: Kernels) -> Vec<f32> {
    let (c_in, c_out) = (g.c_in, g.c_out);
    let len = 16 * c_out * c_in;
    let mut u: Vec<f32> = Vec::with_capacity(len);
    let transform = |(co, u_co): (usize, &mut [MaybeUninit<f32>])| {
        let mut ci = 0;
        while ci < c_in {
            let lanes = LANES.min(c_in - ci);
            let mut k9 = [[0.0f32; LANES]; 9];
            for k in 0..lanes {
                let (at, flip) = match kernels {
                    Kernels::Forward(w) => (&w[(co * c_in + ci + k) * 9..][..9], false),
                    Kernels::Flipped(w) => (&w[((ci + k) * c_out + co) * 9..][..9], true),
                };
                for (e, row) in k9.iter_mut().enumerate() {
                    row[k] = at[if flip { 8 - e } else { e }];
                }
            }
            for (xi, lane) in kernel_tile(&k9).iter().enumerate() {
                for (d, &v) in u_co[xi * c_in + ci..][..lanes].iter_mut().zip(lane) {
                    d.write(v);
                }
            }
            ci += lanes;
        }
    };
    // Every element is written below (each output channel's 16 runs of `C_in`), so the
    // buffer is not zeroed first (16.8 MB per call for 512x512 kernels).
    let spare = &mut u.spare_capacity_mut()[..len];
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        spare
            .par_chunks_mut(16 * c_in)
            .enumerate()
            .for_each(transform);
    }
    #[cfg(not(feature = "rayon"))]
    spare.chunks_mut(16 * c_in).enumerate().for_each(transform);
    // SAFETY: the loop above wrote all `len` elements.
    unsafe { u.set_len(len) };
    u
}

/// Where [`forward`] finds its 3x3 kernels.
#[derive(Clone, Copy)]
pub(crate) enum Kernels<'a> {
    /// The convolution's own weights, `[C_out, C_in, 3, 3]`.
    Forward(&'a [f32]),
    /// The weights of the convolution whose input gradient this one is
    /// ([`super::conv2d_gemm`]'s transposed formulation), `[C_in, C_out, 3, 3]` in this
    /// convolution's terms: read transposed and rotated by 180 degrees, which saves a
    /// flipped copy of them (single-threaded, 9.4 MB for 512x512 kernels).
    Flipped(&'a [f32]),
}

/// `G g G^T` for `LANES` 3x3 kernels at once (row-major entries in, 4x4 row-major out).
/// `G v = [v0, (v0 + v1 + v2)/2, (v0 - v1 + v2)/2, v2]` for a 3-vector `v`.
#[inline(always)]
fn kernel_tile(k9: &[[f32; LANES]; 9]) -> [[f32; LANES]; 16] {
    let gv = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    let mut out = [[0.0f32; LANES]; 16];
    for k in 0..LANES {
        // Rows: G g (4x3), then columns: (G g) G^T (4x4).
        let mut gg = [[0.0f32; 3]; 4];
        for j in 0..3 {
            let col = gv(k9[j][k], k9[3 + j][k], k9[6 + j][k]);
            for i in 0..4 {
                gg[i][j] = col[i];
            }
        }
        for (i, row) in gg.iter().enumerate() {
            for (j, v) in gv(row[0], row[1], row[2]).into_iter().enumerate() {
                out[i * 4 + j][k] = v;
            }
        }
    }
    out
}

/// Tiles per image along each axis.
fn tiles(g: &Geometry) -> (usize, usize) {
    (g.out_h.div_ceil(2), g.out_w.div_ceil(2))
}

/// The tile index `t` as (image, tile row, tile column).
fn tile_at(t: usize, (th, tw): (usize, usize)) -> (usize, usize, usize) {
    (t / (th * tw), (t / tw) % th, t % tw)
}

/// Tiles transformed together: one 512-bit vector of f32 per transformed entry. The
/// transforms work on `[entry][lane]` arrays of this many tiles, which the compiler
/// vectorises, and store each entry's lanes in one piece; transforming a tile at a time,
/// with a store to each of 16 places per tile, cost more than the products (ResNet-18's
/// 64-channel layer: 95 ms, against 52 ms for im2col and 38-45 ms now).
const LANES: usize = 16;

/// The tiles `first..first + n` as (image, tile row, tile column), in order.
fn tiles_from(g: &Geometry, first: usize, n: usize) -> impl Iterator<Item = [usize; 3]> {
    let grid = tiles(g);
    let (b, ty, tx) = tile_at(first, grid);
    core::iter::successors(Some([b, ty, tx]), move |&[b, ty, tx]| {
        Some(if tx + 1 < grid.1 {
            [b, ty, tx + 1]
        } else if ty + 1 < grid.0 {
            [b, ty + 1, 0]
        } else {
            [b + 1, 0, 0]
        })
    })
    .take(n)
}

/// `V[xi][ci][t - first] = (B^T d B)[xi]` for tiles `first..first + n`: `v` is
/// `[16, C_in, n]`. Tiles go `LANES` at a time (across tile rows and images: small feature
/// maps have only a few tiles per row), each patch gathered into lane `k` of `d`.
fn transform_input(g: &Geometry, x: &[f32], first: usize, n: usize, v: &mut [f32]) {
    let plane = g.in_h * g.in_w;
    let (h, w) = (g.in_h as isize, g.in_w as isize);
    let [ph, pw] = [g.pad[0] as isize, g.pad[1] as isize];
    let xi_stride = g.c_in * n;
    // Every lane below `lanes` is written before use; the rest are never stored.
    let mut d = [[[0.0f32; LANES]; 4]; 4];
    for ci in 0..g.c_in {
        let mut tiles = tiles_from(g, first, n);
        let mut t0 = 0;
        while t0 < n {
            let lanes = LANES.min(n - t0);
            for (k, [b, ty, tx]) in (&mut tiles).take(lanes).enumerate() {
                let src = &x[(b * g.c_in + ci) * plane..][..plane];
                let (y0, x0) = (2 * ty as isize - ph, 2 * tx as isize - pw);
                if y0 >= 0 && x0 >= 0 && y0 + 4 <= h && x0 + 4 <= w {
                    for (i, di) in d.iter_mut().enumerate() {
                        let at = (y0 as usize + i) * g.in_w + x0 as usize;
                        let row: &[f32; 4] = src[at..at + 4].try_into().expect("4 columns");
                        for j in 0..4 {
                            di[j][k] = row[j];
                        }
                    }
                } else {
                    for (i, di) in d.iter_mut().enumerate() {
                        let yy = y0 + i as isize;
                        for (j, dij) in di.iter_mut().enumerate() {
                            let xx = x0 + j as isize;
                            dij[k] = if yy >= 0 && yy < h && xx >= 0 && xx < w {
                                src[yy as usize * g.in_w + xx as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            let out = input_tile(&d);
            let base = ci * n + t0;
            for (xi, lane) in out.iter().enumerate() {
                v[xi * xi_stride + base..][..lanes].copy_from_slice(&lane[..lanes]);
            }
            t0 += lanes;
        }
    }
}

/// `B^T d B` for `LANES` tiles at once.
#[inline(always)]
fn input_tile(d: &[[[f32; LANES]; 4]; 4]) -> [[f32; LANES]; 16] {
    let mut out = [[0.0f32; LANES]; 16];
    for k in 0..LANES {
        // B^T d (rows), then (B^T d) B (columns).
        let mut r = [[0.0f32; 4]; 4];
        for j in 0..4 {
            let (d0, d1, d2, d3) = (d[0][j][k], d[1][j][k], d[2][j][k], d[3][j][k]);
            r[0][j] = d0 - d2;
            r[1][j] = d1 + d2;
            r[2][j] = d2 - d1;
            r[3][j] = d1 - d3;
        }
        for (i, row) in r.iter().enumerate() {
            out[i * 4][k] = row[0] - row[2];
            out[i * 4 + 1][k] = row[1] + row[2];
            out[i * 4 + 2][k] = row[2] - row[1];
            out[i * 4 + 3][k] = row[1] - row[3];
        }
    }
    out
}

/// A pointer to the output that chunks on several threads write through: each tile's 2x2
/// block is written by exactly one chunk, but the blocks of one image interleave in memory,
/// so the output cannot be split into disjoint slices.
#[derive(Clone, Copy)]
struct Output(*mut f32);
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

/// `y[b][co][2ty.., 2tx..] = (A^T M A) + bias` for tiles `first..first + n`, clipped at
/// odd output sizes; `m` is `[16, C_out, n]`.
///
/// # Safety
/// `y` must point at the `[N, C_out, OH, OW]` output, and no other thread may write the
/// blocks of these tiles.
unsafe fn transform_output(
    g: &Geometry,
    m: &[f32],
    first: usize,
    n: usize,
    bias: Option<&[f32]>,
    y: Output,
) {
    let (oh, ow) = (g.out_h, g.out_w);
    let plane = oh * ow;
    let xi_stride = g.c_out * n;
    let mut e = [[0.0f32; LANES]; 16];
    for co in 0..g.c_out {
        let b0 = bias.map_or(0.0, |b| b[co]);
        let mut tiles = tiles_from(g, first, n);
        let mut t0 = 0;
        while t0 < n {
            let lanes = LANES.min(n - t0);
            let base = co * n + t0;
            for (xi, lane) in e.iter_mut().enumerate() {
                lane[..lanes].copy_from_slice(&m[xi * xi_stride + base..][..lanes]);
            }
            let rows = output_tile(&e, b0);
            for (k, [b, ty, tx]) in (&mut tiles).take(lanes).enumerate() {
                let out = unsafe { y.0.add((b * g.c_out + co) * plane) };
                let (oy, ox) = (2 * ty, 2 * tx);
                for (i, row) in rows.iter().enumerate().take(oh - oy) {
                    for j in 0..2.min(ow - ox) {
                        // SAFETY: inside the output plane; this tile's block is ours alone.
                        unsafe { *out.add((oy + i) * ow + ox + j) = row[2 * k + j] };
                    }
                }
            }
            t0 += lanes;
        }
    }
}

/// `A^T M A + bias` for `LANES` tiles at once: two output rows of `2 LANES` values.
#[inline(always)]
fn output_tile(e: &[[f32; LANES]; 16], bias: f32) -> [[f32; 2 * LANES]; 2] {
    let mut rows = [[0.0f32; 2 * LANES]; 2];
    for k in 0..LANES {
        // A^T M (2x4), then (A^T M) A (2x2).
        let mut r = [[0.0f32; 4]; 2];
        for j in 0..4 {
            let (m0, m1, m2, m3) = (e[j][k], e[4 + j][k], e[8 + j][k], e[12 + j][k]);
            r[0][j] = m0 + m1 + m2;
            r[1][j] = m1 - m2 - m3;
        }
        for (i, row) in r.iter().enumerate() {
            rows[i][2 * k] = row[0] + row[1] + row[2] + bias;
            rows[i][2 * k + 1] = row[1] - row[2] - row[3] + bias;
        }
    }
    rows
}

/// Tiles per chunk: a chunk's transformed input within budget, but at least `MIN_TILES`
/// (each of the chunk's 16 products packs its `C_in x C_out` operand again, so a few tiles
/// per chunk would pack 512x512 kernels for little arithmetic), and enough chunks that
/// every thread has work.
fn tiles_per_chunk(g: &Geometry, total: usize, threads: usize) -> usize {
    (V_BUDGET / (16 * g.c_in.max(g.c_out)))
        .max(MIN_TILES)
        .min(total.div_ceil(threads))
}

/// The forward pass, `[N, C_out, OH, OW]`, for a convolution that [`applies`].
pub(crate) fn forward(g: &Geometry, x: &[f32], kernels: Kernels, bias: Option<&[f32]>) -> Vec<f32> {
    let (th, tw) = tiles(g);
    let total = g.batch * th * tw;
    let len = g.batch * g.c_out * g.out_h * g.out_w;
    let mut y: Vec<f32> = Vec::with_capacity(len);
    if total == 0 {
        y.resize(len, 0.0);
        return y;
    }
    let u = transform_kernels(g, kernels);
    let threads = num_threads();
    let per_chunk = tiles_per_chunk(g, total, threads);
    let chunks = total.div_ceil(per_chunk);
    let parallelism = super::conv2d_gemm::inner_parallelism(chunks, threads);
    let out = Output(y.as_mut_ptr());
    let run = |chunk: usize| {
        let first = chunk * per_chunk;
        let n = per_chunk.min(total - first);
        with_scratch(
            16 * g.c_in * per_chunk,
            16 * g.c_out * per_chunk,
            |v: &mut [f32], m: &mut [f32]| {
                transform_input(g, x, first, n, v);
                for xi in 0..16 {
                    // M[xi]^T (n x C_out) = V[xi]^T (n x C_in) * U[xi]^T (C_in x C_out),
                    // all column-major.
                    unsafe {
                        gemm(
                            n,
                            g.c_out,
                            g.c_in,
                            m[xi * g.c_out * n..].as_mut_ptr(),
                            (1, n as isize),
                            false,
                            v[xi * g.c_in * n..].as_ptr(),
                            (1, n as isize),
                            u[xi * g.c_in..].as_ptr(),
                            (1, 16 * g.c_in as isize),
                            parallelism,
                        );
                    }
                }
                // SAFETY: `out` is `y`'s buffer of `len` elements (set below once every
                // tile has been written) and chunks cover disjoint tiles.
                unsafe { transform_output(g, m, first, n, bias, out) };
            },
        );
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..chunks).into_par_iter().for_each(run);
    }
    #[cfg(not(feature = "rayon"))]
    (0..chunks).for_each(run);
    // SAFETY: the tiles cover every output element and each was written above.
    unsafe { y.set_len(len) };
    y
}

/// `dM[xi][co][t - first] = (A dY A^T)[xi]` for tiles `first..first + n`: each tile's 2x2
/// block of output gradient (0 past odd output sizes, whose outputs [`forward`] drops)
/// carried back through the output transform. `dm` is `[16, C_out, n]`, like `M`.
fn transform_output_grad(g: &Geometry, dy: &[f32], first: usize, n: usize, dm: &mut [f32]) {
    let (oh, ow) = (g.out_h, g.out_w);
    let plane = oh * ow;
    let xi_stride = g.c_out * n;
    // Every lane below `lanes` is written before use; the rest are never stored.
    let mut e = [[[0.0f32; LANES]; 2]; 2];
    for co in 0..g.c_out {
        let mut tiles = tiles_from(g, first, n);
        let mut t0 = 0;
        while t0 < n {
            let lanes = LANES.min(n - t0);
            for (k, [b, ty, tx]) in (&mut tiles).take(lanes).enumerate() {
                let src = &dy[(b * g.c_out + co) * plane..][..plane];
                let (oy, ox) = (2 * ty, 2 * tx);
                for (i, ei) in e.iter_mut().enumerate() {
                    for (j, eij) in ei.iter_mut().enumerate() {
                        eij[k] = if oy + i < oh && ox + j < ow {
                            src[(oy + i) * ow + ox + j]
                        } else {
                            0.0
                        };
                    }
                }
            }
            let out = output_grad_tile(&e);
            let base = co * n + t0;
            for (xi, lane) in out.iter().enumerate() {
                dm[xi * xi_stride + base..][..lanes].copy_from_slice(&lane[..lanes]);
            }
            t0 += lanes;
        }
    }
}

/// `A dY A^T` for `LANES` tiles at once: the transpose of [`output_tile`]'s map. With
/// `A = [[1, 0], [1, 1], [1, -1], [0, -1]]`, `A v = [v0, v0 + v1, v0 - v1, -v1]`.
#[inline(always)]
fn output_grad_tile(e: &[[[f32; LANES]; 2]; 2]) -> [[f32; LANES]; 16] {
    let mut out = [[0.0f32; LANES]; 16];
    for k in 0..LANES {
        // A dY (columns), then (A dY) A^T (rows).
        let mut r = [[0.0f32; 2]; 4];
        for j in 0..2 {
            let (d0, d1) = (e[0][j][k], e[1][j][k]);
            r[0][j] = d0;
            r[1][j] = d0 + d1;
            r[2][j] = d0 - d1;
            r[3][j] = -d1;
        }
        for (i, &[a, b]) in r.iter().enumerate() {
            out[i * 4][k] = a;
            out[i * 4 + 1][k] = a + b;
            out[i * 4 + 2][k] = a - b;
            out[i * 4 + 3][k] = -b;
        }
    }
    out
}

/// `dW[co][ci] = G^T (sum over partials of dU[xi][co][ci]) G`, `[C_out, C_in, 3, 3]`: the
/// transpose of [`transform_kernels`]' map, applied once to the summed products, `LANES`
/// input channels at a time (the 16 entries of `LANES` consecutive kernels are 16
/// contiguous runs of every partial; read one kernel at a time, they were 16 strided
/// streams per partial, and this took 4.3% of a ResNet-18-CIFAR step at batch 32).
fn kernel_grads(g: &Geometry, partials: &[Vec<f32>]) -> Vec<f32> {
    let (c_in, c_out) = (g.c_in, g.c_out);
    let xi_stride = c_out * c_in;
    let mut dw = vec![0.0f32; c_out * c_in * 9];
    let kernels = |(co, dw_co): (usize, &mut [f32])| {
        let mut ci = 0;
        while ci < c_in {
            let lanes = LANES.min(c_in - ci);
            let mut du = [[0.0f32; LANES]; 16];
            for p in partials {
                for (xi, lane) in du.iter_mut().enumerate() {
                    let src = &p[xi * xi_stride + co * c_in + ci..][..lanes];
                    for (d, s) in lane.iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
            let out = kernel_grad_tile(&du);
            for k in 0..lanes {
                for (e, row) in out.iter().enumerate() {
                    dw_co[(ci + k) * 9 + e] = row[k];
                }
            }
            ci += lanes;
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        dw.par_chunks_mut(9 * c_in).enumerate().for_each(kernels);
    }
    #[cfg(not(feature = "rayon"))]
    dw.chunks_mut(9 * c_in).enumerate().for_each(kernels);
    dw
}

/// `G^T dU G` for `LANES` kernels at once, `dU` 4x4 (row-major entries `xi`), the result
/// 3x3 (row-major entries). `G^T v = [v0 + (v1 + v2)/2, (v1 - v2)/2, (v1 + v2)/2 + v3]`
/// (G's rows: [1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]).
#[inline(always)]
fn kernel_grad_tile(du: &[[f32; LANES]; 16]) -> [[f32; LANES]; 9] {
    let gt = |v: [f32; 4]| {
        [
            v[0] + 0.5 * (v[1] + v[2]),
            0.5 * (v[1] - v[2]),
            0.5 * (v[1] + v[2]) + v[3],
        ]
    };
    let mut out = [[0.0f32; LANES]; 9];
    for k in 0..LANES {
        // G^T dU (columns), then (G^T dU) G (rows).
        let mut r = [[0.0f32; 4]; 3];
        for j in 0..4 {
            let col = gt([du[j][k], du[4 + j][k], du[8 + j][k], du[12 + j][k]]);
            for i in 0..3 {
                r[i][j] = col[i];
            }
        }
        for (i, row) in r.iter().enumerate() {
            let v = gt(*row);
            for j in 0..3 {
                out[i * 3 + j][k] = v[j];
            }
        }
    }
    out
}

/// The weight gradient, `[C_out, C_in, 3, 3]`, of a convolution that [`applies`] (used
/// where [`applies_to_weight_grad`]):
///
/// ```text
/// dW = G^T [ sum over tiles of dM ⊙ V ] G,   dM = A dY A^T,   V = B^T d B
/// ```
///
/// (the forward pass differentiated with respect to `U = G g G^T`). The sum over tiles is,
/// for each entry `xi`, the product `dU[xi] (C_out x C_in) = dM[xi] (C_out x tiles) *
/// V[xi]^T (tiles x C_in)`, 2.25x fewer multiplications than im2col's `dY col^T`. Each
/// thread sums its own run of chunks of tiles into a `[16, C_out, C_in]` partial; the
/// partials are added in the kernel transform.
pub(crate) fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (th, tw) = tiles(g);
    let total = g.batch * th * tw;
    if total == 0 {
        return vec![0.0; g.c_out * g.c_in * 9];
    }
    let threads = num_threads();
    let per_chunk = tiles_per_chunk(g, total, threads);
    let chunks = total.div_ceil(per_chunk);
    let tasks = threads.min(chunks);
    let parallelism = super::conv2d_gemm::inner_parallelism(tasks, threads);
    let du_len = 16 * g.c_out * g.c_in;
    let task = |t: usize| {
        let mut du = vec![0.0f32; du_len];
        with_scratch(
            16 * g.c_in * per_chunk,
            16 * g.c_out * per_chunk,
            |v: &mut [f32], dm: &mut [f32]| {
                for (c, chunk) in (t * chunks / tasks..(t + 1) * chunks / tasks).enumerate() {
                    let first = chunk * per_chunk;
                    let n = per_chunk.min(total - first);
                    transform_input(g, x, first, n, v);
                    transform_output_grad(g, dy, first, n, dm);
                    for xi in 0..16 {
                        // dU[xi]^T (C_in x C_out) (+)= V[xi] (C_in x n) * dM[xi]^T (n x C_out),
                        // stored column-major, i.e. `[C_out][C_in]`.
                        unsafe {
                            gemm(
                                g.c_in,
                                g.c_out,
                                n,
                                du.as_mut_ptr().add(xi * g.c_out * g.c_in),
                                (1, g.c_in as isize),
                                c > 0,
                                v[xi * g.c_in * n..].as_ptr(),
                                (n as isize, 1),
                                dm[xi * g.c_out * n..].as_ptr(),
                                (1, n as isize),
                                parallelism,
                            );
                        }
                    }
                }
            },
        );
        du
    };
    kernel_grads(g, &run_tasks(tasks, task))
}
