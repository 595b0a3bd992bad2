//! The hyper-parameter search: the space file, the samplers on a known function, and a
//! search on real data that is stopped and resumed.

use ember_train::config::Monitor;
use ember_train::search::prune::Prune;
use ember_train::search::sampler::{Observation, Strategy, suggest};
use ember_train::search::space::{Domain, Knob, Space};
use ember_train::search::{
    SearchEvent, SearchOptions, TrialState, load_trials, search, search_ranks, search_with,
};
use std::path::{Path, PathBuf};

/// Branin-Hoo on x1 in [-5, 10], x2 in [0, 15]; global minimum 0.397887.
fn branin(x1: f64, x2: f64) -> f64 {
    use std::f64::consts::PI;
    let (a, b, c) = (1.0, 5.1 / (4.0 * PI * PI), 5.0 / PI);
    let (r, s, t) = (6.0, 10.0, 1.0 / (8.0 * PI));
    a * (x2 - b * x1 * x1 + c * x1 - r).powi(2) + s * (1.0 - t) * x1.cos() + s
}

fn branin_space() -> Space {
    let float = |name: &str, low: f64, high: f64| Knob {
        name: name.into(),
        domain: Domain::Float {
            low,
            high,
            log: false,
            steps: 6,
        },
    };
    Space {
        base: toml::Table::new(),
        knobs: vec![float("x1", -5.0, 10.0), float("x2", 0.0, 15.0)],
    }
}

/// The best value found in `budget` evaluations.
fn minimise(strategy: Strategy, seed: u64, budget: usize) -> f64 {
    let space = branin_space();
    let mut history: Vec<Observation> = Vec::new();
    let mut best = f64::INFINITY;
    for trial in 0..budget {
        let Some(a) = suggest(strategy, &space, trial, seed, &history) else {
            break;
        };
        let x: Vec<f64> = a.iter().map(|(_, v)| v.as_float().unwrap()).collect();
        let y = branin(x[0], x[1]);
        best = best.min(y);
        history.push(Observation {
            assignment: a,
            score: -y,
        });
    }
    best
}

#[test]
fn bayesian_optimisation_beats_random_search_on_branin() {
    let (seeds, budget) = (20, 40);
    let mean = |s: Strategy| {
        (0..seeds)
            .map(|seed| minimise(s, seed, budget))
            .sum::<f64>()
            / seeds as f64
    };
    let (tpe, random) = (mean(Strategy::Bayes), mean(Strategy::Random));
    let grid = minimise(Strategy::Grid, 0, budget);
    println!("mean best after {budget}: TPE {tpe:.3}, random {random:.3}; 6x6 grid {grid:.3}");
    assert!(tpe < random, "TPE {tpe} vs random {random}");
    assert!(tpe < 1.0, "TPE gets near the minimum 0.398: {tpe}");
    // 36 grid points and no more.
    assert!(suggest(Strategy::Grid, &branin_space(), 36, 0, &[]).is_none());
}

#[test]
fn samplers_are_seeded_and_stay_in_range() {
    let space = branin_space();
    let a = suggest(Strategy::Random, &space, 3, 7, &[]).unwrap();
    assert_eq!(a, suggest(Strategy::Random, &space, 3, 7, &[]).unwrap());
    assert_ne!(a, suggest(Strategy::Random, &space, 3, 8, &[]).unwrap());
    assert_ne!(a, suggest(Strategy::Random, &space, 4, 7, &[]).unwrap());
    let grid = space.grid();
    assert_eq!(grid.len(), 36);
    assert_eq!(grid[0][0].1.as_float(), Some(-5.0));
    assert_eq!(grid[35][1].1.as_float(), Some(15.0));
    // Log-scale ints and choices.
    let mixed = Space {
        base: toml::Table::new(),
        knobs: vec![
            Knob {
                name: "batch".into(),
                domain: Domain::Int {
                    low: 16,
                    high: 256,
                    log: true,
                    steps: 5,
                },
            },
            Knob {
                name: "opt".into(),
                domain: Domain::Choice {
                    values: vec!["sgd".into(), "adam".into()],
                },
            },
        ],
    };
    let grid: Vec<i64> = mixed.knobs[0]
        .domain
        .grid()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();
    assert_eq!(
        grid,
        [16, 32, 64, 128, 256],
        "evenly spaced on the log scale"
    );
    let mut history = Vec::new();
    for trial in 0..30 {
        let a = suggest(Strategy::Bayes, &mixed, trial, 1, &history).unwrap();
        let b = a[0].1.as_integer().unwrap();
        assert!((16..=256).contains(&b), "{b}");
        let adam = a[1].1.as_str() == Some("adam");
        // Best: adam with a batch near 64.
        let score = -((b as f64).ln() - 64f64.ln()).abs() + if adam { 1.0 } else { 0.0 };
        history.push(Observation {
            assignment: a,
            score,
        });
    }
    let late_adam = history[20..]
        .iter()
        .filter(|o| o.assignment[1].1.as_str() == Some("adam"))
        .count();
    assert!(
        late_adam >= 7,
        "TPE learns the better choice: {late_adam}/10"
    );
}

fn mnist_subset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")
}

fn space_text() -> String {
    format!(
        r#"
[base]
model = "lenet5_modern"
dataset = "mnist"
data_dir = "{}"
val_split = 0.1
train_limit = 600
epochs = 2
batch_size = 64
diagnostics = false
log_every_secs = 1000.0

[space.lr]
type = "float"
low = 0.001
high = 0.1
log = true

[space.optimizer]
type = "choice"
values = ["momentum", "adam"]
"#,
        mnist_subset().display()
    )
}

#[test]
fn a_bad_space_is_refused_with_the_reason() {
    let p = Path::new("space.toml");
    let err = |text: &str| Space::parse(text, p).unwrap_err().to_string();
    let base = "[base]\nmodel = \"lenet5_modern\"\ndataset = \"mnist\"\n";
    assert!(err(base).contains("no knobs"));
    let e = err(&format!(
        "{base}[space.lr]\ntype = \"float\"\nlow = 0.1\nhigh = 0.01\n"
    ));
    assert!(e.contains("low") && e.contains("below"), "{e}");
    let e = err(&format!(
        "{base}[space.lr]\ntype = \"float\"\nlow = 0\nhigh = 1\nlog = true\n"
    ));
    assert!(e.contains("log scale"), "{e}");
    let e = err(&format!(
        "{base}[space.learning_rate]\ntype = \"float\"\nlow = 0.1\nhigh = 1\n"
    ));
    assert!(e.contains("learning_rate"), "an unknown train option: {e}");
    let e = err(&format!(
        "{base}[space.optimizer]\ntype = \"choice\"\nvalues = [\"sgd\", \"lion\"]\n"
    ));
    assert!(e.contains("lion"), "{e}");
    let e = err(&format!("{base}[space.lr]\ntype = \"uniform\"\n"));
    assert!(e.contains("float, int or choice"), "{e}");
    // Sizes from the file are bounded before anything is allocated.
    let e = err(&format!(
        "{base}[space.lr]\ntype = \"float\"\nlow = 0.1\nhigh = 1\nsteps = 1000000000000\n"
    ));
    assert!(e.contains("steps must be an integer from 1 to 1000"), "{e}");
    let e = err(&format!(
        "{base}[space.lr]\ntype = \"float\"\nlow = 0.1\nhigh = 1\nsteps = -3\n"
    ));
    assert!(e.contains("steps"), "{e}");
    let e = err(&format!(
        "{base}[space.epochs]\ntype = \"int\"\nlow = -9223372036854775807\nhigh = 9223372036854775807\n"
    ));
    assert!(e.contains("2^53"), "{e}");
    // A grid of 1000^6 = 10^18 points: parsed and sampled without making the grid.
    let mut big = base.to_string();
    for k in [
        "lr",
        "momentum",
        "weight_decay",
        "label_smoothing",
        "grad_clip",
        "val_split",
    ] {
        big.push_str(&format!(
            "[space.{k}]\ntype = \"float\"\nlow = 0.01\nhigh = 0.02\nsteps = 1000\n"
        ));
    }
    let space = Space::parse(&big, p).unwrap();
    assert_eq!(space.grid_len(), 1_000_000_000_000_000_000);
    let last = space.grid_point(space.grid_len() - 1).unwrap();
    assert!(
        last.iter()
            .all(|(_, v)| (v.as_float().unwrap() - 0.02).abs() < 1e-12),
        "{last:?}"
    );
    assert!(suggest(Strategy::Grid, &space, 5, 0, &[]).is_some());
    assert!(space.grid_point(space.grid_len()).is_none());

    // The model's own knobs go through model_options.
    let ok = Space::parse(
        &format!("{base}[space.\"model_options.batch_norm\"]\ntype = \"choice\"\nvalues = [true, false]\n"),
        p,
    )
    .unwrap();
    assert_eq!(ok.knobs[0].name, "model_options.batch_norm");
    let config = ok.config(&ok.grid()[0]).unwrap();
    assert_eq!(
        config.model_options.get("batch_norm"),
        Some(&toml::Value::Boolean(true))
    );

    // A knob named the flat way (`lr`) overrides a sectioned base (`[base.optim] lr`), and a
    // sectioned knob name (`loop.epochs`) works as well.
    let sectioned = Space::parse(
        "[base]\nmodel = \"lenet5\"\n[base.optim]\nlr = 0.5\n[space.lr]\ntype = \"choice\"\nvalues = [0.01]\n[space.\"loop.epochs\"]\ntype = \"choice\"\nvalues = [3]\n",
        p,
    )
    .unwrap();
    let config = sectioned.config(&sectioned.grid()[0]).unwrap();
    assert_eq!(config.optim.lr, 0.01);
    assert_eq!(config.train_loop.epochs, 3);
}

#[test]
fn a_search_writes_its_results_and_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("search");
    let text = space_text();
    let space = Space::parse(&text, Path::new("space.toml")).unwrap();
    let options = |trials| SearchOptions {
        strategy: Strategy::Random,
        trials,
        objective: Monitor::ValAccuracy,
        prune: Prune::None,
        parallel: 2,
        seed: 5,
    };
    let first = search(&space, &text, &options(2), &out).unwrap();
    assert_eq!(first.trials.len(), 2);
    assert!(
        first
            .trials
            .iter()
            .all(|t| t.state == TrialState::Complete && t.values.len() == 2)
    );
    for f in [
        "results.csv",
        "best.toml",
        "search.png",
        "trials.json",
        "trial-000/metrics.csv",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let best = first.best.clone().unwrap();
    let max = first
        .trials
        .iter()
        .filter_map(|t| t.objective)
        .fold(0.0, f64::max);
    assert_eq!(best.objective, Some(max));
    // best.toml is a config `ember train --config` takes: the best trial's values.
    let config = ember_train::TrainConfig::load(&out.join("best.toml")).unwrap();
    assert_eq!(toml::Value::Float(config.optim.lr), best.params[0].1);

    // Asking for more trials keeps the finished ones as they were.
    let more = search(&space, &text, &options(4), &out).unwrap();
    assert_eq!(more.trials.len(), 4);
    assert_eq!(more.trials[..2], first.trials[..]);
    assert_eq!(load_trials(&out).unwrap(), more.trials);

    // A trial left running (a killed search) is finished from its checkpoint, not redone.
    let mut trials = more.trials.clone();
    trials[3].state = TrialState::Running;
    std::fs::write(
        out.join("trials.json"),
        serde_json::to_string(&trials).unwrap(),
    )
    .unwrap();
    let resumed = search(&space, &text, &options(4), &out).unwrap();
    assert_eq!(resumed.trials[3].state, TrialState::Complete);
    assert_eq!(resumed.trials[3].values, more.trials[3].values);

    // A trial the process died in again and again at the same checkpoint (an abort, the OOM
    // killer) is recorded as failed, with why, instead of being restarted by every resume;
    // results are still written.
    let mut trials = resumed.trials.clone();
    trials[3].state = TrialState::Running;
    trials[3].starts = ember_train::search::MAX_TRIAL_STARTS;
    trials[3].start_checkpoint = Some(2);
    std::fs::write(
        out.join("trials.json"),
        serde_json::to_string(&trials).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(out.join("results.csv")).unwrap();
    let gave_up = search(&space, &text, &options(4), &out).unwrap();
    assert_eq!(gave_up.trials[3].state, TrialState::Failed);
    assert!(
        gave_up.trials[3].error.as_deref().unwrap().contains("died"),
        "{:?}",
        gave_up.trials[3]
    );
    assert!(out.join("results.csv").is_file());
    assert_eq!(gave_up.trials[..3], resumed.trials[..3]);
    // One that got further since it was last started (a user stopping the search) is resumed.
    let mut trials = gave_up.trials.clone();
    trials[3].state = TrialState::Running;
    trials[3].starts = ember_train::search::MAX_TRIAL_STARTS;
    trials[3].start_checkpoint = Some(1);
    trials[3].error = None;
    std::fs::write(
        out.join("trials.json"),
        serde_json::to_string(&trials).unwrap(),
    )
    .unwrap();
    let again = search(&space, &text, &options(4), &out).unwrap();
    assert_eq!(
        again.trials[3].state,
        TrialState::Complete,
        "{:?}",
        again.trials[3]
    );
    assert_eq!(again.trials[3].values, resumed.trials[3].values);

    // One search per directory: a holder of search.lock's OS lock (here a second open file
    // of this process) refuses a second search, naming its pid; a lock file left by a killed
    // search holds no lock, and is taken over.
    let lock = out.join("search.lock");
    std::fs::write(&lock, "4242\n").unwrap();
    let held = std::fs::File::open(&lock).unwrap();
    held.try_lock().unwrap();
    let err = search(&space, &text, &options(4), &out)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another search (pid 4242)") && err.contains("search.lock"),
        "{err}"
    );
    drop(held);
    search(&space, &text, &options(4), &out).unwrap();
    let after = std::fs::File::open(&lock).unwrap();
    assert!(after.try_lock().is_ok(), "the lock is released at the end");
    drop(after);
    assert!(load_trials(&out).is_ok(), "trials.json stays valid");

    // Another space in the same directory is refused.
    let other = text.replace("high = 0.1", "high = 0.2");
    let other_space = Space::parse(&other, Path::new("space.toml")).unwrap();
    let err = search(&other_space, &other, &options(4), &out).unwrap_err();
    assert!(err.to_string().contains("another space"), "{err}");
}

#[test]
fn asha_prunes_trials_and_keeps_their_first_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("search");
    let text = space_text().replace("epochs = 2", "epochs = 3");
    let space = Space::parse(&text, Path::new("space.toml")).unwrap();
    let outcome = search(
        &space,
        &text,
        &SearchOptions {
            strategy: Strategy::Grid,
            trials: 6,
            objective: Monitor::ValAccuracy,
            prune: Prune::Asha,
            parallel: 1,
            seed: 0,
        },
        &out,
    )
    .unwrap();
    let pruned: Vec<_> = outcome
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Pruned)
        .collect();
    assert!(!pruned.is_empty(), "{:#?}", outcome.trials);
    for t in &pruned {
        // Pruned at a rung (epoch 1 or 3 with eta = 3), before the last epoch.
        assert_eq!(t.values.len(), 1, "{t:?}");
        let metrics =
            ember_train::logger::read_metrics(&out.join(format!("trial-{:03}/metrics.csv", t.id)))
                .unwrap();
        assert_eq!(metrics.len(), 1, "training stopped after the pruned epoch");
    }
    assert!(outcome.best.unwrap().state == TrialState::Complete);
}

#[test]
fn a_trial_that_panics_is_recorded_failed_and_the_others_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("search");
    let text = space_text().replace("epochs = 2", "epochs = 1");
    let space = Space::parse(&text, Path::new("space.toml")).unwrap();
    let options = SearchOptions {
        strategy: Strategy::Grid,
        trials: 3,
        objective: Monitor::ValAccuracy,
        prune: Prune::None,
        parallel: 2,
        seed: 0,
    };
    // A bug inside training (a panic in Burn, say) in trial 1; the real trainer elsewhere.
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let outcome = search_with(
        &space,
        &text,
        &options,
        &out,
        &|config, resume, hook| {
            if config.runtime.out.ends_with("trial-001") {
                panic!("injected fault in trial 1 (lr {})", config.optim.lr);
            }
            ember_train::trainer::Training::new(config)
                .resume(resume)
                .with_hook(hook)
                .on_event(|_| {})
                .launch()
                .map(|o| o.records)
        },
        std::sync::Arc::new(move |e: &SearchEvent| seen.lock().unwrap().push(e.clone())),
    )
    .unwrap();
    // The search reports through its handler: every trial started, trial 1 failed, 0 and 2 ended.
    let events = events.lock().unwrap().clone();
    let started = |id| {
        events
            .iter()
            .any(|e| matches!(e, SearchEvent::TrialStarted { id: i, .. } if *i == id))
    };
    assert!(started(0) && started(1) && started(2), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(e, SearchEvent::TrialFailed { id: 1, error } if error.contains("injected fault"))),
        "{events:?}"
    );
    let ended = |id| {
        events
            .iter()
            .any(|e| matches!(e, SearchEvent::TrialEnded { id: i, .. } if *i == id))
    };
    assert!(ended(0) && ended(2) && !ended(1), "{events:?}");
    assert_eq!(outcome.trials.len(), 3);
    let failed: Vec<_> = outcome
        .trials
        .iter()
        .filter(|t| t.state == TrialState::Failed)
        .collect();
    assert_eq!(failed.len(), 1, "{:#?}", outcome.trials);
    assert_eq!(failed[0].id, 1);
    let error = failed[0].error.as_deref().unwrap();
    assert!(error.contains("injected fault"), "{error}");
    assert!(
        outcome
            .trials
            .iter()
            .filter(|t| t.id != failed[0].id)
            .all(|t| t.state == TrialState::Complete),
        "{:#?}",
        outcome.trials
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.contains("failed"), "{csv}");
    assert!(out.join("best.toml").is_file());
    // Resuming does not run the failed trial again.
    let again = search_with(
        &space,
        &text,
        &options,
        &out,
        &|_, _, _| panic!("nothing is left to train"),
        std::sync::Arc::new(|_: &SearchEvent| {}),
    )
    .unwrap();
    assert_eq!(again.trials, outcome.trials);
}

/// A trial without training: its accuracy per epoch follows from its knobs (best near lr
/// 0.01 with adam), so two searches that run the same trials record the same values. Trial
/// 2 fails, wherever it runs.
fn modelled_trial(
    config: &ember_train::config::TrainConfig,
    _resume: bool,
    hook: ember_train::logger::EpochHook,
) -> Result<Vec<ember_train::logger::EpochRecord>, ember_train::TrainError> {
    if config.runtime.out.ends_with("trial-002") {
        return Err(ember_train::TrainError::Training(
            "diverged (modelled)".into(),
        ));
    }
    let fit = -(config.optim.lr.ln() - 0.01f64.ln()).powi(2) / 50.0
        + if config.optim.optimizer.name() == "adam" {
            0.1
        } else {
            0.0
        };
    let mut records = Vec::new();
    for epoch in 1..=config.train_loop.epochs {
        records.push(ember_train::logger::EpochRecord {
            epoch,
            val_accuracy: Some(0.5 + fit - 0.2 / epoch as f64),
            ..Default::default()
        });
        if hook(&records[epoch - 1]) {
            break;
        }
    }
    Ok(records)
}

#[test]
fn a_search_over_ranks_runs_the_trials_of_a_parallel_search() {
    let dir = tempfile::tempdir().unwrap();
    let text = space_text();
    let space = Space::parse(&text, Path::new("space.toml")).unwrap();
    let mut options = SearchOptions {
        strategy: Strategy::Random,
        trials: 5,
        objective: Monitor::ValAccuracy,
        prune: Prune::None,
        parallel: 3,
        seed: 4,
    };
    let quiet = std::sync::Arc::new(|_: &SearchEvent| {});
    let threads = dir.path().join("threads");
    let parallel = search_with(
        &space,
        &text,
        &options,
        &threads,
        &modelled_trial,
        quiet.clone(),
    )
    .unwrap();
    // Three ranks, as `mpirun -np 3` would run them.
    options.parallel = 1;
    let ranks = dir.path().join("ranks");
    // Results of a search whose `n` ranks run as threads of this process.
    let on_ranks = |n: usize, options: &SearchOptions, out: &Path| {
        let boxes = ember_train::distributed::local_mailboxes(n);
        std::thread::scope(|scope| {
            let handles: Vec<_> = boxes
                .into_iter()
                .map(|mailbox| {
                    let (space, text, quiet) = (&space, &text, quiet.clone());
                    scope.spawn(move || {
                        search_ranks(space, text, options, out, mailbox, &modelled_trial, quiet)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    let outcomes: Vec<_> = on_ranks(3, &options, &ranks)
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        outcomes[1].is_none() && outcomes[2].is_none(),
        "only rank 0 reports"
    );
    let spread = outcomes[0].as_ref().unwrap();
    let key = |t: &ember_train::search::Trial| {
        (
            t.id,
            format!("{:?}", t.params),
            t.values.clone(),
            t.objective,
            t.state,
        )
    };
    let (a, b): (Vec<_>, Vec<_>) = (
        parallel.trials.iter().map(key).collect(),
        spread.trials.iter().map(key).collect(),
    );
    assert_eq!(a.len(), 5);
    assert_eq!(a, b, "the same trials, values and states");
    assert_eq!(spread.trials[2].state, TrialState::Failed);
    assert!(
        spread.trials[2]
            .error
            .as_deref()
            .unwrap()
            .contains("diverged")
    );
    assert_eq!(
        parallel.best.as_ref().map(|t| t.id),
        spread.best.as_ref().map(|t| t.id)
    );
    // Rank 0 kept the study.
    assert_eq!(load_trials(&ranks).unwrap().len(), 5);
    assert!(ranks.join("results.csv").is_file() && ranks.join("best.toml").is_file());

    // --parallel with ranks is refused on rank 0, and every rank still returns.
    options.parallel = 2;
    let results = on_ranks(2, &options, &dir.path().join("refused"));
    let e = results[0].as_ref().unwrap_err().to_string();
    assert!(e.contains("--parallel 2 with --distributed mpi"), "{e}");
    assert!(matches!(results[1], Ok(None)));
}
