//! AdaDelta (Zeiler 2012), which Burn 0.22 lacks, as a Burn [`Optimizer`].
//!
//! For a parameter `x` with gradient `g` (plus `weight_decay * x`, L2), decay `rho` and `eps`:
//!
//! ```text
//! s  <- rho s  + (1 - rho) g^2               running mean of squared gradients
//! g' <- sqrt(dx + eps) / sqrt(s + eps) * g   rescaled gradient
//! dx <- rho dx + (1 - rho) g'^2              running mean of squared updates
//! x  <- x - lr g'
//! ```
//!
//! as in d2l (section 12.9) and PyTorch's `torch.optim.Adadelta` (rho 0.9, eps 1e-6, lr 1.0).

use burn::optim::LearningRate;
use burn::optim::{
    ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource,
    grad_clipping::GradientClippingConfig,
};
use burn::tensor::{Device, Tensor};

/// AdaDelta's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaDeltaConfig {
    /// Decay of both running means.
    pub rho: f64,
    /// Keeps the square roots away from zero.
    pub epsilon: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Clip each parameter's gradient to this norm.
    pub grad_clip: Option<f64>,
}

impl Default for AdaDeltaConfig {
    fn default() -> Self {
        Self {
            rho: 0.9,
            epsilon: 1e-6,
            weight_decay: 0.0,
            grad_clip: None,
        }
    }
}

impl AdaDeltaConfig {
    /// The optimizer for a whole module.
    pub fn init(&self) -> ModuleOptimizer {
        let mut optim = ModuleOptimizer::from(AdaDelta { config: *self });
        if let Some(c) = self.grad_clip {
            optim = optim.with_grad_clipping(GradientClippingConfig::Norm(c as f32).init());
        }
        optim
    }
}

/// The AdaDelta optimizer.
#[derive(Debug, Clone)]
pub struct AdaDelta {
    config: AdaDeltaConfig,
}

impl AdaDelta {
    /// The bare optimizer (for one tensor or one parameter group).
    pub fn new(config: AdaDeltaConfig) -> Self {
        Self { config }
    }
}

/// Per-parameter state: the two running means.
#[derive(Debug, Clone)]
pub struct AdaDeltaState<const D: usize> {
    /// Running mean of squared gradients.
    pub square_avg: Tensor<D>,
    /// Running mean of squared updates.
    pub acc_delta: Tensor<D>,
}

impl<const D: usize> RecordState for AdaDeltaState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(prefix, "square_avg", self.square_avg.to_data());
        out.push_tensor(prefix, "acc_delta", self.acc_delta.to_data());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let square_avg = src.take_tensor(prefix, "square_avg")?;
        let acc_delta = src.take_tensor(prefix, "acc_delta")?;
        Some(Self {
            square_avg: Tensor::from_data(square_avg, device),
            acc_delta: Tensor::from_data(acc_delta, device),
        })
    }
}

impl Optimizer for AdaDelta {
    type State<const D: usize> = AdaDeltaState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let AdaDeltaConfig {
            rho,
            epsilon,
            weight_decay,
            ..
        } = self.config;
        let grad = if weight_decay > 0.0 {
            grad + tensor.clone().mul_scalar(weight_decay)
        } else {
            grad
        };
        let (square_avg, acc_delta) = match state {
            Some(s) => (s.square_avg, s.acc_delta),
            None => (grad.zeros_like(), grad.zeros_like()),
        };
        let square_avg = square_avg.mul_scalar(rho) + grad.clone().square().mul_scalar(1.0 - rho);
        let delta = acc_delta
            .clone()
            .add_scalar(epsilon)
            .sqrt()
            .div(square_avg.clone().add_scalar(epsilon).sqrt())
            .mul(grad);
        let acc_delta = acc_delta.mul_scalar(rho) + delta.clone().square().mul_scalar(1.0 - rho);
        let tensor = tensor - delta.mul_scalar(lr);
        (
            tensor,
            Some(AdaDeltaState {
                square_avg,
                acc_delta,
            }),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdaDeltaState {
            square_avg: state.square_avg.to_device(device),
            acc_delta: state.acc_delta.to_device(device),
        }
    }
}
