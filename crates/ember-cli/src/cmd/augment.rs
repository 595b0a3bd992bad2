//! `ember augment`: a PNG grid of originals and their augmented versions.

use super::summary::parse_size;
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_data::grid::augmentation_grid;
use ember_data::transform::Preset;
use ember_data::{DatasetSpec, Split};
use std::path::PathBuf;

#[derive(Args)]
pub struct AugmentArgs {
    /// mnist, fashion-mnist, cifar10, cifar100, cifar100-coarse or folder:PATH.
    #[arg(long)]
    dataset: DatasetSpec,
    /// Folder holding the dataset's files (default: $EMBER_DATA_DIR/<name> or ~/.cache/ember/<name>).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Augmentation recipe: none, cifar or imagenet.
    #[arg(long, default_value = "cifar")]
    preset: Preset,
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

pub fn run(args: AugmentArgs) -> Result<()> {
    if args.rows == 0 || args.versions == 0 {
        bail!("--rows and --versions must be at least 1");
    }
    let dataset = args
        .dataset
        .open(args.data_dir.as_deref(), Split::Train)
        .with_context(|| format!("opening {}", args.dataset))?;
    if dataset.is_empty() {
        bail!("{} has no images", args.dataset);
    }
    let size = match args.size {
        Some(s) => s,
        None => {
            let first = dataset.get(0).map_err(|e| anyhow::anyhow!("{e}"))?;
            [first.image.height, first.image.width]
        }
    };
    let transforms = args.preset.train(size, &args.dataset.stats());
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
        "wrote {} ({}x{} px): {rows} images of {}, each with {} {:?} augmentations (seed {})",
        args.out.display(),
        grid.width(),
        grid.height(),
        args.dataset,
        args.versions,
        args.preset,
        args.seed
    );
    Ok(())
}
