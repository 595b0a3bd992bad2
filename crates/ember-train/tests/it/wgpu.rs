//! A training step on wgpu matches the CPU backend: same loss, same gradients.
//!
//! CI runs it on Mesa's lavapipe (software Vulkan); on a machine with a GPU it runs there.
//! Compiled only with `--features wgpu`.
#![cfg(feature = "wgpu")]

use burn::data::dataset::Dataset;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
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

/// Puts values from a fixed sequence (uniform in +-sqrt(3 / fan_in), a std of 1/sqrt(fan_in))
/// into every parameter that was drawn at random, keeping the constant ones (batch-norm gamma
/// and beta). The other tests of this binary draw from Burn's process-wide generator at the
/// same time, so a seed alone would not fix the weights, and the gradients compared (and how
/// close f32 arithmetic on two backends gets them) would change from run to run.
struct Fixed(u64);

impl ModuleMapper for Fixed {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|t| {
            let dims = t.dims();
            let values = t.to_data().convert::<f32>().try_to_vec::<f32>().unwrap();
            if values.iter().all(|&v| v == values[0]) {
                return t;
            }
            let fan_in = if D > 1 {
                values.len() / dims[0]
            } else {
                values.len()
            };
            let a = (3.0 / fan_in as f32).sqrt();
            let fixed: Vec<f32> = (0..values.len())
                .map(|_| {
                    // Knuth's MMIX linear congruential generator, top 24 bits.
                    self.0 = self
                        .0
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    a * (2.0 * (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 1.0)
                })
                .collect();
            Tensor::from_data(TensorData::new(fixed, dims), &t.device()).require_grad()
        })
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
    let config = ModelConfig::from_name("lenet5_bn").unwrap();
    let model_cpu = Classifier::new(config.init(&cpu).unwrap()).map(&mut Fixed(3));
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
    let largest = |g: &[f32]| g.iter().fold(0f32, |m, v| m.max(v.abs()));
    let global = grads_cpu.iter().map(|g| largest(g)).fold(0f32, f32::max);
    for (k, (a, b)) in grads_cpu.iter().zip(&grads_gpu).enumerate() {
        assert_eq!(a.len(), b.len());
        let scale = largest(a);
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        // Relative to the parameter's largest gradient, plus a floor for the ones that are
        // zero in exact arithmetic (a convolution bias right before batch norm): theirs is the
        // rounding of a sum over every position, in proportion to the gradients flowing in.
        assert!(
            diff <= 2e-3 * scale + 1e-4 * global,
            "parameter {k}: max |grad diff| {diff} vs scale {scale}"
        );
    }
}
