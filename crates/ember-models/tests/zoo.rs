//! Every model of the registry: canonical parameter counts, output shapes at two input sizes,
//! summaries that agree with the real forward pass, config round trips and clear errors.

use burn::module::Module;
use burn::prelude::*;
use ember_models::registry::{ModelConfig, SummaryOrModelError, entries};
use ember_models::summary::summarize;
use ember_models::zoo::lenet::LeNetConfig;
use ember_models::{InitScheme, ModelError, count_params};

fn device() -> Device {
    Device::flex()
}

/// torchvision's published parameter counts (1000 classes) and d2l's LeNet-5 (10 classes).
const CANONICAL_PARAMS: &[(&str, usize)] = &[
    ("lenet5", 61_706),
    ("alexnet", 61_100_840),
    ("vgg11", 132_863_336),
    ("vgg13", 133_047_848),
    ("vgg16", 138_357_544),
    ("vgg19", 143_667_240),
    ("vgg11_bn", 132_868_840),
    ("vgg16_bn", 138_365_992),
    ("googlenet", 6_624_904),
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("resnet101", 44_549_160),
    ("resnet152", 60_192_808),
    ("resnext50_32x4d", 25_028_904),
    ("densenet121", 7_978_856),
    // CIFAR stem, 10 classes: 11,689,512 - 9,408 (7x7 stem) + 1,728 (3x3 stem) - 513,000 + 5,130 (fc)
    ("resnet18_cifar", 11_173_962),
    // Myrtle.ai's DAWNBench ResNet-9: convolutions without bias, BN, fc 512 -> 10 without bias.
    ("resnet9", 6_573_120),
    // airbench94: whitening 2x2x3x24 + 24, convs 24-64-64-256-256-256-256 (3x3, no bias),
    // six batch norms of 64, 64, 256 x 4 (scale and shift), fc 256 -> 10 without bias.
    ("airbench94", 1_972_792),
    // d2l's RegNetX-32 (1x64x64, 10 classes) with bias-free convolutions, counted by PyTorch.
    ("regnetx32", 177_322),
    ("softmax_regression", 7_850),
    ("mlp", 203_530),
];

#[test]
fn parameter_counts_equal_the_canonical_ones() {
    let d = device();
    for &(name, expected) in CANONICAL_PARAMS {
        let config = ModelConfig::from_name(name).unwrap();
        let model = config.init(&d).unwrap();
        assert_eq!(count_params(&model), expected, "{name}: count_params");
        let summary = config.summary(name, config.canonical_input(), &d).unwrap();
        assert_eq!(summary.total_params, expected, "{name}: summary total");
    }
}

/// Published multiply-accumulates (torchvision's "GFLOPS" column counts MACs of conv and
/// linear layers) for a 224x224 image, in GMACs rounded to two decimals.
#[test]
fn multiply_accumulates_match_published_figures() {
    let d = device();
    for (name, gmacs) in [
        ("alexnet", 0.71),
        ("vgg16", 15.47),
        ("googlenet", 1.50),
        ("resnet18", 1.81),
        ("resnet50", 4.09),
        ("resnext50_32x4d", 4.23),
        ("densenet121", 2.83),
    ] {
        let config = ModelConfig::from_name(name).unwrap();
        let s = config.summary(name, [3, 224, 224], &d).unwrap();
        let ours = s.total_macs as f64 / 1e9;
        assert!(
            (ours - gmacs).abs() < 0.006,
            "{name}: {ours:.3} GMACs, published {gmacs}"
        );
    }
    // airbench94 at 32x32: 118.1 M (Jordan 2024's count, worked out layer by layer).
    let config = ModelConfig::from_name("airbench94").unwrap();
    let s = config.summary("airbench94", [3, 32, 32], &d).unwrap();
    assert_eq!(s.total_macs, 118_147_360);
}

/// A second input size each architecture accepts.
fn other_input(canonical: [usize; 3]) -> [usize; 3] {
    match canonical {
        [c, 28, 28] => [c, 32, 32],
        [c, 32, 32] => [c, 40, 40],
        [c, _, _] => [c, 160, 128],
    }
}

#[test]
fn every_model_gives_logits_of_the_summarised_shape_at_two_input_sizes() {
    let d = device();
    for entry in entries() {
        let canonical = entry.config.canonical_input();
        for input in [canonical, other_input(canonical)] {
            let config = entry.config.clone().with_input(input).with_num_classes(7);
            let model = config.init(&d).unwrap();
            let summary = summarize(&model, entry.name, input).unwrap();
            assert_eq!(summary.output_shape(), &[7], "{} at {input:?}", entry.name);
            assert_eq!(summary.total_params, count_params(&model), "{}", entry.name);
            let [c, h, w] = input;
            let logits = model.forward(Tensor::random(
                [2, c, h, w],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &d,
            ));
            assert_eq!(logits.dims(), [2, 7], "{} at {input:?}", entry.name);
            let values = logits.into_data().try_to_vec::<f32>().unwrap();
            assert!(
                values.iter().all(|v| v.is_finite()),
                "{}: non-finite logits",
                entry.name
            );
        }
    }
}

fn row<'a>(s: &'a ember_models::Summary, name: &str) -> &'a ember_models::LayerRow {
    s.layers.iter().find(|r| r.name == name).unwrap_or_else(|| {
        panic!(
            "no row {name} in {:?}",
            s.layers.iter().map(|r| &r.name).collect::<Vec<_>>()
        )
    })
}

#[test]
fn summary_rows_follow_the_textbook_arithmetic() {
    let d = device();
    let lenet = ModelConfig::from_name("lenet5").unwrap();
    let s = lenet.summary("lenet5", [1, 28, 28], &d).unwrap();
    // conv 6@5x5 p2: 28 -> 28, params (5*5*1+1)*6, RF 5
    let r = row(&s, "conv1.conv");
    assert_eq!(
        (r.output_shape.clone(), r.params, r.receptive_field, r.jump),
        (vec![6, 28, 28], 156, 5, 1)
    );
    assert_eq!(r.macs, 28 * 28 * 6 * 25);
    let r = row(&s, "pool1");
    assert_eq!(
        (r.output_shape.clone(), r.receptive_field, r.jump),
        (vec![6, 14, 14], 6, 2)
    );
    // conv 16@5x5: 14 -> 10, params (5*5*6+1)*16, RF 6 + 4*2
    let r = row(&s, "conv2.conv");
    assert_eq!(
        (r.output_shape.clone(), r.params, r.receptive_field),
        (vec![16, 10, 10], 2416, 14)
    );
    let r = row(&s, "pool2");
    assert_eq!(
        (r.output_shape.clone(), r.receptive_field, r.jump),
        (vec![16, 5, 5], 16, 4)
    );
    assert_eq!(row(&s, "fc1").params, 400 * 120 + 120);

    let alexnet = ModelConfig::from_name("alexnet").unwrap();
    let s = alexnet.summary("alexnet", [3, 224, 224], &d).unwrap();
    assert_eq!(row(&s, "conv1").output_shape, vec![64, 55, 55]);
    assert_eq!(row(&s, "conv1").receptive_field, 11);
    assert_eq!(row(&s, "conv2").output_shape, vec![192, 27, 27]);
    assert_eq!(row(&s, "avgpool").output_shape, vec![256, 6, 6]);

    let g = ModelConfig::from_name("googlenet").unwrap();
    let s = g.summary("googlenet", [3, 224, 224], &d).unwrap();
    assert_eq!(
        row(&s, "inception.0.concat").output_shape,
        vec![256, 28, 28]
    );
    assert_eq!(row(&s, "inception.8.concat").output_shape, vec![1024, 7, 7]);

    let r50 = ModelConfig::from_name("resnet50").unwrap();
    let s = r50.summary("resnet50", [3, 224, 224], &d).unwrap();
    assert_eq!(row(&s, "layer1.0.add").output_shape, vec![256, 56, 56]);
    assert_eq!(row(&s, "layer4.2.add").output_shape, vec![2048, 7, 7]);
    // A 1x1 projection shortcut with stride 2 opens each later stage.
    assert_eq!(row(&s, "layer2.0.downsample.conv").params, 256 * 512);
    let dense = ModelConfig::from_name("densenet121").unwrap();
    let s = dense.summary("densenet121", [3, 224, 224], &d).unwrap();
    assert_eq!(
        row(&s, "blocks.0.layers.5.concat").output_shape,
        vec![64 + 6 * 32, 56, 56]
    );
    assert_eq!(
        row(&s, "transitions.0.pool").output_shape,
        vec![128, 28, 28]
    );
}

#[test]
fn an_input_too_small_names_the_layer_where_the_shape_breaks() {
    let d = device();
    let lenet = ModelConfig::from_name("lenet5").unwrap();
    let err = lenet.summary("lenet5", [1, 8, 8], &d).unwrap_err();
    let SummaryOrModelError::Shape(e) = err else {
        panic!("expected a shape error, got {err:?}")
    };
    assert_eq!(e.layer, "conv2.conv", "{e}");
    assert!(e.to_string().contains("smaller than the 5x5 window"), "{e}");

    let alexnet = ModelConfig::from_name("alexnet").unwrap();
    let err = alexnet.summary("alexnet", [3, 32, 32], &d).unwrap_err();
    assert!(err.to_string().contains("layer `pool3`"), "{err}");

    // A LeNet built for 28x28 fed 32x32 images breaks at its first dense layer.
    let model = LeNetConfig::new().init(&d);
    let e = summarize(&model, "lenet5", [1, 32, 32]).unwrap_err();
    assert_eq!(e.layer, "fc1");
    assert!(
        e.reason
            .contains("expects 400 input features but receives 576"),
        "{e}"
    );
    // ... and with three channels, at its first convolution.
    let e = summarize(&model, "lenet5", [3, 28, 28]).unwrap_err();
    assert_eq!(e.layer, "conv1.conv");
    assert!(
        e.reason.contains("expects 1 input channels but receives 3"),
        "{e}"
    );
}

#[test]
fn unknown_names_and_bad_configs_are_errors_not_panics() {
    let err = ModelConfig::from_name("resnet-18").unwrap_err();
    assert!(err.to_string().contains("did you mean `resnet18`"), "{err}");
    assert!(matches!(
        ModelConfig::from_name("transformer"),
        Err(ModelError::UnknownModel { .. })
    ));

    let bad = ModelConfig::from_name("resnext50_32x4d").unwrap();
    let ModelConfig::Resnet(c) = bad else {
        unreachable!()
    };
    let bad = ModelConfig::Resnet(c.clone().with_width_per_group(0));
    assert!(matches!(
        bad.init(&device()),
        Err(ModelError::InvalidConfig(_))
    ));
    // Any cardinality is fine for bottlenecks: their width is a multiple of the groups.
    assert!(
        ModelConfig::Resnet(c.with_groups(3))
            .init(&device())
            .is_ok()
    );
    let basic = ModelConfig::from_name("resnet18").unwrap();
    let ModelConfig::Resnet(c) = basic else {
        unreachable!()
    };
    assert!(
        ModelConfig::Resnet(c.with_groups(2))
            .init(&device())
            .is_err()
    );
    let bad = ModelConfig::from_name("mlp").unwrap().with_num_classes(0);
    assert!(bad.init(&device()).is_err());
}

#[test]
fn configs_round_trip_through_json_and_toml() {
    for entry in entries() {
        let json = serde_json::to_string(&entry.config).unwrap();
        let back: ModelConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            json,
            "{}",
            entry.name
        );
        let text = toml::to_string(&entry.config).unwrap();
        let back: ModelConfig = toml::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_string(&back).unwrap(),
            json,
            "{} via TOML",
            entry.name
        );
    }
    // A hand-written file only needs the knobs it changes.
    let c: ModelConfig =
        toml::from_str("arch = \"resnet\"\nstem = \"cifar\"\nnum_classes = 100\n").unwrap();
    assert_eq!(c.canonical_input(), [3, 32, 32]);
    assert_eq!(c.num_classes(), 100);
    let err = toml::from_str::<ModelConfig>("arch = \"transformer\"\n").unwrap_err();
    assert!(
        err.to_string().contains("unknown arch `transformer`"),
        "{err}"
    );
    let err = toml::from_str::<ModelConfig>("arch = \"vgg\"\nbatch_norm = 3\n").unwrap_err();
    assert!(
        err.to_string().contains("batch_norm") || err.to_string().contains("boolean"),
        "{err}"
    );
}

#[test]
fn every_family_is_read_back_under_its_own_arch_tag() {
    // The `arch` of a family (Family::ARCH) must be the serde tag of its ModelConfig variant,
    // or a config file written by one run could not be read by the next.
    let mut archs = ModelConfig::ARCHS.to_vec();
    archs.sort();
    archs.dedup();
    assert_eq!(
        archs.len(),
        ModelConfig::ARCHS.len(),
        "{:?}",
        ModelConfig::ARCHS
    );
    for &arch in ModelConfig::ARCHS {
        let defaults = ModelConfig::defaults_of(arch).expect("a family's defaults");
        let json = serde_json::to_value(&defaults).unwrap();
        assert_eq!(json["arch"], arch, "{json}");
        let minimal: ModelConfig = toml::from_str(&format!("arch = \"{arch}\"\n")).unwrap();
        assert_eq!(serde_json::to_value(&minimal).unwrap(), json);
    }
    assert!(ModelConfig::defaults_of("transformer").is_none());
}

#[test]
fn registered_names_are_unique_and_every_variant_is_valid() {
    let names = ember_models::registry::names();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        names.len(),
        "a name is registered twice: {names:?}"
    );
    for entry in entries() {
        entry
            .config
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", entry.name));
        // Every family says where its head and stages are; a stage is never the head.
        let head = entry.config.head();
        assert!(!head.is_empty(), "{}", entry.name);
        for stage in entry.config.stages() {
            assert!(!stage.is_empty(), "{}", entry.name);
            for prefix in stage {
                assert!(!head.contains(&prefix), "{}: {prefix}", entry.name);
            }
        }
    }
}

#[test]
fn burn_num_params_also_counts_running_statistics() {
    // Why count_params exists: BN-LeNet has 2 x (6 + 16 + 120 + 84) running mean/var values.
    let model = ModelConfig::from_name("lenet5_bn")
        .unwrap()
        .init(&device())
        .unwrap();
    assert_eq!(model.num_params() - count_params(&model), 452);
}

/// Sample standard deviation of a tensor's elements.
fn std_of(t: Tensor<4>) -> f64 {
    let v = t.into_data().try_to_vec::<f32>().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
}

#[test]
fn initialisation_follows_the_activation() {
    let d = device();
    d.seed(7);
    // ReLU network: Kaiming, std sqrt(2 / fan_in); fan_in of conv2 = 6 * 5 * 5.
    let modern = LeNetConfig::modern().with_in_channels(1).init(&d);
    let std = std_of(modern.conv2.conv.weight.val());
    let kaiming = (2.0f64 / 150.0).sqrt();
    assert!(
        (std / kaiming - 1.0).abs() < 0.1,
        "kaiming std {std} vs {kaiming}"
    );
    let bias = modern.conv2.conv.bias.as_ref().unwrap().val();
    assert_eq!(
        bias.abs().sum().into_scalar::<f32>(),
        0.0,
        "biases start at zero"
    );

    // Sigmoid network: Xavier uniform, std = bound / sqrt(3), bound = sqrt(6 / (fan_in + fan_out)).
    let classic = LeNetConfig::new().init(&d);
    let std = std_of(classic.conv2.conv.weight.val());
    let xavier = (6.0f64 / (150.0 + 16.0 * 25.0)).sqrt() / 3f64.sqrt();
    assert!(
        (std / xavier - 1.0).abs() < 0.1,
        "xavier std {std} vs {xavier}"
    );

    // Explicit choice overrides the activation.
    let torch = LeNetConfig::modern().with_init(InitScheme::Torch).init(&d);
    let std = std_of(torch.conv2.conv.weight.val());
    let default = 1.0 / 150f64.sqrt() / 3f64.sqrt();
    assert!(
        (std / default - 1.0).abs() < 0.1,
        "torch std {std} vs {default}"
    );
}

#[test]
fn resnets_initialise_as_torchvision_does() {
    use ember_models::registry::Model;
    use ember_models::zoo::resnet::ResidualBlock;
    let d = device();
    d.seed(3);
    let config = ModelConfig::from_name("resnet18_cifar").unwrap();
    let Model::ResNet(net) = config.init(&d).unwrap() else {
        panic!("resnet18_cifar is a ResNet")
    };
    let ResidualBlock::Basic(block) = &net.layer1[0] else {
        panic!("resnet18 has basic blocks")
    };
    // Convolutions: Kaiming normal, fan-out = C_out * 3 * 3 = 576.
    let std = std_of(block.conv1.conv.weight.val());
    let fan_out = (2.0f64 / 576.0).sqrt();
    assert!(
        (std / fan_out - 1.0).abs() < 0.05,
        "conv std {std} vs {fan_out}"
    );
    // The 1x1 projection of layer2: fan-out 128.
    let ResidualBlock::Basic(down) = &net.layer2[0] else {
        panic!("basic")
    };
    let proj = down.downsample.as_ref().expect("projection shortcut");
    let std = std_of(proj.conv.weight.val());
    assert!(
        (std / (2.0f64 / 128.0).sqrt() - 1.0).abs() < 0.05,
        "1x1 std {std}"
    );
    // The classifier: PyTorch's default, U(-1/sqrt(512), 1/sqrt(512)), std 1/sqrt(3 * 512).
    let w = net.fc.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let bound = 1.0 / 512f64.sqrt();
    assert!(w.iter().all(|&v| (v as f64).abs() <= bound + 1e-7));
    let n = w.len() as f64;
    let std = (w.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n).sqrt();
    assert!(
        (std / (bound / 3f64.sqrt()) - 1.0).abs() < 0.05,
        "fc std {std}"
    );
    // Every batch norm starts at gamma 1, unless zero_init_residual zeroes each branch's last.
    let gamma = |b: &ResidualBlock| match b {
        ResidualBlock::Basic(b) => b.conv2.bn.as_ref().unwrap().gamma.val(),
        ResidualBlock::Bottleneck(b) => b.conv3.bn.as_ref().unwrap().gamma.val(),
    };
    assert_eq!(gamma(&net.layer3[1]).sum().into_scalar::<f32>(), 256.0);
    let ModelConfig::Resnet(rc) = config else {
        panic!()
    };
    let Model::ResNet(zeroed) = ModelConfig::Resnet(rc.with_zero_init_residual(true))
        .init(&d)
        .unwrap()
    else {
        panic!()
    };
    for block in zeroed.layer1.iter().chain(&zeroed.layer4) {
        assert_eq!(gamma(block).abs().sum().into_scalar::<f32>(), 0.0);
    }
    let ResidualBlock::Basic(first) = &zeroed.layer1[0] else {
        panic!()
    };
    let g1 = first.conv1.bn.as_ref().unwrap().gamma.val();
    assert_eq!(
        g1.sum().into_scalar::<f32>(),
        64.0,
        "only the branch's last BN is zeroed"
    );
}

mod airbench {
    use super::device;
    use burn::prelude::*;
    use burn::tensor::Distribution;
    use ember_models::init::{identity_init, whitening_filters};
    use ember_models::zoo::airbench::AirbenchConfig;

    #[test]
    fn identity_init_passes_the_first_channels_through() {
        let d = device();
        let conv = burn::nn::conv::Conv2dConfig::new([4, 6], [3, 3])
            .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(false)
            .init(&d);
        let conv = identity_init(conv);
        let x = Tensor::<4>::random([2, 4, 5, 5], Distribution::Normal(0.0, 1.0), &d);
        let y = conv.forward(x.clone());
        let passed = y.clone().slice([0..2, 0..4]);
        let diff = (passed - x).abs().max().into_scalar::<f32>();
        assert!(
            diff < 1e-6,
            "first 4 output channels equal the input: {diff}"
        );
        // The other two filters keep their random initialisation.
        let rest = conv
            .weight
            .val()
            .slice(4..6)
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert!(rest > 0.1, "filters 4 and 5 are random, not zero: {rest}");
    }

    #[test]
    fn whitening_filters_decorrelate_the_patches() {
        let d = device();
        d.seed(11);
        // Strongly correlated channels: every channel is a shared signal plus a little noise.
        let shared = Tensor::<4>::random([64, 1, 12, 12], Distribution::Normal(0.0, 1.0), &d);
        let noise = Tensor::<4>::random([64, 3, 12, 12], Distribution::Normal(0.0, 0.1), &d);
        let images = shared.repeat_dim(1, 3) + noise;
        let filters = whitening_filters(images.clone(), 2, 1e-6);
        assert_eq!(filters.dims(), [24, 3, 2, 2]);
        let f = filters.clone().slice(0..12);
        let negated = filters.slice(12..24);
        let sum = (f.clone() + negated).abs().max().into_scalar::<f32>();
        assert!(sum < 1e-6, "the second half negates the first");
        // The first twelve filters' outputs have (nearly) the identity as second moment.
        let out = burn::tensor::module::conv2d(
            images,
            f,
            None,
            burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        let [n, c, h, w] = out.dims();
        let rows = out.swap_dims(1, 3).reshape([n * h * w, c]);
        let moment = rows.clone().transpose().matmul(rows) / (n * h * w) as f64;
        let eye = Tensor::<2>::eye(12, &d);
        let err = (moment - eye).abs().max().into_scalar::<f32>();
        assert!(err < 2e-3, "whitened patches: max |Sigma - I| = {err}");
    }

    #[test]
    fn batch_norm_scales_are_frozen_and_the_whitening_weight_too() {
        let d = device().autodiff();
        let net = AirbenchConfig::new().init(&d);
        assert!(!net.block1.conv1.bn.gamma.val().is_require_grad());
        assert!(
            !net.block3
                .conv2
                .bn
                .as_ref()
                .unwrap()
                .gamma
                .val()
                .is_require_grad()
        );
        assert!(net.block1.conv1.bn.beta.val().is_require_grad());
        assert!(!net.whiten.weight.val().is_require_grad());
        assert!(net.whiten.bias.as_ref().unwrap().val().is_require_grad());
        assert_eq!(net.block2.conv1.bn.momentum, 0.4);
        assert_eq!(net.block2.conv1.bn.epsilon, 1e-12);
        // A backward pass gives the shifts a gradient and the frozen scales none.
        let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let grads = net.forward(x).sum().backward();
        assert!(net.block1.conv1.bn.beta.val().grad(&grads).is_some());
        assert!(net.block1.conv1.bn.gamma.val().grad(&grads).is_none());
        assert!(net.whiten.weight.val().grad(&grads).is_none());
    }

    #[test]
    fn init_whitening_sets_the_weights_from_the_images_and_keeps_them_frozen() {
        let d = device().autodiff();
        d.seed(5);
        let net = AirbenchConfig::new().init(&d);
        let images = Tensor::<4>::random([16, 3, 32, 32], Distribution::Normal(0.0, 1.0), &d);
        let expected = whitening_filters(images.clone(), 2, 5e-4);
        let net = net.init_whitening(images, 5e-4);
        let diff = (net.whiten.weight.val() - expected)
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-6, "{diff}");
        assert!(!net.whiten.weight.val().is_require_grad());
    }

    #[test]
    fn gelu_is_the_exact_erf_form() {
        // x * Phi(x): Phi(1) = 0.841345, Phi(-1) = 0.158655; the tanh approximation gives
        // 0.841192 at 1, which this tolerance rejects.
        let x = Tensor::<1>::from_floats([1.0, -1.0, 0.0, 3.0], &device());
        let y = ember_models::Activation::Gelu
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let expected = [0.841_345, -0.158_655, 0.0, 2.995_95];
        for (a, b) in y.iter().zip(expected) {
            assert!((a - b).abs() < 2e-5, "{y:?}");
        }
    }

    #[test]
    fn too_small_images_are_a_clear_error() {
        use ember_models::ModelConfig;
        let config = ModelConfig::from_name("airbench94")
            .unwrap()
            .with_input([3, 8, 8]);
        let err = config.init(&device()).unwrap_err().to_string();
        assert!(err.contains("at least 9x9"), "{err}");
    }
}
