//! Stops a run whose loss became NaN or infinite, before the bad weights are checkpointed.
//!
//! Burn's Learner has no such check. A metric sees every training batch's loss, and Burn's
//! [`Interrupter`] ends the epoch at the next batch; an interrupted epoch is never
//! checkpointed, so the last checkpoint on disk is the last good one.

use crate::training::classifier::LossValue;
use burn::tensor::TensorReadError;
use burn::train::Interrupter;
use burn::train::metric::{Metric, MetricMetadata, MetricName, SerializedEntry};
use std::sync::{Arc, Mutex};

/// The metric that watches the loss.
#[derive(Clone)]
pub struct NonFiniteGuard {
    name: MetricName,
    interrupter: Interrupter,
    tripped: Arc<Mutex<Option<f64>>>,
}

impl NonFiniteGuard {
    /// A guard that stops training through `interrupter`.
    pub fn new(interrupter: Interrupter) -> Self {
        Self {
            name: Arc::new("Loss is finite".to_string()),
            interrupter,
            tripped: Arc::new(Mutex::new(None)),
        }
    }

    /// The non-finite loss seen, if any.
    pub fn tripped(&self) -> Option<f64> {
        *self.tripped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Metric for NonFiniteGuard {
    type Input = LossValue;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(
        &mut self,
        item: &LossValue,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let loss = item.0.clone().mean().try_into_scalar::<f64>()?;
        if !loss.is_finite() {
            let mut tripped = self.tripped.lock().unwrap_or_else(|e| e.into_inner());
            if tripped.is_none() {
                *tripped = Some(loss);
            }
            self.interrupter
                .stop(Some(&format!("the loss became {loss}")));
        }
        let text = if loss.is_finite() { "yes" } else { "NO" };
        Ok(SerializedEntry::new(text.into(), text.into()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let text = if self.tripped().is_some() {
            "NO"
        } else {
            "yes"
        };
        Ok(SerializedEntry::new(text.into(), text.into()))
    }

    fn clear(&mut self) {}
}
