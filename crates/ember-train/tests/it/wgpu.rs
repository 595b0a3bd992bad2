//! A training step on wgpu matches the CPU backend: same loss, same gradients.
//!
//! CI runs it on Mesa's lavapipe (software Vulkan); on a machine with a GPU it runs there.
//! Compiled only with `--features wgpu`.
#![cfg(feature = "wgpu")]

use burn::data::dataset::Dataset;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use ember_data::Split;
use ember_data::loader::ImageBatch;
use ember_data::mnist::{MnistDataset, MnistVariant};
use ember_models::{Model, ModelConfig};
use ember_train::Backend;
use ember_train::classifier::Classifier;

struct Collect<'a> {
    grads: &'a GradientsParams,
    out: Vec<Vec<f32>>,
}

impl ModuleVisitor for Collect<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            self.out
                .push(g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap());
        }
    }
}

fn batch(device: &Device) -> ImageBatch {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset");
    let ds = MnistDataset::load(&dir, MnistVariant::Digits, Split::Train).unwrap();
    let n = 16;
    let mut data = Vec::new();
    let mut targets = Vec::new();
    for i in 0..n {
        let item = ds.get(i).unwrap();
        data.extend(item.image.data.iter().map(|v| (v - 0.1307) / 0.3081));
        targets.push(item.label as i64);
    }
    ImageBatch {
        images: Tensor::from_data(TensorData::new(data, [n, 1, 28, 28]), device),
        targets: Tensor::from_data(TensorData::new(targets, [n]), device),
    }
}

fn step(model: &Classifier<Model>, device: &Device) -> (f32, Vec<Vec<f32>>) {
    let loss_t = model.training_loss(batch(device));
    let loss: f32 = loss_t.clone().into_scalar();
    let grads = GradientsParams::from_grads(loss_t.backward(), model);
    let mut c = Collect {
        grads: &grads,
        out: Vec::new(),
    };
    model.visit(&mut c);
    (loss, c.out)
}

#[test]
fn wgpu_loss_and_gradients_match_flex() {
    let cpu = Backend::Flex.device().unwrap().autodiff();
    let gpu = Backend::Wgpu.device().unwrap().autodiff();
    cpu.seed(3);
    let config = ModelConfig::from_name("lenet5_bn").unwrap();
    let model_cpu = Classifier::new(config.init(&cpu).unwrap());
    let record = model_cpu.clone().into_record();
    let model_gpu = Classifier::new(config.init(&gpu).unwrap()).load_record(record);

    let (loss_cpu, grads_cpu) = step(&model_cpu, &cpu);
    let (loss_gpu, grads_gpu) = step(&model_gpu, &gpu);
    assert!(loss_cpu.is_finite() && loss_cpu > 0.5, "{loss_cpu}");
    assert!(
        (loss_cpu - loss_gpu).abs() < 1e-4 * loss_cpu.abs().max(1.0),
        "loss {loss_cpu} vs {loss_gpu}"
    );
    assert_eq!(grads_cpu.len(), grads_gpu.len());
    assert!(
        grads_cpu.len() >= 10,
        "every conv, BN and linear parameter has a gradient"
    );
    for (k, (a, b)) in grads_cpu.iter().zip(&grads_gpu).enumerate() {
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        // Relative to the parameter's largest gradient, plus an absolute floor for the ones
        // that are zero in exact arithmetic (a convolution bias right before batch norm).
        assert!(
            diff <= 2e-3 * scale + 1e-5,
            "parameter {k}: max |grad diff| {diff} vs scale {scale}"
        );
    }
}
