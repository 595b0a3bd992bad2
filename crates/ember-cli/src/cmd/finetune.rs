//! `ember finetune`: pre-trained weights (a run, or a .bpk/.safetensors/.pth file) on a new
//! dataset: a new head, frozen layers, a smaller backbone learning rate.

use super::train::{TrainArgs, train_and_report};
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_train::cli::{FinetuneSection, KnobFlags, default_run_dir, in_flag_terms};
use ember_train::config::TrainConfig;
use ember_train::run::RunDir;
use std::path::PathBuf;

#[derive(Args)]
pub struct FinetuneArgs {
    /// The `[finetune]` section's flags, from its knobs' declarations.
    #[command(flatten)]
    finetune: KnobFlags<FinetuneSection>,
    #[command(flatten)]
    train: TrainArgs,
}

pub fn run(mut args: FinetuneArgs) -> Result<()> {
    // Text a knob's type does not read (`--freeze half`) is the first error, as a parser's.
    args.finetune.check().map_err(in_flag_terms)?;
    let resume = args.train.resume.is_some();
    let from = args.finetune.get("finetune.from").map(PathBuf::from);
    // From a run, the model defaults to the run's (with its options).
    let mut source_options = None;
    if let Some(from) = &from
        && from.is_dir()
        && args.train.model.is_none()
        && args.train.config.is_none()
        && !resume
    {
        let source = TrainConfig::load(&RunDir::new(from).config())
            .with_context(|| format!("{} is not a run directory; give --model", from.display()))?;
        args.train.model = Some(source.model.clone());
        source_options = Some(source.model_options);
    }
    if args.train.knobs.get("runtime.out").is_none() && !resume && args.train.config.is_none() {
        let model = args.train.model.clone().unwrap_or_default();
        let dataset = args
            .train
            .knobs
            .get("data.dataset")
            .and_then(|d| d.parse().ok());
        let dir = default_run_dir(&model, dataset.as_ref(), "-finetune");
        args.train
            .knobs
            .insert("runtime.out", dir.display().to_string())?;
    }
    let mut config = args.train.unchecked(None).map_err(in_flag_terms)?;
    if let Some(o) = source_options
        && config.model_options.is_empty()
    {
        config.model_options = o;
    }
    let mut table = config.to_table()?;
    args.finetune
        .apply_to_table(&mut table)
        .map_err(in_flag_terms)?;
    let mut config = TrainConfig::from_table(table).map_err(anyhow::Error::msg)?;
    let ft = config.finetune.get_or_insert_with(Default::default);
    if ft.from.as_os_str().is_empty() && !resume {
        bail!("give --from RUN_DIR or a weights file (.bpk, .safetensors, .pth)")
    }
    config.validate().map_err(in_flag_terms)?;
    train_and_report(config, resume)
}
