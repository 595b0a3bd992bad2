//! Any network that maps images to class logits, made trainable by Burn's Learner.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn::train::metric::Adaptor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use ember_data::loader::ImageBatch;

/// A network from images `[N, C, H, W]` to logits `[N, classes]`: every zoo model, and any
/// module a user composes (see `examples/custom_model.rs`).
pub trait Network: Module + burn::module::ModuleDisplay + core::fmt::Display + 'static {
    /// Class logits.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;
}

impl Network for ember_models::Model {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        ember_models::Model::forward(self, images)
    }
}

/// A network trained with cross-entropy on labelled images.
#[derive(Module, Debug)]
pub struct Classifier<N: Network> {
    /// The network.
    pub net: N,
}

impl<N: Network> Classifier<N> {
    /// Wraps `net`.
    pub fn new(net: N) -> Self {
        Self { net }
    }

    /// Logits, cross-entropy loss and targets of one batch.
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.net.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss.reshape([1]), logits, batch.targets)
    }
}

impl<N: Network> TrainStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
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
