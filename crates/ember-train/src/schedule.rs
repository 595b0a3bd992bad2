//! Learning-rate schedules as closed-form functions of the optimizer step.
//!
//! Burn has constant, step, exponential, cosine and linear schedulers but no one-cycle, and its
//! composed schedulers keep their position in several nested records. One function
//! `lr_at(step)` covers all six schedules we offer, makes a resumed run continue exactly
//! (the record is one number: the step), and lets reports plot the schedule.

use crate::config::{ScheduleKind, TrainConfig};
use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::LearningRate;
use std::f64::consts::PI;

/// A schedule over a run of `total_steps` optimizer steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Which formula.
    pub kind: ScheduleKind,
    /// The base (or peak) learning rate.
    pub lr: f64,
    /// Floor of the cosine schedules.
    pub min_lr: f64,
    /// Decay factor per `step_size` epochs (step) or per epoch (exponential).
    pub gamma: f64,
    /// Epochs between step decays.
    pub step_size: usize,
    /// Warm-up steps (`warmup-cosine`).
    pub warmup_steps: u64,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: u64,
    /// Optimizer steps in the whole run.
    pub total_steps: u64,
    /// The next step.
    pub step: u64,
}

impl Schedule {
    /// The schedule a config asks for, for `steps_per_epoch` steps per epoch.
    pub fn from_config(config: &TrainConfig, steps_per_epoch: usize) -> Self {
        let spe = steps_per_epoch.max(1) as u64;
        Self {
            kind: config.schedule.kind,
            lr: config.optim.lr,
            min_lr: config.schedule.min_lr,
            gamma: config.schedule.gamma,
            step_size: config.schedule.step_size.max(1),
            warmup_steps: (config.schedule.warmup_epochs * spe as f64).round() as u64,
            steps_per_epoch: spe,
            total_steps: spe * config.train_loop.epochs.max(1) as u64,
            step: 0,
        }
    }

    /// The same schedule with every rate times `factor` (fine-tuning's backbone rate).
    pub fn scaled(&self, factor: f64) -> Self {
        Self {
            lr: self.lr * factor,
            min_lr: self.min_lr * factor,
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
        match self.kind {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Step => {
                self.lr * self.gamma.powi((epoch as usize / self.step_size) as i32)
            }
            ScheduleKind::Exponential => self.lr * self.gamma.powf(epoch),
            ScheduleKind::Cosine => cosine(self.lr, self.min_lr, t as f64 / total),
            ScheduleKind::WarmupCosine => {
                let w = self.warmup_steps.min(self.total_steps);
                if t < w {
                    self.lr * (t + 1) as f64 / w as f64
                } else {
                    let rest = (self.total_steps - w).max(1) as f64;
                    cosine(self.lr, self.min_lr, (t - w) as f64 / rest)
                }
            }
            ScheduleKind::OneCycle => {
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
