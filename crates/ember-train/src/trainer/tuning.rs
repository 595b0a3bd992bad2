//! Fine-tuning's setup: the pre-trained weights loaded (and checked) before training, and
//! which parameters train when, at which rate.

use super::{Event, Events, RunData};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::finetune::FinetuneConfig;
use crate::finetune::Freeze;
use crate::run::{RunDir, write_atomic};
use crate::weights::LoadOptions;
use burn::tensor::Device;
use ember_models::{Model, ModelConfig};

/// How fine-tuning shapes a run (see [`crate::finetune`]): which parameters train when, at
/// which rate.
#[derive(Debug, Clone, Default)]
pub struct Tuning {
    /// Prefixes of the classifier head.
    pub head: Vec<String>,
    /// Prefixes frozen for the whole run (after any head-only epochs).
    pub frozen: Vec<String>,
    /// Everything but the head: frozen during the first `unfreeze_after` epochs.
    pub head_only: Vec<String>,
    /// The backbone's learning rate is the head's times this.
    pub backbone_lr_factor: f64,
    /// Head-only epochs before everything trains.
    pub unfreeze_after: Option<usize>,
}

/// Reads the `[finetune]` table of `config`: the frozen prefixes of each phase, and the
/// pre-trained network (`None` when the run already has a checkpoint to continue from).
/// Fails before training when the weights do not fit.
pub(crate) fn prepare(
    config: &TrainConfig,
    ft: &FinetuneConfig,
    model_cfg: &ModelConfig,
    data: &RunData,
    device: &Device,
    events: &Events,
) -> Result<(Tuning, Option<Model>)> {
    ft.validate(config.train_loop.epochs)?;
    let head = model_cfg.head();
    let names: Vec<String> = crate::finetune::named_params(&model_cfg.init(device)?)
        .into_iter()
        .filter(|p| !p.bn_flag)
        .map(|p| p.name)
        .collect();
    let stages = model_cfg.stages();
    let prefixes = |f: &Freeze| crate::finetune::frozen_prefixes(f, &head, &stages, &names);
    let tuning = Tuning {
        frozen: prefixes(&ft.freeze)?,
        head_only: prefixes(&Freeze::AllButHead)?,
        head: head.clone(),
        backbone_lr_factor: ft.backbone_lr_factor,
        unfreeze_after: ft.unfreeze_after,
    };
    // A run's head predicts its own classes: other classes (even as many) get a new head.
    let other_classes = RunDir::new(&ft.from)
        .load_info()
        .is_ok_and(|source| source.classes != data.classes);
    let options = LoadOptions {
        allow_partial: ft.allow_partial,
        layout: ft.layout,
        new_head: true,
        reset_head: ft.reset_head || other_classes,
    };
    let run = RunDir::new(&config.runtime.out);
    // Fail before training when the weights do not fit; a run with a checkpoint starts from it.
    let pretrained = if run.latest_checkpoint().is_none() {
        run.ensure_ours()?;
        let (model, report) =
            crate::weights::load_into(model_cfg.init(device)?, model_cfg, &ft.from, &options)?;
        events.emit(Event::PretrainedLoaded {
            source: report.source.clone(),
            report: report.describe(),
        });
        std::fs::create_dir_all(&run.root).map_err(|e| {
            TrainError::file(&run.root, format!("cannot create the run directory: {e}"))
        })?;
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| TrainError::Config(format!("load report: {e}")))?;
        write_atomic(&run.root.join("pretrained.json"), json.as_bytes())?;
        Some(model)
    } else {
        None
    };
    Ok((tuning, pretrained))
}
