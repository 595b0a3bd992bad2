//! Per-epoch metrics from Burn's event store into `metrics.csv`, one row per epoch.
//!
//! Burn logs every batch under `train/epoch-N/*.log`; users (and `ember viz curves`, and the
//! search) want one table. A [`MetricLogger`] sees each metric's running epoch mean and the end
//! of every split, whichever renderer (dashboard or text) is showing progress.

use crate::error::{Result, TrainError};
use crate::events::{Event, Events};
use crate::store::run::write_atomic;
use crate::training::diagnostics::Diagnostics;
use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One epoch's metrics. Accuracies are fractions in [0, 1].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: Option<f64>,
    /// Training accuracy (on augmented images, in training mode).
    pub train_accuracy: Option<f64>,
    /// Training top-5 accuracy.
    pub train_top5: Option<f64>,
    /// Validation loss.
    pub val_loss: Option<f64>,
    /// Validation accuracy.
    pub val_accuracy: Option<f64>,
    /// Validation top-5 accuracy.
    pub val_top5: Option<f64>,
    /// Mean learning rate over the epoch.
    pub lr: Option<f64>,
    /// Training throughput, images per second.
    pub train_images_per_sec: Option<f64>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: Option<f64>,
}

const HEADER: &str = "epoch,train_loss,train_accuracy,train_top5,val_loss,val_accuracy,val_top5,lr,train_images_per_sec,seconds";

impl EpochRecord {
    /// The validation metric `monitor` names, if this epoch was validated.
    pub fn monitored(&self, monitor: crate::config::Monitor) -> Option<f64> {
        match monitor {
            crate::config::Monitor::ValAccuracy => self.val_accuracy,
            crate::config::Monitor::ValLoss => self.val_loss,
        }
    }

    fn csv(&self) -> String {
        // Shortest round-trip decimal: the file holds exactly the values the run saw.
        let f = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
        format!(
            "{},{},{},{},{},{},{},{},{},{}",
            self.epoch,
            f(self.train_loss),
            f(self.train_accuracy),
            f(self.train_top5),
            f(self.val_loss),
            f(self.val_accuracy),
            f(self.val_top5),
            f(self.lr),
            f(self.train_images_per_sec),
            f(self.seconds),
        )
    }
}

/// Reads a run's `metrics.csv`.
pub fn read_metrics(path: &Path) -> Result<Vec<EpochRecord>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| TrainError::file(path, format!("cannot read the metrics: {e}")))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim() == HEADER => {}
        _ => {
            return Err(TrainError::file(
                path,
                format!("not an Ember metrics file (expected the header `{HEADER}`)"),
            ));
        }
    }
    lines
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split(',').collect();
            let bad = || {
                TrainError::file(
                    path,
                    format!("line {}: expected 10 comma-separated columns", i + 2),
                )
            };
            if cols.len() != 10 {
                return Err(bad());
            }
            let num = |s: &str| -> Result<Option<f64>> {
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse().map(Some).map_err(|_| bad())
                }
            };
            Ok(EpochRecord {
                epoch: cols[0].parse().map_err(|_| bad())?,
                train_loss: num(cols[1])?,
                train_accuracy: num(cols[2])?,
                train_top5: num(cols[3])?,
                val_loss: num(cols[4])?,
                val_accuracy: num(cols[5])?,
                val_top5: num(cols[6])?,
                lr: num(cols[7])?,
                train_images_per_sec: num(cols[8])?,
                seconds: num(cols[9])?,
            })
        })
        .collect()
}

/// Writes `metrics.csv` atomically.
pub fn write_metrics(path: &Path, records: &[EpochRecord]) -> Result<()> {
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in records {
        text.push_str(&r.csv());
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

/// The epochs recorded so far, shared between Burn's event thread and the trainer.
pub type SharedRecords = Arc<Mutex<Vec<EpochRecord>>>;

/// Burn metric logger writing `metrics.csv`.
pub struct RunLogger {
    path: PathBuf,
    records: SharedRecords,
    names: HashMap<MetricId, String>,
    /// Latest epoch-level value per (metric, split).
    latest: HashMap<(String, bool), f64>,
    /// Every epoch's value per (metric, split, epoch): answers Burn's `read_numeric` (best
    /// checkpoint, early stopping) when its file logger cannot.
    epochs: HashMap<(String, bool, usize), f64>,
    train_items: usize,
    epoch_items: Option<EpochItems>,
    has_validation: bool,
    epoch_start: Option<Instant>,
    train_seconds: Option<f64>,
    diagnostics: Option<Diagnostics>,
    hook: Option<(EpochHook, Interrupter)>,
    events: Events,
}

/// Called with each finished epoch's row; returning `true` stops training after that epoch
/// (the hyper-parameter search's pruners).
pub type EpochHook = Arc<dyn Fn(&EpochRecord) -> bool + Send + Sync>;

/// The images an epoch (1-based) trains on, when it is not the training split's size
/// (dropped short batches, a fractional last epoch).
pub type EpochItems = Arc<dyn Fn(usize) -> usize + Send + Sync>;

impl RunLogger {
    /// A logger writing to `path`, starting from `records` (earlier epochs of a resumed run).
    pub fn new(
        path: PathBuf,
        records: SharedRecords,
        train_items: usize,
        has_validation: bool,
    ) -> Self {
        Self {
            path,
            records,
            names: HashMap::new(),
            latest: HashMap::new(),
            epochs: HashMap::new(),
            train_items,
            epoch_items: None,
            has_validation,
            epoch_start: None,
            train_seconds: None,
            diagnostics: None,
            hook: None,
            events: Events::default(),
        }
    }

    /// Counts each epoch's images with `items` for the training rate.
    pub fn with_epoch_items(mut self, items: EpochItems) -> Self {
        self.epoch_items = Some(items);
        self
    }

    /// Reports a file it cannot write (the run goes on) to `events` instead of printing it.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    /// Asks `hook` after every epoch whether to stop, stopping through `interrupter`.
    pub fn with_hook(mut self, hook: Option<EpochHook>, interrupter: Interrupter) -> Self {
        self.hook = hook.map(|h| (h, interrupter));
        self
    }

    /// Also writes the epoch's gradient and activation statistics.
    pub fn with_diagnostics(mut self, diagnostics: Option<Diagnostics>) -> Self {
        self.diagnostics = diagnostics;
        self
    }

    fn value(&self, name: &str, valid: bool) -> Option<f64> {
        self.latest.get(&(name.to_string(), valid)).copied()
    }

    fn finish_epoch(&mut self, epoch: usize) {
        let pct = |v: Option<f64>| v.map(|x| x / 100.0);
        let seconds = self.epoch_start.map(|t| t.elapsed().as_secs_f64());
        let record = EpochRecord {
            epoch,
            train_loss: self.value("Loss", false),
            train_accuracy: pct(self.value("Accuracy", false)),
            train_top5: pct(self.value(TOP5, false)),
            val_loss: self.value("Loss", true),
            val_accuracy: pct(self.value("Accuracy", true)),
            val_top5: pct(self.value(TOP5, true)),
            lr: self.value("Learning Rate", false),
            train_images_per_sec: self.train_seconds.map(|s| {
                let items = self
                    .epoch_items
                    .as_ref()
                    .map_or(self.train_items, |f| f(epoch));
                items as f64 / s.max(1e-9)
            }),
            seconds,
        };
        if let Some((hook, interrupter)) = &self.hook
            && hook(&record)
        {
            interrupter.stop(Some(&format!(
                "stopped after epoch {epoch} by the search's pruner"
            )));
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.retain(|r| r.epoch < epoch);
        records.push(record);
        if let Err(e) = write_metrics(&self.path, &records) {
            self.events.emit(Event::LogFailed(e.to_string()));
        }
        if let Some(Err(e)) = self.diagnostics.as_ref().map(|d| d.flush(epoch)) {
            self.events.emit(Event::LogFailed(e.to_string()));
        }
        self.latest.clear();
        self.epoch_start = None;
        self.train_seconds = None;
    }
}

/// Burn's name of the top-5 accuracy metric.
pub const TOP5: &str = "Top-K Accuracy @ TopK(5)";

impl MetricLogger for RunLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        if self.epoch_start.is_none() {
            self.epoch_start = Some(Instant::now());
        }
        let valid = matches!(split, Split::Valid);
        for u in update.entries_numeric {
            let Some(name) = self.names.get(&u.entry.metric_id).cloned() else {
                continue;
            };
            let value = match (u.numeric_entry, u.running_entry) {
                (Some(NumericEntry::Final(v)), _) => Some(v),
                (_, Some(running)) => Some(running.current()),
                _ => None,
            };
            // An empty split (no validation) reports NaN: record nothing for it.
            if let Some(v) = value.filter(|v| !v.is_nan()) {
                self.epochs.insert((name.clone(), valid, epoch), v);
                self.latest.insert((name, valid), v);
            }
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        // No value is an empty list, as Burn's file logger answers for an epoch not run yet
        // (Burn's search for the best epoch walks epochs until one is empty).
        let valid = matches!(split, Split::Valid);
        Ok(self
            .epochs
            .get(&(name.to_string(), valid, epoch))
            .map(|&v| vec![NumericEntry::Final(v)])
            .unwrap_or_default())
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        match summary.split {
            Split::Train => {
                self.train_seconds = self.epoch_start.map(|t| t.elapsed().as_secs_f64());
                if !self.has_validation {
                    self.finish_epoch(summary.epoch_number);
                }
            }
            Split::Valid if self.has_validation => self.finish_epoch(summary.epoch_number),
            _ => {}
        }
    }
}

thread_local! {
    /// How many [`Guarded`] calls this thread is inside: a panic there is caught and reported
    /// as a warning, not a bug.
    static HANDLED_PANICS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Whether a panic on this thread will be caught and reported by a [`Guarded`] logger: a
/// process-wide panic hook (the CLI's "internal error, this is a bug" line) stays quiet then.
pub fn panic_is_handled() -> bool {
    HANDLED_PANICS.with(|n| n.get() > 0)
}

/// A metric logger that cannot bring training down: Burn's `FileMetricLogger` `expect`s on
/// every write (a full disk, a file where it wants a folder), and a panic there would end a run
/// that could go on. The first panic is reported once and the logger is switched off; its
/// `read_numeric` then answers with an error, so Burn asks the next logger ([`RunLogger`],
/// which keeps every epoch's value).
pub struct Guarded<L> {
    inner: Option<L>,
    what: &'static str,
    events: Events,
}

impl<L: MetricLogger> Guarded<L> {
    /// Guards `inner`, named `what` in the warning.
    pub fn new(inner: L, what: &'static str) -> Self {
        Self {
            inner: Some(inner),
            what,
            events: Events::default(),
        }
    }

    /// Reports the failure to `events` instead of printing it.
    pub fn with_events(mut self, events: Events) -> Self {
        self.events = events;
        self
    }

    fn run<T>(&mut self, default: T, f: impl FnOnce(&mut L) -> T) -> T {
        let Some(inner) = self.inner.as_mut() else {
            return default;
        };
        HANDLED_PANICS.with(|n| n.set(n.get() + 1));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(inner)));
        HANDLED_PANICS.with(|n| n.set(n.get() - 1));
        match result {
            Ok(v) => v,
            Err(payload) => {
                self.events.emit(Event::LogFailed(format!(
                    "{} failed ({}: disk full or not writable?); training goes on without it",
                    self.what,
                    crate::panics::panic_message(payload.as_ref())
                )));
                // Leaked, not dropped: its drop joins a thread that may have died, and panics.
                std::mem::forget(self.inner.take());
                default
            }
        }
    }
}

impl<L: MetricLogger> MetricLogger for Guarded<L> {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        self.run((), |l| l.log(update, epoch, split));
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        let off = Err(format!("{} is off", self.what));
        self.run(off, |l| l.read_numeric(name, epoch, split))
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.run((), |l| l.log_metric_definition(definition));
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        self.run((), |l| l.log_epoch_summary(summary));
    }
}

#[cfg(test)]
mod guarded_tests {
    use super::*;

    /// A logger that fails as Burn's file logger does on a full disk: by panicking.
    struct Failing {
        handled_inside: Arc<Mutex<Option<bool>>>,
    }

    impl MetricLogger for Failing {
        fn log(&mut self, _: MetricsUpdate, _: usize, _: &Split) {}
        fn read_numeric(
            &mut self,
            _: &str,
            _: usize,
            _: &Split,
        ) -> Result<Vec<NumericEntry>, String> {
            *self.handled_inside.lock().unwrap() = Some(panic_is_handled());
            panic!("No space left on device");
        }
        fn log_metric_definition(&mut self, _: MetricDefinition) {}
        fn log_epoch_summary(&mut self, _: EpochSummary) {}
    }

    #[test]
    fn a_panicking_logger_is_switched_off_and_its_panic_marked_as_handled() {
        let seen = Arc::new(Mutex::new(None));
        let mut guarded = Guarded::new(
            Failing {
                handled_inside: seen.clone(),
            },
            "the test logger",
        );
        assert!(!panic_is_handled());
        let first = guarded.read_numeric("loss", 1, &Split::Train);
        assert!(first.is_err());
        // The panic hook saw a handled panic (the CLI's "internal error" line stays quiet) ...
        assert_eq!(*seen.lock().unwrap(), Some(true));
        // ... and only inside the guard.
        assert!(!panic_is_handled());
        *seen.lock().unwrap() = None;
        assert_eq!(
            guarded.read_numeric("loss", 2, &Split::Train).err(),
            Some("the test logger is off".to_string())
        );
        assert_eq!(*seen.lock().unwrap(), None, "not called again once off");
    }
}
