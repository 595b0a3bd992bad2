//! Typed views of the `[optim]` and `[schedule]` sections: each kind with exactly the
//! parameters it reads, as Burn composes `SgdConfig { momentum: Option<MomentumConfig> }`.
//!
//! The file form stays flat (`kind = "step"` beside `gamma = 0.5`), not a
//! `#[serde(tag = "kind")]` enum, for two reasons: flags compose in any order
//! (`--gamma 0.5 --schedule step` sets the knob before the kind that reads it), and every
//! saved run and search space, which write the flat keys, keeps loading. What a tagged enum
//! would add, a parameter the kind does not read is rejected, the check here does: a knob
//! set away from its default while the kind ignores it is an error naming the kinds that read
//! it (`schedule.gamma` is read by `step` and `exponential`, not by `cosine`).
//!
//! Each kind's knobs are declared once, in `reads`; the typed views are built from them, and a
//! test proves the two agree (changing a knob changes the view exactly when the kind reads it).

use super::knob::{Section, shown};
use super::{OptimConfig, OptimizerKind, ScheduleConfig, ScheduleKind};
use crate::error::{Result, TrainError};

/// A learning-rate schedule with the parameters of its formula (the peak rate is `optim.lr`).
#[derive(Debug, Clone, PartialEq)]
pub enum LrSchedule {
    /// `lr` throughout.
    Constant,
    /// `lr * gamma^floor(epoch / step_size)`.
    Step {
        /// Epochs between decays (at least 1).
        step_size: usize,
        /// Decay factor.
        gamma: f64,
    },
    /// `lr * gamma^epoch`.
    Exponential {
        /// Decay factor per epoch.
        gamma: f64,
    },
    /// Cosine annealing from `lr` to `min_lr` over the run.
    Cosine {
        /// The floor.
        min_lr: f64,
    },
    /// Linear warm-up over `warmup_epochs`, then cosine annealing to `min_lr`.
    WarmupCosine {
        /// Warm-up length in epochs.
        warmup_epochs: f64,
        /// The floor.
        min_lr: f64,
    },
    /// Smith's one-cycle with PyTorch's `OneCycleLR` defaults.
    OneCycle,
    /// Linear between `[fraction of the run, factor of lr]` knots.
    PiecewiseLinear {
        /// The knots, fractions rising from 0 to 1.
        knots: Vec<[f64; 2]>,
    },
    /// ReduceLROnPlateau on the monitored validation metric.
    Plateau {
        /// The factor of each drop.
        factor: f64,
        /// Epochs without improvement before a drop.
        patience: usize,
        /// Relative improvement that counts.
        threshold: f64,
        /// Epochs after a drop before counting again.
        cooldown: usize,
        /// The floor.
        min_lr: f64,
    },
}

impl ScheduleKind {
    /// The `[schedule]` knobs this kind reads, besides `kind` (every kind reads `optim.lr`).
    pub fn reads(self) -> &'static [&'static str] {
        match self {
            ScheduleKind::Constant | ScheduleKind::OneCycle => &[],
            ScheduleKind::Step => &["step_size", "gamma"],
            ScheduleKind::Exponential => &["gamma"],
            ScheduleKind::Cosine => &["min_lr"],
            ScheduleKind::WarmupCosine => &["warmup_epochs", "min_lr"],
            ScheduleKind::PiecewiseLinear => &["knots"],
            ScheduleKind::Plateau => &["gamma", "patience", "threshold", "cooldown", "min_lr"],
        }
    }
}

impl ScheduleConfig {
    /// The schedule as its kind reads it.
    pub fn typed(&self) -> LrSchedule {
        match self.kind {
            ScheduleKind::Constant => LrSchedule::Constant,
            ScheduleKind::Step => LrSchedule::Step {
                step_size: self.step_size.max(1),
                gamma: self.gamma,
            },
            ScheduleKind::Exponential => LrSchedule::Exponential { gamma: self.gamma },
            ScheduleKind::Cosine => LrSchedule::Cosine {
                min_lr: self.min_lr,
            },
            ScheduleKind::WarmupCosine => LrSchedule::WarmupCosine {
                warmup_epochs: self.warmup_epochs,
                min_lr: self.min_lr,
            },
            ScheduleKind::OneCycle => LrSchedule::OneCycle,
            ScheduleKind::PiecewiseLinear => LrSchedule::PiecewiseLinear {
                knots: self.knots.clone(),
            },
            ScheduleKind::Plateau => LrSchedule::Plateau {
                factor: self.gamma,
                patience: self.patience,
                threshold: self.threshold,
                cooldown: self.cooldown,
                min_lr: self.min_lr,
            },
        }
    }

    /// Errors when a knob is set that this kind does not read.
    pub fn check_kind_reads(&self) -> Result<()> {
        check_reads(
            self,
            "schedule",
            &self.kind.name(),
            self.kind.reads(),
            |name| readers(&ScheduleKind::ALL, name, |k| k.reads(), |k| k.name()),
        )
    }
}

/// An optimizer with the parameters it reads (the rate, decay, clipping and groups are
/// every optimizer's).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerSpec {
    /// Minibatch SGD; heavy-ball momentum when `momentum > 0`, Nesterov's when `nesterov`.
    Sgd {
        /// Momentum (0: plain SGD).
        momentum: f64,
        /// Nesterov's momentum.
        nesterov: bool,
    },
    /// AdaGrad.
    Adagrad,
    /// RMSProp, smoothing 0.99.
    Rmsprop {
        /// Momentum (0: none).
        momentum: f64,
    },
    /// AdaDelta, rho 0.9.
    Adadelta,
    /// Adam.
    Adam,
    /// AdamW.
    Adamw,
}

impl OptimizerKind {
    /// The kind-dependent `[optim]` knobs this optimizer reads.
    pub fn reads(self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Sgd | OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                &["momentum", "nesterov"]
            }
            OptimizerKind::Rmsprop => &["momentum"],
            OptimizerKind::Adagrad
            | OptimizerKind::Adadelta
            | OptimizerKind::Adam
            | OptimizerKind::Adamw => &[],
        }
    }
}

/// The `[optim]` knobs only some optimizers read.
const OPTIM_KIND_KNOBS: [&str; 2] = ["momentum", "nesterov"];

impl OptimConfig {
    /// The optimizer as its kind reads it.
    pub fn typed(&self) -> OptimizerSpec {
        let momentum = self.momentum();
        match self.optimizer {
            OptimizerKind::Sgd | OptimizerKind::Momentum | OptimizerKind::Nesterov => {
                OptimizerSpec::Sgd {
                    momentum,
                    nesterov: self.nesterov || self.optimizer == OptimizerKind::Nesterov,
                }
            }
            OptimizerKind::Adagrad => OptimizerSpec::Adagrad,
            OptimizerKind::Rmsprop => OptimizerSpec::Rmsprop { momentum },
            OptimizerKind::Adadelta => OptimizerSpec::Adadelta,
            OptimizerKind::Adam => OptimizerSpec::Adam,
            OptimizerKind::Adamw => OptimizerSpec::Adamw,
        }
    }

    /// Errors when a knob is set that this optimizer does not read.
    pub fn check_kind_reads(&self) -> Result<()> {
        let kind = self.optimizer;
        let ignored: Vec<&str> = OPTIM_KIND_KNOBS
            .into_iter()
            .filter(|k| !kind.reads().contains(k))
            .collect();
        check_listed(self, "optim", &kind.name(), &ignored, |name| {
            readers(&OptimizerKind::ALL, name, |k| k.reads(), |k| k.name())
        })
    }
}

/// `section`'s knobs other than `kind`'s own and those `reads` lists must keep their defaults.
fn check_reads<S: Section>(
    section: &S,
    name: &str,
    kind: &str,
    reads: &[&str],
    readers: impl Fn(&str) -> String,
) -> Result<()> {
    let ignored: Vec<&str> = S::KNOBS
        .iter()
        .map(|k| k.name)
        .filter(|n| *n != "kind" && !reads.contains(n))
        .collect();
    check_listed(section, name, kind, &ignored, readers)
}

/// The knobs named in `ignored` must keep their defaults.
fn check_listed<S: Section>(
    section: &S,
    name: &str,
    kind: &str,
    ignored: &[&str],
    readers: impl Fn(&str) -> String,
) -> Result<()> {
    let table = |s: &S| {
        toml::Value::try_from(s)
            .ok()
            .and_then(|v| v.as_table().cloned())
            .unwrap_or_default()
    };
    let (set, default) = (table(section), table(&S::default()));
    for knob in ignored {
        if set.get(*knob) != default.get(*knob) {
            let value = set.get(*knob).map(shown).unwrap_or_else(|| "(none)".into());
            return Err(TrainError::Knob {
                path: format!("{name}.{knob}"),
                msg: format!(
                    "is not read by `{kind}` (only by {}): remove it or choose one of those, got {value}",
                    readers(knob)
                ),
            });
        }
    }
    Ok(())
}

/// The kinds that read `knob`, as `` `step`, `exponential` ``.
fn readers<K: Copy>(
    all: &[K],
    knob: &str,
    reads: impl Fn(K) -> &'static [&'static str],
    name: impl Fn(K) -> String,
) -> String {
    all.iter()
        .filter(|k| reads(**k).contains(&knob))
        .map(|k| format!("`{}`", name(*k)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    /// A value of each kind-dependent knob unlike its default.
    fn changed(section: &str, knob: &str, c: &mut TrainConfig) {
        match (section, knob) {
            ("schedule", "step_size") => c.schedule.step_size = 7,
            ("schedule", "gamma") => c.schedule.gamma = 0.5,
            ("schedule", "warmup_epochs") => c.schedule.warmup_epochs = 2.0,
            ("schedule", "min_lr") => c.schedule.min_lr = 1e-3,
            ("schedule", "knots") => c.schedule.knots = vec![[0.0, 1.0], [1.0, 0.5]],
            ("schedule", "patience") => c.schedule.patience = 3,
            ("schedule", "threshold") => c.schedule.threshold = 0.01,
            ("schedule", "cooldown") => c.schedule.cooldown = 2,
            ("optim", "momentum") => c.optim.momentum = Some(0.5),
            ("optim", "nesterov") => c.optim.nesterov = true,
            other => panic!("no changed value for {other:?}: add one"),
        }
    }

    #[test]
    fn a_schedule_reads_exactly_the_knobs_it_declares() {
        for kind in ScheduleKind::ALL {
            for knob in ScheduleConfig::KNOBS.iter().filter(|k| k.name != "kind") {
                let mut c = TrainConfig::default();
                c.schedule.kind = kind;
                if kind == ScheduleKind::PiecewiseLinear {
                    c.schedule.knots = vec![[0.0, 1.0], [1.0, 0.1]];
                }
                let before = c.schedule.typed();
                changed("schedule", knob.name, &mut c);
                let reads = kind.reads().contains(&knob.name);
                assert_eq!(
                    c.schedule.typed() != before,
                    reads,
                    "{}: {} (declared {reads})",
                    kind.name(),
                    knob.name
                );
                assert_eq!(c.validate_options().is_ok(), reads, "{:?}", kind);
            }
        }
    }

    #[test]
    fn an_optimizer_reads_exactly_the_knobs_it_declares() {
        for kind in OptimizerKind::ALL {
            for knob in OPTIM_KIND_KNOBS {
                let mut c = TrainConfig::default();
                c.optim.optimizer = kind;
                c.optim.momentum = Some(0.9);
                let before = c.optim.typed();
                let reads = kind.reads().contains(&knob);
                if knob == "momentum" {
                    c.optim.momentum = Some(0.5);
                } else {
                    changed("optim", knob, &mut c);
                }
                // Nesterov's kind is already Nesterov: its switch is read, and changes nothing.
                let differs = c.optim.typed() != before;
                if kind != OptimizerKind::Nesterov || knob != "nesterov" {
                    assert_eq!(differs, reads, "{}: {knob}", kind.name());
                }
            }
        }
    }

    #[test]
    fn an_unread_knob_is_an_error_naming_its_readers() {
        let mut c = TrainConfig::default();
        c.schedule.kind = ScheduleKind::Cosine;
        c.schedule.gamma = 0.5;
        let e = c.validate_options().unwrap_err().to_string();
        assert!(
            e.contains("`schedule.gamma` is not read by `cosine`")
                && e.contains("only by `step`, `exponential`")
                && e.ends_with("got 0.5"),
            "{e}"
        );
        let mut c = TrainConfig::default();
        c.optim.optimizer = OptimizerKind::Adam;
        c.optim.momentum = Some(0.9);
        let e = c.validate_options().unwrap_err().to_string();
        assert!(
            e.contains("`optim.momentum` is not read by `adam`")
                && e.contains("`sgd`, `momentum`, `nesterov`, `rmsprop`"),
            "{e}"
        );
        // The defaults of unread knobs are fine: every kind validates as written.
        for kind in ScheduleKind::ALL {
            let mut c = TrainConfig::default();
            c.schedule.kind = kind;
            if kind == ScheduleKind::PiecewiseLinear {
                c.schedule.knots = vec![[0.0, 1.0], [1.0, 0.1]];
            }
            c.validate_options().unwrap();
        }
    }
}
