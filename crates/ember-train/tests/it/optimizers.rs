//! The optimizers against their update formulas, and each one minimising a least-squares fit.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{Device, Tensor, TensorData};
use ember_train::adadelta::{AdaDelta, AdaDeltaConfig};
use ember_train::config::{OptimizerKind, TrainConfig};

fn vec1(t: Tensor<1>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

#[test]
fn adadelta_follows_zeilers_update() {
    let device = Device::flex();
    let rho = 0.9;
    let eps = 1e-6;
    let wd = 0.01;
    let lr = 0.5;
    let adadelta = AdaDeltaConfig {
        rho,
        epsilon: eps,
        weight_decay: wd,
        grad_clip: None,
    };
    let opt = AdaDelta::new(adadelta);
    let mut x: Vec<f64> = vec![1.0, -2.0, 0.5];
    let grads = [[0.3, -0.1, 2.0], [0.2, 0.4, -1.0], [-0.5, 0.1, 0.0]];
    let (mut s, mut d) = (vec![0.0; 3], vec![0.0; 3]);
    let mut tensor = Tensor::<1>::from_data(
        TensorData::from(x.iter().map(|&v| v as f32).collect::<Vec<_>>().as_slice()),
        &device,
    );
    let mut state = None;
    for g in grads {
        let gt = Tensor::<1>::from_data(TensorData::from(g.map(|v| v as f32).as_slice()), &device);
        let (t, st) = opt.step(lr, tensor, gt, state);
        tensor = t;
        state = st;
        for i in 0..3 {
            let gi = g[i] + wd * x[i];
            s[i] = rho * s[i] + (1.0 - rho) * gi * gi;
            let delta = (d[i] + eps).sqrt() / (s[i] + eps).sqrt() * gi;
            d[i] = rho * d[i] + (1.0 - rho) * delta * delta;
            x[i] -= lr * delta;
        }
    }
    let got = vec1(tensor);
    for (a, b) in got.iter().zip(&x) {
        assert!((a - b).abs() < 1e-5, "{got:?} vs {x:?}");
    }
}

#[derive(Module, Debug)]
struct Fit {
    lin: Linear,
}

/// Least squares y = X w on a fixed problem; returns the loss before and after `steps` steps.
fn fit_with(kind: OptimizerKind, lr: f64, steps: usize) -> (f64, f64) {
    let device = Device::flex().autodiff();
    device.seed(1);
    let mut model = Fit {
        lin: LinearConfig::new(4, 1).init(&device),
    };
    let config = TrainConfig {
        optim: ember_train::config::OptimConfig {
            optimizer: kind,
            lr,
            weight_decay: 1e-4,
            grad_clip: Some(10.0),
            ..Default::default()
        },
        ..TrainConfig::default()
    };
    let mut optim = ember_train::optim::build(&config);
    let xs: Vec<f32> = (0..64)
        .map(|i| ((i * 37 % 17) as f32 / 8.0) - 1.0)
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(xs, [16, 4]), &device);
    let w = Tensor::<2>::from_data(
        TensorData::new(vec![1.0f32, -2.0, 0.5, 3.0], [4, 1]),
        &device,
    );
    let y = x.clone().matmul(w);
    let loss_of = |m: &Fit| (m.lin.forward(x.clone()) - y.clone()).square().mean();
    let before: f64 = loss_of(&model).into_scalar();
    for _ in 0..steps {
        let loss = loss_of(&model);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    let after: f64 = loss_of(&model).into_scalar();
    (before, after)
}

#[test]
fn every_optimizer_minimises_a_least_squares_fit() {
    for (kind, lr) in [
        (OptimizerKind::Sgd, 0.05),
        (OptimizerKind::Momentum, 0.02),
        (OptimizerKind::Nesterov, 0.02),
        (OptimizerKind::Adagrad, 0.3),
        (OptimizerKind::Rmsprop, 0.01),
        (OptimizerKind::Adadelta, 1.0),
        (OptimizerKind::Adam, 0.05),
        (OptimizerKind::Adamw, 0.05),
    ] {
        // AdaDelta's first steps are ~sqrt(eps) long (Zeiler's "unit correction"): give it time.
        let steps = if kind == OptimizerKind::Adadelta {
            400
        } else {
            30
        };
        let (before, after) = fit_with(kind, lr, steps);
        assert!(after < 0.5 * before, "{kind:?}: {before} -> {after}");
    }
}

/// `--no-decay-norm-bias`: with a zero gradient, weight decay alone moves the parameters;
/// the bias (rank 1) must stay put while the weight (rank 2) decays, for every optimizer.
#[test]
fn no_decay_group_spares_biases_only() {
    let device = Device::flex().autodiff();
    for kind in OptimizerKind::ALL {
        device.seed(2);
        let model = Fit {
            lin: LinearConfig::new(4, 3).init(&device),
        };
        let (w0, b0) = (
            model.lin.weight.val().into_data(),
            model.lin.bias.as_ref().unwrap().val().into_data(),
        );
        for (flag, bias_moves) in [(false, true), (true, false)] {
            let config = TrainConfig {
                optim: ember_train::config::OptimConfig {
                    optimizer: kind,
                    lr: 0.1,
                    weight_decay: 0.5,
                    no_decay_norm_bias: flag,
                    ..Default::default()
                },
                ..TrainConfig::default()
            };
            let mut optim =
                ember_train::optim::build_for(&config, &model).expect("no groups to match");
            let x = Tensor::<2>::ones([2, 4], &device);
            let loss = (model.lin.forward(x) * 0.0).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let stepped = optim.step(0.1, model.clone(), grads);
            let w = stepped.lin.weight.val().into_data();
            let b = stepped.lin.bias.as_ref().unwrap().val().into_data();
            assert_ne!(w, w0, "{kind:?} (no-decay {flag}): the weight decays");
            assert_eq!(b != b0, bias_moves, "{kind:?} (no-decay {flag}): the bias");
        }
    }
}

/// PyTorch's update rules, written out, for the first three steps of each optimizer with
/// weight decay: SGD, heavy-ball and Nesterov momentum (L2 decay added to the gradient, no
/// dampening), AdaGrad, RMSProp, Adam (L2 decay, bias-corrected moments, eps outside the root) and AdamW
/// (decoupled decay). The gradients are known constants: loss = sum(c_t * (x W + b)).
#[test]
fn first_steps_follow_pytorchs_formulas() {
    let device = Device::flex().autodiff();
    let (lr, wd, mu, b1, b2, eps) = (0.1f64, 0.05f64, 0.9f64, 0.9f64, 0.999f64, 1e-8f64);
    let x = [1.0f64, 2.0];
    let cs = [0.5f64, -1.5, 0.25];
    for kind in [
        OptimizerKind::Sgd,
        OptimizerKind::Momentum,
        OptimizerKind::Nesterov,
        OptimizerKind::Adagrad,
        OptimizerKind::Rmsprop,
        OptimizerKind::Adam,
        OptimizerKind::Adamw,
    ] {
        device.seed(5);
        let mut model = Fit {
            lin: LinearConfig::new(2, 1).init(&device),
        };
        let mut w = vec1(model.lin.weight.val().reshape([2]));
        let config = TrainConfig {
            optim: ember_train::config::OptimConfig {
                optimizer: kind,
                lr,
                weight_decay: wd,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        let mut optim = ember_train::optim::build(&config);
        let (mut buf, mut m, mut v) = (vec![0.0; 2], vec![0.0; 2], vec![0.0; 2]);
        for (t, &c) in cs.iter().enumerate() {
            let input = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0], [1, 2]), &device);
            let loss = (model.lin.forward(input) * c as f32).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            let step = (t + 1) as i32;
            for i in 0..2 {
                let g = x[i] * c;
                match kind {
                    OptimizerKind::Sgd => w[i] -= lr * (g + wd * w[i]),
                    OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                        let g = g + wd * w[i];
                        buf[i] = if t == 0 { g } else { mu * buf[i] + g };
                        let d = if kind == OptimizerKind::Nesterov {
                            g + mu * buf[i]
                        } else {
                            buf[i]
                        };
                        w[i] -= lr * d;
                    }
                    // AdaGrad (eps 1e-10, no lr decay) and RMSProp (alpha 0.99, eps 1e-8, no
                    // momentum): v holds the sum, resp. the running mean, of squared gradients.
                    OptimizerKind::Adagrad => {
                        let g = g + wd * w[i];
                        v[i] += g * g;
                        w[i] -= lr * g / (v[i].sqrt() + 1e-10);
                    }
                    OptimizerKind::Rmsprop => {
                        let g = g + wd * w[i];
                        v[i] = 0.99 * v[i] + 0.01 * g * g;
                        w[i] -= lr * g / (v[i].sqrt() + 1e-8);
                    }
                    _ => {
                        let g = if kind == OptimizerKind::Adam {
                            g + wd * w[i]
                        } else {
                            w[i] *= 1.0 - lr * wd;
                            g
                        };
                        m[i] = b1 * m[i] + (1.0 - b1) * g;
                        v[i] = b2 * v[i] + (1.0 - b2) * g * g;
                        let m_hat = m[i] / (1.0 - b1.powi(step));
                        let v_hat = v[i] / (1.0 - b2.powi(step));
                        w[i] -= lr * m_hat / (v_hat.sqrt() + eps);
                    }
                }
            }
            let got = vec1(model.lin.weight.val().reshape([2]));
            for i in 0..2 {
                assert!(
                    (got[i] - w[i]).abs() < 1e-5 * w[i].abs().max(1.0),
                    "{kind:?} step {step}: {got:?} vs formula {w:?}"
                );
            }
        }
    }
}
