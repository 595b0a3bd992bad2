//! The numbers behind the pictures: receptive-field crops, maximally activating patches,
//! gradient norms and activation statistics.

use burn::data::dataset::{Dataset, InMemDataset};
use burn::tensor::{Device, Tensor, TensorData};
use ember_data::{Image, ImageItem};
use ember_models::summary::summarize;
use ember_models::zoo::lenet::LeNetConfig;
use ember_models::zoo::mlp::MlpConfig;
use ember_models::{Model, Taps};
use ember_train::Backend;
use ember_train::diagnostics::{activation_stats, gradient_norms};
use ember_train::viz::{layer_output, top_patches};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn device() -> Device {
    Backend::Flex.device().unwrap()
}

fn lenet(device: &Device) -> Model {
    device.seed(7);
    Model::LeNet(LeNetConfig::modern().init(device))
}

fn random_image(rng: &mut impl Rng) -> Vec<f32> {
    (0..28 * 28).map(|_| rng.random::<f32>()).collect()
}

/// Output of `layer` at channel `c`, unit `(y, x)`, for one 28x28 image.
fn unit(model: &Model, img: &[f32], layer: &str, c: usize, y: usize, x: usize) -> f32 {
    let d = device();
    let t = Tensor::<4>::from_data(TensorData::new(img.to_vec(), [1, 1, 28, 28]), &d);
    let out = layer_output(model, t, layer).unwrap();
    let [_, _, h, w] = out.dims();
    let v = out
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    v[(c * h + y) * w + x]
}

#[test]
fn the_receptive_field_is_exactly_what_a_unit_sees() {
    let d = device();
    let model = lenet(&d);
    let summary = summarize(&model, "lenet5_modern", [1, 28, 28]).unwrap();
    // conv 5x5 p2 -> pool 2/2 -> conv 5x5: r = 1 + 4 = 5, + 1*1 = 6, + 4*2 = 14; jump 2;
    // the padding of 2 moves the first field to start at -2.
    let row = summary.row_of("conv2").unwrap();
    assert_eq!(row.name, "conv2.conv");
    assert_eq!(
        (row.receptive_field, row.jump, row.receptive_field_start),
        (14, 2, -2)
    );
    assert_eq!(row.field_of(3, 4, 28, 28), [4, 6, 18, 20]);
    assert_eq!(
        row.field_of(0, 0, 28, 28),
        [0, 0, 12, 12],
        "clipped to the image"
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let img = random_image(&mut rng);
    let (y, x) = (3, 4);
    // A channel this unit responds to (after the ReLU it may be zero).
    let c = (0..16)
        .find(|&c| unit(&model, &img, "conv2", c, y, x) > 0.0)
        .expect("some channel fires");
    let base = unit(&model, &img, "conv2", c, y, x);
    let [top, left, bottom, right] = row.field_of(y, x, 28, 28);
    let inside = |r: usize, q: usize| (top..bottom).contains(&r) && (left..right).contains(&q);

    // Every pixel outside the field changed: the unit does not move.
    let mut outside = img.clone();
    for r in 0..28 {
        for q in 0..28 {
            if !inside(r, q) {
                outside[r * 28 + q] = rng.random::<f32>() * 5.0;
            }
        }
    }
    assert_eq!(unit(&model, &outside, "conv2", c, y, x), base);

    // Each edge row and column of the field matters: the field is not too large.
    let edges: [Box<dyn Fn(usize, usize) -> bool>; 4] = [
        Box::new(|r, _| r == top),
        Box::new(|r, _| r == bottom - 1),
        Box::new(|_, q| q == left),
        Box::new(|_, q| q == right - 1),
    ];
    for (i, edge) in edges.iter().enumerate() {
        let mut changed = img.clone();
        for r in top..bottom {
            for q in left..right {
                if edge(r, q) {
                    changed[r * 28 + q] = 3.0 + rng.random::<f32>();
                }
            }
        }
        assert_ne!(
            unit(&model, &changed, "conv2", c, y, x),
            base,
            "edge {i} of the field"
        );
    }
}

#[test]
fn the_top_patch_really_yields_the_top_activation() {
    let d = device();
    let model = lenet(&d);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    // More than one loader batch (128), so that image indices must carry across batches.
    let images: Vec<Vec<f32>> = (0..150).map(|_| random_image(&mut rng)).collect();
    let items: Vec<ImageItem> = images
        .iter()
        .map(|data| ImageItem {
            image: Image::from_vec(1, 28, 28, data.clone()).unwrap(),
            label: 0,
        })
        .collect();
    let ds: Arc<dyn Dataset<ImageItem>> = Arc::new(InMemDataset::new(items));
    let (channels, k) = (3, 4);
    let hits = top_patches(&model, ds, &[], "conv2", channels, k, &d).unwrap();
    assert_eq!(hits.len(), channels);

    // Brute force, one image at a time: each image's strongest unit per channel.
    for (c, list) in hits.iter().enumerate() {
        let mut best: Vec<(f32, usize)> = images
            .iter()
            .enumerate()
            .map(|(i, img)| {
                let t = Tensor::<4>::from_data(TensorData::new(img.clone(), [1, 1, 28, 28]), &d);
                let out = layer_output(&model, t, "conv2").unwrap().narrow(1, c, 1);
                (out.max().into_scalar(), i)
            })
            .collect();
        best.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        assert_eq!(list.len(), k);
        for (hit, (value, index)) in list.iter().zip(&best) {
            assert_eq!(hit.channel, c);
            assert_eq!(hit.index, *index, "channel {c}: {list:?}");
            assert!((hit.value - value).abs() < 1e-5, "{} vs {value}", hit.value);
            // The position is where that value is.
            let at = unit(&model, &images[hit.index], "conv2", c, hit.y, hit.x);
            assert!((at - hit.value).abs() < 1e-5);
        }
    }
}

#[test]
fn gradient_norms_match_a_manual_computation() {
    // Softmax regression on 2x2 images, 3 classes: logits = x W + b, L = mean CE.
    // dL/dlogits = (softmax - onehot) / N, dW = x^T dlogits, db = sum_n dlogits.
    let d = device().autodiff();
    d.seed(3);
    let model = Model::Mlp(
        MlpConfig::new()
            .with_input_size([2, 2])
            .with_num_classes(3)
            .with_hidden(vec![])
            .init(&d),
    );
    let x: Vec<f32> = vec![
        0.5, -1.0, 2.0, 0.0, //
        1.5, 0.3, -0.7, 1.0, //
        -0.2, 0.8, 0.1, -1.5, //
        0.9, 0.9, -0.4, 0.6,
    ];
    let targets = [2i64, 0, 1, 2];
    let images = Tensor::<4>::from_data(TensorData::new(x.clone(), [4, 1, 2, 2]), &d);
    let t = Tensor::from_data(TensorData::new(targets.to_vec(), [4]), &d);
    let logits = model.forward(images);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&d)
        .forward(logits, t);
    let grads = loss.backward();
    let norms = gradient_norms(&model, &grads).unwrap();
    assert_eq!(norms.len(), 1);
    assert_eq!(norms[0].layer, "output");

    let Model::Mlp(mlp) = &model else {
        unreachable!()
    };
    let w: Vec<f64> = mlp
        .output
        .weight
        .val()
        .into_data()
        .convert::<f64>()
        .try_to_vec()
        .unwrap();
    let b: Vec<f64> = mlp
        .output
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .convert::<f64>()
        .try_to_vec()
        .unwrap();
    let (mut g2, mut w2) = (0.0f64, 0.0f64);
    let mut dw = [[0.0f64; 3]; 4];
    let mut db = [0.0f64; 3];
    for n in 0..4 {
        let xn: Vec<f64> = x[n * 4..n * 4 + 4].iter().map(|&v| v as f64).collect();
        let z: Vec<f64> = (0..3)
            .map(|k| b[k] + (0..4).map(|i| xn[i] * w[i * 3 + k]).sum::<f64>())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        for k in 0..3 {
            let dz = (e[k] / s - if targets[n] as usize == k { 1.0 } else { 0.0 }) / 4.0;
            db[k] += dz;
            for i in 0..4 {
                dw[i][k] += xn[i] * dz;
            }
        }
    }
    for row in dw {
        g2 += row.iter().map(|v| v * v).sum::<f64>();
    }
    g2 += db.iter().map(|v| v * v).sum::<f64>();
    w2 += w.iter().chain(&b).map(|v| v * v).sum::<f64>();
    assert!(
        (norms[0].grad_norm - g2.sqrt()).abs() < 1e-5,
        "{} vs {}",
        norms[0].grad_norm,
        g2.sqrt()
    );
    assert!((norms[0].weight_norm - w2.sqrt()).abs() < 1e-5);
}

#[test]
fn activation_statistics_match_a_manual_computation() {
    let d = device();
    let v = vec![0.0f32, 0.0, 1.0, 3.0, 0.0, 2.0, 4.0, 6.0];
    let t = Tensor::<4>::from_data(TensorData::new(v.clone(), [2, 2, 2, 1]), &d);
    let stats = activation_stats(&[("a".to_string(), t)]).unwrap();
    let mean = 2.0;
    let var = v.iter().map(|x| (*x as f64 - mean).powi(2)).sum::<f64>() / 8.0;
    assert_eq!(stats[0].layer, "a");
    assert!((stats[0].mean - mean).abs() < 1e-6);
    assert!((stats[0].std - var.sqrt()).abs() < 1e-6);
    assert_eq!(stats[0].zero_fraction, 3.0 / 8.0);
}

#[test]
fn every_zoo_tap_has_a_summary_row_and_the_right_shape() {
    // The names features/patches accept are the summary's, and the recorded output has the
    // shape the summary reports.
    let d = device();
    for (name, input) in [
        ("lenet5_modern", [1, 28, 28]),
        ("resnet18_cifar", [3, 32, 32]),
        ("vgg11", [3, 32, 32]),
        ("nin", [1, 96, 96]),
        ("mlp", [1, 28, 28]),
        ("alexnet", [3, 64, 64]),
        ("googlenet", [3, 96, 96]),
        ("densenet121_cifar", [3, 32, 32]),
    ] {
        let config = ember_models::ModelConfig::from_name(name)
            .unwrap()
            .with_input(input);
        let model = config.init(&d).unwrap();
        let summary = summarize(&model, name, input).unwrap_or_else(|e| panic!("{name}: {e}"));
        let [c, h, w] = input;
        let mut taps = Taps::all();
        model.forward_tapped(Tensor::zeros([2, c, h, w], &d), &mut taps);
        assert!(!taps.recorded().is_empty(), "{name} records its layers");
        for (tap, out) in taps.recorded() {
            let row = summary
                .row_of(tap)
                .unwrap_or_else(|| panic!("{name}: no summary row for tap {tap}"));
            let dims = out.dims();
            let mut shape = row.output_shape.clone();
            shape.resize(3, 1);
            assert_eq!(dims[0], 2, "{name} {tap}");
            assert_eq!(dims[1..], shape[..], "{name} {tap}");
        }
    }
}
