//! Fine-tuning's setup: the pre-trained weights loaded (and checked) before training, and
//! which parameters train when, at which rate.

use super::{Event, Events, RunData};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::store::run::{RunDir, write_atomic};
use crate::store::weights::LoadOptions;
use crate::training::finetune::FinetuneConfig;
use crate::training::finetune::Freeze;
use burn::module::Module;
use burn::tensor::Device;
use ember_models::transfer::KeyTable;

/// How fine-tuning shapes a run (see [`crate::training::finetune`]): which parameters train when, at
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

/// What fine-tuning needs to know about a network: its classifier head and its stages
/// (bottom up; `--freeze stages:K` freezes the first K). Zoo models take it from their family;
/// a network of your own gives it to [`Training::with_transfer`](super::Training::with_transfer).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transfer {
    /// Prefixes of the classifier head (re-initialised for new classes).
    pub head: Vec<String>,
    /// The feature stages from input to output, each a set of prefixes.
    pub stages: Vec<Vec<String>>,
}

/// Reads the `[finetune]` table of `config`: the frozen prefixes of each phase, and the
/// pre-trained network (`None` when the run already has a checkpoint to continue from), built
/// by `build` and loaded from `ft.from` (`keys`: its torchvision layout, if it has one).
/// Fails before training when the weights do not fit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare<M: Module>(
    config: &TrainConfig,
    ft: &FinetuneConfig,
    transfer: &Transfer,
    keys: Option<&KeyTable>,
    build: &dyn Fn(&Device) -> Result<M>,
    data: &RunData,
    device: &Device,
    events: &Events,
) -> Result<(Tuning, Option<M>)> {
    ft.validate(config.train_loop.epochs)?;
    let head = transfer.head.clone();
    let names: Vec<String> = crate::training::finetune::named_params(&build(device)?)
        .into_iter()
        .filter(|p| !p.bn_flag)
        .map(|p| p.name)
        .collect();
    let stages = transfer.stages.clone();
    let prefixes =
        |f: &Freeze| crate::training::finetune::frozen_prefixes(f, &head, &stages, &names);
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
        let (model, report) = crate::store::weights::load_into_network(
            build(device)?,
            &head,
            keys,
            build,
            &ft.from,
            &options,
        )?;
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
