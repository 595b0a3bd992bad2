//! airbench94's recipe (issue 29): the hyper-parameter translation, lookahead, freezing,
//! fractional epochs, the six-view TTA, and a resumed run that ends bit-exactly where an
//! uninterrupted one does.

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use ember_data::transform::{PadMode, Preset};
use ember_models::Model;
use ember_train::config::{
    FlipMode, FreezeAfter, LookaheadConfig, OptimizerKind, ParamGroupConfig, ScheduleKind,
    TrainConfig, Tta,
};
use ember_train::logger::read_metrics;
use ember_train::predict::TrainedModel;
use ember_train::run::{RunDir, Weights};
use ember_train::{Classifier, Network, trainer};
use std::path::{Path, PathBuf};

fn recipe() -> TrainConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../recipes/airbench94.toml");
    TrainConfig::load(&path).unwrap()
}

/// The recipe's mean-loss rates and decays are the source's (stated for a loss summed over
/// the batch, "per 1,024 examples", for PyTorch's coupled SGD), derived, and one step of each
/// moves the weights the same way.
#[test]
fn the_recipe_is_airbench94_in_mean_loss_terms() {
    let c = recipe();
    c.validate().unwrap();
    // The source: lr 11.5, weight decay 0.0153 per 1024 examples, bias_scaler 64,
    // momentum 0.85; PyTorch gets lr / k and wd * B / k with k = 1024 (1 + 1 / (1 - m)),
    // and each group's decay divided by its lr.
    let (lr, wd, bias_scaler, m, batch) = (11.5, 0.0153, 64.0, 0.85, 1024.0);
    let k = 1024.0 * (1.0 + 1.0 / (1.0 - m));
    let (torch_lr, torch_wd) = (lr / k, wd * batch / k);
    // The summed loss's gradient is B times the mean's: the same step is lr * B on a mean,
    // and the L2 term (wd / lr) p becomes (wd / lr) / B next to the mean's gradient.
    let mean_lr = torch_lr * batch;
    let mean_l2 = torch_wd / torch_lr / batch;
    let bias_l2 = torch_wd / (torch_lr * bias_scaler) / batch;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
    assert!(close(c.optim.lr, mean_lr), "{} vs {mean_lr}", c.optim.lr);
    assert!(close(c.optim.weight_decay, mean_l2));
    assert_eq!(c.optim.momentum(), m);
    assert_eq!(c.optim.optimizer, OptimizerKind::Nesterov);
    let g = &c.optim.groups[0];
    assert_eq!((g.params.as_str(), g.lr_factor), ("*.bn.beta", bias_scaler));
    assert!(close(g.weight_decay.unwrap(), bias_l2));
    assert_eq!(c.train_loop.batch_size, 1024);
    assert_eq!(c.train_loop.fractional_epochs, Some(9.9));
    assert!(c.train_loop.drop_last);
    // 50,000 images: 48 steps an epoch, 476 in all, as the paper says.
    assert_eq!(trainer::run_steps(&c, 50_000, 1), (48, 476));

    // One Nesterov step both ways on a linear layer, from the same weights and gradients.
    let device = Device::flex().autodiff();
    device.seed(3);
    let lin = burn::nn::LinearConfig::new(6, 3).init(&device);
    let x = Tensor::<2>::random([1024, 6], burn::tensor::Distribution::Default, &device);
    let step = |optimizer: &TrainConfig, lr: f64, summed: bool| {
        let mut optim = ember_train::optim::build(optimizer);
        let y = lin.forward(x.clone());
        let loss = (y.clone() * y).sum_dim(1);
        let loss = if summed { loss.sum() } else { loss.mean() };
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &lin);
        let stepped = optim.step(lr, lin.clone(), grads);
        stepped
            .weight
            .val()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap()
    };
    let ours = TrainConfig {
        optim: c.optim.clone(),
        ..TrainConfig::default()
    };
    let mut theirs = ours.clone();
    theirs.optim.weight_decay = torch_wd / torch_lr;
    let (a, b) = (step(&ours, mean_lr, false), step(&theirs, torch_lr, true));
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 1e-5 * a.abs().max(1.0), "{a} vs {b}");
    }
}

/// A small airbench on the MNIST subset with every part of the recipe on.
fn tiny_airbench(out: &Path) -> TrainConfig {
    let mut c = crate::quick_mnist(out);
    c.model = "airbench94".into();
    c.model_options = toml::toml! { widths = [8, 16, 16] };
    c.data.train_limit = Some(384);
    c.data.augment = Preset::Cifar.into();
    c.data.crop_padding = 2;
    c.data.pad_mode = PadMode::Reflect;
    c.data.flip = FlipMode::Alternating;
    c.optim.optimizer = OptimizerKind::Nesterov;
    c.optim.lr = 0.05;
    c.optim.momentum = Some(0.85);
    c.optim.weight_decay = 5e-4;
    c.optim.groups = vec![ParamGroupConfig {
        params: "*.bn.beta".into(),
        lr_factor: 8.0,
        weight_decay: Some(1e-5),
    }];
    c.schedule.kind = ScheduleKind::PiecewiseLinear;
    c.schedule.knots = vec![[0.0, 0.2], [0.23, 1.0], [1.0, 0.07]];
    c.train_loop.epochs = 3;
    c.train_loop.fractional_epochs = Some(2.5);
    c.train_loop.batch_size = 64;
    c.train_loop.drop_last = true;
    c.train_loop.label_smoothing = 0.2;
    c.train_loop.data_init_images = 128;
    c.train_loop.freeze = vec![FreezeAfter {
        params: "whiten.bias".into(),
        epochs: 1,
    }];
    c.train_loop.lookahead = Some(LookaheadConfig {
        every: 2,
        ..LookaheadConfig::default()
    });
    // Not airbench's, but a state of the loop the resume must carry as well.
    c.train_loop.ema_decay = Some(0.9);
    c.train_loop.ema_warmup = true;
    c.runtime.diagnostics = false;
    c
}

fn airbench_of(model: Model) -> ember_models::zoo::airbench::Airbench {
    match model {
        Model::Airbench(a) => a,
        other => panic!("not airbench: {other}"),
    }
}

fn values(t: Tensor<1>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Stopped after epoch 2 and that epoch's checkpoint removed (what a kill during epoch 2
/// leaves), then resumed from epoch 1, the run
/// repeats the uninterrupted run's every metric and ends with the same weights, to the bit:
/// the lookahead average, the freezing, the piecewise schedule's position, the alternating
/// flips and the fractional last epoch all continue where they were.
#[test]
fn an_airbench_run_resumes_bit_exactly_and_freezes_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let straight = tiny_airbench(&dir.path().join("straight"));
    let whole = trainer::Training::new(&straight).launch().unwrap();
    // 384 images, batches of 64 (none short): 6 steps an epoch, 15 in 2.5 epochs.
    assert_eq!(trainer::run_steps(&straight, 384, 1), (6, 15));
    assert_eq!(whole.records.len(), 3);
    assert!(whole.data_init_seconds > 0.0);

    let killed = tiny_airbench(&dir.path().join("killed"));
    let hook: ember_train::logger::EpochHook =
        std::sync::Arc::new(|r: &ember_train::logger::EpochRecord| r.epoch == 2);
    let stopped = trainer::Training::new(&killed)
        .with_hook(hook)
        .launch()
        .unwrap();
    assert!(stopped.stopped_early);
    // A kill during epoch 2 leaves epoch 1's checkpoint as the newest: remove epoch 2's.
    let run = RunDir::new(&killed.runtime.out);
    for kind in ["model", "optim", "scheduler"] {
        let _ = std::fs::remove_file(run.checkpoints().join(format!("{kind}-2.bpk")));
    }
    assert_eq!(run.latest_checkpoint(), Some(1));
    let resumed = trainer::Training::new(&killed)
        .resume(true)
        .launch()
        .unwrap();
    assert_eq!(resumed.records.len(), 3);
    for (a, b) in whole.records.iter().zip(&resumed.records) {
        assert_eq!(
            (
                a.epoch,
                a.train_loss,
                a.train_accuracy,
                a.val_loss,
                a.val_accuracy,
                a.lr
            ),
            (
                b.epoch,
                b.train_loss,
                b.train_accuracy,
                b.val_loss,
                b.val_accuracy,
                b.lr
            ),
        );
    }
    let device = Device::flex();
    let load = |out: &Path, which| {
        airbench_of(TrainedModel::load_from(out, which, &device).unwrap().model)
    };
    let (a, b) = (
        load(&straight.runtime.out, Weights::Final),
        load(&killed.runtime.out, Weights::Final),
    );
    assert_eq!(
        values(a.fc.weight.val().flatten(0, 1)),
        values(b.fc.weight.val().flatten(0, 1))
    );
    let bn = |m: &ember_models::zoo::airbench::Airbench| {
        values(m.block2.conv2.bn.as_ref().unwrap().running_mean.value())
    };
    assert_eq!(bn(&a), bn(&b), "batch-norm statistics too");
    assert_eq!(read_metrics(&run.metrics()).unwrap().len(), 3);
    // The model EMA resumes too, and is not the network.
    let (ea, eb) = (
        load(&straight.runtime.out, Weights::Ema),
        load(&killed.runtime.out, Weights::Ema),
    );
    let fc = |m: &ember_models::zoo::airbench::Airbench| values(m.fc.weight.val().flatten(0, 1));
    assert_eq!(fc(&ea), fc(&eb));
    assert_eq!(bn(&ea), bn(&eb));
    assert_ne!(fc(&ea), fc(&a), "the EMA lags the weights");

    // The whitening weights come from the data and never train; the bias trains in epoch 1
    // only (after it, lookahead pulls the frozen value to itself: it stays).
    let init = airbench_of(
        ember_models::ModelConfig::from_name("airbench94")
            .unwrap()
            .init(&device)
            .unwrap(),
    );
    let bias =
        |m: &ember_models::zoo::airbench::Airbench| values(m.whiten.bias.as_ref().unwrap().val());
    assert!(
        bias(&a).iter().any(|v| *v != 0.0),
        "the bias trained (it starts at 0)"
    );
    assert_eq!(bias(&init).iter().filter(|v| **v != 0.0).count(), 0);
    let w = |m: &ember_models::zoo::airbench::Airbench| values(m.whiten.weight.val().flatten(0, 3));
    assert_ne!(w(&a), w(&init), "whitening weights from the data");
}

/// Freezing after epoch 1: the frozen parameter is the same at the end of epochs 1 and 2,
/// while the others change.
#[test]
fn a_frozen_parameter_stops_after_its_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = tiny_airbench(&dir.path().join("frozen"));
    c.train_loop.lookahead = None;
    c.train_loop.ema_decay = None;
    c.train_loop.fractional_epochs = None;
    c.train_loop.epochs = 2;
    trainer::Training::new(&c).launch().unwrap();
    let device = Device::flex().autodiff();
    let build = || {
        let info = RunDir::new(&c.runtime.out).load_info().unwrap();
        info.model_config.unwrap().init(&device).unwrap()
    };
    let at = |epoch| {
        let path = RunDir::new(&c.runtime.out).model_checkpoint(epoch);
        airbench_of(
            trainer::load_weights(Classifier::new(build()), &path)
                .unwrap()
                .net,
        )
    };
    let (one, two) = (at(1), at(2));
    let bias =
        |m: &ember_models::zoo::airbench::Airbench| values(m.whiten.bias.as_ref().unwrap().val());
    assert_eq!(bias(&one), bias(&two), "frozen after epoch 1");
    assert!(bias(&one).iter().any(|v| *v != 0.0), "trained in epoch 1");
    assert_ne!(
        values(one.fc.weight.val().flatten(0, 1)),
        values(two.fc.weight.val().flatten(0, 1)),
        "the rest trains on"
    );
}

/// Lookahead's pull: `a <- d a + (1 - d) w`, the network set to `a`, running statistics
/// included; the average has parameter ids of its own. The model EMA blends the same way but
/// leaves the network where it is.
#[test]
fn lookahead_and_the_model_ema_average_weights_and_statistics() {
    let device = Device::flex().autodiff();
    device.seed(1);
    let net = ember_models::ModelConfig::from_name("lenet5_bn")
        .unwrap()
        .init(&device)
        .unwrap();
    let model = Classifier::new(net).with_average();
    // Trainable tensors only: running statistics and batch-norm flags keep their ids (no
    // gradient reaches them).
    let ids = |m: &Model| {
        ember_train::finetune::named_params(m)
            .into_iter()
            .filter(|p| !p.bn_flag && !p.name.contains("running"))
            .map(|p| p.id)
            .collect::<Vec<_>>()
    };
    let avg_ids = ids(model.average.as_ref().unwrap());
    assert!(ids(&model.net).iter().all(|i| !avg_ids.contains(i)));
    // Move the network away from the average: every float + 1.
    struct Plus;
    impl burn::module::ModuleMapper for Plus {
        fn map_float<const D: usize>(
            &mut self,
            p: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            p.map(|t| t + 1.0)
        }
    }
    let flat = |m: &Model| {
        struct All(Vec<f32>);
        impl burn::module::ModuleVisitor for All {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                self.0.extend(
                    p.val()
                        .into_data()
                        .convert::<f32>()
                        .try_to_vec::<f32>()
                        .unwrap(),
                );
            }
        }
        let mut v = All(Vec::new());
        m.visit(&mut v);
        v.0
    };
    let before = flat(&model.net);
    let mut moved = model;
    moved.net = moved.net.map(&mut Plus);
    let pulled = moved.lookahead_pull(0.75);
    let (net, avg) = (flat(&pulled.net), flat(pulled.average.as_ref().unwrap()));
    assert_eq!(net.len(), before.len());
    for ((n, a), b) in net.iter().zip(&avg).zip(&before) {
        let expected = 0.75 * b + 0.25 * (b + 1.0);
        assert!(
            (n - expected).abs() < 1e-5 && (a - expected).abs() < 1e-5,
            "{n} {a} {expected}"
        );
    }
    // The running statistics are among them (Burn visits them as float tensors): more values
    // than the trainable parameters.
    let params: usize = ember_train::finetune::count_trainable(&pulled.net).0;
    assert!(
        net.len() > params,
        "{} values, {params} parameters",
        net.len()
    );

    let model = Classifier::new(pulled.net).with_ema();
    let start = flat(&model.net);
    let mut moved = model;
    moved.net = moved.net.map(&mut Plus);
    let updated = moved.ema_update(0.75);
    let (net, ema) = (flat(&updated.net), flat(updated.ema.as_ref().unwrap()));
    for ((n, e), b) in net.iter().zip(&ema).zip(&start) {
        let expected = 0.75 * b + 0.25 * (b + 1.0);
        assert!((e - expected).abs() < 1e-5, "ema {e} vs {expected}");
        assert!((n - (b + 1.0)).abs() < 1e-5, "the network stays: {n}");
    }
    assert_eq!(
        flat(&updated.evaluated().net),
        ema,
        "validation sees the EMA"
    );
}

/// timm's `ModelEmaV3.get_decay`: the first update copies, then the decay, or with warm-up
/// `1 - (1 + t)^(-2/3)` capped by it.
#[test]
fn the_ema_decay_follows_timm() {
    let mut l = ember_train::config::LoopConfig {
        ema_decay: Some(0.999),
        ..Default::default()
    };
    assert_eq!(l.ema_decay_at(1), Some(0.0));
    assert_eq!(l.ema_decay_at(2), Some(0.999));
    l.ema_warmup = true;
    let near = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-4;
    assert!(near(l.ema_decay_at(2), 0.3700), "{:?}", l.ema_decay_at(2));
    assert!(near(l.ema_decay_at(11), 0.7978), "{:?}", l.ema_decay_at(11));
    assert_eq!(l.ema_decay_at(100_000_000), Some(0.999));
    l.ema_decay = None;
    assert_eq!(l.ema_decay_at(5), None);
}

/// The six views of airbench's TTA, by hand: 1/4 the image and its mirror, 1/8 each of the
/// image shifted by one pixel up-left and down-right (reflect padding) and their mirrors.
#[test]
fn flip_translate_tta_averages_six_views() {
    let device = Device::flex();
    device.seed(2);
    #[derive(Module, Debug)]
    struct Flat9 {
        lin: burn::nn::Linear,
    }
    impl Network for Flat9 {
        fn forward(&self, images: Tensor<4>) -> Tensor<2> {
            self.lin.forward(images.flatten::<2>(1, 3))
        }
    }
    let net = Flat9 {
        lin: burn::nn::LinearConfig::new(9, 2).init(&device),
    };
    let img: Vec<f32> = (0..9).map(|i| (i * i) as f32 * 0.1).collect();
    let at = |v: &[f32], r: usize, c: usize| v[r * 3 + c];
    // Reflect padding 1 of a 3x3 image is 5x5 with row/col -1 -> 1 and 3 -> 1.
    let reflect = |i: isize| if (0..=2).contains(&i) { i as usize } else { 1 };
    let shifted = |dr: isize| -> Vec<f32> {
        (0..3)
            .flat_map(|r| (0..3).map(move |c| (r as isize + dr, c as isize + dr)))
            .map(|(r, c)| at(&img, reflect(r), reflect(c)))
            .collect()
    };
    let mirror = |v: &[f32]| -> Vec<f32> {
        (0..3)
            .flat_map(|r| (0..3).map(move |c| at(v, r, 2 - c)))
            .collect()
    };
    let logits = |v: Vec<f32>| -> Vec<f32> {
        let x = Tensor::<4>::from_data(TensorData::new(v, [1, 1, 3, 3]), &device);
        net.forward(x).into_data().try_to_vec::<f32>().unwrap()
    };
    let (up_left, down_right) = (shifted(-1), shifted(1));
    let views = [
        (img.clone(), 0.25),
        (mirror(&img), 0.25),
        (up_left.clone(), 0.125),
        (mirror(&up_left), 0.125),
        (down_right.clone(), 0.125),
        (mirror(&down_right), 0.125),
    ];
    let mut expected = [0f32; 2];
    for (v, w) in views {
        for (e, l) in expected.iter_mut().zip(logits(v)) {
            *e += w * l;
        }
    }
    let x = Tensor::<4>::from_data(TensorData::new(img.clone(), [1, 1, 3, 3]), &device);
    let got: Vec<f32> = ember_train::eval::tta_logits(&net, x, Tta::FlipTranslate)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (g, e) in got.iter().zip(&expected) {
        assert!((g - e).abs() < 1e-5, "{got:?} vs {expected:?}");
    }
}

/// The recipe's new knobs refuse bad values before training.
#[test]
fn bad_recipe_options_fail_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let base = tiny_airbench(&dir.path().join("bad"));
    type Change = Box<dyn Fn(&mut TrainConfig)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|c: &mut TrainConfig| c.train_loop.epochs = 4),
            "needs `loop.epochs` = 3",
        ),
        (
            Box::new(|c: &mut TrainConfig| c.schedule.knots = vec![[0.0, 1.0]]),
            "schedule.knots",
        ),
        (
            Box::new(|c: &mut TrainConfig| c.schedule.knots = vec![[0.0, 1.0], [0.5, 1.0]]),
            "schedule.knots",
        ),
        (
            Box::new(|c: &mut TrainConfig| c.optim.groups[0].lr_factor = -1.0),
            "lr_factor",
        ),
        (
            Box::new(|c: &mut TrainConfig| c.optim.groups[0].params = "*.no_such".into()),
            "matches no parameter",
        ),
        (
            Box::new(|c: &mut TrainConfig| c.train_loop.freeze[0].params = "whiten.biass".into()),
            "matches no parameter",
        ),
        (
            Box::new(|c: &mut TrainConfig| c.train_loop.lookahead.as_mut().unwrap().every = 0),
            "lookahead.every",
        ),
    ];
    for (change, needle) in cases {
        let mut c = base.clone();
        change(&mut c);
        let err = trainer::Training::new(&c).launch().unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
        assert!(!c.runtime.out.join("checkpoint").exists() || needle.contains("matches"));
    }
}

/// `[[optim.groups]]`: the batch-norm biases (LeNet's `bn1`, `bn2`, ...) step at `lr_factor` times the rate with their
/// own decay, every other parameter at the schedule's rate with the optimizer's decay (one
/// plain SGD step, checked per value: `w - lr (g + wd w)`).
#[test]
fn a_parameter_group_steps_at_its_own_rate_and_decay() {
    use burn::module::{ModuleVisitor, Param, ParamId};
    use burn::optim::GradientsParams;
    let device = Device::flex().autodiff();
    device.seed(4);
    let net = ember_models::ModelConfig::from_name("lenet5_bn")
        .unwrap()
        .init(&device)
        .unwrap();
    let mut config = TrainConfig::default();
    config.optim.optimizer = OptimizerKind::Sgd;
    config.optim.lr = 0.1;
    config.optim.weight_decay = 0.01;
    config.optim.groups = vec![ParamGroupConfig {
        params: "bn*.beta".into(),
        lr_factor: 4.0,
        weight_decay: Some(0.0),
    }];
    let mut schedule =
        ember_train::schedule::module_schedule(&config, &net, 10, None, None).unwrap();
    let mut optim = ember_train::optim::build_for(&config, &net).unwrap();
    let x = Tensor::<4>::random([4, 1, 28, 28], burn::tensor::Distribution::Default, &device);
    let y = net.forward(x);
    let grads = GradientsParams::from_grads((y.clone() * y).sum().backward(), &net);

    struct Values<'a>(
        &'a GradientsParams,
        Vec<(ParamId, Vec<f32>, Option<Vec<f32>>)>,
    );
    impl ModuleVisitor for Values<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = |t: Tensor<D>| t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            let g = self.0.get::<D>(p.id).map(v);
            self.1.push((p.id, v(p.val()), g));
        }
    }
    let mut before = Values(&grads, Vec::new());
    net.visit(&mut before);
    let before = before.1;
    let names = ember_train::finetune::named_params(&net);
    let name_of = |id: ParamId| names.iter().find(|p| p.id == id).unwrap().name.clone();
    let stepped = optim.step(schedule.step(), net.clone(), grads);
    let none = GradientsParams::new();
    let mut after = Values(&none, Vec::new());
    stepped.visit(&mut after);
    let (mut in_group, mut others) = (0, 0);
    for ((id, w0, g), (_, w1, _)) in before.iter().zip(&after.1) {
        let Some(g) = g else { continue };
        let name = name_of(*id);
        let (lr, wd) = if name.starts_with("bn") && name.ends_with(".beta") {
            in_group += 1;
            (0.4, 0.0)
        } else {
            others += 1;
            (0.1, 0.01)
        };
        for ((a, b), g) in w0.iter().zip(w1).zip(g) {
            let expected = a - lr * (g + wd * a);
            assert!(
                (b - expected).abs() < 1e-5 * expected.abs().max(1.0),
                "{name}: {b} vs {expected}"
            );
        }
    }
    assert!(
        in_group >= 2 && others >= 4,
        "{in_group} group tensors, {others} others"
    );
}
