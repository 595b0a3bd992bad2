//! 2D convolution as im2col + gemm: the forward pass and the gradients of the input, the
//! weight and the bias.
//!
//! Before this module, Flex ran the forward pass through its 3D convolution (an NHWC copy of
//! the whole input, then tiles of patches) and used Burn's generic fallbacks for the backward
//! pass (`burn-backend` `ops/modules/conv.rs`): the input gradient as a transposed convolution,
//! the weight gradient as a convolution of the batch-transposed input with the whole output
//! gradient as its "kernel". Those shapes are not what the kernels were tuned for, and a
//! training step cost 3x PyTorch's on the same cores.
//!
//! Here all three are the im2col formulation (Chellapilla et al. 2006; Caffe; PyTorch's CPU
//! `slow_conv2d`). Per image `b` and group `g`, with `K = C_in/groups * kh * kw` patch entries
//! and `P = OH * OW` output positions:
//!
//! ```text
//! col[K, P]  = im2col(x[b, g])                 one column per output position
//! y[b, g]    = W[g] (C_out/g x K) * col        forward
//! dW[g]     += dY[b, g] (C_out/g x P) * col^T  weight gradient
//! dcol[K, P] = W[g]^T * dY[b, g]               input gradient, then
//! dx[b, g]   = col2im(dcol)                    scatter-add of each column to its window
//! db[c]      = sum over b and positions of dY[b, c]
//! ```
//!
//! Every product is laid out so that gemm sees column-major operands and destination: its
//! microkernels run about twice as fast that way as with a row-major left operand (measured
//! with the `gemm` crate 0.19, AVX-512, one thread: 170 vs 75 GFLOP/s for a 576 x 64 x 1024
//! product). In row-major terms: `col` is `[K][cols]`, the forward output is `[C_out][cols]`
//! (NCHW directly), the weight gradient is accumulated as `[K][C_out]` and transposed once,
//! and the input gradient reads `W` transposed once to `[K][C_out]`.
//!
//! Columns are built for a bounded chunk of positions at a time (several small images, or
//! part of a large one), so the buffers stay in cache and each gemm call is large enough to
//! run near peak. Work is split over rayon threads, one single-threaded gemm per chunk: by
//! image for the forward pass and the input gradient (outputs do not overlap), by contiguous
//! runs of chunks for the weight gradient (each thread sums into its own buffer, added up at
//! the end). When there are fewer chunks than threads, gemm uses the threads itself.
//!
//! Padding may be asymmetric: only the leading padding moves the windows, and the output
//! size (given, or computed from both paddings) bounds them.

use crate::{FlexTensor, Layout};
use alloc::vec;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape, f16};
use core::mem::MaybeUninit;

/// Element types the kernels run natively (bf16 goes through f32).
pub(crate) trait GradElement:
    bytemuck::Pod + burn_backend::Element + Copy + Send + Sync + core::ops::Add<Output = Self> + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const DTYPE: DType;
}

impl GradElement for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const DTYPE: DType = DType::F32;
}

impl GradElement for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const DTYPE: DType = DType::F64;
}

impl GradElement for f16 {
    const ZERO: Self = f16::ZERO;
    const ONE: Self = f16::ONE;
    const DTYPE: DType = DType::F16;
}

/// Elements of one im2col buffer (per thread): 2 MiB of f32, about the L2 cache of a
/// current x86 core. Chunks of 0.5-8 MiB measured within noise of each other for
/// ResNet-18's layers at batch 128; 16 MiB was slower.
const COL_BUDGET: usize = 1 << 19;

/// Fewest columns in a chunk, whatever `K` is: below this gemm runs far from peak.
const MIN_COLS: usize = 64;

/// The shapes of one 2D convolution, read from its tensors.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    pub(super) in_h: usize,
    pub(super) in_w: usize,
    pub(super) c_out: usize,
    pub(super) groups: usize,
    pub(super) cin_g: usize,
    pub(super) cout_g: usize,
    pub(super) k_h: usize,
    pub(super) k_w: usize,
    pub(super) out_h: usize,
    pub(super) out_w: usize,
    pub(super) stride: [usize; 2],
    pub(super) pad: [usize; 2],
    pub(super) dilation: [usize; 2],
}

impl Geometry {
    pub(super) fn new(
        x_shape: &Shape,
        w_shape: &Shape,
        dy_shape: &Shape,
        options: &ConvOptions<2>,
    ) -> Self {
        assert_eq!(x_shape.num_dims(), 4, "conv2d backward: input must be 4D");
        assert_eq!(w_shape.num_dims(), 4, "conv2d backward: weight must be 4D");
        assert_eq!(
            dy_shape.num_dims(),
            4,
            "conv2d backward: output gradient must be 4D"
        );
        let groups = options.groups;
        let geometry = Self {
            batch: x_shape[0],
            c_in: x_shape[1],
            in_h: x_shape[2],
            in_w: x_shape[3],
            c_out: w_shape[0],
            groups,
            cin_g: w_shape[1],
            cout_g: w_shape[0] / groups,
            k_h: w_shape[2],
            k_w: w_shape[3],
            out_h: dy_shape[2],
            out_w: dy_shape[3],
            stride: options.stride,
            pad: options.padding_begin(),
            dilation: options.dilation,
        };
        assert_eq!(
            geometry.cin_g * groups,
            geometry.c_in,
            "conv2d backward: weight has {} input channels per group, input has {} channels in {groups} groups",
            geometry.cin_g,
            geometry.c_in
        );
        assert_eq!(
            dy_shape[0], geometry.batch,
            "conv2d backward: batch mismatch"
        );
        assert_eq!(
            dy_shape[1], geometry.c_out,
            "conv2d backward: channel mismatch"
        );
        geometry
    }

    /// For a stride-1 convolution, the convolution whose forward pass is this one's input
    /// gradient: `dx = conv(dY, W')` with `W'` the kernels flipped and transposed
    /// ([`flip_weights`]), padding `(k - 1) d - p` and the input's size as output. Its patches
    /// have `C_out/g * kh * kw` entries instead of col2im's scatter of `C_in/g * kh * kw`,
    /// and it runs through the forward kernel (measured 1.4x faster for 512-channel 4x4
    /// layers, the same elsewhere). `None` for strided convolutions, or padding beyond the
    /// kernel's span. Used only when its columns are no more than col2im's: for a convolution
    /// without padding ("valid", LeNet's 6->16 5x5 on 14x14) the transposed one pads the
    /// smaller output gradient by `k - 1` on every side, and its im2col was 5x larger than
    /// col2im's and 3-5x slower (4.4 vs 0.8-1.4 ms at batch 128).
    fn transposed(&self) -> Option<Geometry> {
        if self.stride != [1, 1] {
            return None;
        }
        let span = [
            self.dilation[0] * (self.k_h - 1),
            self.dilation[1] * (self.k_w - 1),
        ];
        if self.pad[0] > span[0] || self.pad[1] > span[1] {
            return None;
        }
        Some(Geometry {
            batch: self.batch,
            c_in: self.c_out,
            in_h: self.out_h,
            in_w: self.out_w,
            c_out: self.c_in,
            groups: self.groups,
            cin_g: self.cout_g,
            cout_g: self.cin_g,
            k_h: self.k_h,
            k_w: self.k_w,
            out_h: self.in_h,
            out_w: self.in_w,
            stride: [1, 1],
            pad: [span[0] - self.pad[0], span[1] - self.pad[1]],
            dilation: self.dilation,
        })
    }

    /// Entries of one patch (rows of a column buffer).
    fn patch(&self) -> usize {
        self.cin_g * self.k_h * self.k_w
    }

    /// Output positions per image (columns of an image's column buffer).
    fn positions(&self) -> usize {
        self.out_h * self.out_w
    }

    fn image_len(&self) -> usize {
        self.c_in * self.in_h * self.in_w
    }

    /// A pointwise convolution (1x1, stride 1, no padding: ResNet's bottlenecks, GoogLeNet's
    /// and DenseNet's reductions): its im2col of an image is the image itself.
    fn is_pointwise(&self) -> bool {
        self.k_h == 1
            && self.k_w == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.out_h == self.in_h
            && self.out_w == self.in_w
    }

    /// Cuts the batch into chunks of columns, see [`Chunk`].
    fn chunks(&self, threads: usize) -> Vec<Chunk> {
        let positions = self.positions();
        let max_cols = (COL_BUDGET / self.patch().max(1)).max(MIN_COLS);
        let mut chunks = Vec::new();
        if positions == 0 || self.batch == 0 {
            return chunks;
        }
        // A pointwise layer's image is its own column matrix: with one image per chunk, gemm
        // reads it and the output gradient in place and writes the output straight into
        // NCHW, where a chunk of several images first copies them together (im2col,
        // `channel_block`, the forward's `y_buf`). DenseNet-121-CIFAR's 1x1 layers at batch
        // 32 (`conv_kernels`, all passes, median of three): 733 -> 646 ms a step; ResNet-50's
        // and GoogLeNet's the same or faster, within this machine's noise.
        let whole_images = !(self.is_pointwise() && positions >= MIN_COLS);
        if positions <= max_cols && whole_images {
            // Several whole images per chunk, as few chunks as fit the budget, rounded up
            // to a multiple of the threads so that they share the work evenly.
            let fit = (max_cols / positions).max(1);
            let chunks_needed = self.batch.div_ceil(fit).div_ceil(threads) * threads;
            let images = self.batch.div_ceil(chunks_needed).max(1);
            let mut b = 0;
            while b < self.batch {
                let n = images.min(self.batch - b);
                chunks.push(Chunk {
                    image: b,
                    images: n,
                    start: 0,
                    end: positions,
                });
                b += n;
            }
        } else {
            // Equal pieces of each image, none longer than `max_cols`.
            let step = positions.div_ceil(positions.div_ceil(max_cols));
            for b in 0..self.batch {
                let mut start = 0;
                while start < positions {
                    let end = (start + step).min(positions);
                    chunks.push(Chunk {
                        image: b,
                        images: 1,
                        start,
                        end,
                    });
                    start = end;
                }
            }
        }
        chunks
    }
}

/// Output positions `start..end` of images `image..image + images` (a range of positions
/// only when `images == 1`): `images * (end - start)` columns.
#[derive(Clone, Copy, Debug)]
struct Chunk {
    image: usize,
    images: usize,
    start: usize,
    end: usize,
}

impl Chunk {
    fn cols(&self) -> usize {
        self.images * (self.end - self.start)
    }
}

/// Output positions `o` in `0..out` whose input index `o * stride + offset - pad` lies in
/// `0..size`, as a half-open range (empty when there are none).
fn valid_range(
    out: usize,
    size: usize,
    stride: usize,
    offset: usize,
    pad: usize,
) -> (usize, usize) {
    // o * stride + offset >= pad
    let lo = if pad > offset {
        (pad - offset).div_ceil(stride)
    } else {
        0
    };
    // o * stride + offset - pad < size  <=>  o < ceil((size + pad - offset) / stride)
    let hi = if size + pad > offset {
        (size + pad - offset).div_ceil(stride)
    } else {
        0
    };
    let lo = lo.min(out);
    (lo, hi.min(out).max(lo))
}

/// Walks the (patch row, output row) pieces of one image's positions `start..end`: calls
/// `f(row, channel, input_row, col_offset, ox_start, ox_end, valid, input_col_offset)`
/// for every patch row `row = (ci, ki, kj)`, where the piece covers output columns
/// `ox_start..ox_end` of one output row, stored from `col_offset` within the patch row.
/// `input_row` is `None` when the window row falls in the padding; `valid` is the part of
/// `ox_start..ox_end` inside the image, and `input_col_offset = kj * dilation - pad`
/// (as a signed value) maps an output column to its input column through
/// `ox * stride + input_col_offset`.
#[inline(always)]
fn for_each_piece(
    g: &Geometry,
    start: usize,
    end: usize,
    mut f: impl FnMut(usize, usize, Option<usize>, usize, usize, usize, (usize, usize), isize),
) {
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    for ci in 0..g.cin_g {
        for ki in 0..g.k_h {
            for kj in 0..g.k_w {
                let row = (ci * g.k_h + ki) * g.k_w + kj;
                let (ox_lo, ox_hi) = valid_range(g.out_w, g.in_w, sw, kj * dw, pw);
                let col_shift = (kj * dw) as isize - pw as isize;
                // Walk output rows without dividing per piece (this loop runs once per
                // patch row and output row; a division each time showed in profiles).
                let (mut p, mut oy, mut ox_start) = (start, start / g.out_w, start % g.out_w);
                while p < end {
                    let ox_end = g.out_w.min(ox_start + (end - p));
                    let iy = (oy * sh + ki * dh) as isize - ph as isize;
                    let input_row = (iy >= 0 && (iy as usize) < g.in_h).then_some(iy as usize);
                    let a = ox_lo.clamp(ox_start, ox_end);
                    let b = ox_hi.clamp(a, ox_end);
                    f(
                        row,
                        ci,
                        input_row,
                        p - start,
                        ox_start,
                        ox_end,
                        (a, b),
                        col_shift,
                    );
                    p += ox_end - ox_start;
                    oy += 1;
                    ox_start = 0;
                }
            }
        }
    }
}

/// Fills columns `col0..col0 + (end - start)` of every row of `col` (row length `ld`)
/// with the patches of positions `start..end` of one image's group (`x_group`:
/// `[C_in/g, H, W]`).
fn im2col<T: GradElement>(
    g: &Geometry,
    x_group: &[T],
    start: usize,
    end: usize,
    col: &mut [T],
    ld: usize,
    col0: usize,
) {
    if start == 0 && end == g.positions() && g.stride == [1, 1] && g.out_w == g.in_w {
        return im2col_same_width(g, x_group, col, ld, col0);
    }
    if start == 0 && end == g.positions() && g.stride == [1, 1] {
        return im2col_stride1(g, x_group, col, ld, col0);
    }
    let plane = g.in_h * g.in_w;
    let sw = g.stride[1];
    for_each_piece(
        g,
        start,
        end,
        |row, ci, input_row, offset, ox_start, ox_end, (a, b), shift| {
            let base = row * ld + col0 + offset;
            let dst = &mut col[base..base + (ox_end - ox_start)];
            let Some(iy) = input_row else {
                dst.fill(T::ZERO);
                return;
            };
            let src = &x_group[ci * plane + iy * g.in_w..][..g.in_w];
            zero(&mut dst[..a - ox_start]);
            if a < b {
                let first = (a * sw) as isize + shift;
                let first = first as usize;
                let out = &mut dst[a - ox_start..b - ox_start];
                if sw == 1 {
                    out.copy_from_slice(&src[first..first + (b - a)]);
                } else {
                    for (i, o) in out.iter_mut().enumerate() {
                        *o = src[first + i * sw];
                    }
                }
            }
            zero(&mut dst[b - ox_start..]);
        },
    );
}

/// Zeroes a short slice without a call for the (common) empty case.
#[inline(always)]
fn zero<T: GradElement>(s: &mut [T]) {
    for v in s {
        *v = T::ZERO;
    }
}

/// [`im2col`] of a whole image for other stride-1 convolutions ("valid" ones such as
/// LeNet's 5x5 on 14x14): per patch row, one copy per valid output row, with the clipped
/// ranges computed once per patch row rather than once per piece as the general walk does
/// (that walk's per-piece bookkeeping cost more than the 10-element copies themselves).
fn im2col_stride1<T: GradElement>(
    g: &Geometry,
    x_group: &[T],
    col: &mut [T],
    ld: usize,
    col0: usize,
) {
    let (ow, plane) = (g.out_w, g.in_h * g.in_w);
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    for ci in 0..g.cin_g {
        let src = &x_group[ci * plane..][..plane];
        for ki in 0..g.k_h {
            let (y_lo, y_hi) = valid_range(g.out_h, g.in_h, 1, ki * dh, ph);
            for kj in 0..g.k_w {
                let row = (ci * g.k_h + ki) * g.k_w + kj;
                let dst = &mut col[row * ld + col0..][..g.out_h * ow];
                let (x_lo, x_hi) = valid_range(ow, g.in_w, 1, kj * dw, pw);
                dst[..y_lo * ow].fill(T::ZERO);
                dst[y_hi * ow..].fill(T::ZERO);
                for oy in y_lo..y_hi {
                    let r = &mut dst[oy * ow..(oy + 1) * ow];
                    // Input row and the column of output column `x_lo`.
                    let iy = oy + ki * dh - ph;
                    let ix = x_lo + kj * dw - pw;
                    zero(&mut r[..x_lo]);
                    r[x_lo..x_hi].copy_from_slice(&src[iy * g.in_w + ix..][..x_hi - x_lo]);
                    zero(&mut r[x_hi..]);
                }
            }
        }
    }
}

/// [`im2col`] of a whole image for stride-1 convolutions that keep the width (3x3 pad 1,
/// 5x5 pad 2, 1x1, ...): output and input rows then have the same length, so each patch
/// row is one shifted copy of the input plane over the valid output rows, after which only
/// the border columns that the shift wrapped around are set to zero. One copy per patch row
/// instead of one per patch row and output row: this loop dominated small images.
fn im2col_same_width<T: GradElement>(
    g: &Geometry,
    x_group: &[T],
    col: &mut [T],
    ld: usize,
    col0: usize,
) {
    let (w, plane) = (g.in_w, g.in_h * g.in_w);
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    for ci in 0..g.cin_g {
        let src = &x_group[ci * plane..][..plane];
        for ki in 0..g.k_h {
            // Output rows whose window row `oy + ki*dh - ph` is inside the image.
            let (y_lo, y_hi) = valid_range(g.out_h, g.in_h, 1, ki * dh, ph);
            for kj in 0..g.k_w {
                let row = (ci * g.k_h + ki) * g.k_w + kj;
                let dst = &mut col[row * ld + col0..][..g.out_h * w];
                let (x_lo, x_hi) = valid_range(g.out_w, g.in_w, 1, kj * dw, pw);
                dst[..y_lo * w].fill(T::ZERO);
                dst[y_hi * w..].fill(T::ZERO);
                if y_lo < y_hi {
                    // Output (oy, ox) reads input (oy + ki*dh - ph, ox + kj*dw - pw): a fixed
                    // offset in the flattened plane, so one copy covers rows y_lo..y_hi,
                    // clipped where the offset runs off either end of the plane.
                    let shift = (ki * dh) as isize * w as isize - (ph * w) as isize
                        + (kj * dw) as isize
                        - pw as isize;
                    let mut d0 = y_lo * w;
                    let d1 = y_hi * w;
                    if (d0 as isize) + shift < 0 {
                        d0 = (-shift) as usize;
                    }
                    let d1c = d1.min((plane as isize - shift) as usize);
                    if d0 < d1c {
                        let s0 = (d0 as isize + shift) as usize;
                        dst[d0..d1c].copy_from_slice(&src[s0..s0 + (d1c - d0)]);
                    }
                    zero(&mut dst[y_lo * w..d0.max(y_lo * w)]);
                    zero(&mut dst[d1c.min(d1)..d1]);
                    // Columns outside x_lo..x_hi took wrapped-around values: clear them.
                    for oy in y_lo..y_hi {
                        let r = &mut dst[oy * w..(oy + 1) * w];
                        zero(&mut r[..x_lo]);
                        zero(&mut r[x_hi..]);
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds every column entry of positions `start..end` back to
/// the input element it was copied from (`dx_group`: `[C_in/g, H, W]` of one image).
fn col2im<T: GradElement>(
    g: &Geometry,
    col: &mut [T],
    ld: usize,
    col0: usize,
    start: usize,
    end: usize,
    dx_group: &mut [T],
) {
    if start == 0 && end == g.positions() && g.stride == [1, 1] && g.out_w == g.in_w {
        return col2im_same_width(g, col, ld, col0, dx_group);
    }
    if start == 0 && end == g.positions() && g.stride == [1, 1] {
        return col2im_stride1(g, col, ld, col0, dx_group);
    }
    let plane = g.in_h * g.in_w;
    let sw = g.stride[1];
    for_each_piece(
        g,
        start,
        end,
        |row, ci, input_row, offset, ox_start, _ox_end, (a, b), shift| {
            let Some(iy) = input_row else { return };
            if a >= b {
                return;
            }
            let base = row * ld + col0 + offset;
            let src = &col[base + (a - ox_start)..base + (b - ox_start)];
            let first = ((a * sw) as isize + shift) as usize;
            let dst = &mut dx_group[ci * plane + iy * g.in_w..][..g.in_w];
            if sw == 1 {
                for (d, &s) in dst[first..first + (b - a)].iter_mut().zip(src) {
                    *d = *d + s;
                }
            } else {
                for (i, &s) in src.iter().enumerate() {
                    let d = &mut dst[first + i * sw];
                    *d = *d + s;
                }
            }
        },
    );
}

/// The adjoint of [`im2col_stride1`]: each valid output row of a patch row is added to
/// its input row.
fn col2im_stride1<T: GradElement>(
    g: &Geometry,
    col: &[T],
    ld: usize,
    col0: usize,
    dx_group: &mut [T],
) {
    let (ow, plane) = (g.out_w, g.in_h * g.in_w);
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    for ci in 0..g.cin_g {
        let dst = &mut dx_group[ci * plane..][..plane];
        for ki in 0..g.k_h {
            let (y_lo, y_hi) = valid_range(g.out_h, g.in_h, 1, ki * dh, ph);
            for kj in 0..g.k_w {
                let row = (ci * g.k_h + ki) * g.k_w + kj;
                let src = &col[row * ld + col0..][..g.out_h * ow];
                let (x_lo, x_hi) = valid_range(ow, g.in_w, 1, kj * dw, pw);
                for oy in y_lo..y_hi {
                    let iy = oy + ki * dh - ph;
                    let ix = x_lo + kj * dw - pw;
                    let d = &mut dst[iy * g.in_w + ix..][..x_hi - x_lo];
                    for (d, &v) in d.iter_mut().zip(&src[oy * ow + x_lo..oy * ow + x_hi]) {
                        *d = *d + v;
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col_same_width`]: per patch row, the entries whose window column
/// falls outside the image are cleared (in `col`, which is scratch), then the valid output
/// rows are added to the input plane in one shifted pass.
fn col2im_same_width<T: GradElement>(
    g: &Geometry,
    col: &mut [T],
    ld: usize,
    col0: usize,
    dx_group: &mut [T],
) {
    let (w, plane) = (g.in_w, g.in_h * g.in_w);
    let [ph, pw] = g.pad;
    let [dh, dw] = g.dilation;
    for ci in 0..g.cin_g {
        let dst = &mut dx_group[ci * plane..][..plane];
        for ki in 0..g.k_h {
            let (y_lo, y_hi) = valid_range(g.out_h, g.in_h, 1, ki * dh, ph);
            if y_lo >= y_hi {
                continue;
            }
            for kj in 0..g.k_w {
                let row = (ci * g.k_h + ki) * g.k_w + kj;
                let src = &mut col[row * ld + col0..][..g.out_h * w];
                let (x_lo, x_hi) = valid_range(g.out_w, g.in_w, 1, kj * dw, pw);
                for oy in y_lo..y_hi {
                    let r = &mut src[oy * w..(oy + 1) * w];
                    zero(&mut r[..x_lo]);
                    zero(&mut r[x_hi..]);
                }
                let shift = (ki * dh) as isize * w as isize - (ph * w) as isize
                    + (kj * dw) as isize
                    - pw as isize;
                let mut d0 = y_lo * w;
                if (d0 as isize) + shift < 0 {
                    d0 = (-shift) as usize;
                }
                let d1 = (y_hi * w).min((plane as isize - shift) as usize);
                if d0 < d1 {
                    let s0 = (d0 as isize + shift) as usize;
                    for (d, &v) in dst[s0..s0 + (d1 - d0)].iter_mut().zip(&src[d0..d1]) {
                        *d = *d + v;
                    }
                }
            }
        }
    }
}

/// `dst (m x n) = [dst +] lhs (m x k) * rhs (k x n)`, all given by pointer and strides
/// (row stride, column stride).
#[allow(clippy::too_many_arguments)]
#[inline]
pub(super) unsafe fn gemm<T: GradElement>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_strides: (isize, isize),
    accumulate: bool,
    lhs: *const T,
    lhs_strides: (isize, isize),
    rhs: *const T,
    rhs_strides: (isize, isize),
    parallelism: gemm::Parallelism,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_strides.1,
            dst_strides.0,
            accumulate,
            lhs,
            lhs_strides.1,
            lhs_strides.0,
            rhs,
            rhs_strides.1,
            rhs_strides.0,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// gemm's own threads, for when the outer split leaves threads idle.
pub(super) fn inner_parallelism(tasks: usize, threads: usize) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if tasks < threads {
        return gemm::Parallelism::Rayon(threads);
    }
    let _ = (tasks, threads);
    gemm::Parallelism::None
}

pub(super) fn num_threads() -> usize {
    #[cfg(feature = "rayon")]
    {
        rayon::current_num_threads().max(1)
    }
    #[cfg(not(feature = "rayon"))]
    {
        1
    }
}

#[cfg(feature = "std")]
std::thread_local! {
    /// Each thread's two scratch buffers (columns and an output-gradient block), kept between
    /// calls: allocating them per call (megabytes each) costs page faults on first touch and
    /// TLB-shootdown IPIs when the allocator unmaps them, which measured as much as the
    /// arithmetic for mid-sized layers.
    static SCRATCH: core::cell::RefCell<[Vec<u64>; 2]> =
        const { core::cell::RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` with two scratch slices of `a` and `b` elements (contents unspecified: `f` must
/// write before it reads), reusing this thread's buffers when they are free.
pub(super) fn with_scratch<T: GradElement, R>(
    a: usize,
    b: usize,
    f: impl FnOnce(&mut [T], &mut [T]) -> R,
) -> R {
    fn view<T: GradElement>(words: &mut Vec<u64>, len: usize) -> &mut [T] {
        // u64 storage: aligned for every element type here, and a whole number of them.
        let n = (len * core::mem::size_of::<T>()).div_ceil(8);
        if words.len() < n {
            words.resize(n, 0);
        }
        &mut bytemuck::cast_slice_mut::<u64, T>(&mut words[..n])[..len]
    }
    #[cfg(feature = "std")]
    let mut bufs = SCRATCH.with(|cell| {
        cell.try_borrow_mut()
            .map(|mut b| core::mem::take(&mut *b))
            .unwrap_or_default()
    });
    #[cfg(not(feature = "std"))]
    let mut bufs: [Vec<u64>; 2] = Default::default();
    let [first, second] = &mut bufs;
    let result = f(view(first, a), view(second, b));
    #[cfg(feature = "std")]
    SCRATCH.with(|cell| {
        if let Ok(mut kept) = cell.try_borrow_mut() {
            for (k, b) in kept.iter_mut().zip(bufs) {
                if b.capacity() > k.capacity() {
                    *k = b;
                }
            }
        }
    });
    result
}

/// Runs `task(t)` for `t in 0..tasks`, on rayon's threads when there are several.
pub(super) fn run_tasks<R: Send>(tasks: usize, task: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "rayon")]
    if tasks > 1 {
        use rayon::prelude::*;
        return (0..tasks).into_par_iter().map(task).collect();
    }
    (0..tasks).map(task).collect()
}

/// Splits `data` into consecutive pieces of `lens` elements each.
fn split_lens<'a, T>(mut data: &'a mut [T], lens: impl Iterator<Item = usize>) -> Vec<&'a mut [T]> {
    let mut pieces = Vec::new();
    for len in lens {
        let (head, tail) = data.split_at_mut(len);
        pieces.push(head);
        data = tail;
    }
    pieces
}

/// Runs of chunks that write disjoint images: one run per chunk of whole images, or all the
/// pieces of one image together (pieces of one image overlap in the input gradient).
fn image_runs(chunks: &[Chunk]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        match runs.last_mut() {
            Some((first, last)) if chunks[*first].image == chunk.image && chunk.images == 1 => {
                *last = i + 1;
            }
            _ => runs.push((i, i + 1)),
        }
    }
    runs
}

/// Fills `col` (`[K][cols]`) with the patches of a chunk's images for group `group`.
fn chunk_im2col<T: GradElement>(g: &Geometry, x: &[T], chunk: &Chunk, group: usize, col: &mut [T]) {
    let group_len = g.cin_g * g.in_h * g.in_w;
    let len = chunk.end - chunk.start;
    let cols = chunk.cols();
    for j in 0..chunk.images {
        let image = chunk.image + j;
        let x_group = &x[image * g.image_len() + group * group_len..][..group_len];
        im2col(g, x_group, chunk.start, chunk.end, col, cols, j * len);
    }
}

/// A chunk's columns for group `group` as a column-major `cols x K` gemm operand: a pointer
/// and its column stride. A pointwise convolution's single-image chunks read the input in
/// place (their im2col would be a copy of it); everything else goes through im2col into
/// `col`.
fn columns<T: GradElement>(
    g: &Geometry,
    x: &[T],
    chunk: &Chunk,
    group: usize,
    col: &mut [T],
) -> (*const T, isize) {
    if g.is_pointwise() && chunk.images == 1 {
        let at = chunk.image * g.image_len() + group * g.cin_g * g.positions() + chunk.start;
        return (x[at..].as_ptr(), g.positions() as isize);
    }
    chunk_im2col(g, x, chunk, group, col);
    (col.as_ptr(), chunk.cols() as isize)
}

/// A chunk's `[C_out/g][cols]` block of a `[N, C_out, OH, OW]` tensor (the output gradient)
/// as a column-major `cols x C_out/g` gemm operand: a pointer and its column stride (the
/// weight gradient reads the same memory as the row-major `C_out/g x cols` matrix). Copied
/// into `scratch` only when the chunk spans several images.
fn channel_block<T: GradElement>(
    g: &Geometry,
    dy: &[T],
    chunk: &Chunk,
    group: usize,
    scratch: &mut [T],
) -> (*const T, isize) {
    let positions = g.positions();
    let len = chunk.end - chunk.start;
    let at = |image: usize, co: usize| {
        image * g.c_out * positions + (group * g.cout_g + co) * positions + chunk.start
    };
    if chunk.images == 1 {
        return (dy[at(chunk.image, 0)..].as_ptr(), positions as isize);
    }
    let cols = chunk.cols();
    for co in 0..g.cout_g {
        for j in 0..chunk.images {
            let src = at(chunk.image + j, co);
            scratch[co * cols + j * len..][..len].copy_from_slice(&dy[src..src + len]);
        }
    }
    (scratch.as_ptr(), cols as isize)
}

/// A `Vec<f32>` as the `Vec<T>` it is when `T::DTYPE` is f32 (no copy).
fn from_f32<T: GradElement>(v: Vec<f32>) -> Vec<T> {
    assert_eq!(T::DTYPE, DType::F32);
    assert_eq!(core::mem::size_of::<T>(), 4);
    assert_eq!(core::mem::align_of::<T>(), core::mem::align_of::<f32>());
    let mut v = core::mem::ManuallyDrop::new(v);
    // SAFETY: `T` is f32 (the only element type with that dtype): same size and alignment
    // (checked), any bit pattern valid.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), v.len(), v.capacity()) }
}

/// `y = W col (+ bias)`, `[N, C_out, OH, OW]`.
fn forward<T: GradElement>(g: &Geometry, x: &[T], w: &[T], bias: Option<&[T]>) -> Vec<T> {
    if T::DTYPE == DType::F32 && super::conv2d_winograd::applies(g) {
        // `T` is f32 here (the only element type with that dtype), so the casts are no-ops.
        return from_f32(super::conv2d_winograd::forward(
            g,
            bytemuck::cast_slice(x),
            super::conv2d_winograd::Kernels::Forward(bytemuck::cast_slice(w)),
            bias.map(bytemuck::cast_slice),
        ));
    }
    let threads = num_threads();
    let chunks = g.chunks(threads);
    let patch = g.patch();
    let positions = g.positions();
    let out_image = g.c_out * positions;
    let mut y = vec![T::ZERO; g.batch * out_image];
    if chunks.is_empty() || out_image == 0 {
        return y;
    }
    let max_cols = chunks.iter().map(Chunk::cols).max().unwrap_or(0);
    let runs = image_runs(&chunks);
    let parallelism = inner_parallelism(runs.len(), threads);
    let lens = runs
        .iter()
        .map(|&(first, _)| chunks[first].images * out_image);
    let pieces: Vec<_> = runs.iter().copied().zip(split_lens(&mut y, lens)).collect();

    let run = |((first, last), y_images): ((usize, usize), &mut [T])| {
        with_scratch(
            patch * max_cols,
            g.cout_g * max_cols,
            |col: &mut [T], y_buf: &mut [T]| {
                let base_image = chunks[first].image;
                for chunk in &chunks[first..last] {
                    let cols = chunk.cols();
                    let len = chunk.end - chunk.start;
                    for group in 0..g.groups {
                        let (col_ptr, col_ld) = columns(g, x, chunk, group, col);
                        // y^T (cols x C_out/g) = col^T (cols x K) * W[g]^T (K x C_out/g), all
                        // column-major: straight into NCHW for one image, else through `y_buf`.
                        let direct = chunk.images == 1;
                        let (dst, ld) = if direct {
                            let offset = (chunk.image - base_image) * out_image
                                + group * g.cout_g * positions
                                + chunk.start;
                            (y_images[offset..].as_mut_ptr(), positions as isize)
                        } else {
                            (y_buf.as_mut_ptr(), cols as isize)
                        };
                        unsafe {
                            gemm(
                                cols,
                                g.cout_g,
                                patch,
                                dst,
                                (1, ld),
                                false,
                                col_ptr,
                                (1, col_ld),
                                w[group * g.cout_g * patch..].as_ptr(),
                                (1, patch as isize),
                                parallelism,
                            );
                        }
                        if !direct {
                            for co in 0..g.cout_g {
                                for j in 0..chunk.images {
                                    let image = chunk.image + j - base_image;
                                    let dst =
                                        image * out_image + (group * g.cout_g + co) * positions;
                                    y_images[dst..dst + len]
                                        .copy_from_slice(&y_buf[co * cols + j * len..][..len]);
                                }
                            }
                        }
                    }
                }
            },
        );
        if let Some(bias) = bias {
            let images = y_images.len() / out_image;
            for image in 0..images {
                for (c, &b) in bias.iter().enumerate() {
                    let row = &mut y_images[image * out_image + c * positions..][..positions];
                    for v in row {
                        *v = *v + b;
                    }
                }
            }
        }
    };
    for_each_piece_parallel(pieces, run);
    y
}

/// Runs `f` on every piece, in parallel when rayon is on.
fn for_each_piece_parallel<P: Send>(pieces: Vec<P>, f: impl Fn(P) + Sync + Send) {
    #[cfg(feature = "rayon")]
    if pieces.len() > 1 {
        use rayon::prelude::*;
        pieces.into_par_iter().for_each(f);
        return;
    }
    pieces.into_iter().for_each(f);
}

/// `dW = sum over images of dY col^T`, `[C_out, C_in/g, kh, kw]`.
fn weight_grad<T: GradElement>(g: &Geometry, x: &[T], dy: &[T]) -> Vec<T> {
    if T::DTYPE == DType::F32 && super::conv2d_winograd::applies_to_weight_grad(g) {
        // `T` is f32 here, so the casts are no-ops.
        return from_f32(super::conv2d_winograd::weight_grad(
            g,
            bytemuck::cast_slice(x),
            bytemuck::cast_slice(dy),
        ));
    }
    let threads = num_threads();
    let chunks = g.chunks(threads);
    let patch = g.patch();
    let w_len = g.c_out * patch;
    if chunks.is_empty() || w_len == 0 {
        return vec![T::ZERO; w_len];
    }
    let tasks = threads.min(chunks.len());
    let parallelism = inner_parallelism(tasks, threads);
    let max_cols = chunks.iter().map(Chunk::cols).max().unwrap_or(0);

    // One partial sum per task over a contiguous run of chunks. gemm packs (one element at
    // a time) whichever operand is not laid out for its kernel: given a column-major
    // destination that is dY (`C_out/g` rows), given the weight's own row-major layout it
    // transposes the whole product and packs the columns (`K` rows) instead. So each
    // group's block is stored transposed, `[K][C_out/g]`, when `K` is the larger: 2.4x
    // faster for ResNet-18's 64-channel 3x3 layers (64 x 576 x 512 per chunk: 950 -> 390 us
    // on one AMD EPYC core), while layers with more output channels than `K` (the stem, strided
    // 1x1 shortcuts) keep the weight's layout.
    let col_major = g.cout_g < patch;
    let dw_strides = if col_major {
        (1, g.cout_g as isize)
    } else {
        (patch as isize, 1)
    };
    let partials = run_tasks(tasks, |t| {
        // Written before read (the first chunk's product is stored, later ones added): see
        // `input_grad` on reading fresh pages.
        let mut sums = vec![T::ZERO; w_len];
        with_scratch(
            patch * max_cols,
            g.cout_g * max_cols,
            |col: &mut [T], dy_buf: &mut [T]| {
                let first = t * chunks.len() / tasks;
                let last = (t + 1) * chunks.len() / tasks;
                for (c, chunk) in chunks[first..last].iter().enumerate() {
                    for group in 0..g.groups {
                        let (col_ptr, col_ld) = columns(g, x, chunk, group, col);
                        // dY of the chunk as it lies in memory, `[C_out/g][cols]` (row
                        // stride `dy_ld`): gemm packs it, which is cheaper than transposing
                        // it here one element at a time (8% of a ResNet-50 step).
                        let (dy_ptr, dy_ld) = channel_block(g, dy, chunk, group, dy_buf);
                        // dW[g] (C_out/g x K) += dY (C_out/g x cols) * col^T (cols x K)
                        unsafe {
                            gemm(
                                g.cout_g,
                                patch,
                                chunk.cols(),
                                sums[group * g.cout_g * patch..].as_mut_ptr(),
                                dw_strides,
                                c > 0,
                                dy_ptr,
                                (dy_ld, 1),
                                col_ptr,
                                (1, col_ld),
                                parallelism,
                            );
                        }
                    }
                }
            },
        );
        sums
    });

    let mut partials = partials.into_iter();
    let mut sums = partials.next().unwrap_or_else(|| vec![T::ZERO; w_len]);
    for partial in partials {
        for (total, v) in sums.iter_mut().zip(partial) {
            *total = *total + v;
        }
    }
    if !col_major {
        return sums;
    }
    // Back to the weight's layout, `[C_out][C_in/g][kh][kw]`.
    let mut dw = vec![T::ZERO; w_len];
    for group in 0..g.groups {
        let base = group * g.cout_g * patch;
        for r in 0..patch {
            for co in 0..g.cout_g {
                dw[base + co * patch + r] = sums[base + r * g.cout_g + co];
            }
        }
    }
    dw
}

/// `dx = col2im(W^T dY)`, `[N, C_in, H, W]`.
fn input_grad<T: GradElement>(g: &Geometry, w: &[T], dy: &[T]) -> Vec<T> {
    let threads = num_threads();
    let chunks = g.chunks(threads);
    let patch = g.patch();
    let image_len = g.image_len();
    let group_len = g.cin_g * g.in_h * g.in_w;
    if chunks.is_empty() || image_len == 0 {
        return vec![T::ZERO; g.batch * image_len];
    }
    let max_cols = chunks.iter().map(Chunk::cols).max().unwrap_or(0);
    let runs = image_runs(&chunks);
    let parallelism = inner_parallelism(runs.len(), threads);

    // W[g] transposed once, `[K][C_out/g]` per group (column-major `C_out/g x K`).
    let mut w_t = vec![T::ZERO; w.len()];
    for group in 0..g.groups {
        let base = group * g.cout_g * patch;
        for co in 0..g.cout_g {
            for r in 0..patch {
                w_t[base + r * g.cout_g + co] = w[base + co * patch + r];
            }
        }
    }

    // Each run zeroes its own images before adding into them, in parallel. Written, not
    // calloc'd: col2im reads before it writes, and a read of a never-touched page maps the
    // shared zero page, so the write that follows takes a copy-on-write fault and a TLB
    // shootdown across threads, per 4 KiB page (measured: slower than the arithmetic).
    let total = g.batch * image_len;
    let mut dx: Vec<T> = Vec::with_capacity(total);
    let lens = runs
        .iter()
        .map(|&(first, _)| chunks[first].images * image_len);
    let pieces: Vec<_> = runs
        .iter()
        .copied()
        .zip(split_lens(&mut dx.spare_capacity_mut()[..total], lens))
        .collect();
    let run = |((first, last), dx_images): ((usize, usize), &mut [MaybeUninit<T>])| {
        for v in dx_images.iter_mut() {
            v.write(T::ZERO);
        }
        // SAFETY: every element was just initialised.
        let dx_images = unsafe { &mut *(dx_images as *mut [MaybeUninit<T>] as *mut [T]) };
        with_scratch(
            patch * max_cols,
            g.cout_g * max_cols,
            |dcol: &mut [T], dy_buf: &mut [T]| {
                let base_image = chunks[first].image;
                for chunk in &chunks[first..last] {
                    let cols = chunk.cols();
                    let len = chunk.end - chunk.start;
                    for group in 0..g.groups {
                        let (lhs, ld) = channel_block(g, dy, chunk, group, dy_buf);
                        // dcol^T (cols x K) = dY^T (cols x C_out/g) * W[g] (C_out/g x K)
                        unsafe {
                            gemm(
                                cols,
                                patch,
                                g.cout_g,
                                dcol.as_mut_ptr(),
                                (1, cols as isize),
                                false,
                                lhs,
                                (1, ld),
                                w_t[group * g.cout_g * patch..].as_ptr(),
                                (1, g.cout_g as isize),
                                parallelism,
                            );
                        }
                        for j in 0..chunk.images {
                            let image = chunk.image + j - base_image;
                            let dx_group = &mut dx_images[image * image_len + group * group_len..]
                                [..group_len];
                            col2im(
                                g,
                                &mut *dcol,
                                cols,
                                j * len,
                                chunk.start,
                                chunk.end,
                                dx_group,
                            );
                        }
                    }
                }
            },
        );
    };
    for_each_piece_parallel(pieces, run);
    // SAFETY: the runs cover all `total` elements and initialised each of them.
    unsafe { dx.set_len(total) };
    dx
}

/// Sums a slice with eight independent accumulators, so the loop vectorises.
fn sum<T: GradElement>(values: &[T]) -> T {
    let mut acc = [T::ZERO; 8];
    let mut chunks = values.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] = acc[i] + c[i];
        }
    }
    let mut total = chunks.remainder().iter().fold(T::ZERO, |a, &v| a + v);
    for a in acc {
        total = total + a;
    }
    total
}

/// `db[c] = sum over images and positions of dY[b, c]`.
fn bias_grad<T: GradElement>(dy: &[T], batch: usize, channels: usize, positions: usize) -> Vec<T> {
    let channel_sum = |c: usize| {
        (0..batch).fold(T::ZERO, |acc, b| {
            acc + sum(&dy[(b * channels + c) * positions..][..positions])
        })
    };
    #[cfg(feature = "rayon")]
    if batch * channels * positions >= crate::ops::PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        return (0..channels).into_par_iter().map(channel_sum).collect();
    }
    (0..channels).map(channel_sum).collect()
}

fn tensor<T: GradElement>(data: Vec<T>, shape: Shape) -> FlexTensor {
    FlexTensor::new(Bytes::from_elems(data), Layout::contiguous(shape), T::DTYPE)
}

/// Whether Flex's direct (gemm-free) forward kernels in `conv.rs` beat im2col + gemm: for
/// depthwise convolutions only (one input and one output channel per group: a gemm of width
/// 1). Layers with very few channels (LeNet's first, 1 -> 6 channels 5x5) once went direct
/// too, but its row-by-row accumulation into the output (8 lanes and a scalar tail per
/// 28-wide row) measured slower than im2col + gemm: LeNet-5's training step at batch 128
/// 17.5-19.4k -> 19.7-20.9k images/s (AMD EPYC, 2 threads).
pub(crate) fn prefer_direct_kernels(
    x: [usize; 4],
    w: [usize; 4],
    options: &ConvOptions<2>,
) -> bool {
    let (c_in, c_out, cin_g) = (x[1], w[0], w[1]);
    cin_g == 1 && options.groups == c_in && c_out == c_in
}

/// Output size of a convolution along one axis: `(size + pad_begin + pad_end - span) /
/// stride + 1`, with `span = dilation (kernel - 1) + 1`.
fn output_size(
    size: usize,
    (begin, end): (usize, usize),
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> usize {
    let padded = size + begin + end;
    let span = dilation * (kernel - 1) + 1;
    assert!(
        padded >= span,
        "conv2d: the kernel span {span} exceeds the padded input size {padded}"
    );
    (padded - span) / stride + 1
}

/// `conv2d` forward. Asymmetric padding is handled in place (no padded copy of the input).
pub(crate) fn conv2d_forward<T: GradElement>(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let bias = bias.map(|b| b.to_contiguous());
    let (xs, ws) = (x.layout().shape(), weight.layout().shape());
    assert_eq!(xs.num_dims(), 4, "conv2d: input must be 4D");
    assert_eq!(ws.num_dims(), 4, "conv2d: weight must be 4D");
    let out_h = output_size(
        xs[2],
        options.padding[0],
        ws[2],
        options.stride[0],
        options.dilation[0],
    );
    let out_w = output_size(
        xs[3],
        options.padding[1],
        ws[3],
        options.stride[1],
        options.dilation[1],
    );
    let out_shape = Shape::from(vec![xs[0], ws[0], out_h, out_w]);
    let g = Geometry::new(xs, ws, &out_shape, options);
    let y = forward(
        &g,
        x.storage::<T>(),
        weight.storage::<T>(),
        bias.as_ref().map(|b| b.storage::<T>()),
    );
    tensor(y, out_shape)
}

/// Gradient of `conv2d` with respect to its input.
pub(crate) fn conv2d_x_backward<T: GradElement>(
    x: &FlexTensor,
    weight: FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let weight = weight.to_contiguous();
    let output_grad = output_grad.to_contiguous();
    let g = Geometry::new(
        x.layout().shape(),
        weight.layout().shape(),
        output_grad.layout().shape(),
        options,
    );
    let (w, dy) = (weight.storage::<T>(), output_grad.storage::<T>());
    let dx = match g.transposed() {
        Some(t) if t.patch() * t.positions() <= g.patch() * g.positions() => {
            if T::DTYPE == DType::F32 && super::conv2d_winograd::applies(&t) {
                // `T` is f32 here, so the casts are no-ops; Winograd flips the kernels as
                // it transforms them.
                from_f32(super::conv2d_winograd::forward(
                    &t,
                    bytemuck::cast_slice(dy),
                    super::conv2d_winograd::Kernels::Flipped(bytemuck::cast_slice(w)),
                    None,
                ))
            } else {
                forward(&t, dy, &flip_weights(&g, w), None)
            }
        }
        _ => input_grad(&g, w, dy),
    };
    tensor(dx, x.layout().shape().clone())
}

/// `W'[g][ci][co][i][j] = W[g][co][ci][kh-1-i][kw-1-j]`: the weights of the convolution
/// that [`Geometry::transposed`] describes, `[C_in, C_out/g, kh, kw]`.
fn flip_weights<T: GradElement>(g: &Geometry, w: &[T]) -> Vec<T> {
    let taps = g.k_h * g.k_w;
    let mut flipped = vec![T::ZERO; w.len()];
    for group in 0..g.groups {
        for co in 0..g.cout_g {
            for ci in 0..g.cin_g {
                let src = &w[((group * g.cout_g + co) * g.cin_g + ci) * taps..][..taps];
                let dst = &mut flipped[((group * g.cin_g + ci) * g.cout_g + co) * taps..][..taps];
                for (d, &v) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = v;
                }
            }
        }
    }
    flipped
}

/// Gradient of `conv2d` with respect to its weight.
pub(crate) fn conv2d_weight_backward<T: GradElement>(
    x: FlexTensor,
    weight: &FlexTensor,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let output_grad = output_grad.to_contiguous();
    let g = Geometry::new(
        x.layout().shape(),
        weight.layout().shape(),
        output_grad.layout().shape(),
        options,
    );
    let dw = weight_grad(&g, x.storage::<T>(), output_grad.storage::<T>());
    tensor(dw, weight.layout().shape().clone())
}

/// Gradient of `conv2d` with respect to its bias.
pub(crate) fn conv2d_bias_backward<T: GradElement>(
    bias: &FlexTensor,
    output_grad: FlexTensor,
) -> FlexTensor {
    let output_grad = output_grad.to_contiguous();
    let shape = output_grad.layout().shape();
    let (batch, channels) = (shape[0], shape[1]);
    let positions = shape.num_elements() / (batch * channels).max(1);
    let db = bias_grad(output_grad.storage::<T>(), batch, channels, positions);
    tensor(db, bias.layout().shape().clone())
}

#[cfg(test)]
mod tests {
    //! Checks against a direct evaluation of the defining sums.
    use super::*;

    /// A small deterministic pseudo-random sequence in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    #[derive(Debug)]
    struct Case {
        x: [usize; 4],
        c_out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
        groups: usize,
    }

    /// `(dx, dw, db, y)` by direct summation over every (image, output, patch) triple; `y`
    /// is the forward pass with bias `b`.
    fn reference(
        case: &Case,
        x: &[f64],
        w: &[f64],
        bias: &[f64],
        dy: &[f64],
        out: [usize; 2],
    ) -> [Vec<f64>; 4] {
        let [n, c_in, h, wd] = case.x;
        let [kh, kw] = case.kernel;
        let cin_g = c_in / case.groups;
        let cout_g = case.c_out / case.groups;
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let mut db = vec![0.0; case.c_out];
        let mut y = vec![0.0; dy.len()];
        for b in 0..n {
            for co in 0..case.c_out {
                let grp = co / cout_g;
                for oy in 0..out[0] {
                    for ox in 0..out[1] {
                        let yi = ((b * case.c_out + co) * out[0] + oy) * out[1] + ox;
                        let d = dy[yi];
                        db[co] += d;
                        y[yi] += bias[co];
                        for ci in 0..cin_g {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let iy = (oy * case.stride[0] + ki * case.dilation[0]) as isize
                                        - case.padding[0].0 as isize;
                                    let ix = (ox * case.stride[1] + kj * case.dilation[1]) as isize
                                        - case.padding[1].0 as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= wd {
                                        continue;
                                    }
                                    let c = grp * cin_g + ci;
                                    let xi = ((b * c_in + c) * h + iy as usize) * wd + ix as usize;
                                    let wi = ((co * cin_g + ci) * kh + ki) * kw + kj;
                                    dw[wi] += d * x[xi];
                                    dx[xi] += d * w[wi];
                                    y[yi] += x[xi] * w[wi];
                                }
                            }
                        }
                    }
                }
            }
        }
        [dx, dw, db, y]
    }

    fn check(case: Case) {
        let [n, c_in, h, w] = case.x;
        let [kh, kw] = case.kernel;
        let out = [0, 1].map(|i| {
            let size = [h, w][i] + case.padding[i].0 + case.padding[i].1;
            let span = case.dilation[i] * (case.kernel[i] - 1) + 1;
            (size - span) / case.stride[i] + 1
        });
        let x = values(n * c_in * h * w, 1);
        let wt = values(case.c_out * (c_in / case.groups) * kh * kw, 2);
        let dy = values(n * case.c_out * out[0] * out[1], 3);
        let bias = values(case.c_out, 4);
        let [rdx, rdw, rdb, ry] = reference(&case, &x, &wt, &bias, &dy, out);

        let options =
            ConvOptions::new_with_padding(case.stride, case.padding, case.dilation, case.groups);
        let t = |v: &[f64], shape: Vec<usize>| {
            tensor(v.iter().map(|&a| a as f32).collect(), Shape::from(shape))
        };
        let xt = t(&x, vec![n, c_in, h, w]);
        let wtt = t(&wt, vec![case.c_out, c_in / case.groups, kh, kw]);
        let dyt = t(&dy, vec![n, case.c_out, out[0], out[1]]);
        let bt = t(&bias, vec![case.c_out]);

        let dx = conv2d_x_backward::<f32>(&xt, wtt.clone(), dyt.clone(), &options);
        let dw = conv2d_weight_backward::<f32>(xt.clone(), &wtt, dyt.clone(), &options);
        let db = conv2d_bias_backward::<f32>(&bt, dyt);
        let y = conv2d_forward::<f32>(xt.clone(), wtt.clone(), Some(bt.clone()), &options);
        assert_eq!(
            y.layout().shape().to_vec(),
            vec![n, case.c_out, out[0], out[1]],
            "forward output shape"
        );
        for (name, got, want) in [
            ("y", y.storage::<f32>(), &ry),
            ("dx", dx.storage::<f32>(), &rdx),
            ("dw", dw.storage::<f32>(), &rdw),
            ("db", db.storage::<f32>(), &rdb),
        ] {
            assert_eq!(got.len(), want.len(), "{name} length");
            for (i, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{name}[{i}]: {a} vs {b}"
                );
            }
        }
    }

    fn case(x: [usize; 4], c_out: usize, kernel: [usize; 2]) -> Case {
        Case {
            x,
            c_out,
            kernel,
            stride: [1, 1],
            padding: [(0, 0), (0, 0)],
            dilation: [1, 1],
            groups: 1,
        }
    }

    #[test]
    fn plain_3x3() {
        check(case([2, 3, 7, 6], 4, [3, 3]));
    }

    #[test]
    fn padded_strided() {
        check(Case {
            stride: [2, 2],
            padding: [(1, 1), (1, 1)],
            ..case([3, 4, 9, 8], 5, [3, 3])
        });
    }

    #[test]
    fn asymmetric_padding_and_stride() {
        check(Case {
            stride: [2, 3],
            padding: [(0, 2), (1, 0)],
            ..case([2, 2, 7, 10], 3, [3, 2])
        });
    }

    #[test]
    fn dilation() {
        check(Case {
            dilation: [2, 3],
            padding: [(2, 2), (1, 1)],
            ..case([2, 3, 9, 11], 2, [3, 3])
        });
    }

    #[test]
    fn groups_and_depthwise() {
        check(Case {
            groups: 2,
            padding: [(1, 1), (1, 1)],
            ..case([2, 4, 6, 6], 6, [3, 3])
        });
        check(Case {
            groups: 5,
            padding: [(1, 1), (1, 1)],
            stride: [2, 1],
            ..case([3, 5, 7, 5], 5, [3, 3])
        });
    }

    #[test]
    fn pointwise_and_strided_pointwise() {
        // 20 positions per image: several images per chunk, copied together ...
        check(case([3, 6, 5, 4], 7, [1, 1]));
        // ... 72 (at least `MIN_COLS`): one image per chunk, read and written in place.
        check(case([3, 6, 8, 9], 7, [1, 1]));
        check(Case {
            stride: [2, 2],
            ..case([3, 6, 5, 5], 4, [1, 1])
        });
    }

    #[test]
    fn pointwise_reads_pieces_of_grouped_images_in_place() {
        // 1024 input channels per group leave 512 columns per chunk, so each 24x24 image is
        // cut in two pieces, which forward and weight gradient read from the input in place.
        check(Case {
            groups: 2,
            ..case([2, 2048, 24, 24], 8, [1, 1])
        });
    }

    #[test]
    fn same_width_fast_paths() {
        // Whole images whose output rows are as wide as the input rows: 3x3 pad 1, dilated
        // 3x3 pad 2, asymmetric 2x2 and 4x4 "same" padding, and rows of several heights.
        check(Case {
            padding: [(1, 1), (1, 1)],
            ..case([3, 2, 5, 7], 3, [3, 3])
        });
        check(Case {
            dilation: [2, 2],
            padding: [(2, 2), (2, 2)],
            ..case([2, 3, 6, 6], 2, [3, 3])
        });
        check(Case {
            padding: [(0, 1), (0, 1)],
            ..case([2, 2, 4, 5], 3, [2, 2])
        });
        check(Case {
            padding: [(1, 2), (2, 1)],
            ..case([2, 2, 6, 3], 2, [4, 4])
        });
        check(Case {
            padding: [(2, 2), (1, 1)],
            ..case([2, 2, 3, 8], 2, [5, 3])
        });
    }

    #[test]
    fn narrowing_stride_1_fast_paths() {
        // Whole images, stride 1, output narrower than the input (im2col_stride1 and
        // col2im_stride1): LeNet's "valid" 5x5 on 14x14 with several images per chunk, and
        // asymmetric padding short of "same", with dilation.
        check(case([5, 6, 14, 14], 16, [5, 5]));
        check(Case {
            padding: [(1, 2), (2, 0)],
            ..case([3, 2, 9, 8], 3, [5, 5])
        });
        check(Case {
            padding: [(1, 0), (0, 1)],
            dilation: [2, 1],
            ..case([2, 3, 8, 7], 2, [3, 4])
        });
    }

    #[test]
    fn winograd_3x3() {
        // f32 3x3 stride-1 layers with 16+ channels run through Winograd F(2x2, 3x3): odd
        // output sizes (partial tiles), "same", "valid", asymmetric and wide padding, input
        // gradients through the transposed convolution (C_out <= C_in; its kernels read
        // flipped, in runs of 16 input channels and a partial run), weight gradients
        // (`dw`), and chunks of tiles that end inside an image (4x70x66: 4,620 tiles in
        // chunks of 2,048, so with two threads one weight-gradient partial sums two chunks).
        let winograd = |x: [usize; 4], c_out: usize, padding: [(usize, usize); 2]| {
            let case = Case {
                padding,
                ..case(x, c_out, [3, 3])
            };
            let options = ConvOptions::new_with_padding(case.stride, padding, [1, 1], 1);
            let out = [0, 1].map(|i| x[2 + i] + padding[i].0 + padding[i].1 - 2);
            let g = Geometry::new(
                &Shape::from(x.to_vec()),
                &Shape::from(vec![c_out, x[1], 3, 3]),
                &Shape::from(vec![x[0], c_out, out[0], out[1]]),
                &options,
            );
            assert!(super::super::conv2d_winograd::applies(&g), "{case:?}");
            assert_eq!(
                super::super::conv2d_winograd::applies_to_weight_grad(&g),
                x[1].min(c_out) >= 256
            );
            // The weight gradient takes Winograd only from 256 channels (below, im2col's
            // is faster); here it is checked on its own at these small sizes.
            let [n, c_in, h, w] = case.x;
            let (xv, wv, dyv) = (
                values(n * c_in * h * w, 1),
                values(c_out * c_in * 9, 2),
                values(n * c_out * out[0] * out[1], 3),
            );
            let [_, want, _, _] = reference(&case, &xv, &wv, &vec![0.0; c_out], &dyv, out);
            let f32s = |v: &[f64]| v.iter().map(|&a| a as f32).collect::<Vec<_>>();
            let got = super::super::conv2d_winograd::weight_grad(&g, &f32s(&xv), &f32s(&dyv));
            assert_eq!(got.len(), want.len());
            for (i, (&a, &b)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "Winograd dw[{i}]: {a} vs {b} ({case:?})"
                );
            }
            check(case);
        };
        winograd([3, 18, 7, 9], 16, [(1, 1), (1, 1)]);
        // The transposed convolution with a partial run of kernels (18 = 16 + 2 channels).
        winograd([2, 20, 6, 6], 18, [(1, 1), (1, 1)]);
        winograd([3, 16, 7, 9], 17, [(1, 1), (1, 1)]);
        winograd([2, 16, 6, 5], 16, [(0, 0), (0, 0)]);
        winograd([2, 16, 7, 9], 20, [(0, 2), (2, 1)]);
        winograd([1, 16, 4, 4], 16, [(2, 2), (2, 2)]);
        winograd([4, 16, 70, 66], 16, [(1, 1), (1, 1)]);
        // 256 channels: the weight gradient through `conv2d_weight_backward` too.
        winograd([2, 256, 5, 3], 256, [(1, 1), (1, 1)]);
    }

    #[test]
    fn kernel_larger_than_padding_leaves_rows_untouched() {
        // Stride 3 skips the last input rows and columns: their gradient is zero.
        check(Case {
            stride: [3, 3],
            ..case([1, 2, 8, 8], 2, [2, 2])
        });
    }

    #[test]
    fn chunked_large_images_and_many_images() {
        // Positions per image above the chunk size (split within an image) ...
        check(Case {
            padding: [(1, 1), (1, 1)],
            ..case([2, 64, 45, 45], 2, [3, 3])
        });
        // ... and many small images per chunk, more chunks than threads.
        check(Case {
            padding: [(1, 1), (1, 1)],
            ..case([37, 3, 5, 5], 4, [3, 3])
        });
    }
}
