//! Learning-rate schedules as closed-form functions of the optimizer step.
//!
//! Burn has constant, step, exponential, cosine and linear schedulers but no one-cycle, and its
//! composed schedulers keep their position in several nested records. One function
//! `lr_at(step)` covers every schedule we offer, makes a resumed run continue exactly
//! (the record is one number: the step), and lets reports plot the schedule.
//!
//! ReduceLROnPlateau is a function of the step *and the validation metrics of the epochs
//! before it* ([`plateau_lr`]): it reads them from the run's records, which a resumed run
//! restores from `metrics.csv` (shortest round-trip decimals: the values the run saw), so
//! its state needs no record of its own and cannot disagree with the metrics.

use crate::config::{LrSchedule, Monitor, TrainConfig};
use crate::error::Result;
use crate::training::logger::SharedRecords;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::module::{Module, ParamGroup};
use burn::optim::LearningRate;
use std::f64::consts::PI;

/// A schedule over a run of `total_steps` optimizer steps.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Which formula, with its parameters.
    pub shape: LrSchedule,
    /// The base (or peak) learning rate.
    pub lr: f64,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Optimizer steps in the whole run.
    pub total_steps: u64,
    /// The next step.
    pub step: u64,
    /// The run's epoch records and the metric they are judged by (`plateau` reads them).
    pub history: Option<(SharedRecords, Monitor)>,
}

impl Schedule {
    /// The schedule a config asks for, for `steps_per_epoch` steps per epoch.
    pub fn from_config(config: &TrainConfig, steps_per_epoch: usize) -> Self {
        let spe = steps_per_epoch.max(1) as u64;
        Self {
            shape: config.schedule.typed(),
            lr: config.optim.lr,
            steps_per_epoch: spe,
            total_steps: total_steps(config, steps_per_epoch) as u64,
            step: 0,
            history: None,
        }
    }

    /// The same schedule reading the run's validation metrics from `records` (by `monitor`),
    /// which `plateau` needs.
    pub fn with_history(mut self, records: SharedRecords, monitor: Monitor) -> Self {
        self.history = Some((records, monitor));
        self
    }

    /// The same schedule with every rate times `factor` (fine-tuning's backbone rate).
    pub fn scaled(&self, factor: f64) -> Self {
        let mut shape = self.shape.clone();
        if let LrSchedule::Cosine { min_lr } | LrSchedule::WarmupCosine { min_lr, .. } = &mut shape
        {
            *min_lr *= factor;
        }
        if let LrSchedule::Plateau { min_lr, .. } = &mut shape {
            *min_lr *= factor;
        }
        Self {
            shape,
            lr: self.lr * factor,
            ..self.clone()
        }
    }

    /// The learning rate of optimizer step `t` (0-based).
    pub fn lr_at(&self, t: u64) -> f64 {
        let epoch = (t / self.steps_per_epoch) as f64;
        let total = self.total_steps.max(1) as f64;
        // Cosine from `hi` to `lo` as x goes from 0 to 1: lo + (hi - lo)(1 + cos(pi x)) / 2.
        let cosine = |hi: f64, lo: f64, x: f64| {
            lo + (hi - lo) * (1.0 + (PI * x.clamp(0.0, 1.0)).cos()) / 2.0
        };
        match &self.shape {
            LrSchedule::Constant => self.lr,
            LrSchedule::Step { step_size, gamma } => {
                self.lr * gamma.powi((epoch as usize / step_size.max(&1)) as i32)
            }
            LrSchedule::Exponential { gamma } => self.lr * gamma.powf(epoch),
            LrSchedule::Cosine { min_lr } => cosine(self.lr, *min_lr, t as f64 / total),
            LrSchedule::WarmupCosine {
                warmup_epochs,
                min_lr,
            } => {
                let warmup = (warmup_epochs * self.steps_per_epoch as f64).round() as u64;
                let w = warmup.min(self.total_steps);
                if t < w {
                    self.lr * (t + 1) as f64 / w as f64
                } else {
                    let rest = (self.total_steps - w).max(1) as f64;
                    cosine(self.lr, *min_lr, (t - w) as f64 / rest)
                }
            }
            LrSchedule::PiecewiseLinear { knots } => {
                self.lr * piecewise(knots, t, self.total_steps)
            }
            LrSchedule::Plateau { .. } => {
                let Some((records, monitor)) = &self.history else {
                    return self.lr;
                };
                let records = records.lock().unwrap_or_else(|e| e.into_inner());
                // The epochs before this step's, in order.
                let before: Vec<f64> = records
                    .iter()
                    .filter(|r| r.epoch as f64 <= epoch)
                    .filter_map(|r| r.monitored(*monitor))
                    .collect();
                plateau_lr(&self.shape, self.lr, *monitor, &before)
            }
            LrSchedule::OneCycle => {
                // PyTorch OneCycleLR: pct_start 0.3, div_factor 25, final_div_factor 1e4.
                let initial = self.lr / 25.0;
                let last = initial / 1e4;
                let up = (0.3 * total - 1.0).max(1.0);
                let down = (total - 1.0 - up).max(1.0);
                let t = t as f64;
                if t <= up {
                    cosine(self.lr, initial, 1.0 - t / up)
                } else {
                    cosine(self.lr, last, (t - up) / down)
                }
            }
        }
    }
}

/// The rate after ReduceLROnPlateau has seen `values` (one validation metric an epoch), from
/// `lr`; PyTorch's `ReduceLROnPlateau` step by step (`threshold_mode = "rel"`, `eps =
/// 1e-8`): an epoch improves when its value beats the best by more than `threshold` (relative:
/// `v < best (1 - threshold)` for a loss, `v > best (1 + threshold)` for an accuracy); after
/// more than `patience` epochs without improvement the rate becomes `max(lr factor, min_lr)`
/// (a change under 1e-8 is ignored), and `cooldown` epochs follow in which none are counted.
pub fn plateau_lr(shape: &LrSchedule, lr: f64, monitor: Monitor, values: &[f64]) -> f64 {
    let LrSchedule::Plateau {
        factor,
        patience,
        threshold,
        cooldown,
        min_lr,
    } = *shape
    else {
        return lr;
    };
    let better = |v: f64, best: f64| match monitor {
        Monitor::ValLoss => v < best * (1.0 - threshold),
        Monitor::ValAccuracy => v > best * (1.0 + threshold),
    };
    let mut best = match monitor {
        Monitor::ValLoss => f64::INFINITY,
        Monitor::ValAccuracy => f64::NEG_INFINITY,
    };
    let (mut rate, mut bad, mut cooling) = (lr, 0usize, 0usize);
    for &v in values {
        if better(v, best) {
            best = v;
            bad = 0;
        } else {
            bad += 1;
        }
        if cooling > 0 {
            cooling -= 1;
            bad = 0;
        }
        if bad > patience {
            let lower = (rate * factor).max(min_lr);
            if rate - lower > 1e-8 {
                rate = lower;
            }
            cooling = cooldown;
            bad = 0;
        }
    }
    rate
}

/// The run's learning rates per parameter: the config's schedule for every parameter, the
/// same scaled by `backbone`'s factor for its group (fine-tuning), and by each
/// `[[optim.groups]]` entry's `lr_factor` for its parameters of `net` (the last group wins).
pub fn module_schedule<M: Module>(
    config: &TrainConfig,
    net: &M,
    steps_per_epoch: usize,
    backbone: Option<(ParamGroup, f64)>,
    records: Option<SharedRecords>,
) -> Result<ModuleLrScheduler> {
    let mut schedule = Schedule::from_config(config, steps_per_epoch);
    if let Some(records) = records {
        schedule = schedule.with_history(records, config.train_loop.monitor);
    }
    let mut lr = ModuleLrScheduler::new(schedule.clone());
    if let Some((group, factor)) = backbone {
        lr = lr.with_group(group, schedule.scaled(factor));
    }
    for (group, factor) in crate::training::optim::lr_groups(config, net)? {
        lr = lr.with_group(group, schedule.scaled(factor));
    }
    Ok(lr)
}

/// Optimizer steps of the whole run at `steps_per_epoch` a full epoch: `epochs` of them, or
/// `ceil(fractional_epochs * steps_per_epoch)`.
pub fn total_steps(config: &TrainConfig, steps_per_epoch: usize) -> usize {
    let spe = steps_per_epoch.max(1);
    match config.train_loop.fractional_epochs {
        Some(f) => ((f * spe as f64).ceil() as usize).max(1),
        None => spe * config.train_loop.epochs.max(1),
    }
}

/// The factor at step `t` of `total` of the piecewise-linear function through `knots`
/// (`[fraction, factor]`, the fractions rising from 0 to 1); a knot at fraction `f` sits at
/// step `floor(f * total)`, and beyond the last knot the factor stays (`np.interp`).
pub fn piecewise(knots: &[[f64; 2]], t: u64, total: u64) -> f64 {
    let at = |f: f64| (f * total as f64).floor();
    let x = t as f64;
    let Some(first) = knots.first() else {
        return 1.0;
    };
    if x <= at(first[0]) {
        return first[1];
    }
    for w in knots.windows(2) {
        let ([f0, y0], [f1, y1]) = (w[0], w[1]);
        let (x0, x1) = (at(f0), at(f1));
        if x <= x1 {
            return if x1 > x0 {
                y0 + (y1 - y0) * (x - x0) / (x1 - x0)
            } else {
                y1
            };
        }
    }
    knots[knots.len() - 1][1]
}

impl LrScheduler for Schedule {
    fn step(&mut self) -> LearningRate {
        let lr = self.lr_at(self.step);
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar("step", self.step)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(step) = record.scalar::<u64>("step") {
            self.step = step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ScheduleKind;
    use crate::training::logger::EpochRecord;

    fn schedule(kind: ScheduleKind) -> Schedule {
        let config = TrainConfig {
            optim: crate::config::OptimConfig {
                lr: 0.1,
                ..Default::default()
            },
            train_loop: crate::config::LoopConfig {
                epochs: 10,
                ..Default::default()
            },
            schedule: crate::config::ScheduleConfig {
                kind,
                step_size: 3,
                gamma: 0.5,
                warmup_epochs: 2.0,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        Schedule::from_config(&config, 100)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn formulas() {
        let s = schedule(ScheduleKind::Constant);
        assert!(close(s.lr_at(0), 0.1) && close(s.lr_at(999), 0.1));

        let s = schedule(ScheduleKind::Step);
        assert!(close(s.lr_at(299), 0.1), "epoch 2 keeps lr");
        assert!(close(s.lr_at(300), 0.05), "epoch 3 halves it");
        assert!(close(s.lr_at(600), 0.025));

        let s = schedule(ScheduleKind::Exponential);
        assert!(close(s.lr_at(0), 0.1) && close(s.lr_at(250), 0.1 * 0.25));

        let s = schedule(ScheduleKind::Cosine);
        assert!(close(s.lr_at(0), 0.1));
        assert!(close(s.lr_at(500), 0.05), "half-way is half");
        assert!(s.lr_at(999) < 1e-5);

        let s = schedule(ScheduleKind::WarmupCosine);
        assert!(
            close(s.lr_at(0), 0.1 / 200.0),
            "warm-up starts at lr / warmup_steps"
        );
        assert!(close(s.lr_at(99), 0.05));
        assert!(close(s.lr_at(199), 0.1) && close(s.lr_at(200), 0.1), "peak");
        assert!(close(s.lr_at(600), 0.05), "half of the cosine part");

        let s = schedule(ScheduleKind::OneCycle);
        assert!(close(s.lr_at(0), 0.1 / 25.0));
        let peak = (0..1000).map(|t| s.lr_at(t)).fold(0.0, f64::max);
        assert!(close(peak, 0.1));
        assert!(
            close(s.lr_at(999), 0.1 / 25.0 / 1e4),
            "ends at initial / 1e4"
        );
    }

    #[test]
    fn piecewise_linear_is_airbench_np_interp() {
        // airbench94: np.interp(np.arange(1 + T), [0, int(0.23 T), T], [0.2, 1, 0.07]).
        let knots = [[0.0, 0.2], [0.23, 1.0], [1.0, 0.07]];
        let total = 426u64;
        let peak = (0.23 * total as f64) as u64; // 97
        assert!(close(piecewise(&knots, 0, total), 0.2));
        assert!(close(piecewise(&knots, peak, total), 1.0));
        let mid = 0.2 + 0.8 * 50.0 / peak as f64;
        assert!(close(piecewise(&knots, 50, total), mid));
        let down = 1.0 + (0.07 - 1.0) * (300 - peak) as f64 / (total - peak) as f64;
        assert!(close(piecewise(&knots, 300, total), down));
        assert!(close(piecewise(&knots, total, total), 0.07));
        assert!(
            close(piecewise(&knots, total + 5, total), 0.07),
            "flat past the end"
        );

        let mut s = schedule(ScheduleKind::PiecewiseLinear);
        s.shape = LrSchedule::PiecewiseLinear {
            knots: knots.to_vec(),
        };
        assert!(close(s.lr_at(0), 0.1 * 0.2));
        assert!(close(s.lr_at(230), 0.1), "the peak at 23% of 1000 steps");
    }

    #[test]
    fn a_scaled_schedule_scales_its_floor() {
        let mut s = schedule(ScheduleKind::WarmupCosine);
        s.shape = LrSchedule::WarmupCosine {
            warmup_epochs: 0.0,
            min_lr: 0.01,
        };
        let half = s.scaled(0.5);
        assert!(close(half.lr_at(0), 0.05));
        assert!(close(
            half.lr_at(999),
            0.005 + 0.045 * (1.0 + (PI * 0.999).cos()) / 2.0
        ));
    }

    #[test]
    fn fractional_epochs_cut_the_run() {
        let mut config = TrainConfig::default();
        config.train_loop.epochs = 10;
        config.train_loop.fractional_epochs = Some(9.9);
        // 45,000 images in batches of 1024, the last dropped: 43 steps an epoch.
        assert_eq!(total_steps(&config, 43), 426);
        assert_eq!(
            total_steps(&config, 48),
            476,
            "airbench's 476 on 50,000 images"
        );
        config.train_loop.fractional_epochs = None;
        assert_eq!(total_steps(&config, 43), 430);
    }

    /// The rates PyTorch 2.15's `ReduceLROnPlateau(opt, mode, factor=0.5, patience=2,
    /// threshold=1e-4, cooldown=1, min_lr=0.02)` gives after each of these values.
    #[test]
    fn plateau_is_pytorchs_reduce_lr_on_plateau() {
        let shape = LrSchedule::Plateau {
            factor: 0.5,
            patience: 2,
            threshold: 1e-4,
            cooldown: 1,
            min_lr: 0.02,
        };
        let cases: [(Monitor, &[f64], &[f64]); 2] = [
            (
                Monitor::ValLoss,
                &[
                    1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85,
                ],
                &[
                    0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025,
                ],
            ),
            (
                Monitor::ValAccuracy,
                &[0.5, 0.6, 0.6, 0.60001, 0.59, 0.7, 0.7, 0.7, 0.7, 0.7],
                &[0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025],
            ),
        ];
        for (monitor, values, torch) in cases {
            for (n, want) in torch.iter().enumerate() {
                let got = plateau_lr(&shape, 0.1, monitor, &values[..=n]);
                assert!(
                    close(got, *want),
                    "{monitor:?} after {}: {got} vs {want}",
                    n + 1
                );
            }
        }
        // The floor holds.
        let flat = vec![1.0; 40];
        assert!(close(
            plateau_lr(&shape, 0.1, Monitor::ValLoss, &flat),
            0.02
        ));

        // In a run: the rate of each epoch's steps follows the epochs before it.
        let mut s = schedule(ScheduleKind::Plateau);
        s.shape = shape;
        let records: SharedRecords = Default::default();
        let s = s.with_history(records.clone(), Monitor::ValLoss);
        assert!(close(s.lr_at(0), 0.1));
        for (e, v) in [1.0, 1.0, 1.0, 1.0].iter().enumerate() {
            records.lock().unwrap().push(EpochRecord {
                epoch: e + 1,
                val_loss: Some(*v),
                ..Default::default()
            });
        }
        assert!(
            close(s.lr_at(399), 0.1),
            "epoch 4 follows epochs 1-3: no drop yet"
        );
        assert!(
            close(s.lr_at(400), 0.05),
            "epoch 5 follows the 3rd epoch without gain"
        );
    }

    #[test]
    fn step_and_record_resume_the_position() {
        let mut a = schedule(ScheduleKind::Cosine);
        let first: Vec<f64> = (0..250).map(|_| a.step()).collect();
        assert!(close(first[0], 0.1));
        let mut b = schedule(ScheduleKind::Cosine);
        b.load_record(a.to_record());
        assert_eq!(b.step, 250);
        assert_eq!(a.step(), b.step());
    }
}
