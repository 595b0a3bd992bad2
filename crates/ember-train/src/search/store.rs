//! The search directory on disk: the trials (`trials.json`, rewritten atomically after every
//! change), the search's options (`search.json`), one run directory per trial, and the lock
//! that keeps one search process per directory.

use super::SearchOptions;
use super::space::Assignment;
use crate::error::{Result, TrainError};
use crate::store::run::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Started and not finished (a killed search resumes it).
    Running,
    /// Trained all its epochs (or stopped early by its own early stopping).
    Complete,
    /// Stopped by the pruner.
    Pruned,
    /// Training failed (diverged, bad values); the message says why.
    Failed,
}

/// One trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 0-based number; its run directory is `trial-NNN`.
    pub id: usize,
    /// The knobs' values.
    pub params: Assignment,
    /// Where it stands.
    pub state: TrialState,
    /// The objective metric after each epoch.
    pub values: Vec<f64>,
    /// The best epoch's objective.
    pub objective: Option<f64>,
    /// That epoch (1-based).
    pub best_epoch: Option<usize>,
    /// Wall-clock seconds of training.
    pub seconds: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// How many times in a row a search process started it without it getting past the same
    /// checkpoint (a resume restarts a trial left running).
    #[serde(default)]
    pub starts: u32,
    /// Its newest complete checkpoint (epoch) when it was last started.
    #[serde(default)]
    pub start_checkpoint: Option<usize>,
}

/// A trial left running this many times from the same checkpoint (the process died during it
/// each time before it got further: out of memory, aborted) is recorded as failed instead of
/// being started again forever. A trial that gets further between deaths (a user stopping and
/// resuming the search) starts counting afresh.
pub const MAX_TRIAL_STARTS: u32 = 3;

/// `search.lock`: one search process per directory. Two at once would each rewrite
/// `trials.json` from their own view and train the same trial directories.
///
/// The file is locked with the operating system's advisory lock (`flock` on Unix,
/// `LockFileEx` on Windows, through [`std::fs::File::try_lock`]): the lock ends with the
/// process that holds it, killed or not, so a stale lock cannot exist and no pid needs
/// checking. The holder's pid is written in the file only to name it in the error. The file
/// is never deleted: deleting it while another process waits to lock it would let a third
/// lock a new file beside the second.
pub(crate) struct SearchLock {
    _file: std::fs::File,
}

impl SearchLock {
    pub(crate) fn take(dir: &Path) -> Result<Self> {
        let path = dir.join("search.lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::file(&path, format!("cannot open the lock: {e}")))?;
        match file.try_lock() {
            Ok(()) => {
                use std::io::{Seek, Write};
                // Only for the message of a search refused by this one.
                let _ = file.set_len(0);
                let _ = file.seek(std::io::SeekFrom::Start(0));
                let _ = writeln!(file, "{}", std::process::id());
                Ok(Self { _file: file })
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|t| t.trim().parse::<u32>().ok())
                    .map_or("process unknown".into(), |p| format!("pid {p}"));
                Err(TrainError::file(
                    &path,
                    format!(
                        "another search ({holder}) is running in this directory; wait for it to end or stop it"
                    ),
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(TrainError::file(
                &path,
                format!("cannot lock it: {e} (a file system without locks? put --out elsewhere)"),
            )),
        }
    }
}

/// The state on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SearchFile {
    pub(crate) options: SearchOptions,
    pub(crate) space: String,
}

/// Where the search directory keeps things.
pub fn trial_dir(dir: &Path, id: usize) -> PathBuf {
    dir.join(format!("trial-{id:03}"))
}

pub(crate) fn trials_path(dir: &Path) -> PathBuf {
    dir.join("trials.json")
}

/// Reads `trials.json`.
pub fn load_trials(dir: &Path) -> Result<Vec<Trial>> {
    let path = trials_path(dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::file(&path, format!("cannot read the trials: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::file(&path, format!("not an Ember trials file: {e}")))
}

pub(crate) fn save_trials(dir: &Path, trials: &[Trial]) -> Result<()> {
    let path = trials_path(dir);
    let text = serde_json::to_string_pretty(trials).map_err(|e| TrainError::file(&path, e))?;
    write_atomic(&path, text.as_bytes())
}
