//! `ember export`: weights (a run, .bpk, .safetensors or a torchvision .pth) to .safetensors
//! or .bpk.

use anyhow::{Context, Result, bail};
use clap::Args;
use ember_train::Backend;
use ember_train::run::RunDir;
use ember_train::weights::{self, Layout, LoadOptions};
use std::path::PathBuf;

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory or a weights file (.bpk, .safetensors, .pth/.pt).
    #[arg(long, value_name = "RUN_DIR|WEIGHTS")]
    from: PathBuf,
    /// The zoo model the weights are for (default: the run's).
    #[arg(long)]
    model: Option<String>,
    /// Classes of the model (default: the run's, or the zoo model's).
    #[arg(long)]
    num_classes: Option<usize>,
    /// Whose tensor names the file uses: auto, ember, torchvision.
    #[arg(long, default_value = "auto")]
    layout: Layout,
    /// Write what fits and report the rest.
    #[arg(long)]
    allow_partial: bool,
    /// The file to write: .safetensors or .bpk.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<()> {
    let device = Backend::Flex.device()?;
    let config = match (&args.model, args.from.is_dir()) {
        (Some(name), _) => ember_models::ModelConfig::from_name(name)?,
        (None, true) => RunDir::new(&args.from)
            .load_info()?
            .model_config
            .context("the run trained a custom network; only zoo models can be exported")?,
        (None, false) => bail!("give --model NAME for a weights file"),
    };
    let config = match args.num_classes {
        Some(n) => config.with_num_classes(n),
        None => config,
    };
    let options = LoadOptions {
        allow_partial: args.allow_partial,
        layout: args.layout,
        ..LoadOptions::default()
    };
    let (model, report) = weights::load_pretrained(&config, &args.from, &device, &options)?;
    weights::save_as(&model, &config, &args.out)?;
    println!("{}", report.describe());
    println!("wrote {}", args.out.display());
    Ok(())
}
