//! `ember train`'s flags as a clap `Args` group (feature `cli`), for the `ember` command and for
//! programs of your own: a flag given overrides the config file's (or a recipe's) value, a
//! flag left out keeps it, and `--set section.name=VALUE` reaches every knob, flag or not.
//!
//! No flag is written here: each comes from its knob's declaration in
//! [`config`](crate::config) ([`section!`](crate::section)), with the knob's doc as its help
//! and its default shown; the value is read as the knob's type reads it from a config file.
//!
//! ```no_run
//! # use clap::Parser;
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     train: ember_train::cli::TrainArgs,
//! }
//! let recipe = ember_train::TrainConfig::from_toml(include_str!("../../../recipes/lenet_mnist.toml"))
//!     .unwrap();
//! let config = Args::parse().train.config_over(recipe)?;
//! # Ok::<(), ember_train::error::TrainError>(())
//! ```

use crate::config::TrainConfig;
use crate::config::knob::{self, Flag, Knob, Section};
use crate::config::{DataConfig, LoopConfig, OptimConfig, RuntimeConfig, ScheduleConfig};
use crate::error::{Result, TrainError};
use crate::training::finetune::FinetuneConfig;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use ember_data::DatasetSpec;
use std::marker::PhantomData;
use std::path::PathBuf;

/// Which sections a [`KnobFlags`] group turns into flags.
pub trait FlagSections: 'static {
    /// Each section: its knobs, its heading, its defaults as text.
    fn sections() -> Vec<SectionFlags>;
    /// Whether the group also has `--set PATH=VALUE`.
    const SET: bool;
}

/// A section as [`KnobFlags`] needs it.
pub struct SectionFlags {
    heading: &'static str,
    knobs: &'static [Knob],
    defaults: Vec<(&'static str, Option<String>)>,
}

impl SectionFlags {
    fn of<S: Section>() -> Self {
        Self {
            heading: S::HEADING,
            knobs: S::KNOBS,
            defaults: knob::defaults::<S>(),
        }
    }
}

/// The sections of `ember train`: data, optimizer, schedule, loop, runtime.
pub struct TrainSections;

impl FlagSections for TrainSections {
    fn sections() -> Vec<SectionFlags> {
        vec![
            SectionFlags::of::<DataConfig>(),
            SectionFlags::of::<OptimConfig>(),
            SectionFlags::of::<ScheduleConfig>(),
            SectionFlags::of::<LoopConfig>(),
            SectionFlags::of::<RuntimeConfig>(),
        ]
    }
    const SET: bool = true;
}

/// The `[finetune]` section, for `ember finetune`.
pub struct FinetuneSection;

impl FlagSections for FinetuneSection {
    fn sections() -> Vec<SectionFlags> {
        vec![SectionFlags::of::<FinetuneConfig>()]
    }
    const SET: bool = false;
}

/// The flags of every flagged knob of some sections, and `--set`: what the user gave, in the
/// order the knobs are declared (then `--set`s in the order given).
pub struct KnobFlags<S: FlagSections> {
    given: Vec<(&'static Knob, String)>,
    sets: Vec<String>,
    sections: PhantomData<S>,
}

impl<S: FlagSections> KnobFlags<S> {
    /// The text given for the knob at `path` (`runtime.out`), if any.
    pub fn get(&self, path: &str) -> Option<&str> {
        let flagged = self.given.iter().rev().find(|(k, _)| k.path == path);
        let set = self.sets.iter().rev().find_map(|s| {
            let (p, v) = s.split_once('=')?;
            (TrainConfig::sectioned_path(p.trim()) == path).then_some(v)
        });
        set.or(flagged.map(|(_, v)| v.as_str()))
    }

    /// Gives the knob at `path` this text, as if its flag had been given.
    pub fn insert(&mut self, path: &str, value: impl Into<String>) -> Result<()> {
        let knob = TrainConfig::knob(path)
            .ok_or_else(|| TrainError::Config(format!("no knob `{path}`")))?;
        self.given.retain(|(k, _)| k.path != knob.path);
        self.given.push((knob, value.into()));
        Ok(())
    }

    /// Checks that the text of every flag given reads as its knob's type.
    pub fn check(&self) -> Result<()> {
        self.apply_to_table(&mut toml::Table::new())
    }

    /// Applies the flags given to a config table (sections at the top).
    pub fn apply_to_table(&self, table: &mut toml::Table) -> Result<()> {
        for (knob, raw) in &self.given {
            knob.set_in(table, raw).map_err(|e| bad_flag(knob, e))?;
        }
        Ok(())
    }

    /// Applies the flags given, then the `--set`s, to a config.
    pub fn apply(&self, config: &mut TrainConfig) -> Result<()> {
        let mut table = config.to_table()?;
        self.apply_to_table(&mut table)?;
        *config = TrainConfig::from_table(table).map_err(TrainError::Config)?;
        for set in &self.sets {
            let (path, value) = set.split_once('=').ok_or_else(|| {
                TrainError::Config(format!(
                    "--set takes PATH=VALUE (e.g. optim.lr=0.05), got `{set}`"
                ))
            })?;
            config.set(path.trim(), value.trim())?;
        }
        Ok(())
    }
}

/// The error of a flag whose text its knob's type does not read.
fn bad_flag(knob: &Knob, e: String) -> TrainError {
    let e = e.strip_prefix(&format!("{}: ", knob.path)).unwrap_or(&e);
    let name = knob.flag.name().unwrap_or(knob.path);
    TrainError::Config(format!("--{name}: {e}"))
}

/// `--help` text of a knob: its doc's first paragraph, with the default.
fn help(knob: &Knob, default: Option<&String>) -> (String, String) {
    let lines: Vec<&str> = knob.doc.lines().map(str::trim).collect();
    let short = lines
        .split(|l| l.is_empty())
        .next()
        .unwrap_or_default()
        .join(" ");
    let long = lines.join("\n");
    let with_default = |s: String| match (default, knob.flag) {
        (Some(d), Flag::Value(_)) if !d.is_empty() => format!("{s} [default: {d}]"),
        _ => s,
    };
    (with_default(short), with_default(long))
}

impl<S: FlagSections> Args for KnobFlags<S> {
    fn augment_args(mut cmd: Command) -> Command {
        for section in S::sections() {
            cmd = cmd.next_help_heading(section.heading);
            for (knob, (_, default)) in section.knobs.iter().zip(&section.defaults) {
                let Some(name) = knob.flag.name() else {
                    continue;
                };
                let (short, long) = help(knob, default.as_ref());
                let arg = Arg::new(knob.path).long(name).help(short).long_help(long);
                cmd = cmd.arg(match knob.flag {
                    Flag::Value(_) => arg
                        .value_name(knob.name.to_ascii_uppercase())
                        .action(ArgAction::Set),
                    _ => arg.action(ArgAction::SetTrue),
                });
            }
        }
        if S::SET {
            cmd = cmd.next_help_heading("Any knob").arg(
                Arg::new("set")
                    .long("set")
                    .value_name("PATH=VALUE")
                    .action(ArgAction::Append)
                    .help("Set any config knob: --set optim.lr=0.05, --set loop.lookahead.every=5, --set model_options.width_divisor=4 (after the flags; repeatable)"),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl<S: FlagSections> FromArgMatches for KnobFlags<S> {
    fn from_arg_matches(m: &ArgMatches) -> std::result::Result<Self, clap::Error> {
        let mut flags = Self {
            given: Vec::new(),
            sets: Vec::new(),
            sections: PhantomData,
        };
        flags.update_from_arg_matches(m)?;
        Ok(flags)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> std::result::Result<(), clap::Error> {
        for section in S::sections() {
            for knob in section.knobs {
                let value = match knob.flag {
                    Flag::None => None,
                    Flag::Value(_) => m.get_one::<String>(knob.path).cloned(),
                    Flag::On(_) => m.get_flag(knob.path).then(|| "true".to_string()),
                    Flag::Off(_) => m.get_flag(knob.path).then(|| "false".to_string()),
                };
                if let Some(v) = value {
                    self.given.retain(|(k, _)| k.path != knob.path);
                    self.given.push((knob, v));
                }
            }
        }
        if S::SET
            && let Some(sets) = m.get_many::<String>("set")
        {
            self.sets.extend(sets.cloned());
        }
        Ok(())
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// A TOML config (e.g. a run's config.toml); flags given beside it override its values.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its last complete checkpoint (its config.toml is used;
    /// --epochs may extend it).
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Zoo model name (`ember summary --list`).
    #[arg(long)]
    pub model: Option<String>,
    /// Every section's flags, from the knobs' declarations.
    #[command(flatten)]
    pub knobs: KnobFlags<TrainSections>,
}

impl TrainArgs {
    /// The config: the file (or the resumed run's), then the flags given.
    pub fn config(&self) -> Result<TrainConfig> {
        self.resolve(None)
    }

    /// The config of a recipe (an example's own defaults, e.g. `recipes/resnet_cifar.toml`)
    /// with the flags given; `--config` or `--resume` replace the recipe.
    pub fn config_over(&self, recipe: TrainConfig) -> Result<TrainConfig> {
        self.resolve(Some(recipe))
    }

    /// The config before validation: the file, the resumed run's or the recipe, then the flags.
    pub fn unchecked(&self, recipe: Option<TrainConfig>) -> Result<TrainConfig> {
        let given = self.config.is_some() || self.resume.is_some() || recipe.is_some();
        let mut c = match (&self.resume, &self.config, recipe) {
            (Some(dir), _, _) => {
                let mut c = TrainConfig::load(&dir.join("config.toml"))?;
                c.runtime.out = dir.clone();
                c
            }
            (None, Some(file), _) => TrainConfig::load(file)?,
            (None, None, Some(recipe)) => recipe,
            (None, None, None) => TrainConfig::default(),
        };
        if let Some(m) = &self.model {
            c.model = m.clone();
        }
        self.knobs.apply(&mut c).map_err(in_flag_terms)?;
        let missing = |m: &str| Err(TrainError::Config(m.to_string()));
        if !given && self.model.is_none() {
            return missing(
                "give --model NAME (`ember summary --list` lists them) or --config FILE",
            );
        }
        if !given && self.knobs.get("data.dataset").is_none() {
            return missing(&format!(
                "give --dataset ({}) or --config FILE",
                DatasetSpec::names()
            ));
        }
        if !given && self.knobs.get("runtime.out").is_none() {
            c.runtime.out = default_run_dir(&c.model, Some(&c.data.dataset), "");
        }
        Ok(c)
    }

    fn resolve(&self, recipe: Option<TrainConfig>) -> Result<TrainConfig> {
        let c = self.unchecked(recipe)?;
        c.validate().map_err(in_flag_terms)?;
        Ok(c)
    }
}

/// A library error in the CLI's words (see [`in_flag_words`]).
pub fn in_flag_terms(e: TrainError) -> TrainError {
    match e {
        TrainError::Knob { path, msg } => {
            TrainError::Config(in_flag_words(&format!("`{path}` {msg}")))
        }
        TrainError::Config(msg) => TrainError::Config(in_flag_words(&msg)),
        TrainError::Fit(msg) => TrainError::Fit(in_flag_words(&msg)),
        TrainError::File { path, msg } => TrainError::File {
            path,
            msg: in_flag_words(&msg),
        },
        other => other,
    }
}

/// Library text in the CLI's words: the library names knobs by config path in backticks
/// (`` `optim.lr` ``, `` `data.resize` = [224, 224] ``, `` `finetune.allow_partial` = true ``),
/// which a config file or API user reads as written; on the command line each knob with a flag
/// becomes it (`--lr`, `--resize [224, 224]`, `--allow-partial`).
pub fn in_flag_words(text: &str) -> String {
    TrainConfig::knobs().fold(text.to_string(), |t, k| {
        let quoted = format!("`{}`", k.path);
        if !t.contains(&quoted) {
            return t;
        }
        match k.flag {
            Flag::None => t,
            Flag::Value(f) => t
                .replace(&format!("{quoted} = "), &format!("--{f} "))
                .replace(&quoted, &format!("--{f}")),
            Flag::On(f) => t
                .replace(&format!("{quoted} = true"), &format!("--{f}"))
                .replace(&quoted, &format!("--{f}")),
            Flag::Off(f) => t
                .replace(&format!("{quoted} = false"), &format!("--{f}"))
                .replace(&quoted, &format!("--{f}")),
        }
    })
}

/// `runs/MODEL-DATASET{suffix}`, the run directory of a training given no `--out`
/// (`folder:data/x` becomes `folder_data_x`).
pub fn default_run_dir(model: &str, dataset: Option<&DatasetSpec>, suffix: &str) -> PathBuf {
    let ds = dataset
        .map(|d| d.to_string().replace(['/', ':'], "_"))
        .unwrap_or_default();
    PathBuf::from(format!("runs/{model}-{ds}{suffix}"))
}

/// `H,W` (or `HxW`): two positive integers (for flags of other commands, e.g. `--input`).
pub use crate::config::parse_hw;
