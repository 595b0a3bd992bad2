//! `ember viz`: pictures of a trained run (kernels, feature maps, maximally activating
//! patches, curves, gradient diagnostics).

use crate::args::{BackendArg, ImagesArg, RunArg};
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ember_data::ImageItem;
use ember_data::split::Subset;
use ember_data::transform::{apply_all, displayable};
use ember_models::summary::summarize;
use ember_train::Backend;
use ember_train::diagnostics::{Diagnostics, read_activations, read_gradients};
use ember_train::eval::EvalSplit;
use ember_train::logger::read_metrics;
use ember_train::predict::TrainedModel;
use ember_train::run::RunDir;
use ember_train::viz;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Args)]
pub struct VizArgs {
    #[command(subcommand)]
    what: Viz,
}

#[derive(Subcommand)]
enum Viz {
    /// The kernels of a convolution layer as a grid (the first layer in colour).
    Filters(FiltersArgs),
    /// The feature maps of one image at one layer.
    Features(FeaturesArgs),
    /// For each of N channels, the K held-out image patches with the largest activation,
    /// each cropped to that unit's receptive field.
    Patches(PatchesArgs),
    /// Loss and accuracy curves of several runs on one PNG.
    Curves(CurvesArgs),
    /// Per-layer gradient norms and activation statistics recorded during training.
    Gradients(GradientsArgs),
}

#[derive(Args)]
struct FiltersArgs {
    #[command(flatten)]
    run: RunArg,
    /// Convolution layer, e.g. `conv1` or `layer1.0.conv1` (default: the first).
    #[arg(long)]
    layer: Option<String>,
    /// Output PNG (default: RUN/filters-LAYER.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct FeaturesArgs {
    #[command(flatten)]
    run: RunArg,
    /// Image file (PNG or JPEG); converted to the model's channels and transforms.
    #[arg(long)]
    image: PathBuf,
    /// Layer or block whose output to show, e.g. `conv1`, `layer2.1` (a wrong name lists them).
    #[arg(long)]
    layer: String,
    /// Output PNG (default: RUN/features-LAYER.png).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
}

#[derive(Args)]
struct PatchesArgs {
    #[command(flatten)]
    run: RunArg,
    /// The images to search (the run's held-out validation images unless `--split` says
    /// otherwise).
    #[command(flatten)]
    images: ImagesArg,
    /// Layer or block, e.g. `conv2` (a wrong name lists them).
    #[arg(long)]
    layer: String,
    /// Channels to show (the first N of the layer), one row each.
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Patches per channel.
    #[arg(long, default_value_t = 8)]
    top: usize,
    /// Search only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Output PNG (default: RUN/patches-LAYER.png).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    backend: BackendArg,
}

#[derive(Args)]
struct CurvesArgs {
    /// Run directories.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Output PNG.
    #[arg(long, default_value = "curves.png")]
    out: PathBuf,
}

#[derive(Args)]
struct GradientsArgs {
    /// The run directory made by `ember train`.
    run: PathBuf,
    /// Output PNG (default: RUN/gradients.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn out_path(given: Option<PathBuf>, run: &Path, stem: &str, layer: &str) -> PathBuf {
    given.unwrap_or_else(|| run.join(format!("{stem}-{}.png", layer.replace('.', "_"))))
}

pub fn run(args: VizArgs) -> Result<()> {
    match args.what {
        Viz::Filters(a) => filters(a),
        Viz::Features(a) => features(a),
        Viz::Patches(a) => patches(a),
        Viz::Curves(a) => curves(a),
        Viz::Gradients(a) => gradients(a),
    }
}

fn filters(args: FiltersArgs) -> Result<()> {
    let device = Backend::Flex.device()?;
    let trained = TrainedModel::load(&args.run, &device)?;
    let kernels = viz::conv_kernels(&trained.model);
    if kernels.is_empty() {
        bail!("{} has no convolution layers", trained.info.model);
    }
    let names = || {
        kernels
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, weights) = match &args.layer {
        None => &kernels[0],
        Some(l) => kernels
            .iter()
            .find(|(n, _)| n == l || n.starts_with(&format!("{l}.")))
            .with_context(|| {
                format!(
                    "no convolution `{l}` in {}; its convolutions are: {}",
                    trained.info.model,
                    names()
                )
            })?,
    };
    let out = out_path(args.out, &args.run, "filters", name);
    viz::save_png(&viz::filter_grid(weights)?, &out)?;
    let [co, ci, kh, kw] = weights.dims();
    println!(
        "{name}: {co} filters of {ci}x{kh}x{kw} -> {}",
        out.display()
    );
    Ok(())
}

fn features(args: FeaturesArgs) -> Result<()> {
    let device = args.backend.device()?;
    let trained = TrainedModel::load(&args.run, &device)?;
    let img = trained.prepare(&args.image)?;
    let [c, h, w] = trained.info.input;
    let x = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(img.data.clone(), [1, c, h, w]),
        &device,
    );
    let maps = viz::layer_output(&trained.model, x, &args.layer)?;
    let [_, mc, mh, mw] = maps.dims();
    let shown = displayable(&trained.info.eval_transforms, img);
    let grid = viz::feature_grid(&shown, &maps.reshape([mc, mh, mw]))?;
    let out = out_path(args.out, &args.run, "features", &args.layer);
    viz::save_png(&grid, &out)?;
    println!(
        "{}: {mc} maps of {mh}x{mw} -> {}",
        args.layer,
        out.display()
    );
    Ok(())
}

fn patches(args: PatchesArgs) -> Result<()> {
    if args.channels == 0 || args.top == 0 {
        bail!("--channels and --top must be at least 1");
    }
    let device = args.backend.device()?;
    let trained = TrainedModel::load(&args.run, &device)?;
    let spec = match &args.images.dataset {
        Some(s) => s.clone(),
        None => trained.info.dataset.clone(),
    };
    let (ds, _) = args.images.open(&args.run, Some(EvalSplit::Val))?;
    let n = args.limit.unwrap_or(usize::MAX).min(ds.len());
    let ds: Arc<dyn burn::data::dataset::Dataset<ImageItem>> =
        Arc::new(Subset::new(ds, (0..n).collect()));
    let transforms = trained.info.eval_transforms.clone();
    if let Ok(first) = ds.get(0) {
        let img = apply_all(&transforms, first.image, 0, 0, 0).map_err(anyhow::Error::msg)?;
        if [img.channels, img.height, img.width] != trained.info.input {
            bail!(
                "{spec} images become {} after the run's transforms, but the model takes {:?}",
                img.shape_str(),
                trained.info.input
            );
        }
    }
    let summary = summarize(&trained.model, &trained.info.model, trained.info.input)?;
    let row = summary.row_of(&args.layer).with_context(|| {
        format!(
            "no layer `{}` in {}; the layers with outputs to show are: {}",
            args.layer,
            trained.info.model,
            viz::layer_names(&trained.model, trained.info.input, &device).join(", ")
        )
    })?;
    let hits = viz::top_patches(
        &trained.model,
        ds.clone(),
        &transforms,
        &args.layer,
        args.channels,
        args.top,
        &device,
    )?;
    let grid = viz::patch_grid(ds.as_ref(), &transforms, row, &hits)?;
    let out = out_path(args.out, &args.run, "patches", &args.layer);
    viz::save_png(&grid, &out)?;
    println!(
        "{}: receptive field {}x{} px, jump {}; top {} of {n} images for {} channels -> {}",
        args.layer,
        row.receptive_field,
        row.receptive_field,
        row.jump,
        args.top,
        hits.len(),
        out.display()
    );
    for list in &hits {
        let vals: Vec<String> = list.iter().map(|p| format!("{:.3}", p.value)).collect();
        println!("  channel {:>3}: {}", list[0].channel, vals.join(" "));
    }
    Ok(())
}

fn curves(args: CurvesArgs) -> Result<()> {
    let mut runs = Vec::new();
    for dir in &args.runs {
        let records = read_metrics(&RunDir::new(dir).metrics())?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string());
        runs.push((name, records));
    }
    ember_train::plot::curves_png(&runs, &args.out)?;
    println!("{} runs -> {}", runs.len(), args.out.display());
    Ok(())
}

fn gradients(args: GradientsArgs) -> Result<()> {
    let grads = read_gradients(&Diagnostics::gradients_path(&args.run))?;
    let acts = read_activations(&Diagnostics::activations_path(&args.run))?;
    let out = args.out.unwrap_or_else(|| args.run.join("gradients.png"));
    viz::diagnostics_png(&grads, &acts, &out)?;
    let last = grads.iter().map(|r| r.epoch).max().unwrap_or(0);
    println!("gradient norms at epoch {last} (first layer to last):");
    for r in grads.iter().filter(|r| r.epoch == last) {
        println!(
            "  {:<28} {:>12.4e}   weights {:>10.4}",
            r.gradient.layer, r.gradient.grad_norm, r.gradient.weight_norm
        );
    }
    println!("-> {}", out.display());
    Ok(())
}
