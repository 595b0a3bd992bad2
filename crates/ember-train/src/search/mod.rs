//! Hyper-parameter search on top of `ember train`: grid, random and Bayesian (TPE) sampling,
//! median and ASHA pruning, parallel trials, and a search directory a killed search resumes.
//!
//! A search directory holds `search.json` (the options and the space file's text),
//! `trials.json` (every trial: values, state, per-epoch objective; rewritten atomically after
//! every change), one run directory per trial (`trial-007/`), and at the end `results.csv`,
//! `best.toml` (the best trial's config, for `ember train --config`) and `search.png`.
//! Restarting a search with the same `--out` keeps every finished trial, resumes the trials
//! that were running from their last checkpoint, and goes on.

pub mod prune;
pub mod sampler;
pub mod space;

use crate::config::{Monitor, TrainConfig};
use crate::error::{Result, TrainError};
use crate::inspect::plot::{Axes, Series, palette, panels_png};
use crate::store::run::{RunDir, write_atomic};
use crate::training::logger::{EpochHook, EpochRecord};
use crate::training::trainer;
use prune::Prune;
use sampler::{Observation, Strategy, suggest};
use serde::{Deserialize, Serialize};
use space::{Assignment, Domain, Space, describe, short};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What `ember search` was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchOptions {
    /// How trials are chosen.
    pub strategy: Strategy,
    /// Number of trials (a grid stops earlier when exhausted).
    pub trials: usize,
    /// `val_accuracy` (maximised) or `val_loss` (minimised): the best epoch's value.
    pub objective: Monitor,
    /// Early stopping of bad trials.
    pub prune: Prune,
    /// Trials run at once (each in its own thread, on its own copy of the data).
    pub parallel: usize,
    /// Seed of the sampler (the trials' own seed is `[base]`'s).
    pub seed: u64,
}

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
struct SearchLock(PathBuf);

impl SearchLock {
    fn take(dir: &Path) -> Result<Self> {
        let path = dir.join("search.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Self(path));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match holder {
                        // A lock left by a process that is gone (killed): take it over.
                        Some(pid) if !process_alive(pid) => {
                            let _ = std::fs::remove_file(&path);
                        }
                        _ => {
                            return Err(TrainError::file(
                                &path,
                                format!(
                                    "another search ({}) is running in this directory; wait for it to end, \
                                     or delete this file if no search is running",
                                    holder.map_or("process unknown".into(), |p| format!("pid {p}"))
                                ),
                            ));
                        }
                    }
                }
                Err(e) => {
                    return Err(TrainError::file(
                        &path,
                        format!("cannot create the lock: {e}"),
                    ));
                }
            }
        }
        Err(TrainError::file(
            &path,
            "cannot take the search lock; delete this file and retry",
        ))
    }
}

impl Drop for SearchLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether process `pid` exists. Where `/proc` is not available, every holder is taken to be
/// alive (the user is asked to delete a stale lock rather than risk two searches at once).
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// The state on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SearchFile {
    options: SearchOptions,
    space: String,
}

/// A finished search.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// Every trial, by id.
    pub trials: Vec<Trial>,
    /// The best finished trial.
    pub best: Option<Trial>,
    /// The search directory.
    pub dir: PathBuf,
}

/// Where the search directory keeps things.
pub fn trial_dir(dir: &Path, id: usize) -> PathBuf {
    dir.join(format!("trial-{id:03}"))
}

fn trials_path(dir: &Path) -> PathBuf {
    dir.join("trials.json")
}

/// Larger is better.
fn score(objective: Monitor, value: f64) -> f64 {
    match objective {
        Monitor::ValAccuracy => value,
        Monitor::ValLoss => -value,
    }
}

fn metric(objective: Monitor, r: &EpochRecord) -> Option<f64> {
    match objective {
        Monitor::ValAccuracy => r.val_accuracy,
        Monitor::ValLoss => r.val_loss,
    }
}

/// Reads `trials.json`.
pub fn load_trials(dir: &Path) -> Result<Vec<Trial>> {
    let path = trials_path(dir);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::file(&path, format!("cannot read the trials: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::file(&path, format!("not an Ember trials file: {e}")))
}

fn save_trials(dir: &Path, trials: &[Trial]) -> Result<()> {
    let path = trials_path(dir);
    let text = serde_json::to_string_pretty(trials).map_err(|e| TrainError::file(&path, e))?;
    write_atomic(&path, text.as_bytes())
}

/// What a search reports as it goes (the trials' own trainings report through
/// [`trainer::Event`]); [`search`] prints them, [`search_with`] hands them to its handler.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SearchEvent {
    /// A search directory is continued.
    Resuming {
        /// The search directory.
        dir: PathBuf,
        /// Trials already finished.
        finished: usize,
        /// Trials to continue.
        to_resume: usize,
    },
    /// A trial starts (or continues).
    TrialStarted {
        /// Its number.
        id: usize,
        /// Its knobs, `lr=0.01 optimizer=adam`.
        params: String,
    },
    /// A trial failed; the search goes on.
    TrialFailed {
        /// Its number.
        id: usize,
        /// Why.
        error: String,
    },
    /// The pruner stopped a trial.
    TrialPruned {
        /// Its number.
        id: usize,
        /// The epoch it stopped after.
        epoch: usize,
        /// Its objective then.
        value: f64,
    },
    /// A trial ended.
    TrialEnded {
        /// Its number.
        id: usize,
        /// `complete` or `pruned`.
        state: String,
        /// `val_accuracy` or `val_loss`.
        metric: &'static str,
        /// Its best value.
        objective: Option<f64>,
        /// The epoch of that value.
        best_epoch: usize,
    },
}

impl std::fmt::Display for SearchEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchEvent::Resuming {
                dir,
                finished,
                to_resume,
            } => write!(
                f,
                "resuming the search in {}: {finished} trials finished, {to_resume} to resume",
                dir.display()
            ),
            SearchEvent::TrialStarted { id, params } => write!(f, "trial {id}: {params}"),
            SearchEvent::TrialFailed { id, error } => write!(f, "trial {id} failed: {error}"),
            SearchEvent::TrialPruned { id, epoch, value } => {
                write!(f, "trial {id} pruned after epoch {epoch} ({value:.4})")
            }
            SearchEvent::TrialEnded {
                id,
                state,
                metric,
                objective,
                best_epoch,
            } => write!(
                f,
                "trial {id} {state}: {metric} {} (epoch {best_epoch})",
                objective.map_or("-".into(), |o| format!("{o:.4}"))
            ),
        }
    }
}

/// A search's event handler, shared with its worker threads and the trials' epoch hooks.
pub type SearchEvents = Arc<dyn Fn(&SearchEvent) + Send + Sync>;

struct Shared {
    trials: Vec<Trial>,
    /// Trials this process is running.
    mine: Vec<usize>,
    failure: Option<TrainError>,
    events: SearchEvents,
}

/// What trains one trial: `(config, resume, hook) -> outcome`. [`search`] uses
/// a [`trainer::Training`] with the hook; [`search_with`] takes another (a test's, to make a trial fail
/// or panic on purpose).
pub type TrialTrainer =
    dyn Fn(&TrainConfig, bool, EpochHook) -> Result<trainer::TrainOutcome> + Sync;

/// Runs (or resumes) a search. `space_text` is the space file's text, kept to check that a
/// resumed search searches the same space.
pub fn search(
    space: &Space,
    space_text: &str,
    options: &SearchOptions,
    dir: &Path,
) -> Result<SearchOutcome> {
    search_with(
        space,
        space_text,
        options,
        dir,
        &|config, resume, hook| {
            trainer::Training::new(config)
                .resume(resume)
                .with_hook(hook)
                .launch()
        },
        Arc::new(|e: &SearchEvent| println!("{e}")),
    )
}

/// [`search`] with each trial trained by `train`.
pub fn search_with(
    space: &Space,
    space_text: &str,
    options: &SearchOptions,
    dir: &Path,
    train: &TrialTrainer,
    events: SearchEvents,
) -> Result<SearchOutcome> {
    if options.trials == 0 || options.parallel == 0 {
        return Err(TrainError::Config(
            "--trials and --parallel must be at least 1".into(),
        ));
    }
    let first = space
        .grid_point(0)
        .ok_or_else(|| TrainError::Config("the search space has no point".into()))?;
    let probe = space.config(&first)?;
    if probe.data.val_split <= 0.0 {
        return Err(TrainError::Config(
            "the objective is a validation metric: set val_split (e.g. 0.1) in [base]".into(),
        ));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| TrainError::file(dir, format!("cannot create the search directory: {e}")))?;
    let _lock = SearchLock::take(dir)?;
    let file = SearchFile {
        options: options.clone(),
        space: space_text.to_string(),
    };
    let search_json = dir.join("search.json");
    let trials = if search_json.is_file() {
        let text =
            std::fs::read_to_string(&search_json).map_err(|e| TrainError::file(&search_json, e))?;
        let old: SearchFile = serde_json::from_str(&text)
            .map_err(|e| TrainError::file(&search_json, format!("not an Ember search: {e}")))?;
        if old.space != file.space
            || old.options.strategy != options.strategy
            || old.options.objective != options.objective
            || old.options.seed != options.seed
        {
            return Err(TrainError::file(
                dir,
                "holds a search of another space, strategy, objective or seed; choose another --out",
            ));
        }
        let trials = if trials_path(dir).is_file() {
            load_trials(dir)?
        } else {
            Vec::new()
        };
        let done = trials
            .iter()
            .filter(|t| t.state != TrialState::Running)
            .count();
        events(&SearchEvent::Resuming {
            dir: dir.to_path_buf(),
            finished: done,
            to_resume: trials.len() - done,
        });
        trials
    } else {
        Vec::new()
    };
    let text =
        serde_json::to_string_pretty(&file).map_err(|e| TrainError::file(&search_json, e))?;
    write_atomic(&search_json, text.as_bytes())?;

    let shared = Arc::new(Mutex::new(Shared {
        trials,
        mine: Vec::new(),
        failure: None,
        events,
    }));
    std::thread::scope(|scope| {
        for _ in 0..options.parallel {
            let shared = shared.clone();
            scope.spawn(move || worker(space, options, dir, &shared, train));
        }
    });
    let shared = Arc::try_unwrap(shared)
        .map_err(|_| TrainError::Training("search workers still running".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(e) = shared.failure {
        return Err(e);
    }
    let trials = shared.trials;
    let best = best_trial(&trials, options.objective).cloned();
    write_results(space, options, dir, &trials)?;
    if let Some(b) = &best {
        let mut config = space.config(&b.params)?;
        config.runtime.out = PathBuf::from("runs/search-best");
        config.save(&dir.join("best.toml"))?;
    }
    Ok(SearchOutcome {
        trials,
        best,
        dir: dir.to_path_buf(),
    })
}

/// The finished trial with the best objective (complete trials before pruned ones on ties).
pub fn best_trial(trials: &[Trial], objective: Monitor) -> Option<&Trial> {
    trials
        .iter()
        .filter(|t| matches!(t.state, TrialState::Complete | TrialState::Pruned))
        .filter_map(|t| t.objective.map(|o| (t, score(objective, o))))
        .max_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then((a.0.state == TrialState::Complete).cmp(&(b.0.state == TrialState::Complete)))
                .then(b.0.id.cmp(&a.0.id))
        })
        .map(|(t, _)| t)
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes trials until none is left: first those a killed search left running, then new ones.
fn worker(
    space: &Space,
    options: &SearchOptions,
    dir: &Path,
    shared: &Arc<Mutex<Shared>>,
    train: &TrialTrainer,
) {
    loop {
        let job = {
            let mut s = lock(shared);
            if s.failure.is_some() {
                return;
            }
            let mine = s.mine.clone();
            let events = s.events.clone();
            // Trials left running by a killed search: restarted, unless they died too often.
            for t in s.trials.iter_mut() {
                if t.state != TrialState::Running || mine.contains(&t.id) {
                    continue;
                }
                if RunDir::new(trial_dir(dir, t.id)).latest_checkpoint() != t.start_checkpoint {
                    t.starts = 0;
                }
                if t.starts >= MAX_TRIAL_STARTS {
                    t.state = TrialState::Failed;
                    t.error = Some(format!(
                        "the search process died during this trial {} times without it getting past its checkpoint (out of memory or aborted?); not started again",
                        t.starts
                    ));
                    events(&SearchEvent::TrialFailed {
                        id: t.id,
                        error: t.error.clone().unwrap_or_default(),
                    });
                }
            }
            let leftover = s
                .trials
                .iter()
                .find(|t| t.state == TrialState::Running && !s.mine.contains(&t.id))
                .map(|t| (t.id, t.params.clone()));
            let job = match leftover {
                Some(j) => Some(j),
                None if s.trials.len() < options.trials => {
                    let id = s.trials.len();
                    let history: Vec<Observation> = s
                        .trials
                        .iter()
                        .filter_map(|t| {
                            let o = t.objective?;
                            matches!(t.state, TrialState::Complete | TrialState::Pruned).then(
                                || Observation {
                                    assignment: t.params.clone(),
                                    score: score(options.objective, o),
                                },
                            )
                        })
                        .collect();
                    suggest(options.strategy, space, id, options.seed, &history).map(|params| {
                        s.trials.push(Trial {
                            id,
                            params: params.clone(),
                            state: TrialState::Running,
                            values: Vec::new(),
                            objective: None,
                            best_epoch: None,
                            seconds: 0.0,
                            error: None,
                            starts: 0,
                            start_checkpoint: None,
                        });
                        (id, params)
                    })
                }
                None => None,
            };
            if let Some((id, _)) = &job {
                s.mine.push(*id);
                if let Some(t) = s.trials.iter_mut().find(|t| t.id == *id) {
                    t.starts += 1;
                    t.start_checkpoint = RunDir::new(trial_dir(dir, *id)).latest_checkpoint();
                }
                if let Err(e) = save_trials(dir, &s.trials) {
                    s.failure = Some(e);
                    return;
                }
            }
            job
        };
        let Some((id, params)) = job else {
            return;
        };
        let events = lock(shared).events.clone();
        events(&SearchEvent::TrialStarted {
            id,
            params: describe(&params),
        });
        // A panic in a trial is a bug, but it must not take the other trials down with it:
        // the trial is recorded as failed with the message, and the search goes on.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_trial(space, options, dir, shared, id, &params, train)
        }))
        .unwrap_or_else(|payload| {
            let message = crate::panics::panic_message(payload.as_ref());
            Err(TrainError::Training(format!(
                "the trial panicked (a bug, please report it): {message}"
            )))
        });
        let mut s = lock(shared);
        if let Err(e) = result {
            // Files we cannot write are fatal to the search; a trial that cannot train is not.
            if matches!(e, TrainError::File { .. }) && !dir.exists() {
                s.failure = Some(e);
                return;
            }
            if let Some(t) = s.trials.iter_mut().find(|t| t.id == id) {
                t.state = TrialState::Failed;
                t.error = Some(e.to_string());
            }
            (s.events)(&SearchEvent::TrialFailed {
                id,
                error: e.to_string(),
            });
        }
        if let Err(e) = save_trials(dir, &s.trials) {
            s.failure = Some(e);
            return;
        }
    }
}

fn run_trial(
    space: &Space,
    options: &SearchOptions,
    dir: &Path,
    shared: &Arc<Mutex<Shared>>,
    id: usize,
    params: &Assignment,
    train: &TrialTrainer,
) -> Result<()> {
    let mut config: TrainConfig = space.config(params)?;
    config.runtime.out = trial_dir(dir, id);
    // The trials share the machine: one loader thread each when several run at once.
    if options.parallel > 1 {
        config.runtime.workers = 1;
    }
    let run = RunDir::new(&config.runtime.out);
    let resume = run.latest_checkpoint().is_some();
    let objective = options.objective;
    let prune = options.prune;
    let last_epoch = config.train_loop.epochs;
    let hook: EpochHook = {
        let shared = shared.clone();
        let dir = dir.to_path_buf();
        Arc::new(move |r: &EpochRecord| {
            let Some(v) = metric(objective, r) else {
                return false;
            };
            let mut s = lock(&shared);
            let others: Vec<f64> = s
                .trials
                .iter()
                .filter(|t| t.id != id)
                .filter_map(|t| t.values.get(r.epoch - 1).map(|&x| score(objective, x)))
                .collect();
            // The last epoch is the end anyway: a trial that got there is complete.
            let stop =
                r.epoch < last_epoch && prune.should_stop(r.epoch, score(objective, v), &others);
            if let Some(t) = s.trials.iter_mut().find(|t| t.id == id) {
                t.values.truncate(r.epoch - 1);
                t.values.push(v);
                if stop {
                    t.state = TrialState::Pruned;
                }
            }
            // Losing this write only loses progress a resumed search recomputes.
            let _ = save_trials(&dir, &s.trials);
            if stop {
                (s.events)(&SearchEvent::TrialPruned {
                    id,
                    epoch: r.epoch,
                    value: v,
                });
            }
            stop
        })
    };
    let started = Instant::now();
    // A search killed after a trial's last epoch but before it was recorded: read its metrics.
    let records = match run.latest_checkpoint() {
        Some(e) if e >= config.train_loop.epochs && run.metrics().is_file() => {
            crate::training::logger::read_metrics(&run.metrics())?
        }
        _ => train(&config, resume, hook)?.records,
    };
    let mut s = lock(shared);
    let events = s.events.clone();
    if let Some(t) = s.trials.iter_mut().find(|t| t.id == id) {
        t.values = records
            .iter()
            .filter_map(|r| metric(objective, r))
            .collect();
        let best = t
            .values
            .iter()
            .enumerate()
            .max_by(|a, b| score(objective, *a.1).total_cmp(&score(objective, *b.1)));
        t.objective = best.map(|(_, &v)| v);
        t.best_epoch = best.map(|(i, _)| i + 1);
        t.seconds += started.elapsed().as_secs_f64();
        if t.state == TrialState::Running {
            t.state = TrialState::Complete;
        }
        events(&SearchEvent::TrialEnded {
            id,
            state: format!("{:?}", t.state).to_lowercase(),
            metric: match objective {
                Monitor::ValAccuracy => "val_accuracy",
                Monitor::ValLoss => "val_loss",
            },
            objective: t.objective,
            best_epoch: t.best_epoch.unwrap_or(0),
        });
    }
    Ok(())
}

/// Trials sorted best first (finished ones, then failed and unfinished).
pub fn ranked(trials: &[Trial], objective: Monitor) -> Vec<&Trial> {
    let mut v: Vec<&Trial> = trials.iter().collect();
    v.sort_by(|a, b| {
        let key = |t: &Trial| t.objective.map(|o| score(objective, o));
        match (key(a), key(b)) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.id.cmp(&b.id),
        }
    });
    v
}

/// The results table as text, best first.
pub fn table(space: &Space, options: &SearchOptions, trials: &[Trial]) -> String {
    let name = match options.objective {
        Monitor::ValAccuracy => "val_accuracy",
        Monitor::ValLoss => "val_loss",
    };
    let mut rows: Vec<Vec<String>> = vec![
        [
            "rank",
            "trial",
            "state",
            name,
            "epoch",
            "epochs run",
            "seconds",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(space.knobs.iter().map(|k| k.name.clone()))
        .collect(),
    ];
    for (rank, t) in ranked(trials, options.objective).into_iter().enumerate() {
        let mut row = vec![
            (rank + 1).to_string(),
            t.id.to_string(),
            format!("{:?}", t.state).to_lowercase(),
            t.objective.map_or("-".into(), |o| format!("{o:.4}")),
            t.best_epoch.map_or("-".into(), |e| e.to_string()),
            t.values.len().to_string(),
            format!("{:.1}", t.seconds),
        ];
        row.extend(space.knobs.iter().map(|k| {
            t.params
                .iter()
                .find(|(n, _)| *n == k.name)
                .map_or("-".into(), |(_, v)| short(v))
        }));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How much the objective depends on each knob: |Spearman rank correlation| for numbers,
/// the between-group share of variance (η²) for choices. Finished trials only.
pub fn importance(space: &Space, options: &SearchOptions, trials: &[Trial]) -> Vec<(String, f64)> {
    let done: Vec<&Trial> = trials.iter().filter(|t| t.objective.is_some()).collect();
    let y: Vec<f64> = done
        .iter()
        .map(|t| score(options.objective, t.objective.unwrap_or(0.0)))
        .collect();
    let rank = |v: &[f64]| -> Vec<f64> {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
        let mut r = vec![0.0; v.len()];
        let mut i = 0;
        while i < idx.len() {
            let mut j = i;
            while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
                j += 1;
            }
            for &k in &idx[i..=j] {
                r[k] = (i + j) as f64 / 2.0;
            }
            i = j + 1;
        }
        r
    };
    let corr = |a: &[f64], b: &[f64]| -> f64 {
        let n = a.len() as f64;
        let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
        let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
        if va <= 0.0 || vb <= 0.0 {
            0.0
        } else {
            cov / (va * vb).sqrt()
        }
    };
    space
        .knobs
        .iter()
        .map(|k| {
            let x: Vec<f64> = done
                .iter()
                .map(|t| {
                    t.params
                        .iter()
                        .find(|(n, _)| *n == k.name)
                        .and_then(|(_, v)| k.domain.to_coord(v))
                        .unwrap_or(0.0)
                })
                .collect();
            let value = if done.len() < 3 {
                0.0
            } else if let Domain::Choice { values } = &k.domain {
                let mean = y.iter().sum::<f64>() / y.len() as f64;
                let total: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
                let between: f64 = (0..values.len())
                    .map(|c| {
                        let g: Vec<f64> = x
                            .iter()
                            .zip(&y)
                            .filter(|(xi, _)| **xi as usize == c)
                            .map(|(_, yi)| *yi)
                            .collect();
                        if g.is_empty() {
                            0.0
                        } else {
                            let m = g.iter().sum::<f64>() / g.len() as f64;
                            g.len() as f64 * (m - mean).powi(2)
                        }
                    })
                    .sum();
                if total > 0.0 { between / total } else { 0.0 }
            } else {
                corr(&rank(&x), &rank(&y)).abs()
            };
            (k.name.clone(), value)
        })
        .collect()
}

fn write_results(
    space: &Space,
    options: &SearchOptions,
    dir: &Path,
    trials: &[Trial],
) -> Result<()> {
    // results.csv, best first.
    let mut csv = String::from("rank,trial,state,objective,best_epoch,epochs_run,seconds");
    for k in &space.knobs {
        csv.push(',');
        csv.push_str(&k.name);
    }
    csv.push('\n');
    for (rank, t) in ranked(trials, options.objective).into_iter().enumerate() {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.2}",
            rank + 1,
            t.id,
            format!("{:?}", t.state).to_lowercase(),
            t.objective.map_or(String::new(), |o| o.to_string()),
            t.best_epoch.map_or(String::new(), |e| e.to_string()),
            t.values.len(),
            t.seconds
        ));
        for k in &space.knobs {
            let v = t
                .params
                .iter()
                .find(|(n, _)| *n == k.name)
                .map_or(String::new(), |(_, v)| short(v));
            csv.push(',');
            csv.push_str(&v);
        }
        csv.push('\n');
    }
    write_atomic(&dir.join("results.csv"), csv.as_bytes())?;
    search_png(space, options, trials, &dir.join("search.png"))
}

/// Objective per trial (with the running best), and objective against the knob it depends
/// on most.
pub fn search_png(
    space: &Space,
    options: &SearchOptions,
    trials: &[Trial],
    path: &Path,
) -> Result<()> {
    let name = match options.objective {
        Monitor::ValAccuracy => "validation accuracy",
        Monitor::ValLoss => "validation loss",
    };
    let done: Vec<&Trial> = trials.iter().filter(|t| t.objective.is_some()).collect();
    let point = |t: &Trial| (t.id as f64, t.objective.unwrap_or(f64::NAN));
    let mut running = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for t in &done {
        let s = score(options.objective, t.objective.unwrap_or(f64::NAN));
        if s > best {
            best = s;
        }
        running.push((t.id as f64, score(options.objective, best)));
    }
    let trials_in = |state: TrialState, label: &str, color: usize| Series {
        label: label.into(),
        points: done
            .iter()
            .filter(|t| t.state == state)
            .map(|t| point(t))
            .collect(),
        color: palette(color),
        dashed: false,
        markers_only: true,
    };
    let by_trial = vec![
        trials_in(TrialState::Complete, "complete", 0),
        trials_in(TrialState::Pruned, "pruned", 3),
        Series {
            label: "best so far".into(),
            points: running,
            color: palette(2),
            dashed: true,
            markers_only: false,
        },
    ];
    let imp = importance(space, options, trials);
    let (knob_name, _) = imp
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .unwrap_or_default();
    let knob = space
        .knobs
        .iter()
        .find(|k| k.name == knob_name)
        .unwrap_or(&space.knobs[0]);
    let (log_x, names) = match &knob.domain {
        Domain::Float { log, .. } | Domain::Int { log, .. } => (*log, None),
        Domain::Choice { values } => (false, Some(values.iter().map(short).collect::<Vec<_>>())),
    };
    let x_of = |t: &Trial| -> Option<f64> {
        t.params
            .iter()
            .find(|(n, _)| *n == knob.name)
            .and_then(|(_, v)| knob.domain.to_coord(v))
            .map(|c| {
                if log_x {
                    c / std::f64::consts::LN_10
                } else {
                    c
                }
            })
    };
    let by_knob = vec![Series {
        label: "trials".into(),
        points: done
            .iter()
            .filter_map(|t| Some((x_of(t)?, t.objective?)))
            .collect(),
        color: palette(0),
        dashed: false,
        markers_only: true,
    }];
    let axes = |title: String, x: String, x_names: Option<Vec<String>>| Axes {
        title,
        x_desc: x,
        y_desc: name.into(),
        log_y: false,
        x_names,
    };
    panels_png(
        &[
            (
                axes(format!("{name} per trial"), "trial".into(), None),
                by_trial,
            ),
            (
                axes(
                    format!("{name} vs {}", knob.name),
                    if log_x {
                        format!("log10 {}", knob.name)
                    } else {
                        knob.name.clone()
                    },
                    names,
                ),
                by_knob,
            ),
        ],
        600,
        440,
        path,
    )
}
