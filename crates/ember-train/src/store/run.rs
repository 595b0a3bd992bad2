//! The run directory: what a run leaves behind, written so that a killed run loses nothing
//! but the epoch in progress.
//!
//! ```text
//! RUN_DIR/config.toml        the full config: `ember train --config RUN_DIR/config.toml` repeats the run
//! RUN_DIR/run.json           model config, input shape, class names, evaluation transforms
//! RUN_DIR/metrics.csv        one row per epoch
//! RUN_DIR/curves.png         loss and accuracy curves
//! RUN_DIR/checkpoint/        {model,optim,scheduler}-EPOCH.bpk, written atomically
//! RUN_DIR/best.bpk           weights of the best epoch (by the monitored validation metric)
//! RUN_DIR/final.bpk          weights after the last epoch
//! RUN_DIR/report.{txt,json}  evaluation: accuracy, top-5, per-class accuracy, confusion matrix
//! RUN_DIR/confusion.png      the confusion matrix
//! RUN_DIR/experiment.log, train/, valid/   Burn's own logs
//! ```

use crate::error::{Result, TrainError};
use burn::train::checkpoint::{Checkpoint, Checkpointer, CheckpointerError};
use ember_data::transform::Transform;
use ember_models::ModelConfig;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that a crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| TrainError::file(dir, format!("cannot create the directory: {e}")))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call: two writers (two processes, or two threads of a search)
    // must never share a temporary file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}-{n}.part", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable only once the directory is synced (POSIX); where a
        // directory cannot be opened as a file (Windows) the rename is already atomic.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        TrainError::file(path, format!("cannot write: {e}"))
    })
}

/// What `ember eval` and `ember predict` need to rebuild the model of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    /// The zoo name (or a user's label for a custom network).
    pub model: String,
    /// The model's resolved configuration (None for a custom network).
    pub model_config: Option<ModelConfig>,
    /// The input `[C, H, W]` the model was trained on.
    pub input: [usize; 3],
    /// Class names, by label.
    pub classes: Vec<String>,
    /// Transforms applied to an image before the model sees it.
    pub eval_transforms: Vec<Transform>,
    /// The dataset it was trained on.
    pub dataset: ember_data::DatasetSpec,
}

/// Which of a run's weights to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// `best.bpk`: the epoch with the best monitored validation metric. Chosen on the
    /// validation split, so its accuracy there is optimistic: evaluate it on another split.
    #[default]
    Best,
    /// `final.bpk`: the weights after the last epoch, chosen by nothing but the schedule; the
    /// fair one to report on the validation split.
    Final,
    /// `ema.bpk`: the model EMA after the last epoch (a run with `loop.ema_decay`).
    Ema,
}

ember_data::named_enum!(Weights => "weights");

/// Paths inside a run directory.
/// Where a run starts ([`RunDir::start_point`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StartPoint {
    /// The last epoch done: 0 for a new run, else the checkpoint it resumes from.
    pub epoch: usize,
    /// Newer checkpoints that did not read back, newest first, with why.
    pub damaged: Vec<(usize, String)>,
}

#[derive(Debug, Clone)]
pub struct RunDir {
    /// The directory.
    pub root: PathBuf,
}

impl RunDir {
    /// The run directory at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    /// `run.json`.
    pub fn info(&self) -> PathBuf {
        self.root.join("run.json")
    }
    /// `metrics.csv`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    /// `curves.png`.
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.png")
    }
    /// `checkpoint/`.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// `best.bpk`.
    pub fn best(&self) -> PathBuf {
        self.root.join("best.bpk")
    }
    /// `final.bpk`.
    pub fn final_weights(&self) -> PathBuf {
        self.root.join("final.bpk")
    }
    /// `ema.bpk`.
    pub fn ema(&self) -> PathBuf {
        self.root.join("ema.bpk")
    }
    /// The model checkpoint of `epoch`.
    pub fn model_checkpoint(&self, epoch: usize) -> PathBuf {
        self.checkpoints().join(format!("model-{epoch}.bpk"))
    }

    /// Errors unless the directory is absent, empty, or made by Ember (a run that stopped before
    /// its first checkpoint: `run.json`, or a fine-tune's `pretrained.json`). Ember never
    /// writes into a directory of the user's own.
    pub fn ensure_ours(&self) -> Result<()> {
        let not_empty = std::fs::read_dir(&self.root)
            .map(|mut entries| entries.next().is_some())
            .unwrap_or(false);
        if not_empty && !self.info().is_file() && !self.root.join("pretrained.json").is_file() {
            return Err(TrainError::file(
                &self.root,
                "exists, is not empty and was not made by `ember train` (no run.json); choose another `runtime.out` (Ember does not write into a directory of yours)",
            ));
        }
        Ok(())
    }

    /// The file holding `which` weights. [`Weights::Best`] falls back to the last epoch's
    /// when no epoch was validated; both fall back to the newest checkpoint of a run that was
    /// stopped before it finished (its last completed epoch).
    pub fn weights_of(&self, which: Weights) -> Result<PathBuf> {
        let files = match which {
            Weights::Best => vec![self.best(), self.final_weights()],
            Weights::Final => vec![self.final_weights()],
            Weights::Ema => {
                let ema = self.ema();
                if !ema.is_file() && self.final_weights().is_file() {
                    return Err(TrainError::file(
                        &self.root,
                        "has no ema.bpk: the run kept no model EMA (train with `loop.ema_decay` = 0.999)",
                    ));
                }
                vec![ema]
            }
        };
        if let Some(p) = files.into_iter().find(|p| p.is_file()) {
            return Ok(p);
        }
        if let Some(e) = self.latest_checkpoint() {
            return Ok(self.model_checkpoint(e));
        }
        Err(TrainError::file(
            &self.root,
            "no weights here (best.bpk, final.bpk or checkpoint/model-N.bpk); is this a run directory made by `ember train`?",
        ))
    }

    /// Reads `run.json`.
    pub fn load_info(&self) -> Result<RunInfo> {
        let path = self.info();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            TrainError::file(
                &path,
                format!("cannot read it ({e}); is this a run directory made by `ember train`?"),
            )
        })?;
        let info: RunInfo = serde_json::from_str(&text)
            .map_err(|e| TrainError::file(&path, format!("not a run description: {e}")))?;
        // Ember wrote it, but a user or a disk may have changed it since: check what the
        // commands that read it rely on.
        let bad = |what: String| Err(TrainError::file(&path, what));
        if info.classes.is_empty() {
            return bad("lists no classes; it is damaged (write it again or retrain)".into());
        }
        if info.input.iter().any(|&d| d == 0 || d > 8192) {
            return bad(format!(
                "input {:?} is not an image shape (each of C, H, W in 1..=8192)",
                info.input
            ));
        }
        if let Some(config) = &info.model_config
            && let Err(e) = config.validate()
        {
            return bad(format!("its model configuration is invalid: {e}"));
        }
        Ok(info)
    }

    /// Writes `run.json`.
    pub fn save_info(&self, info: &RunInfo) -> Result<()> {
        let text =
            serde_json::to_string_pretty(info).map_err(|e| TrainError::file(self.info(), e))?;
        write_atomic(&self.info(), text.as_bytes())
    }

    /// The last epoch whose model, optimizer and scheduler checkpoints are all on disk.
    pub fn latest_checkpoint(&self) -> Option<usize> {
        self.complete_checkpoints().first().copied()
    }

    /// Epochs whose model, optimizer and scheduler checkpoints are all on disk, newest first.
    pub fn complete_checkpoints(&self) -> Vec<usize> {
        let dir = self.checkpoints();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut epochs: Vec<usize> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("model-")?
                    .strip_suffix(".bpk")?
                    .parse::<usize>()
                    .ok()
            })
            .filter(|n| {
                ["optim", "scheduler"]
                    .iter()
                    .all(|k| dir.join(format!("{k}-{n}.bpk")).is_file())
            })
            .collect();
        epochs.sort_unstable_by(|a, b| b.cmp(a));
        epochs
    }

    /// Reads the three files of checkpoint `epoch` back as Burn records. Burn's Learner
    /// `expect`s on these reads when it resumes, so a damaged file must be caught here first.
    pub fn check_checkpoint(&self, epoch: usize) -> std::result::Result<(), String> {
        fn read<R: Checkpoint>(
            dir: &Path,
            kind: &str,
            epoch: usize,
        ) -> std::result::Result<(), String> {
            Checkpointer::<R>::restore(&AtomicCheckpointer::new(dir, kind), epoch)
                .map(drop)
                .map_err(|e: CheckpointerError| {
                    format!("{}: {e}", dir.join(format!("{kind}-{epoch}.bpk")).display())
                })
        }
        let dir = self.checkpoints();
        read::<burn::store::ModuleRecord>(&dir, "model", epoch)?;
        read::<burn::optim::OptimizerRecord>(&dir, "optim", epoch)?;
        read::<burn::optim::lr_scheduler::LrSchedulerRecord>(&dir, "scheduler", epoch)
    }
    /// Where a run in this directory starts: epoch 0 for a new run (in a directory that holds
    /// no run's checkpoints and nothing of the user's), or, resumed, the newest checkpoint
    /// that reads back (with the damaged newer ones it skipped). A finished run of `epochs`
    /// is not resumed; one killed after its last checkpoint but before its final weights and
    /// report were written is (and then trains no epoch).
    pub fn start_point(&self, epochs: usize, resume: bool) -> Result<StartPoint> {
        if !resume {
            if self.latest_checkpoint().is_some() {
                return Err(TrainError::file(
                    &self.root,
                    "already holds a run's checkpoints; continue it with `ember train --resume RUN_DIR` or choose another `runtime.out`",
                ));
            }
            self.ensure_ours()?;
            return Ok(StartPoint {
                epoch: 0,
                damaged: Vec::new(),
            });
        }
        let (newest, damaged) = self.resumable_checkpoint();
        let epoch = newest.ok_or_else(|| {
            let why = if damaged.is_empty() {
                "no complete checkpoint to resume from (model-N, optim-N and scheduler-N .bpk); start a new run instead".to_string()
            } else {
                format!(
                    "no readable checkpoint to resume from ({}); start a new run instead",
                    damaged.iter().map(|(_, w)| w.as_str()).collect::<Vec<_>>().join("; ")
                )
            };
            TrainError::file(self.checkpoints(), why)
        })?;
        let finished = self.final_weights().is_file() && self.root.join("report.json").is_file();
        if epoch >= epochs && finished {
            return Err(TrainError::Config(format!(
                "the run already finished its {epochs} epochs (checkpoint of epoch {epoch}); raise `loop.epochs` to train further"
            )));
        }
        Ok(StartPoint { epoch, damaged })
    }

    /// The newest checkpoint whose three files all read back, with the newer ones that did not
    /// (epoch, what was wrong): a resume falls back to an older complete checkpoint rather than
    /// crash on a damaged one.
    pub fn resumable_checkpoint(&self) -> (Option<usize>, Vec<(usize, String)>) {
        let mut damaged = Vec::new();
        for epoch in self.complete_checkpoints() {
            match self.check_checkpoint(epoch) {
                Ok(()) => return (Some(epoch), damaged),
                Err(e) => damaged.push((epoch, e)),
            }
        }
        (None, damaged)
    }
}

/// Burn's file checkpointer, but writing each burnpack atomically (Burn's writes in place,
/// so a kill mid-write would leave a truncated checkpoint that looks complete).
pub struct AtomicCheckpointer {
    directory: PathBuf,
    name: String,
}

impl AtomicCheckpointer {
    /// Checkpoints `name-EPOCH.bpk` in `directory`.
    pub fn new(directory: impl Into<PathBuf>, name: &str) -> Self {
        Self {
            directory: directory.into(),
            name: name.to_string(),
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        self.directory.join(format!("{}-{epoch}.bpk", self.name))
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_atomic(&self.path(epoch), &bytes)
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        let path = self.path(epoch);
        if path.exists() {
            std::fs::remove_file(path).map_err(CheckpointerError::IOError)?;
        }
        Ok(())
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        R::load(self.path(epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_finds_each_file_and_falls_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let pick = |w| run.weights_of(w).map_err(|e| e.to_string());
        let err = pick(Weights::Final).unwrap_err();
        assert!(err.contains("no weights here"), "{err}");

        // A run stopped before it finished: its newest complete checkpoint, for both.
        std::fs::create_dir_all(run.checkpoints()).unwrap();
        for (kind, epoch) in [("model", 2), ("optim", 2), ("scheduler", 2), ("model", 3)] {
            std::fs::write(run.checkpoints().join(format!("{kind}-{epoch}.bpk")), b"").unwrap();
        }
        assert_eq!(pick(Weights::Best), Ok(run.model_checkpoint(2)));
        assert_eq!(pick(Weights::Final), Ok(run.model_checkpoint(2)));

        std::fs::write(run.final_weights(), b"").unwrap();
        assert_eq!(pick(Weights::Best), Ok(run.final_weights()));
        assert_eq!(pick(Weights::Final), Ok(run.final_weights()));

        std::fs::write(run.best(), b"").unwrap();
        assert_eq!(pick(Weights::Best), Ok(run.best()));
        assert_eq!(pick(Weights::Final), Ok(run.final_weights()));

        assert_eq!("final".parse(), Ok(Weights::Final));
        let bad = "last".parse::<Weights>().unwrap_err();
        assert!(bad.contains("`best`, `final`, `ema`"), "{bad}");
    }
}
