//! `ember augment`: a PNG grid of originals and their augmented versions.

use super::summary::parse_size;
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_data::grid::augmentation_grid;
use ember_data::transform::{Augment, Preset};
use ember_data::{DatasetSpec, Split};
use ember_train::config::TrainConfig;
use ember_train::config::knob::parse_value;
use ember_train::training::trainer::train_transforms;
use std::path::PathBuf;

#[derive(Args)]
pub struct AugmentArgs {
    /// mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH (default: the
    /// config's).
    #[arg(long)]
    dataset: Option<DatasetSpec>,
    /// Folder holding the dataset's files (default: $EMBER_DATA_DIR/<name> or ~/.cache/ember/<name>).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A run's config (its `config.toml`, or a recipe): show its `[data]` augmentation, as
    /// training applies it (the preset knobs included).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The augmentation, as `data.augment` takes it: a preset (none, cifar, imagenet) or a
    /// TOML list of transforms, e.g. '[{type = "rand_augment"}, {type = "normalize"}]'
    /// (default: the config's, else cifar).
    #[arg(long, alias = "preset", value_parser = parse_augment)]
    augment: Option<Augment>,
    /// Seed of the augmentation; the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output PNG.
    #[arg(long, default_value = "augment.png")]
    out: PathBuf,
    /// Images (rows of the grid).
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Augmented versions per image (columns after the originals).
    #[arg(long, default_value_t = 7)]
    versions: usize,
    /// Output size H,W of the transforms (default: the first image's size).
    #[arg(long, value_parser = parse_size)]
    size: Option<[usize; 2]>,
}

/// `--augment`'s text read as the `data.augment` knob reads it.
fn parse_augment(raw: &str) -> std::result::Result<Augment, String> {
    parse_value::<Augment>(raw)
}

pub fn run(args: AugmentArgs) -> Result<()> {
    if args.rows == 0 || args.versions == 0 {
        bail!("--rows and --versions must be at least 1");
    }
    let mut config = match &args.config {
        Some(path) => TrainConfig::load(path)?,
        None => {
            let mut c = TrainConfig::default();
            c.data.augment = Preset::Cifar.into();
            c
        }
    };
    if let Some(a) = args.augment {
        config.data.augment = a;
    }
    match args.dataset {
        Some(d) => config.data.dataset = d,
        None if args.config.is_none() => bail!("give --dataset (or --config with its [data])"),
        None => {}
    }
    if args.data_dir.is_some() {
        config.data.data_dir = args.data_dir;
    }
    config.validate_options()?;
    let spec = &config.data.dataset;
    let dataset = spec
        .open(config.data.data_dir.as_deref(), Split::Train)
        .with_context(|| format!("opening {spec}"))?;
    if dataset.is_empty() {
        bail!("{spec} has no images");
    }
    let first = dataset.get(0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let size = args
        .size
        .or(config.data.resize)
        .unwrap_or([first.image.height, first.image.width]);
    let stats = spec.stats().for_channels(first.image.channels);
    let transforms = train_transforms(&config, size, &stats)?;
    // Spread the rows over the dataset (ImageFolder sorts by class, so this shows several).
    let n = dataset.len();
    let rows = args.rows.min(n);
    let indices: Vec<usize> = (0..rows).map(|r| r * n / rows).collect();
    let grid = augmentation_grid(
        dataset.as_ref(),
        &indices,
        &transforms,
        args.versions,
        args.seed,
        64,
    )?;
    grid.save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} ({}x{} px): {rows} images of {spec}, each with {} augmentations by {} \
         (seed {})",
        args.out.display(),
        grid.width(),
        grid.height(),
        args.versions,
        config.data.augment,
        args.seed
    );
    Ok(())
}
