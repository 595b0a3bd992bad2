//! The `[finetune]` section: where pre-trained weights come from and how they train
//! ([`crate::training::finetune`] does it).

use crate::error::{Result, TrainError};
use crate::store::weights::Layout;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Which parameters do not train.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Freeze {
    /// Everything trains.
    #[default]
    None,
    /// Only the classifier head trains.
    AllButHead,
    /// The first K stages of the model (its stem first) do not train.
    Stages(usize),
    /// These layers (name prefixes, e.g. `stem`, `layer1.0`) do not train.
    Prefixes(Vec<String>),
}

impl std::str::FromStr for Freeze {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if s == "none" || s.is_empty() {
            return Ok(Freeze::None);
        }
        if s == "all-but-head" || s == "backbone" {
            return Ok(Freeze::AllButHead);
        }
        if let Some(k) = s.strip_prefix("stages:") {
            return k
                .parse()
                .map(Freeze::Stages)
                .map_err(|_| format!("stages:K needs a number, got `{k}`"));
        }
        if let Some(list) = s.strip_prefix("prefix:") {
            let prefixes: Vec<String> = list
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect();
            if prefixes.is_empty() {
                return Err("prefix:NAME,... needs at least one layer name".into());
            }
            return Ok(Freeze::Prefixes(prefixes));
        }
        Err(format!(
            "unknown freeze `{s}`; expected none, all-but-head, stages:K or prefix:NAME,..."
        ))
    }
}

impl TryFrom<String> for Freeze {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        s.parse()
    }
}

impl From<Freeze> for String {
    fn from(f: Freeze) -> String {
        f.to_string()
    }
}

impl std::fmt::Display for Freeze {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Freeze::None => write!(f, "none"),
            Freeze::AllButHead => write!(f, "all-but-head"),
            Freeze::Stages(k) => write!(f, "stages:{k}"),
            Freeze::Prefixes(p) => write!(f, "prefix:{}", p.join(",")),
        }
    }
}

crate::section! {
    /// The `[finetune]` table of a run's config: where the weights come from and how they
    /// train.
    pub struct FinetuneConfig in "finetune", "Fine-tuning" {
        /// Pre-trained weights: a run directory (its best weights), or a .bpk, .safetensors or
        /// .pth/.pt file (torchvision's ImageNet files load into the matching zoo model).
        from: PathBuf = PathBuf::new(); flag "from",
        /// Whose tensor names the file uses: `auto` (torchvision for .pth/.pt), `ember` or
        /// `torchvision`.
        layout: Layout = Layout::Auto; flag "layout",
        /// Load what fits and report the rest instead of failing.
        allow_partial: bool = false; switch "allow-partial",
        /// Re-initialise the classifier head even when the classes did not change.
        reset_head: bool = false; switch "reset-head",
        /// What does not train: `none`, `all-but-head`, `stages:K` (the first K stages) or
        /// `prefix:NAME,...`.
        freeze: Freeze = Freeze::None; flag "freeze",
        /// The backbone's learning rate is the head's (`optim.lr`) times this.
        backbone_lr_factor: f64 = 0.1; flag "backbone-lr-factor";
            check |v| *v >= 0.0 && v.is_finite() => "must be >= 0",
        /// Train only the head for this many epochs, then everything (with the factor above).
        unfreeze_after: Option<usize> = None; flag "unfreeze-after",
    }
}

impl FinetuneConfig {
    /// Checks what depends on the run's length (the knobs' own checks are declared above).
    pub fn validate(&self, epochs: usize) -> Result<()> {
        if let Some(n) = self.unfreeze_after
            && (n == 0 || n >= epochs)
        {
            return Err(TrainError::Knob {
                path: "finetune.unfreeze_after".into(),
                msg: format!(
                    "must be between 1 and `loop.epochs` - 1 ({}), got {n}",
                    epochs.saturating_sub(1)
                ),
            });
        }
        Ok(())
    }
}
