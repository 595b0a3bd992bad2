//! One search over the ranks of an MPI job: `mpirun -np N ember search ... --distributed mpi`
//! runs N trials at once, one a rank, on as many machines as the job spans.
//!
//! Rank 0 runs the search exactly as `--parallel N` does, with N trial slots, and alone keeps
//! the study (`search.json`, `trials.json`, the lock, the report): slot 0 trains its trials
//! itself, and slot `r` hands each of its trials to rank `r` (`remote_trainer`) and waits
//! for its epochs. Rank `r` ([`serve_trials`]) trains what it is sent in the trial's own
//! directory (under `--out`: on a cluster's shared filesystem, the same directory rank 0
//! sees), sends each epoch's metrics to rank 0, and obeys the pruner's verdict, which only
//! rank 0 can give, since it alone sees every trial's curve. So the trials, their order and
//! their results are those of `--parallel N` for the same space and seed.
//!
//! Faults: a trial that fails on rank `r` (an error or a panic) comes back as its error and
//! is recorded failed; the search goes on. A rank that *dies* ends the job (MPI's default:
//! `mpirun` stops every rank and names the dead one); `trials.json` was written atomically
//! after every change, so running the same command again resumes the search, each unfinished
//! trial from its last checkpoint.

use super::TrialTrainer;
use crate::config::TrainConfig;
use crate::distributed::Mailbox;
use crate::error::{Result, TrainError};
use crate::store::run::RunDir;
use crate::training::logger::{EpochHook, EpochRecord};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Rank 0 to a rank: [`Order`]s.
const ORDERS: u16 = 7101;
/// A rank to rank 0: [`Report`]s.
const REPORTS: u16 = 7102;

/// What rank 0 tells a rank.
#[derive(Debug, Serialize, Deserialize)]
enum Order {
    /// Train this trial (a whole config, its directory included).
    Train {
        config: Box<TrainConfig>,
        resume: bool,
    },
    /// The pruner's answer to the last epoch reported: stop the trial or go on.
    Verdict { stop: bool },
    /// The search is over: return.
    Finish,
}

/// What a rank tells rank 0.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    /// An epoch of the trial ended: rank 0 answers with a [`Order::Verdict`].
    Epoch(EpochRecord),
    /// The trial ended: its epochs, or why it failed.
    Done(std::result::Result<Vec<EpochRecord>, String>),
}

fn send<T: Serialize>(mailbox: &dyn Mailbox, to: usize, tag: u16, message: &T) -> Result<()> {
    let bytes = serde_json::to_vec(message)
        .map_err(|e| TrainError::Training(format!("cannot encode a message to rank {to}: {e}")))?;
    mailbox.send(to, tag, &bytes);
    Ok(())
}

fn receive<T: for<'de> Deserialize<'de>>(
    mailbox: &dyn Mailbox,
    from: usize,
    tag: u16,
) -> Result<T> {
    let bytes = mailbox.receive(from, tag);
    serde_json::from_slice(&bytes).map_err(|e| {
        TrainError::Training(format!(
            "rank {from} sent a message this rank cannot read ({e}): are all ranks the same \
             build of ember?"
        ))
    })
}

/// On rank 0: a trial trainer that trains on rank `rank` and reports each epoch to `hook`
/// here, as if it trained in this process.
pub(crate) fn remote_trainer(mailbox: Arc<dyn Mailbox>, rank: usize) -> Box<TrialTrainer> {
    Box::new(move |config: &TrainConfig, resume: bool, hook: EpochHook| {
        let order = Order::Train {
            config: Box::new(config.clone()),
            resume,
        };
        send(&*mailbox, rank, ORDERS, &order)?;
        loop {
            match receive(&*mailbox, rank, REPORTS)? {
                Report::Epoch(record) => {
                    let stop = hook(&record);
                    send(&*mailbox, rank, ORDERS, &Order::Verdict { stop })?;
                }
                Report::Done(Ok(records)) => return Ok(records),
                Report::Done(Err(why)) => {
                    // One "training failed: " in front is enough.
                    let why = why.strip_prefix("training failed: ").unwrap_or(&why);
                    return Err(TrainError::Training(format!("on rank {rank}: {why}")));
                }
            }
        }
    })
}

/// On rank 0, after the search: tells every other rank to return from [`serve_trials`].
pub(crate) fn finish_all(mailbox: &dyn Mailbox) {
    for rank in 1..mailbox.size() {
        // Encoding a unit variant cannot fail.
        let _ = send(mailbox, rank, ORDERS, &Order::Finish);
    }
}

/// On a rank other than 0: trains the trials rank 0 sends, with `train`, until the search is
/// over. A trial that fails or panics is reported as failed; this rank goes on serving.
pub fn serve_trials(mailbox: Arc<dyn Mailbox>, train: &TrialTrainer) -> Result<()> {
    if mailbox.rank() == 0 {
        return Err(TrainError::Config(
            "rank 0 runs the search; serve_trials is for the other ranks".into(),
        ));
    }
    loop {
        let (config, resume) = match receive(&*mailbox, 0, ORDERS)? {
            Order::Train { config, resume } => (config, resume),
            Order::Finish => return Ok(()),
            Order::Verdict { .. } => {
                return Err(TrainError::Training(
                    "rank 0 sent a verdict with no trial running: are all ranks the same build?"
                        .into(),
                ));
            }
        };
        // Rank 0 saw a checkpoint; without a shared filesystem this rank may not have it.
        let resume = resume
            && RunDir::new(&config.runtime.out)
                .latest_checkpoint()
                .is_some();
        let post = mailbox.clone();
        let hook: EpochHook = Arc::new(move |record: &EpochRecord| {
            if send(&*post, 0, REPORTS, &Report::Epoch(record.clone())).is_err() {
                return false;
            }
            match receive(&*post, 0, ORDERS) {
                Ok(Order::Verdict { stop }) => stop,
                _ => false,
            }
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            train(&config, resume, hook)
        }))
        .unwrap_or_else(|payload| {
            Err(TrainError::Training(format!(
                "the trial panicked (a bug, please report it): {}",
                crate::panics::panic_message(payload.as_ref())
            )))
        });
        send(
            &*mailbox,
            0,
            REPORTS,
            &Report::Done(result.map_err(|e| e.to_string())),
        )?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed::local_mailboxes;
    use std::sync::Mutex;

    /// A trial of `epochs` epochs whose accuracy rises by 0.1 an epoch; it stops when the
    /// hook says so, and fails (or panics) when its directory says so.
    fn fake(config: &TrainConfig, _resume: bool, hook: EpochHook) -> Result<Vec<EpochRecord>> {
        let name = config.runtime.out.to_string_lossy().to_string();
        if name.contains("fails") {
            return Err(TrainError::Training("no such thing".into()));
        }
        if name.contains("panics") {
            panic!("a bug in training");
        }
        let mut records = Vec::new();
        for epoch in 1..=config.train_loop.epochs {
            records.push(EpochRecord {
                epoch,
                val_accuracy: Some(0.1 * epoch as f64),
                ..EpochRecord::default()
            });
            if hook(&records[epoch - 1]) {
                break;
            }
        }
        Ok(records)
    }

    fn config(out: &str, epochs: usize) -> TrainConfig {
        let mut c = TrainConfig::default();
        c.runtime.out = out.into();
        c.train_loop.epochs = epochs;
        c
    }

    #[test]
    fn a_rank_trains_what_rank_0_sends_and_obeys_its_verdicts() {
        let boxes = local_mailboxes(2);
        let (root, other) = (boxes[0].clone(), boxes[1].clone());
        let server = std::thread::spawn(move || serve_trials(other, &fake));
        let remote = remote_trainer(root.clone(), 1);
        // Rank 0's hook sees every epoch rank 1 trains, and stops it after the second.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let hook: EpochHook = Arc::new(move |r: &EpochRecord| {
            log.lock().unwrap().push(r.epoch);
            r.epoch == 2
        });
        let records = remote(&config("trial-000", 5), false, hook).unwrap();
        assert_eq!(records.len(), 2, "stopped by the verdict: {records:?}");
        assert_eq!(records[1].val_accuracy, Some(0.2));
        assert_eq!(*seen.lock().unwrap(), [1, 2]);
        // An error and a panic come back as the trial's error; the rank goes on serving.
        let never: EpochHook = Arc::new(|_| false);
        let e = remote(&config("trial-fails", 3), false, never.clone()).unwrap_err();
        assert!(e.to_string().contains("on rank 1: no such thing"), "{e}");
        let e = remote(&config("trial-panics", 3), false, never.clone()).unwrap_err();
        assert!(e.to_string().contains("a bug in training"), "{e}");
        assert_eq!(
            remote(&config("trial-003", 3), false, never).unwrap().len(),
            3
        );
        finish_all(&*root);
        server.join().unwrap().unwrap();
    }

    #[test]
    fn rank_0_does_not_serve() {
        let boxes = local_mailboxes(2);
        let e = serve_trials(boxes[0].clone(), &fake).unwrap_err();
        assert!(e.to_string().contains("rank 0 runs the search"), "{e}");
    }
}
