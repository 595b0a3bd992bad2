//! Data-parallel training across processes: every rank builds the same network from the same
//! seed, trains on its part of each global batch (the single process's batches, split by
//! [`LoaderConfig::shard`](ember_data::loader::LoaderConfig::shard)), and the ranks' gradients
//! are averaged before one optimizer step per global batch, as PyTorch's
//! `DistributedDataParallel` and Horovod do.
//!
//! The communication engine is MPI (the `mpi` feature: rsmpi over Open MPI or MPICH), what
//! every cluster has and Slurm launches; [`Collective`] is the little of it training needs, so
//! the step logic ([`parallel`]) is tested in the default build on one rank ([`Solo`]).
//!
//! Rank 0 owns the run directory; the other ranks run the same code in a scratch directory of
//! their own (see [`scratch_dir`]) and print nothing. Every rank sees the *whole* batch's
//! outputs (an all-gather of the logits), so the metrics, early stopping and the NaN guard
//! decide the same on every rank, and equal a single process's.

pub mod parallel;

#[cfg(feature = "mpi")]
pub mod mpi;

use crate::error::{Result, TrainError};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// How a run spreads over processes (`runtime.distributed`, `--distributed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Distributed {
    /// One process.
    #[default]
    None,
    /// Data parallelism over MPI: launch with `mpirun -np N ember train ...` or `srun`.
    Mpi,
}

ember_data::named_enum!(Distributed => "distributed mode");

/// What data-parallel training needs of a communication engine. Every call is collective:
/// every rank makes it, in the same order.
pub trait Collective: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sums `buf` elementwise over the ranks, in place.
    fn all_reduce_sum(&self, buf: &mut [f32]);
    /// Every rank's `value`, by rank.
    fn all_gather_u64(&self, value: u64) -> Vec<u64>;
    /// The ranks' `local` parts joined in rank order; `counts[r]` is rank `r`'s length.
    fn all_gather_varcount(&self, local: &[f32], counts: &[usize]) -> Vec<f32>;
    /// Rank 0's `bytes` on every rank.
    fn broadcast_bytes(&self, bytes: &mut Vec<u8>);
}

/// One process as a group of one: every collective is the identity. The distributed step
/// logic on it must train exactly as the plain loop does (a test holds it to that).
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buf: &mut [f32]) {}
    fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        vec![value]
    }
    fn all_gather_varcount(&self, local: &[f32], _counts: &[usize]) -> Vec<f32> {
        local.to_vec()
    }
    fn broadcast_bytes(&self, _bytes: &mut Vec<u8>) {}
}

/// The process group of a run, when it is distributed.
pub type Group = Arc<dyn Collective>;

/// Messages between rank 0 and one other rank, for work handed out by rank 0 (the trials of
/// a search): unlike a [`Collective`], only the two ranks of a message take part. Messages
/// from one rank with one tag arrive in the order they were sent (MPI's non-overtaking rule).
pub trait Mailbox: Send + Sync {
    /// This process's rank, from 0.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sends `bytes` to rank `to` under `tag`.
    fn send(&self, to: usize, tag: u16, bytes: &[u8]);
    /// The next message from rank `from` under `tag`, waiting for it. Several threads may
    /// wait at once, each for its own rank.
    fn receive(&self, from: usize, tag: u16) -> Vec<u8>;
}

/// `n` ranks as mailboxes of one process, for running rank-0-assigns-work code on threads
/// (tests, and a reader trying it without MPI): mailbox `r` is rank `r`'s.
pub fn local_mailboxes(n: usize) -> Vec<Arc<dyn Mailbox>> {
    let queues = Arc::new(LocalQueues::default());
    (0..n)
        .map(|rank| {
            Arc::new(LocalMailbox {
                rank,
                size: n,
                queues: queues.clone(),
            }) as Arc<dyn Mailbox>
        })
        .collect()
}

/// Messages in flight from one rank to another under one tag, oldest first.
type Queue = std::collections::VecDeque<Vec<u8>>;

/// Messages in flight, by (from, to, tag).
#[derive(Default)]
struct LocalQueues {
    messages: std::sync::Mutex<std::collections::HashMap<(usize, usize, u16), Queue>>,
    arrived: std::sync::Condvar,
}

struct LocalMailbox {
    rank: usize,
    size: usize,
    queues: Arc<LocalQueues>,
}

impl Mailbox for LocalMailbox {
    fn rank(&self) -> usize {
        self.rank
    }
    fn size(&self) -> usize {
        self.size
    }
    fn send(&self, to: usize, tag: u16, bytes: &[u8]) {
        let mut m = self
            .queues
            .messages
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.entry((self.rank, to, tag))
            .or_default()
            .push_back(bytes.to_vec());
        self.queues.arrived.notify_all();
    }
    fn receive(&self, from: usize, tag: u16) -> Vec<u8> {
        let mut m = self
            .queues
            .messages
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(bytes) = m
                .get_mut(&(from, self.rank, tag))
                .and_then(|q| q.pop_front())
            {
                return bytes;
            }
            m = self
                .queues
                .arrived
                .wait(m)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// MPI's world as a [`Mailbox`]: an error outside `mpirun` or in a build without MPI.
pub fn mailbox() -> Result<Arc<dyn Mailbox>> {
    #[cfg(feature = "mpi")]
    {
        self::mpi::mailbox()
    }
    #[cfg(not(feature = "mpi"))]
    {
        Err(not_built())
    }
}

/// The group `mode` asks for: `None` for one process; MPI's world for `Mpi`, which must have
/// been launched by `mpirun`/`srun` and built with the `mpi` feature.
pub fn group(mode: Distributed) -> Result<Option<Group>> {
    match mode {
        Distributed::None => Ok(None),
        Distributed::Mpi => mpi_world().map(Some),
    }
}

#[cfg(feature = "mpi")]
fn mpi_world() -> Result<Group> {
    self::mpi::world()
}

#[cfg(not(feature = "mpi"))]
fn mpi_world() -> Result<Group> {
    Err(not_built())
}

/// The error of `--distributed mpi` in a build without MPI.
pub fn not_built() -> TrainError {
    TrainError::Knob {
        path: "runtime.distributed".into(),
        msg: "is `mpi`, but this build has no MPI: install Open MPI (Debian: `apt install \
              openmpi-bin libopenmpi-dev libclang-dev`) and build with `--features mpi` \
              (cargo build --release --features mpi)"
            .into(),
    }
}

/// Whether a launcher started this process as one rank of a job: Open MPI's `mpirun`,
/// MPICH's Hydra (PMI), PMIx or Slurm's `srun`.
pub fn launched_by_mpi() -> bool {
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "PMIX_RANK",
        "PMI_RANK",
        "SLURM_STEP_NUM_TASKS",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some())
}

/// The number of ranks the launcher started (`OMPI_COMM_WORLD_SIZE`, `PMI_SIZE`,
/// `SLURM_STEP_NUM_TASKS`), before MPI is initialised; `None` when no launcher did.
pub fn launcher_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// An error when this process is one of several ranks a launcher started but was not asked
/// to be distributed: every rank would run the whole job and write the same files. The
/// `ember` command checks it before a `train` or `search` (not the library: the trials of a
/// distributed search are plain runs inside such ranks).
pub fn not_one_of_many() -> Result<()> {
    match launcher_size() {
        Some(n) if n > 1 => Err(TrainError::Knob {
            path: "runtime.distributed".into(),
            msg: format!(
                "is `none`, but this process is one of {n} ranks an MPI launcher started: \
                 every rank would run the whole job into the same directory; add \
                 `--distributed mpi` (or run one process without mpirun)"
            ),
        }),
        _ => Ok(()),
    }
}

/// This process's rank as its launcher says (`OMPI_COMM_WORLD_RANK`, `PMI_RANK`,
/// `PMIX_RANK`, `SLURM_PROCID`), before MPI is initialised: for a program to print its
/// summary on rank 0 only.
pub fn launcher_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_RANK",
        "PMI_RANK",
        "PMIX_RANK",
        "SLURM_PROCID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// Ends MPI, if a distributed run started it: a program calls it once before it exits
/// successfully (a rank that exits without it makes `mpirun` report the job as failed). On
/// an error, exit non-zero without it: `mpirun` then ends the other ranks.
pub fn finalize() {
    #[cfg(feature = "mpi")]
    self::mpi::finalize();
}

/// Where rank `rank` (> 0) keeps the files it writes: its metrics, logs and checkpoints
/// duplicate rank 0's and are never read. Under the system's temporary folder, named by the
/// run directory and the rank; emptied when the rank starts.
pub fn scratch_dir(run: &std::path::Path, rank: usize) -> PathBuf {
    let name = run.to_string_lossy();
    std::env::temp_dir().join(format!(
        "ember-rank{rank}-{:016x}",
        fingerprint(name.as_bytes())
    ))
}

/// Checks that every rank runs the same thing: the same config (but for the run directory)
/// and the same training data, compared by a fingerprint before the first step. A mismatch
/// is one error on every rank naming the ranks that differ, not a hang or a silent average of
/// two different trainings.
pub fn check_same(group: &dyn Collective, what: &str, fingerprint: u64) -> Result<()> {
    let all = group.all_gather_u64(fingerprint);
    let odd: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(_, f)| **f != all[0])
        .map(|(r, _)| r.to_string())
        .collect();
    if odd.is_empty() {
        Ok(())
    } else {
        Err(TrainError::Config(format!(
            "distributed run: rank(s) {} have another {what} than rank 0; start every rank \
             with the same command, config and data",
            odd.join(", ")
        )))
    }
}

/// A stable 64-bit fingerprint of `bytes` (FNV-1a: the same on every machine and build,
/// unlike the standard library's hasher, whose algorithm may change between releases).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}
