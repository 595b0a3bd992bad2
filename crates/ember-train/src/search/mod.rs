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
mod report;
pub mod sampler;
pub mod space;
pub mod spread;
mod store;

use report::write_results;
pub use report::{importance, ranked, search_png, table};
pub use spread::serve_trials;
pub use store::{MAX_TRIAL_STARTS, Trial, TrialState, load_trials, trial_dir};

use crate::config::{Monitor, TrainConfig};
use crate::distributed::Mailbox;
use crate::error::{Result, TrainError};
use crate::store::run::{RunDir, write_atomic};
use crate::training::logger::{EpochHook, EpochRecord};
use crate::training::trainer;
use prune::Prune;
use sampler::{Observation, Strategy, suggest};
use serde::{Deserialize, Serialize};
use space::{Assignment, Space, describe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use store::{SearchFile, SearchLock, save_trials, trials_path};

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

/// What trains one trial: `(config, resume, hook) -> every epoch's record`. [`search`] uses
/// [`train_trial`]; [`search_with`] takes another (a test's, to make a trial fail or panic on
/// purpose).
pub type TrialTrainer = dyn Fn(&TrainConfig, bool, EpochHook) -> Result<Vec<EpochRecord>> + Sync;

/// How [`search`] trains a trial: a [`trainer::Training`] of the config, asking `hook` after
/// every epoch whether to stop.
pub fn train_trial(
    config: &TrainConfig,
    resume: bool,
    hook: EpochHook,
) -> Result<Vec<EpochRecord>> {
    trainer::Training::new(config)
        .resume(resume)
        .with_hook(hook)
        .launch()
        .map(|o| o.records)
}

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
        &train_trial,
        Arc::new(|e: &SearchEvent| println!("{e}")),
    )
}

/// A search over the ranks of an MPI job (`mailbox`'s), one trial a rank at a time: on
/// rank 0, [`search_with`] with one trial slot per rank, its own trained by `train` and the
/// others' sent to their ranks; on every other rank, [`serve_trials`] with `train`, returning
/// `None` when rank 0 is done. Rank 0 alone writes the search directory.
pub fn search_ranks(
    space: &Space,
    space_text: &str,
    options: &SearchOptions,
    dir: &Path,
    mailbox: Arc<dyn Mailbox>,
    train: &TrialTrainer,
    events: SearchEvents,
) -> Result<Option<SearchOutcome>> {
    if mailbox.rank() != 0 {
        serve_trials(mailbox, train)?;
        return Ok(None);
    }
    let outcome = if options.parallel != 1 {
        Err(TrainError::Config(format!(
            "--parallel {} with --distributed mpi: every rank runs one trial at a time, so \
             the job's {} ranks run {} at once; drop --parallel, or start more ranks",
            options.parallel,
            mailbox.size(),
            mailbox.size()
        )))
    } else {
        let remote: Vec<Box<TrialTrainer>> = (1..mailbox.size())
            .map(|rank| spread::remote_trainer(mailbox.clone(), rank))
            .collect();
        let slots: Vec<&TrialTrainer> = std::iter::once(train)
            .chain(remote.iter().map(|t| &**t))
            .collect();
        run_search(space, space_text, options, dir, &slots, false, events)
    };
    spread::finish_all(&*mailbox);
    outcome.map(Some)
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
    let slots = vec![train; options.parallel];
    run_search(
        space,
        space_text,
        options,
        dir,
        &slots,
        options.parallel > 1,
        events,
    )
}

/// The search, with one worker per trial slot, each training with its own trainer;
/// `one_loader_thread` when the slots share this process's cores.
fn run_search(
    space: &Space,
    space_text: &str,
    options: &SearchOptions,
    dir: &Path,
    slots: &[&TrialTrainer],
    one_loader_thread: bool,
    events: SearchEvents,
) -> Result<SearchOutcome> {
    if options.trials == 0 || slots.is_empty() {
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
        for &train in slots {
            let shared = shared.clone();
            scope.spawn(move || worker(space, options, dir, &shared, train, one_loader_thread));
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
        .filter_map(|t| t.objective.map(|o| (t, objective.score(o))))
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
    one_loader_thread: bool,
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
                                    score: options.objective.score(o),
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
            run_trial(
                space,
                options,
                dir,
                shared,
                (id, &params),
                train,
                one_loader_thread,
            )
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
    (id, params): (usize, &Assignment),
    train: &TrialTrainer,
    one_loader_thread: bool,
) -> Result<()> {
    let mut config: TrainConfig = space.config(params)?;
    config.runtime.out = trial_dir(dir, id);
    // The trials share the machine: one loader thread each when several run at once.
    if one_loader_thread {
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
            let Some(v) = r.monitored(objective) else {
                return false;
            };
            let mut s = lock(&shared);
            let others: Vec<f64> = s
                .trials
                .iter()
                .filter(|t| t.id != id)
                .filter_map(|t| t.values.get(r.epoch - 1).map(|&x| objective.score(x)))
                .collect();
            // The last epoch is the end anyway: a trial that got there is complete.
            let stop =
                r.epoch < last_epoch && prune.should_stop(r.epoch, objective.score(v), &others);
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
        _ => train(&config, resume, hook)?,
    };
    let mut s = lock(shared);
    let events = s.events.clone();
    if let Some(t) = s.trials.iter_mut().find(|t| t.id == id) {
        t.values = records
            .iter()
            .filter_map(|r| r.monitored(objective))
            .collect();
        let best = t
            .values
            .iter()
            .enumerate()
            .max_by(|a, b| objective.score(*a.1).total_cmp(&objective.score(*b.1)));
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
