//! A text renderer for runs without a terminal (CI logs, pipes, `nohup`).
//!
//! Burn 0.22 shows its TUI dashboard when stdout is a terminal and otherwise falls back to a
//! renderer that prints a `ProgressSnapshot { .. }` debug struct for every batch. This one
//! prints one readable line per interval and a summary per epoch:
//!
//! ```text
//! epoch 1/10 train  12,800/54,000  loss 0.4123  acc 87.31%  lr 1.00e-1  5,120 img/s  eta 8s
//! epoch 1/10 done in 12.1 s  train loss 0.3012 acc 90.87%  |  valid loss 0.0931 acc 97.20% top-5 99.95%
//! ```

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Default, Clone, Copy)]
struct Mean {
    sum: f64,
    n: usize,
    last: f64,
    final_value: Option<f64>,
}

impl Mean {
    fn get(&self) -> Option<f64> {
        self.final_value
            .or((self.n > 0).then(|| self.sum / self.n as f64))
    }
}

/// The renderer; see the module docs.
pub struct LineRenderer {
    names: HashMap<MetricId, String>,
    interval: Duration,
    total_epochs: usize,
    epoch: usize,
    split: String,
    split_total: usize,
    split_done: usize,
    split_start: Instant,
    epoch_start: Instant,
    last_print: Instant,
    means: HashMap<(String, &'static str), Mean>,
}

impl LineRenderer {
    /// Prints a progress line at most every `interval`.
    pub fn new(interval: Duration) -> Self {
        let now = Instant::now();
        Self {
            names: HashMap::new(),
            interval,
            total_epochs: 0,
            epoch: 1,
            split: "train".into(),
            split_total: 0,
            split_done: 0,
            split_start: now,
            epoch_start: now,
            last_print: now,
            means: HashMap::new(),
        }
    }

    fn record(&mut self, split: &'static str, state: MetricState) {
        let MetricState::Numeric(entry, Some(value)) = state else {
            return;
        };
        let Some(name) = self.names.get(&entry.metric_id).cloned() else {
            return;
        };
        let m = self.means.entry((name, split)).or_default();
        match value {
            NumericEntry::Final(v) => m.final_value = Some(v),
            other => {
                let v = other.current();
                m.sum += v;
                m.n += 1;
                m.last = v;
            }
        }
    }

    fn mean(&self, name: &str, split: &'static str) -> Option<f64> {
        // An empty split (no validation) reports NaN: show nothing for it.
        self.means
            .get(&(name.to_string(), split))
            .and_then(Mean::get)
            .filter(|v| v.is_finite())
    }

    fn metrics_text(&self, split: &'static str) -> String {
        let mut s = String::new();
        if let Some(v) = self.mean("Loss", split) {
            s += &format!("loss {v:.4}");
        }
        if let Some(v) = self.mean("Accuracy", split) {
            s += &format!("  acc {v:.2}%");
        }
        if let Some(v) = self.mean(crate::training::logger::TOP5, split) {
            s += &format!("  top-5 {v:.2}%");
        }
        s
    }

    fn progress_line(&self) -> String {
        let elapsed = self.split_start.elapsed().as_secs_f64().max(1e-9);
        let rate = self.split_done as f64 / elapsed;
        let eta = if rate > 0.0 {
            (self.split_total.saturating_sub(self.split_done)) as f64 / rate
        } else {
            0.0
        };
        let split: &'static str = if self.split == "train" {
            "train"
        } else {
            "valid"
        };
        let lr = self
            .means
            .get(&("Learning Rate".to_string(), "train"))
            .filter(|_| split == "train")
            .map(|m| format!("  lr {:.2e}", m.last))
            .unwrap_or_default();
        format!(
            "epoch {}/{} {:<5} {:>7}/{:<7} {}{}  {:.0} img/s  eta {:.0}s",
            self.epoch,
            self.total_epochs,
            split,
            self.split_done,
            self.split_total,
            self.metrics_text(split),
            lr,
            rate,
            eta
        )
    }
}

impl MetricsRendererTraining for LineRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record("train", state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record("valid", state);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for LineRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.record("test", state);
    }

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for LineRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch.max(1);
        self.epoch_start = Instant::now();
    }

    fn update_epoch(&mut self, epoch: usize) {
        let secs = self.epoch_start.elapsed().as_secs_f64();
        let valid = self.metrics_text("valid");
        let valid = if valid.is_empty() {
            String::new()
        } else {
            format!("  |  valid {valid}")
        };
        println!(
            "epoch {}/{} done in {secs:.1} s  train {}{valid}",
            epoch,
            self.total_epochs,
            self.metrics_text("train"),
        );
        self.means.clear();
        self.epoch = epoch + 1;
        self.epoch_start = Instant::now();
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_string();
        self.split_total = total_items;
        self.split_done = 0;
        self.split_start = Instant::now();
        self.last_print = Instant::now();
    }

    fn update_split(&mut self, items_processed: usize) {
        self.split_done = items_processed;
        if self.last_print.elapsed() >= self.interval {
            self.last_print = Instant::now();
            println!("{}", self.progress_line());
        }
    }

    fn end_split(&mut self) {}

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for LineRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, total_items: usize) {
        self.start_split("test", total_items);
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for LineRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }
}

/// A renderer that shows nothing: the ranks of a distributed run other than rank 0, whose
/// metrics are rank 0's (every rank sees the whole batches' outputs).
pub(crate) struct Silent;

impl MetricsRendererTraining for Silent {
    fn update_train(&mut self, _state: MetricState) {}
    fn update_valid(&mut self, _state: MetricState) {}
    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for Silent {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for Silent {
    fn start(&mut self, _: usize, _: usize, _: Option<usize>, _: Option<&str>) {}
    fn update_epoch(&mut self, _epoch: usize) {}
    fn start_split(&mut self, _split: &str, _total_items: usize) {}
    fn update_split(&mut self, _items_processed: usize) {}
    fn end_split(&mut self) {}
    fn end(&mut self) {}
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for Silent {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for Silent {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
