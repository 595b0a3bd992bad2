//! Any network that maps images to class logits, made trainable by Burn's Learner.

use crate::diagnostics::{Diagnostics, activation_stats, gradient_norms};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn::train::metric::Adaptor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use ember_data::loader::ImageBatch;
use ember_models::Taps;

/// A network from images `[N, C, H, W]` to logits `[N, classes]`: every zoo model, and any
/// module a user composes (see `examples/custom_model.rs`).
pub trait Network: Module + burn::module::ModuleDisplay + core::fmt::Display + 'static {
    /// Class logits.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;

    /// Class logits, handing intermediate outputs to `taps` (activation statistics, feature
    /// maps). Networks without tap points record nothing.
    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let _ = taps;
        self.forward(images)
    }
}

impl Network for ember_models::Model {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        ember_models::Model::forward(self, images)
    }

    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        ember_models::Model::forward_tapped(self, images, taps)
    }
}

/// A network trained with cross-entropy on labelled images.
#[derive(Module, Debug)]
pub struct Classifier<N: Network> {
    /// The network.
    pub net: N,
    /// Gradient and activation statistics of sampled training steps, if wanted.
    #[module(skip)]
    pub diagnostics: Option<Diagnostics>,
}

impl<N: Network> Classifier<N> {
    /// Wraps `net`.
    pub fn new(net: N) -> Self {
        Self {
            net,
            diagnostics: None,
        }
    }

    /// Also measures gradients and activations on the steps `diagnostics` samples.
    pub fn with_diagnostics(mut self, diagnostics: Diagnostics) -> Self {
        self.diagnostics = Some(diagnostics);
        self
    }

    /// Logits, cross-entropy loss and targets of one batch.
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.net.forward(batch.images);
        Self::output(logits, batch.targets)
    }

    fn output(logits: Tensor<2>, targets: Tensor<1, Int>) -> ClassificationOutput {
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), targets.clone());
        ClassificationOutput::new(loss.reshape([1]), logits, targets)
    }
}

impl<N: Network> TrainStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        if let Some(d) = &self.diagnostics
            && d.sample_now()
        {
            let mut taps = Taps::all();
            let logits = self.net.forward_tapped(batch.images, &mut taps);
            let item = Self::output(logits, batch.targets);
            let grads = item.loss.backward();
            // Diagnostics must never stop training: a failed read-back only loses the sample.
            if let (Ok(g), Ok(a)) = (
                gradient_norms(&self.net, &grads),
                activation_stats(taps.recorded()),
            ) {
                d.record(&g, &a);
            }
            return TrainOutput::new(self, grads, item);
        }
        let item = self.forward_classification(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<N: Network> InferenceStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}

/// What the [`NonFiniteGuard`](crate::guard::NonFiniteGuard) reads: the batch loss (Burn's
/// `LossInput` keeps its tensor private, so the guard gets its own adaptor).
pub struct LossValue(pub Tensor<1>);

impl Adaptor<LossValue> for ClassificationOutput {
    fn adapt(&self) -> LossValue {
        LossValue(self.loss.clone())
    }
}

/// Top-k class indices of `logits`, best first: `[N, k]`.
pub fn top_k(logits: Tensor<2>, k: usize) -> Tensor<2, Int> {
    logits.sort_descending_with_indices(1).1.narrow(1, 0, k)
}
