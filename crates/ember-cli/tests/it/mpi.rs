//! `mpirun -np 2 ember train --distributed mpi` against one process (feature `mpi`; needs
//! Open MPI's `mpirun`, which `.ci/run` installs). Two ranks with half of each batch must
//! train what one process with the whole batch trains: the same per-step losses and the same
//! final weights, to f32 summation tolerance (LeNet without batch norm).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn mnist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist-subset")
}

/// `ember train` of LeNet for 2 epochs; 600 images in batches of 64: 8 full batches and a
/// short one an epoch (after the 10% validation split), so the ranks' parts are unequal once.
fn args(out: &Path) -> Vec<String> {
    [
        "train",
        "--model",
        "lenet5_modern",
        "--dataset",
        "mnist",
        "--data-dir",
        mnist().to_str().unwrap(),
        "--train-limit",
        "600",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--optimizer",
        "nesterov",
        "--lr",
        "0.05",
        "--weight-decay",
        "0.0005",
        "--schedule",
        "cosine",
        "--workers",
        "1",
        "--no-diagnostics",
        "--backend",
        "flex",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `mpirun` for a test: as root if need be, more ranks than cores allowed, loopback only.
fn mpirun(np: usize) -> std::process::Command {
    let mut c = std::process::Command::new("mpirun");
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl_tcp_if_include", "lo")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .env("EMBER_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args([
            "--oversubscribe",
            "--bind-to",
            "none",
            "-np",
            &np.to_string(),
        ])
        .arg(assert_cmd::cargo::cargo_bin("ember"));
    c
}

/// Burn's per-step training losses of `epoch`, from its metric log.
fn step_losses(run: &Path, epoch: usize) -> Vec<f64> {
    let path = run.join(format!("train/epoch-{epoch}/Loss.log"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.split(',').next()?.trim().parse().ok())
        .collect()
}

fn eval_json(run: &Path) -> serde_json::Value {
    let out = Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .args(["eval", "--run", run.to_str().unwrap(), "--data-dir"])
        .arg(mnist())
        .arg("--json")
        .assert()
        .success();
    serde_json::from_slice(&out.get_output().stdout).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-3)
}

#[test]
fn two_ranks_train_what_one_process_trains() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args(args(&one))
        .assert()
        .success();
    let mut distributed = args(&two);
    distributed.extend(["--distributed".into(), "mpi".into()]);
    let run = Command::from_std(mpirun(2)).args(&distributed).assert();
    let output = run.get_output();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mpirun failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("done in")).count(),
        1,
        "one summary, rank 0's:\n{stdout}"
    );
    for epoch in 1..=2 {
        let (a, b) = (step_losses(&one, epoch), step_losses(&two, epoch));
        assert_eq!(a.len(), b.len(), "epoch {epoch}: as many steps");
        assert!(a.len() >= 9, "epoch {epoch}: {} steps", a.len());
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(close(*x, *y, 1e-4), "epoch {epoch} step {i}: {x} vs {y}");
        }
    }
    // The final weights: the same evaluation to f32 tolerance.
    let (e1, e2) = (eval_json(&one), eval_json(&two));
    let (l1, l2) = (e1["loss"].as_f64().unwrap(), e2["loss"].as_f64().unwrap());
    assert!(close(l1, l2, 1e-4), "eval loss {l1} vs {l2}");
    assert_eq!(e1["accuracy"], e2["accuracy"]);
    // Rank 0 owns the run directory; rank 1 left no scratch behind.
    assert!(two.join("final.bpk").is_file() && two.join("report.json").is_file());
    let scratch = ember_train::distributed::scratch_dir(&two, 1);
    assert!(
        !scratch.exists(),
        "rank 1's scratch left: {}",
        scratch.display()
    );
}

#[test]
fn distributed_outside_mpirun_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(&dir.path().join("run"));
    a.extend(["--distributed".into(), "mpi".into()]);
    let out = Command::cargo_bin("ember")
        .unwrap()
        .env_remove("OMPI_COMM_WORLD_SIZE")
        .env_remove("PMI_SIZE")
        .env_remove("PMIX_RANK")
        .env_remove("PMI_RANK")
        .env_remove("SLURM_STEP_NUM_TASKS")
        .args(&a)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("--distributed") && err.contains("mpirun -np N"),
        "{err}"
    );
}

/// The pid of rank `rank` of a running job of the `ember` binary (by its launcher's
/// environment), if it has started.
fn rank_pid(rank: usize) -> Option<u32> {
    let exe = assert_cmd::cargo::cargo_bin("ember");
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    std::fs::read_dir("/proc").ok()?.find_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let first = cmdline.split(|b| *b == 0).next()?;
        if Path::new(std::str::from_utf8(first).ok()?) != exe {
            return None;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
        env.split(|b| *b == 0)
            .any(|v| v == want.as_bytes())
            .then_some(pid)
    })
}

/// Starts `args` under `mpirun -np 2`, waits until `ready()` (failing if the job ends first),
/// kills rank 1 with SIGKILL (no chance to clean up) and waits for the job to end, which must
/// be within a minute: its exit status and stderr.
fn kill_rank_1_when(
    args: &[String],
    ready: impl Fn() -> bool,
) -> (std::process::ExitStatus, String) {
    let mut job = mpirun(2)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !ready() {
        assert!(started.elapsed().as_secs() < 300, "the job never got going");
        assert!(
            job.try_wait().unwrap().is_none(),
            "the job ended before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = rank_pid(1).expect("rank 1 is running");
    let killed = std::time::Instant::now();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = job.try_wait().unwrap() {
            break s;
        }
        assert!(
            killed.elapsed().as_secs() < 60,
            "the job hangs after a rank died"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(job.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    (status, stderr)
}

fn val_losses(run: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "val_loss").unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn a_killed_rank_ends_the_job_and_the_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let epochs = |mut a: Vec<String>| {
        let at = a.iter().position(|x| x == "--epochs").unwrap();
        a[at + 1] = "6".into();
        a
    };
    Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args(epochs(args(&one)))
        .assert()
        .success();
    let mut distributed = epochs(args(&two));
    distributed.extend(["--distributed".into(), "mpi".into()]);
    // Rank 1 dies once rank 0 has checkpointed epoch 2.
    let (status, stderr) = kill_rank_1_when(&distributed, || {
        two.join("checkpoint/model-2.bpk").is_file()
    });
    assert!(!status.success(), "the job must fail when a rank dies");
    assert!(
        stderr.contains("rank 1") && stderr.contains("signal 9"),
        "mpirun names the dead rank:\n{stderr}"
    );

    // The resumed job ends where the uninterrupted single process ends.
    let out = Command::from_std(mpirun(2))
        .args([
            "train",
            "--resume",
            two.to_str().unwrap(),
            "--distributed",
            "mpi",
        ])
        .assert();
    let o = out.get_output();
    assert!(
        o.status.success(),
        "resume failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let (a, b) = (val_losses(&one), val_losses(&two));
    assert_eq!(a.len(), 6);
    assert_eq!(b.len(), 6);
    for (e, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(close(*x, *y, 1e-4), "epoch {}: val_loss {x} vs {y}", e + 1);
    }
}

/// The trials of a search, by id: (knobs, per-epoch objective, state).
fn trials(search: &Path) -> Vec<(String, Vec<f64>, String)> {
    ember_train::search::load_trials(search)
        .unwrap()
        .into_iter()
        .map(|t| {
            let state = format!("{:?}", t.state).to_lowercase();
            (format!("{:?}", t.params), t.values, state)
        })
        .collect()
}

/// A search space of LeNet on the MNIST subset, `epochs` epochs a trial, in `dir`.
fn search_space(dir: &Path, epochs: usize) -> PathBuf {
    let space = dir.join("space.toml");
    std::fs::write(
        &space,
        format!(
            "[base]\nmodel = \"lenet5_modern\"\ndataset = \"mnist\"\ndata_dir = \"{}\"\n\
             val_split = 0.1\ntrain_limit = 600\nepochs = {epochs}\nbatch_size = 64\n\
             optimizer = \"adam\"\nworkers = 1\ndiagnostics = false\nbackend = \"flex\"\n\n\
             [space.lr]\ntype = \"float\"\nlow = 0.0005\nhigh = 0.01\nlog = true\n",
            mnist().display()
        ),
    )
    .unwrap();
    space
}

/// `ember search` of `trials` random trials of `space` into `out`.
fn search_args(space: &Path, trials: usize, out: &Path) -> Vec<String> {
    [
        "search",
        "--space",
        space.to_str().unwrap(),
        "--strategy",
        "random",
        "--trials",
        &trials.to_string(),
        "--seed",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn a_search_spreads_its_trials_over_the_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let space = search_space(dir.path(), 2);
    let search = |out: &Path| search_args(&space, 3, out);
    let (threads, ranks) = (dir.path().join("threads"), dir.path().join("ranks"));
    Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args(search(&threads))
        .args(["--parallel", "2"])
        .assert()
        .success();
    let run = Command::from_std(mpirun(2))
        .args(search(&ranks))
        .args(["--distributed", "mpi"])
        .assert();
    let o = run.get_output();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "mpirun search failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("2 ranks: 2 trials at once"), "{stdout}");
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("best: trial"))
            .count(),
        1,
        "one report, rank 0's:\n{stdout}"
    );
    // The same trials as `--parallel 2`, each trained as one process trains it.
    let (a, b) = (trials(&threads), trials(&ranks));
    assert_eq!(a.len(), 3);
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.0, y.0, "trial {i}: the same knobs");
        assert_eq!(x.2, y.2, "trial {i}: the same state");
        assert_eq!(x.1.len(), 2, "trial {i}: two epochs");
        for (u, v) in x.1.iter().zip(&y.1) {
            assert!(close(*u, *v, 1e-6), "trial {i}: {u} vs {v}");
        }
    }
    assert!(ranks.join("results.csv").is_file() && ranks.join("best.toml").is_file());

    // Under mpirun without --distributed mpi, every rank would run the whole search.
    let out = Command::from_std(mpirun(2))
        .args(search(&dir.path().join("refused")))
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("one of 2 ranks") && err.contains("--distributed mpi"),
        "{err}"
    );
}

// Bounds of the batch-norm difference, about 2.5x what it was on the first machine measured
// (docs/benchmarks.md): step losses 8.4% apart on average, 18% at worst, the evaluation loss
// 2.9%, the accuracy 0.9 points.
const BN_MEAN_STEP_LOSS_BOUND: f64 = 0.2;
const BN_STEP_LOSS_BOUND: f64 = 0.45;
const BN_EVAL_LOSS_BOUND: f64 = 0.075;
const BN_ACCURACY_BOUND: f64 = 0.025;

/// With batch norm each rank normalises with its own part of the batch's statistics
/// (PyTorch DDP's default, not synchronised BN), so 2 ranks x 32 images train a slightly
/// different network than 1 process x 64: the difference is measured here and bounded.
#[test]
fn with_batch_norm_two_ranks_train_close_to_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let bn = |mut a: Vec<String>| {
        let at = a.iter().position(|x| x == "lenet5_modern").unwrap();
        a[at] = "lenet5_bn".into();
        a
    };
    Command::cargo_bin("ember")
        .unwrap()
        .env("EMBER_OFFLINE", "1")
        .env("RAYON_NUM_THREADS", "1")
        .args(bn(args(&one)))
        .assert()
        .success();
    let mut distributed = bn(args(&two));
    distributed.extend(["--distributed".into(), "mpi".into()]);
    let run = Command::from_std(mpirun(2)).args(&distributed).assert();
    assert!(run.get_output().status.success(), "mpirun failed");
    let mut apart = Vec::new();
    for epoch in 1..=2 {
        let (a, b) = (step_losses(&one, epoch), step_losses(&two, epoch));
        assert_eq!(a.len(), b.len());
        apart.extend(
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs() / x.abs().max(1e-3)),
        );
    }
    let worst = apart.iter().cloned().fold(0.0, f64::max);
    let mean = apart.iter().sum::<f64>() / apart.len() as f64;
    let (e1, e2) = (eval_json(&one), eval_json(&two));
    let (l1, l2) = (e1["loss"].as_f64().unwrap(), e2["loss"].as_f64().unwrap());
    let (a1, a2) = (
        e1["accuracy"].as_f64().unwrap(),
        e2["accuracy"].as_f64().unwrap(),
    );
    println!(
        "batch norm, 2 ranks vs 1 process: step losses {:.2}% apart at the first step, {:.2}% on average, {:.2}% at worst; eval loss {l1:.4} vs {l2:.4}, accuracy {a1:.4} vs {a2:.4}",
        100.0 * apart[0],
        100.0 * mean,
        100.0 * worst
    );
    // Not the same network (the statistics differ from the first step) ...
    assert!(worst > 1e-4, "per-rank statistics must differ: {worst}");
    // ... but the same training, to within what the per-rank statistics explain.
    assert!(
        mean < BN_MEAN_STEP_LOSS_BOUND,
        "step losses {mean} apart on average"
    );
    assert!(
        worst < BN_STEP_LOSS_BOUND,
        "step losses {worst} apart at worst"
    );
    assert!(
        (l1 - l2).abs() / l1 < BN_EVAL_LOSS_BOUND,
        "eval loss {l1} vs {l2}"
    );
    assert!((a1 - a2).abs() < BN_ACCURACY_BOUND, "accuracy {a1} vs {a2}");
}

#[test]
fn a_killed_rank_ends_the_search_and_the_same_command_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let space = search_space(dir.path(), 6);
    let out = dir.path().join("search");
    let mut args = search_args(&space, 4, &out);
    args.extend(["--distributed".into(), "mpi".into()]);
    // Rank 1 dies once both ranks train (two trials started) and one has checkpointed.
    let checkpointed = || {
        (0..4).any(|t| {
            out.join(format!("trial-{t:03}/checkpoint/model-1.bpk"))
                .is_file()
        })
    };
    let (status, stderr) =
        kill_rank_1_when(&args, || out.join("trial-001").is_dir() && checkpointed());
    assert!(!status.success(), "the job must fail when a rank dies");
    assert!(
        stderr.contains("rank 1"),
        "mpirun names the dead rank:\n{stderr}"
    );
    let before = trials(&out);
    assert!(
        before.iter().any(|t| t.2 == "running"),
        "a trial was cut short: {before:?}"
    );

    // The same command resumes the study and finishes every trial.
    let run = Command::from_std(mpirun(2)).args(&args).assert();
    let o = run.get_output();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "the resumed search failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("resuming the search"), "{stdout}");
    let after = trials(&out);
    assert_eq!(after.len(), 4, "{after:?}");
    assert!(
        after.iter().all(|t| t.2 == "complete" && t.1.len() == 6),
        "{after:?}"
    );
    // Trials that had finished are kept as they were.
    for (b, a) in before.iter().zip(&after) {
        if b.2 == "complete" {
            assert_eq!(b, a);
        }
    }
}
