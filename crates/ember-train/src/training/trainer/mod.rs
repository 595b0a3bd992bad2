//! One training run on Burn's Learner, from a [`TrainConfig`] to a run directory, through one
//! entry point, the [`Training`] builder (in the spirit of Burn's own
//! `SupervisedTraining::new(..).with_..().launch(..)`):
//!
//! ```no_run
//! # use ember_train::{config::TrainConfig, trainer::Training};
//! # let config = TrainConfig::default();
//! // The zoo model named in the config (fine-tuned when it has a `[finetune]` table).
//! let outcome = Training::new(&config).launch()?;
//! // Continue a killed run from its last checkpoint, showing progress your own way.
//! let outcome = Training::new(&config)
//!     .resume(true)
//!     .on_event(|event| eprintln!("{event}"))
//!     .launch()?;
//! # Ok::<(), ember_train::error::TrainError>(())
//! ```
//!
//! A network of your own trains the same way with [`Training::network`] (see
//! `examples/custom_model.rs`). The files follow the run: [`data`] (datasets, splits,
//! transforms), [`network`] (which network, devices, seeding, weights on disk), [`tuning`]
//! (fine-tuning's setup), [`phases`] (the run directory, resume, one Learner launch per
//! phase), [`learner`] (Burn's Learner wiring) and [`report`] (final weights and evaluation).

pub mod data;
pub mod learner;
pub mod network;
pub mod phases;
pub mod report;
mod strategy;
pub mod tuning;

pub use crate::events::{Event, Events, print_event};
pub use crate::store::weights::{load_weights, save_weights};
pub use data::{AsItems, RunData, load_data, train_transforms};
pub use learner::{best_epoch, epoch_items, optimizer_steps_per_epoch, run_steps};
pub use network::{devices, model_config, seeded_init};
pub use tuning::{Transfer, Tuning};

use crate::backend::Backend;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::inspect::eval::{EvalReport, EvalSplit};
use crate::store::run::{RunDir, RunInfo};
use crate::training::classifier::Network;
use crate::training::logger::{EpochHook, EpochRecord};
use burn::module::Module;
use burn::tensor::Device;

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    /// The run directory.
    pub run: RunDir,
    /// Every epoch's metrics, resumed ones included.
    pub records: Vec<EpochRecord>,
    /// The best epoch by the monitored metric (with validation).
    pub best_epoch: Option<usize>,
    /// The evaluation of the best (or final) weights on the test split, or the validation split.
    pub report: Option<EvalReport>,
    /// Which split the report is on.
    pub report_split: EvalSplit,
    /// Whether early stopping ended the run before `epochs`.
    pub stopped_early: bool,
    /// Wall-clock seconds of this invocation's training.
    pub seconds: f64,
    /// Of those, the seconds of the data-dependent initialisation (`loop.data_init_images`).
    pub data_init_seconds: f64,
}

/// What every run of a [`Training`] shares, whichever network it trains.
pub(crate) struct Setup<'a> {
    pub config: &'a TrainConfig,
    pub resume: bool,
    pub hook: Option<EpochHook>,
    pub events: Events,
}

/// The network of the config: the zoo model it names ([`Training::new`]).
#[derive(Debug, Clone, Copy)]
pub struct ZooModel;

/// A network of your own, built by a function of the run's [`RunInfo`] (image shape, classes)
/// and the device ([`Training::network`]).
#[derive(Debug, Clone)]
pub struct CustomNetwork<F> {
    build: F,
    transfer: Option<Transfer>,
}

/// One training run: the builder that is the entry point of every training (the `ember`
/// command, search trials, examples, tests).
pub struct Training<'a, N = ZooModel> {
    config: &'a TrainConfig,
    resume: bool,
    hook: Option<EpochHook>,
    events: Events,
    network: N,
}

impl<'a> Training<'a> {
    /// A run of the zoo model named in `config` (fine-tuned when `config.finetune` is set),
    /// written to `config.out`.
    pub fn new(config: &'a TrainConfig) -> Self {
        Self {
            config,
            resume: false,
            hook: None,
            events: Events::default(),
            network: ZooModel,
        }
    }
}

impl<'a, N> Training<'a, N> {
    /// With `true`, continues the run in `config.out` from its last complete checkpoint.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Asks `hook` after every epoch whether to stop (see [`EpochHook`]).
    pub fn with_hook(mut self, hook: EpochHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Hands every [`Event`] to `handler` instead of printing it.
    pub fn on_event(mut self, handler: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.events = Events::new(handler);
        self
    }

    /// Shows nothing: no events, no dashboard, no progress lines.
    pub fn silent(mut self) -> Self {
        self.events = Events::silent();
        self
    }

    /// Trains a network of your own instead of a zoo model: `build(info, device)` makes it
    /// for the run's images (`info.input`) and classes (`info.classes`). `config.model` names
    /// it in the run directory. The same function rebuilds it for evaluation and prediction
    /// ([`TrainedModel::load_with`](crate::inspect::predict::TrainedModel::load_with)).
    pub fn network<M, F>(self, build: F) -> Training<'a, CustomNetwork<F>>
    where
        M: Network,
        F: Fn(&RunInfo, &Device) -> Result<M>,
    {
        Training {
            config: self.config,
            resume: self.resume,
            hook: self.hook,
            events: self.events,
            network: CustomNetwork {
                build,
                transfer: None,
            },
        }
    }

    fn setup(&self) -> Setup<'a> {
        Setup {
            config: self.config,
            resume: self.resume,
            hook: self.hook.clone(),
            events: self.events.clone(),
        }
    }

    fn announce_backend(&self) {
        if self.config.runtime.backend == Backend::Auto {
            self.events.emit(Event::BackendChosen {
                reason: self.config.runtime.backend.resolve().reason,
            });
        }
    }
}

impl Training<'_, ZooModel> {
    /// Trains; returns what the run produced. A zoo model is a network built from its
    /// config, with its family's head, stages and torchvision names for fine-tuning.
    pub fn launch(self) -> Result<TrainOutcome> {
        let config = self.config;
        config.validate()?;
        self.announce_backend();
        let data = load_data(config)?;
        let device = load_device(config)?;
        let model_cfg = model_config(config, data.input, data.classes.len(), &device)?;
        let network = Zoo {
            transfer: Transfer {
                head: model_cfg.head(),
                stages: model_cfg.stages(),
            },
            keys: model_cfg.torchvision_keys(),
            config: model_cfg,
        };
        self.launch_network(data, Some(network.config.clone()), &network)
    }
}

/// A zoo model as the one launch sees any network.
struct Zoo {
    config: ember_models::ModelConfig,
    transfer: Transfer,
    keys: Option<ember_models::transfer::KeyTable>,
}

/// What the one launch needs of a network: how to build it, and where its head and stages
/// are for fine-tuning.
trait Buildable {
    type Net: Network;
    fn build(&self, info: &RunInfo, device: &Device) -> Result<Self::Net>;
    fn transfer(&self) -> Option<&Transfer>;
    fn keys(&self) -> Option<&ember_models::transfer::KeyTable> {
        None
    }
}

impl Buildable for Zoo {
    type Net = ember_models::Model;
    fn build(&self, _: &RunInfo, device: &Device) -> Result<Self::Net> {
        Ok(self.config.init(device)?)
    }
    fn transfer(&self) -> Option<&Transfer> {
        Some(&self.transfer)
    }
    fn keys(&self) -> Option<&ember_models::transfer::KeyTable> {
        self.keys.as_ref()
    }
}

impl<M: Network, F: Fn(&RunInfo, &Device) -> Result<M>> Buildable for CustomNetwork<F> {
    type Net = M;
    fn build(&self, info: &RunInfo, device: &Device) -> Result<M> {
        (self.build)(info, device)
    }
    fn transfer(&self) -> Option<&Transfer> {
        self.transfer.as_ref()
    }
}

impl<N> Training<'_, N> {
    /// The one launch: the run's description, then straight to the phases, or through
    /// fine-tuning's setup (pre-trained weights, a new head, frozen stages) when the config
    /// has a `[finetune]` table.
    fn launch_network<B: Buildable>(
        &self,
        data: RunData,
        model_config: Option<ember_models::ModelConfig>,
        network: &B,
    ) -> Result<TrainOutcome> {
        let config = self.config;
        let setup = self.setup();
        let info = RunInfo {
            model: config.model.clone(),
            model_config,
            input: data.input,
            classes: data.classes.clone(),
            eval_transforms: data.eval_transforms.clone(),
            dataset: config.data.dataset.clone(),
        };
        let for_build = info.clone();
        let build = |d: &Device| network.build(&for_build, d);
        let Some(ft) = &config.finetune else {
            return phases::train_network(&setup, data, info, build, None);
        };
        let transfer = network.transfer().ok_or_else(|| {
            TrainError::Config(format!(
                "fine-tuning `{}` needs its head and stages: give them with Training::network(build).with_transfer(Transfer {{ head, stages }})",
                config.model
            ))
        })?;
        let (tuning, pretrained) = tuning::prepare(
            config,
            ft,
            transfer,
            network.keys(),
            &build,
            &data,
            &load_device(config)?,
            &setup.events,
        )?;
        let start = |d: &Device| with_pretrained(build(d)?, pretrained.as_ref());
        phases::train_network(&setup, data, info, start, Some(&tuning))
    }
}

impl<F> Training<'_, CustomNetwork<F>> {
    /// Says where the network's classifier head and stages are, so that it can be fine-tuned
    /// (`config.finetune`: weights from a run or a file, a new head, frozen stages), as a
    /// zoo model's family says it for the zoo.
    pub fn with_transfer(mut self, transfer: Transfer) -> Self {
        self.network.transfer = Some(transfer);
        self
    }
}

impl<M, F> Training<'_, CustomNetwork<F>>
where
    M: Network,
    F: Fn(&RunInfo, &Device) -> Result<M>,
{
    /// Trains; returns what the run produced.
    pub fn launch(self) -> Result<TrainOutcome> {
        self.config.validate_options()?;
        self.announce_backend();
        let data = load_data(self.config)?;
        self.launch_network(data, None, &self.network)
    }
}

/// The devices' first, where weights are loaded before training.
fn load_device(config: &TrainConfig) -> Result<Device> {
    Ok(devices(config.runtime.backend, config.runtime.devices)?.remove(0))
}

/// `model` (made on the training device, so its parameters keep that device's gradient
/// tracking) with the values of `pretrained`, when there are any.
fn with_pretrained<M: Module>(mut model: M, pretrained: Option<&M>) -> Result<M> {
    if let Some(p) = pretrained {
        use burn::store::ModuleSnapshot;
        let result = model.apply(p.collect(None, None, true), None, None, true);
        if !result.errors.is_empty() || !result.missing.is_empty() {
            return Err(TrainError::Config(format!(
                "copying the pre-trained weights failed: {result}"
            )));
        }
    }
    Ok(model)
}
