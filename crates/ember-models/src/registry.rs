//! The one registry of model names, shared by the CLI, the trainer, the tests and the docs.
//! The families themselves are listed in [`crate::zoo`]; each registers its names in its own
//! file ([`Family::variants`](crate::family::Family::variants)).
//!
//! Names follow torchvision where it has the model (`alexnet`, `vgg16_bn`, `googlenet`,
//! `resnet50`, `densenet121`, `resnext50_32x4d`); CIFAR-stem variants end in `_cifar`.

use crate::family::Variant;
use crate::summary::{Summary, SummaryError, summarize};
use crate::zoo::TaggedConfig;
use burn::prelude::*;

pub use crate::error::ModelError;
pub use crate::zoo::{Model, ModelConfig};

impl TryFrom<serde_json::Value> for ModelConfig {
    type Error = String;

    /// Burn's `Config` defaults are not serde defaults: fill in what the document leaves out
    /// from the architecture's default configuration, then read it.
    fn try_from(value: serde_json::Value) -> Result<Self, Self::Error> {
        let archs = ModelConfig::ARCHS.join(", ");
        let serde_json::Value::Object(given) = value else {
            return Err("a model configuration must be a table with an `arch` key".into());
        };
        let arch = given
            .get("arch")
            .and_then(|a| a.as_str())
            .ok_or_else(|| format!("a model configuration needs `arch` ({archs})"))?;
        let defaults = ModelConfig::defaults_of(arch)
            .ok_or_else(|| format!("unknown arch `{arch}` (expected one of {archs})"))?;
        let mut merged = match serde_json::to_value(&defaults) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err("default configuration did not serialise to a table".into()),
        };
        merged.extend(given);
        let tagged: TaggedConfig = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| format!("model configuration: {e}"))?;
        Ok(tagged.into())
    }
}

/// A registry entry: a name, its line for `--list`, its canonical configuration.
pub type ModelEntry = Variant<ModelConfig>;

/// Every model of the zoo, family by family in the order of the book.
pub fn entries() -> Vec<ModelEntry> {
    ModelConfig::variants()
}

/// All registered names.
pub fn names() -> Vec<&'static str> {
    entries().into_iter().map(|e| e.name).collect()
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl ModelConfig {
    /// The canonical configuration of a registered model.
    pub fn from_name(name: &str) -> Result<Self, ModelError> {
        let all = entries();
        if let Some(entry) = all.iter().find(|e| e.name == name) {
            return Ok(entry.config.clone());
        }
        let lower = name.to_ascii_lowercase().replace('-', "_");
        let best = all
            .iter()
            .map(|e| (edit_distance(&lower, e.name), e.name))
            .min();
        let hint = match best {
            Some((d, n)) if d <= 3 => format!(", did you mean `{n}`?"),
            _ => String::new(),
        };
        Err(ModelError::UnknownModel {
            name: name.to_string(),
            hint,
        })
    }

    /// The per-layer summary for one `[C, H, W]` input (the model is fitted to it first).
    pub fn summary(
        &self,
        name: &str,
        input: [usize; 3],
        device: &Device,
    ) -> Result<Summary, SummaryOrModelError> {
        let model = self.clone().with_input(input).init(device)?;
        Ok(summarize(&model, name, input)?)
    }
}

/// Either error of [`ModelConfig::summary`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SummaryOrModelError {
    /// Bad name or configuration.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The input does not fit.
    #[error(transparent)]
    Shape(#[from] SummaryError),
}
