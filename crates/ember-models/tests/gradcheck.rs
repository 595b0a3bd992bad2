//! Finite-difference gradient checks: the backward pass Burn computes for each building block
//! must match the numeric derivative `(L(x + h) - L(x - h)) / 2h` of a scalar loss
//! `L = sum(f(x) * r)` (a fixed random `r`, so that no gradient is trivially uniform).
//!
//! Runs in float64 on Flex, so a central difference with h = 1e-6 is accurate to ~1e-9.
//! Its own test binary: a Flex device's float type is process-wide, and other tests (the
//! zoo's) expect float32.

use std::sync::OnceLock;

use burn::module::Param;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::FloatDType;
use ember_models::InitScheme;
use ember_models::blocks::BasicBlockConfig;

/// The autodiff Flex device, with float64 as its default float type.
fn device() -> Device {
    static DEVICE: OnceLock<Device> = OnceLock::new();
    DEVICE
        .get_or_init(|| {
            let mut d = Device::flex();
            d.configure(FloatDType::F64)
                .expect("Flex supports float64 (configure before any tensor exists)");
            d.seed(0);
            d.autodiff()
        })
        .clone()
}

/// Deterministic values in [-1, 1) (a 64-bit LCG), so the checks need no RNG state.
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

fn tensor<const D: usize>(v: Vec<f64>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), &device())
}

fn to_vec<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// `sum(y * r)` for a fixed `r` of `y`'s shape.
fn weighted_sum<const D: usize>(y: Tensor<D>) -> Tensor<1> {
    let shape: [usize; D] = y.dims();
    let r = tensor(values(shape.iter().product(), 99), shape);
    (y * r).sum()
}

/// Compares Burn's gradient of `loss` at `x0` with central differences; returns the gradient.
fn check<const D: usize>(
    what: &str,
    x0: &[f64],
    shape: [usize; D],
    loss: impl Fn(Tensor<D>) -> Tensor<1>,
) -> Vec<f64> {
    let x = tensor(x0.to_vec(), shape).require_grad();
    let grads = loss(x.clone()).backward();
    let analytic = to_vec(x.grad(&grads).expect("the input takes part in the loss"));

    let h = 1e-6;
    let eval = |v: Vec<f64>| to_vec(loss(tensor(v, shape)))[0];
    let numeric: Vec<f64> = (0..x0.len())
        .map(|i| {
            let mut plus = x0.to_vec();
            plus[i] += h;
            let mut minus = x0.to_vec();
            minus[i] -= h;
            (eval(plus) - eval(minus)) / (2.0 * h)
        })
        .collect();

    let scale = numeric.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (i, (a, n)) in analytic.iter().zip(&numeric).enumerate() {
        assert!(
            (a - n).abs() <= 1e-5 * scale,
            "{what}: d/dx[{i}] backward {a} vs numeric {n}"
        );
    }
    assert!(
        numeric.iter().any(|v| v.abs() > 1e-6),
        "{what}: the gradient is all zero, the check would prove nothing"
    );
    analytic
}

#[test]
fn convolution_with_stride_padding_dilation_and_groups() {
    let d = device();
    let conv = Conv2dConfig::new([4, 6], [3, 3])
        .with_stride([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_dilation([2, 2])
        .with_groups(2)
        .init(&d);
    let x_shape = [2, 4, 7, 7];
    let x0 = values(2 * 4 * 49, 1);
    check("conv2d input", &x0, x_shape, |x| {
        weighted_sum(conv.forward(x))
    });

    let x = tensor(x0.clone(), x_shape);
    let w_shape: [usize; 4] = conv.weight.val().dims();
    let w0 = to_vec(conv.weight.val());
    check("conv2d weight", &w0, w_shape, |w| {
        let mut c = conv.clone();
        c.weight = Param::from_tensor(w);
        weighted_sum(c.forward(x.clone()))
    });
    let b0 = to_vec(conv.bias.as_ref().unwrap().val());
    check("conv2d bias", &b0, [6], |b| {
        let mut c = conv.clone();
        c.bias = Some(Param::from_tensor(b));
        weighted_sum(c.forward(x.clone()))
    });
}

#[test]
fn transposed_convolution() {
    let d = device();
    let deconv = ConvTranspose2dConfig::new([2, 3], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_padding_out([1, 1])
        .init(&d);
    let x_shape = [2, 2, 4, 4];
    let x0 = values(64, 2);
    check("conv_transpose2d input", &x0, x_shape, |x| {
        let y = deconv.forward(x);
        assert_eq!(y.dims(), [2, 3, 8, 8], "(4 - 1) * 2 - 2 + 3 + 1 = 8");
        weighted_sum(y)
    });
    let x = tensor(x0, x_shape);
    let w_shape: [usize; 4] = deconv.weight.val().dims();
    check(
        "conv_transpose2d weight",
        &to_vec(deconv.weight.val()),
        w_shape,
        |w| {
            let mut c = deconv.clone();
            c.weight = Param::from_tensor(w);
            weighted_sum(c.forward(x.clone()))
        },
    );
}

/// Distinct values, at least 1/n apart, so a perturbation of 1e-6 never changes an arg-max.
fn distinct(n: usize) -> Vec<f64> {
    let mut v: Vec<f64> = (0..n).map(|i| i as f64 / n as f64).collect();
    // a fixed shuffle
    let r = values(n, 5);
    for i in (1..n).rev() {
        let j = ((r[i] + 1.0) / 2.0 * (i + 1) as f64) as usize % (i + 1);
        v.swap(i, j);
    }
    v
}

#[test]
fn max_and_average_pooling() {
    let max = MaxPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    let avg = AvgPool2dConfig::new([3, 3])
        .with_strides([2, 2])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init();
    let shape = [2, 2, 7, 7];
    let x0 = distinct(2 * 2 * 49);
    check("max pool", &x0, shape, |x| weighted_sum(max.forward(x)));
    check("avg pool", &x0, shape, |x| weighted_sum(avg.forward(x)));
}

/// The seed's rule: max pooling routes each window's gradient to its arg-max alone;
/// average pooling spreads it evenly over the window.
#[test]
fn pooling_gradient_routing_rule() {
    // One 4x4 channel, 2x2/2 windows: the maxima are 5, 7, 13, 15 (one per window).
    #[rustfmt::skip]
    let x0: Vec<f64> = vec![
        1.0, 5.0,   2.0, 0.0,
        3.0, 4.0,   7.0, 6.0,

        9.0, 8.0,  10.0, 15.0,
        13.0, 12.0, 11.0, 14.0,
    ];
    let upstream = [1.0, 2.0, 3.0, 4.0]; // d L / d y for the four windows
    let up = tensor(upstream.to_vec(), [1, 1, 2, 2]);

    let max = MaxPool2dConfig::new([2, 2]).init();
    let x = tensor(x0.clone(), [1, 1, 4, 4]).require_grad();
    let g = to_vec(
        x.grad(&(max.forward(x.clone()) * up.clone()).sum().backward())
            .unwrap(),
    );
    #[rustfmt::skip]
    let expected_max = vec![
        0.0, 1.0,   0.0, 0.0,
        0.0, 0.0,   2.0, 0.0,

        0.0, 0.0,   0.0, 4.0,
        3.0, 0.0,   0.0, 0.0,
    ];
    assert_eq!(
        g, expected_max,
        "max pool: gradient only at each window's arg-max"
    );

    let avg = AvgPool2dConfig::new([2, 2]).init();
    let x = tensor(x0, [1, 1, 4, 4]).require_grad();
    let g = to_vec(
        x.grad(&(avg.forward(x.clone()) * up).sum().backward())
            .unwrap(),
    );
    #[rustfmt::skip]
    let expected_avg = vec![
        0.25, 0.25, 0.5, 0.5,
        0.25, 0.25, 0.5, 0.5,
        0.75, 0.75, 1.0, 1.0,
        0.75, 0.75, 1.0, 1.0,
    ];
    assert_eq!(
        g, expected_avg,
        "avg pool: gradient / (k*k) to every input of the window"
    );
}

#[test]
fn batch_norm_in_training_mode() {
    let d = device();
    let mut bn = BatchNormConfig::new(3).init(&d);
    bn.gamma = Param::from_tensor(tensor(vec![0.5, 1.5, -2.0], [3]));
    bn.beta = Param::from_tensor(tensor(vec![0.1, -0.2, 0.3], [3]));
    let shape = [4, 3, 3, 3];
    let x0: Vec<f64> = values(4 * 27, 3).iter().map(|v| 2.0 * v + 0.5).collect();
    // Batch statistics depend on every input: the gradient is not just gamma / sigma.
    check("batch norm input", &x0, shape, |x| {
        weighted_sum(bn.forward(x))
    });
    let x = tensor(x0, shape);
    check("batch norm gamma", &[0.5, 1.5, -2.0], [3], |g| {
        let mut b = bn.clone();
        b.gamma = Param::from_tensor(g);
        weighted_sum(b.forward(x.clone()))
    });
}

#[test]
fn residual_blocks_identity_and_projection() {
    let d = device();
    // Identity shortcut: y = relu(F(x) + x).
    let block = BasicBlockConfig::new(3, 3)
        .with_init(InitScheme::Kaiming)
        .init(&d);
    assert!(block.downsample.is_none());
    let shape = [2, 3, 5, 5];
    check("basic block (identity)", &values(150, 4), shape, |x| {
        weighted_sum(block.forward(x))
    });
    // Projection shortcut (stride 2, 3 -> 4 channels): y = relu(F(x) + W_s x).
    let block = BasicBlockConfig::new(3, 4)
        .with_stride(2)
        .with_init(InitScheme::Kaiming)
        .init(&d);
    assert!(block.downsample.is_some());
    check("basic block (projection)", &values(150, 6), shape, |x| {
        let y = block.forward(x);
        assert_eq!(y.dims(), [2, 4, 3, 3]);
        weighted_sum(y)
    });
}

/// One convolution's shapes for [`conv2d_backward_matches_direct_sums`].
struct ConvCase {
    x: [usize; 4],
    c_out: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
}

/// The three gradients of `L = sum(conv2d(x, w, b) * r)` by direct summation over every
/// (image, output unit, kernel tap): `dL/dy = r`, so `db[o] = sum r[., o]`, `dw = sum r x`,
/// `dx = sum r w`, each over the taps that touch the element.
fn conv_reference(c: &ConvCase, x: &[f64], w: &[f64], r: &[f64], out: [usize; 2]) -> [Vec<f64>; 3] {
    let [n, c_in, h, wd] = c.x;
    let [kh, kw] = c.kernel;
    let (cin_g, cout_g) = (c_in / c.groups, c.c_out / c.groups);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; c.c_out]);
    for b in 0..n {
        for o in 0..c.c_out {
            for oy in 0..out[0] {
                for ox in 0..out[1] {
                    let g = r[((b * c.c_out + o) * out[0] + oy) * out[1] + ox];
                    db[o] += g;
                    for ci in 0..cin_g {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let iy = (oy * c.stride[0] + ki * c.dilation[0]) as isize
                                    - c.padding[0].0 as isize;
                                let ix = (ox * c.stride[1] + kj * c.dilation[1]) as isize
                                    - c.padding[1].0 as isize;
                                if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= wd {
                                    continue;
                                }
                                let channel = (o / cout_g) * cin_g + ci;
                                let xi =
                                    ((b * c_in + channel) * h + iy as usize) * wd + ix as usize;
                                let wi = ((o * cin_g + ci) * kh + ki) * kw + kj;
                                dw[wi] += g * x[xi];
                                dx[xi] += g * w[wi];
                            }
                        }
                    }
                }
            }
        }
    }
    [dx, dw, db]
}

/// Flex's convolution backward (input, weight and bias gradients: Ember's vendored kernels,
/// `vendor/burn-flex`) against direct sums, over strides, symmetric and asymmetric padding,
/// dilation, groups (depthwise included), 1x1 kernels, odd and non-square sizes, and shapes
/// large enough that the kernels cut images into several column chunks.
#[test]
fn conv2d_backward_matches_direct_sums() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    let base = |x, c_out, kernel| ConvCase {
        x,
        c_out,
        kernel,
        stride: [1, 1],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
        groups: 1,
    };
    let cases = [
        base([2, 3, 7, 6], 4, [3, 3]),
        ConvCase {
            stride: [2, 2],
            padding: [(1, 1), (1, 1)],
            ..base([3, 4, 9, 8], 5, [3, 3])
        },
        ConvCase {
            stride: [2, 3],
            padding: [(0, 2), (1, 0)],
            ..base([2, 2, 7, 10], 3, [3, 2])
        },
        ConvCase {
            dilation: [2, 3],
            padding: [(2, 2), (1, 1)],
            ..base([2, 3, 9, 11], 2, [3, 3])
        },
        ConvCase {
            groups: 2,
            padding: [(1, 1), (1, 1)],
            ..base([2, 4, 6, 6], 6, [3, 3])
        },
        ConvCase {
            groups: 5,
            stride: [2, 1],
            padding: [(1, 1), (1, 1)],
            ..base([3, 5, 7, 5], 5, [3, 3])
        },
        base([3, 6, 5, 4], 7, [1, 1]),
        ConvCase {
            stride: [2, 2],
            ..base([3, 6, 5, 5], 4, [1, 1])
        },
        ConvCase {
            stride: [3, 3],
            ..base([1, 2, 8, 8], 2, [2, 2])
        },
        ConvCase {
            stride: [2, 2],
            padding: [(3, 3), (3, 3)],
            ..base([1, 3, 23, 17], 4, [7, 7])
        },
        // Stride 1 with the input's width: the whole-image shifted-copy paths, and the
        // input gradient as a convolution with flipped kernels (asymmetric, dilated).
        ConvCase {
            padding: [(1, 1), (1, 1)],
            ..base([3, 2, 5, 7], 3, [3, 3])
        },
        ConvCase {
            dilation: [2, 2],
            padding: [(2, 2), (2, 2)],
            ..base([2, 3, 6, 6], 2, [3, 3])
        },
        ConvCase {
            padding: [(1, 2), (2, 1)],
            ..base([2, 2, 6, 3], 2, [4, 4])
        },
        // More positions per image than one column chunk holds (K = 576).
        ConvCase {
            padding: [(1, 1), (1, 1)],
            ..base([2, 64, 45, 45], 2, [3, 3])
        },
        // Many small images: several images per chunk, more chunks than threads.
        ConvCase {
            padding: [(1, 1), (1, 1)],
            ..base([37, 3, 5, 5], 4, [3, 3])
        },
    ];
    for (i, c) in cases.iter().enumerate() {
        let [n, c_in, h, w] = c.x;
        let [kh, kw] = c.kernel;
        let out = [0, 1].map(|d| {
            let size = [h, w][d] + c.padding[d].0 + c.padding[d].1;
            (size - (c.dilation[d] * (c.kernel[d] - 1) + 1)) / c.stride[d] + 1
        });
        let w_shape = [c.c_out, c_in / c.groups, kh, kw];
        let (x0, w0, b0) = (
            values(n * c_in * h * w, 10 + i as u64),
            values(w_shape.iter().product(), 20 + i as u64),
            values(c.c_out, 30 + i as u64),
        );
        let r0 = values(n * c.c_out * out[0] * out[1], 40 + i as u64);
        let x = tensor(x0.clone(), c.x).require_grad();
        let wt = tensor(w0.clone(), w_shape).require_grad();
        let b = tensor(b0, [c.c_out]).require_grad();
        let options = ConvOptions::new_with_padding(c.stride, c.padding, c.dilation, c.groups);
        let y = conv2d(x.clone(), wt.clone(), Some(b.clone()), options);
        assert_eq!(
            y.dims(),
            [n, c.c_out, out[0], out[1]],
            "case {i}: output shape"
        );
        let grads = (y * tensor(r0.clone(), [n, c.c_out, out[0], out[1]]))
            .sum()
            .backward();
        let [rdx, rdw, rdb] = conv_reference(c, &x0, &w0, &r0, out);
        for (name, got, want) in [
            ("dx", to_vec(x.grad(&grads).expect("x grad")), rdx),
            ("dw", to_vec(wt.grad(&grads).expect("w grad")), rdw),
            ("db", to_vec(b.grad(&grads).expect("b grad")), rdb),
        ] {
            assert_eq!(got.len(), want.len(), "case {i}: {name} length");
            for (j, (a, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - e).abs() <= 1e-9 * (1.0 + e.abs()),
                    "case {i}: {name}[{j}] = {a}, direct sum {e}"
                );
            }
        }
    }
}
