//! Any network that maps images to class logits, made trainable by Burn's Learner.

use crate::training::diagnostics::{Diagnostics, activation_stats, gradient_norms};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor};
use burn::train::metric::Adaptor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use ember_data::loader::ImageBatch;
use ember_models::Taps;

/// The one trait of a network (every zoo model, and any module a user composes), from
/// ember-models.
pub use ember_models::Network;

/// A network trained with cross-entropy on labelled images.
#[derive(Module, Debug)]
pub struct Classifier<N: Network> {
    /// The network.
    pub net: N,
    /// Gradient and activation statistics of sampled training steps, if wanted.
    #[module(skip)]
    pub diagnostics: Option<Diagnostics>,
    /// Label smoothing of the training loss (`eps`; validation uses plain cross-entropy).
    #[module(skip)]
    pub label_smoothing: Option<f32>,
    /// Factor on the loss that backward starts from (the reported loss is not scaled).
    #[module(skip)]
    pub grad_scale: f32,
    /// Lookahead's running average of the network's weights and batch-norm statistics
    /// ([`Classifier::lookahead_pull`]); part of the model so that checkpoints keep it.
    pub average: Option<N>,
    /// The model EMA ([`Classifier::ema_update`]), which validation evaluates; part of the
    /// model so that checkpoints keep it.
    pub ema: Option<N>,
}

impl<N: Network> Classifier<N> {
    /// Wraps `net`.
    pub fn new(net: N) -> Self {
        Self {
            net,
            diagnostics: None,
            label_smoothing: None,
            grad_scale: 1.0,
            average: None,
            ema: None,
        }
    }

    /// Keeps a lookahead average, starting at the network's values (with parameter ids of its
    /// own, so that no optimizer step reaches it, and no gradient).
    pub fn with_average(mut self) -> Self {
        self.average = Some(self.detached_copy());
        self
    }

    /// Keeps a model EMA, starting at the network's values (its own parameter ids, out of
    /// the optimizer's and autodiff's reach).
    pub fn with_ema(mut self) -> Self {
        self.ema = Some(self.detached_copy());
        self
    }

    /// The network's values with fresh parameter ids and no autodiff history.
    fn detached_copy(&self) -> N {
        // A clone would share batch norm's running statistics (Burn's `RunningState` is
        // shared storage): `valid` makes fresh ones, `fork` puts them back on the device.
        let devices = self.net.devices();
        let mut copy = self.net.valid();
        if let Some(device) = devices.first() {
            copy = copy.fork(device);
        }
        copy.map(&mut Detached)
    }

    /// The model EMA's update (timm's `ModelEmaV3`; Polyak averaging): every float tensor of
    /// the EMA, batch-norm running statistics included, moves to `e <- decay e + (1 - decay)
    /// w`; the network trains on unchanged. Without an EMA the model is returned as it is.
    pub fn ema_update(mut self, decay: f64) -> Self {
        let Some(ema) = self.ema.take() else {
            return self;
        };
        self.ema = Some(self.blend_into(ema, decay).0);
        self
    }

    /// `average <- decay average + (1 - decay) net`, tensor by tensor; also the new values,
    /// flattened in visit order.
    fn blend_into(&self, average: N, decay: f64) -> (N, Vec<Tensor<1>>) {
        let mut current = Flat(Vec::new());
        self.net.visit(&mut current);
        let mut blend = Blend {
            values: current.0.into_iter(),
            decay,
            out: Vec::new(),
        };
        let average = average.map(&mut blend);
        (average, blend.out)
    }

    /// What validation and the reports evaluate: the EMA when there is one, else the network.
    pub fn evaluated(&self) -> Self {
        match &self.ema {
            Some(ema) => Self {
                net: ema.clone(),
                diagnostics: None,
                label_smoothing: self.label_smoothing,
                grad_scale: self.grad_scale,
                average: None,
                ema: None,
            },
            None => self.clone(),
        }
    }

    /// Lookahead's pull (Zhang et al. 2019; airbench94's `LookaheadState.update`): every
    /// float tensor of the network, batch-norm running statistics included, moves to
    /// `a <- decay a + (1 - decay) w` and the network continues from `a`. Without an average
    /// (no [`with_average`](Self::with_average)) the model is returned as it is.
    pub fn lookahead_pull(mut self, decay: f64) -> Self {
        let Some(average) = self.average.take() else {
            return self;
        };
        let (average, values) = self.blend_into(average, decay);
        let mut set = SetTo(values.into_iter());
        self.net = self.net.map(&mut set);
        self.average = Some(average);
        self
    }

    /// Scales the gradients of every step by `scale`. With `N` devices Burn sums the devices'
    /// gradients (each the gradient of its batch's mean loss); `1/N` makes that their mean, as
    /// PyTorch's DistributedDataParallel does: the step of one device with an `N` times larger
    /// batch, so a learning rate means the same on any number of devices.
    pub fn with_grad_scale(mut self, scale: f32) -> Self {
        self.grad_scale = scale;
        self
    }

    fn backward(&self, loss: Tensor<1>) -> burn::tensor::Gradients {
        if self.grad_scale == 1.0 {
            loss.backward()
        } else {
            (loss * self.grad_scale).backward()
        }
    }

    /// Trains with label smoothing `eps` (None or 0: plain cross-entropy).
    pub fn with_label_smoothing(mut self, eps: Option<f32>) -> Self {
        self.label_smoothing = eps.filter(|&e| e > 0.0);
        self
    }

    /// Also measures gradients and activations on the steps `diagnostics` samples.
    pub fn with_diagnostics(mut self, diagnostics: Diagnostics) -> Self {
        self.diagnostics = Some(diagnostics);
        self
    }

    /// Logits, cross-entropy loss and targets of one batch.
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let logits = self.net.forward(batch.images);
        Self::output(logits, batch.targets, None).1
    }

    /// The batch's training loss (mean over its images, label smoothing included), with its
    /// autodiff graph: what a training step calls `backward` on.
    pub fn training_loss(&self, batch: ImageBatch) -> Tensor<1> {
        let logits = self.net.forward(batch.images);
        Self::output(logits, batch.targets, self.label_smoothing).0
    }

    /// The batch's mean loss (what backward starts from) and its output for the metrics;
    /// `smoothing` only for the training loss.
    ///
    /// The output's loss is the batch mean repeated once per image (`[N]`): Burn's loss
    /// metric weights each batch by the length of that tensor, so an epoch's loss is the mean
    /// over images, as `ember eval` computes it, not over batches (where a short last batch
    /// would weigh as much as a full one).
    fn output(
        logits: Tensor<2>,
        targets: Tensor<1, Int>,
        smoothing: Option<f32>,
    ) -> (Tensor<1>, ClassificationOutput) {
        let loss = CrossEntropyLossConfig::new()
            .with_smoothing(smoothing)
            .init(&logits.device())
            .forward(logits.clone(), targets.clone());
        let [n, _] = logits.dims();
        let per_image = loss.clone().reshape([1]).detach().expand([n]);
        (loss, ClassificationOutput::new(per_image, logits, targets))
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
            let (loss, item) = Self::output(logits, batch.targets, self.label_smoothing);
            let grads = self.backward(loss);
            // Diagnostics must never stop training: a failed read-back only loses the sample.
            if let (Ok(g), Ok(a)) = (
                gradient_norms(&self.net, &grads),
                activation_stats(taps.recorded()),
            ) {
                d.record(&g, &a);
            }
            return TrainOutput::new(self, grads, item);
        }
        let logits = self.net.forward(batch.images);
        let (loss, item) = Self::output(logits, batch.targets, self.label_smoothing);
        let grads = self.backward(loss);
        TrainOutput::new(self, grads, item)
    }
}

impl<N: Network> InferenceStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}

/// Every float tensor of a module (parameters and running statistics), flattened, in visit
/// order, without autodiff history.
struct Flat(Vec<Tensor<1>>);

impl burn::module::ModuleVisitor for Flat {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        self.0.push(param.val().detach().flatten::<1>(0, D - 1));
    }
}

/// Maps the average: `a <- decay a + (1 - decay) w` with `w` the network's values in the
/// same order; keeps the new averages for [`SetTo`].
struct Blend {
    values: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
    out: Vec<Tensor<1>>,
}

impl burn::module::ModuleMapper for Blend {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let Some(w) = self.values.next() else {
            return param;
        };
        let decay = self.decay;
        let mut flat = None;
        let param = param.map(|a| {
            let shape = a.shape();
            let a = a.detach().flatten::<1>(0, D - 1);
            let blended = if decay >= 1.0 {
                a
            } else {
                a.clone() * decay + w * (1.0 - decay)
            };
            flat = Some(blended.clone());
            blended.reshape(shape)
        });
        if let Some(f) = flat {
            self.out.push(f);
        }
        param
    }
}

/// Maps the network's float tensors to the given flattened values, in visit order, keeping
/// each parameter's id and whether it trains.
struct SetTo(std::vec::IntoIter<Tensor<1>>);

impl burn::module::ModuleMapper for SetTo {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let Some(v) = self.0.next() else {
            return param;
        };
        // `Param::map` keeps the parameter's flag but not its tensor's tracking: set it back.
        let trains = param.is_require_grad();
        param
            .map(|w| v.detach().reshape(w.shape()))
            .set_require_grad(trains)
    }
}

/// A copy of a module's float tensors with fresh parameter ids, out of autodiff's reach.
struct Detached;

impl burn::module::ModuleMapper for Detached {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<D>>,
    ) -> burn::module::Param<Tensor<D>> {
        let (_, value, _) = param.consume();
        burn::module::Param::initialized(
            burn::module::ParamId::new(),
            value.detach().set_require_grad(false),
        )
    }
}

/// What the NaN guard (`guard::NonFiniteGuard`) reads: the batch loss (Burn's
/// `LossInput` keeps its tensor private, so the guard gets its own adaptor).
pub struct LossValue(pub Tensor<1>);

impl Adaptor<LossValue> for ClassificationOutput {
    fn adapt(&self) -> LossValue {
        LossValue(self.loss.clone())
    }
}

/// Top-k class indices of `logits`, best first: `[N, k]` (on the device; for one image's
/// probabilities on the host, [`crate::inspect::predict::top_k`]).
pub fn top_k_indices(logits: Tensor<2>, k: usize) -> Tensor<2, Int> {
    logits.sort_descending_with_indices(1).1.narrow(1, 0, k)
}
