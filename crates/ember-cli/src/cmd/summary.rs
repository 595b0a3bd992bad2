//! `ember summary`.

use crate::args::BackendArg;
use anyhow::{Context, Result, bail};
use clap::Args;
use ember_models::registry::{ModelConfig, entries};
use ember_models::summary::{group_digits, human_macs};

#[derive(Args)]
pub struct SummaryArgs {
    /// Model name (see --list).
    #[arg(long, required_unless_present = "list")]
    model: Option<String>,
    /// Input image as C,H,W (default: the model's canonical input, e.g. 3,224,224).
    #[arg(long, value_parser = parse_input)]
    input: Option<[usize; 3]>,
    /// Number of output classes (default: the model's canonical number).
    #[arg(long)]
    classes: Option<usize>,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    json: bool,
    /// List every model: name, canonical input, parameters, MACs (a Markdown table).
    #[arg(long)]
    list: bool,
    /// Backend to build the (lazily initialised) model on.
    #[command(flatten)]
    backend: BackendArg,
}

fn parse_input(s: &str) -> Result<[usize; 3], String> {
    let parts: Vec<_> = s.split([',', 'x']).map(str::trim).collect();
    let dims: Vec<usize> = parts
        .iter()
        .map(|p| p.parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("`{s}` is not C,H,W (three positive integers, e.g. 3,224,224)"))?;
    match dims[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok([c, h, w]),
        _ => Err(format!(
            "`{s}` is not C,H,W (three positive integers, e.g. 3,224,224)"
        )),
    }
}

/// `H,W` (or `HxW`), both positive.
pub use ember_train::cli::parse_hw as parse_size;

pub fn run(args: SummaryArgs) -> Result<()> {
    let device = args.backend.device()?;
    if args.list {
        println!("| model | input | classes | params | MACs | description |");
        println!("|---|---|---|---:|---:|---|");
        for e in entries() {
            let input = e.config.canonical_input();
            let s = e
                .config
                .summary(e.name, input, &device)
                .with_context(|| format!("summarising {}", e.name))?;
            println!(
                "| `{}` | {}x{}x{} | {} | {} | {} | {} |",
                e.name,
                input[0],
                input[1],
                input[2],
                e.config.num_classes(),
                group_digits(s.total_params as u64),
                human_macs(s.total_macs),
                e.about
            );
        }
        return Ok(());
    }
    let Some(name) = args.model else {
        bail!("--model is required (see `ember summary --list`)");
    };
    let mut config = ModelConfig::from_name(&name)?;
    if let Some(n) = args.classes {
        if n == 0 {
            bail!("--classes must be at least 1");
        }
        config = config.with_num_classes(n);
    }
    let input = args.input.unwrap_or_else(|| config.canonical_input());
    let summary = config.summary(&name, input, &device)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{summary}");
    }
    Ok(())
}
