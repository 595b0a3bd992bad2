//! [`Collective`] over MPI (rsmpi, the `mpi` crate).
//!
//! MPI is initialised once per process, at the first [`world`], with
//! `MPI_THREAD_SERIALIZED` (Burn's Learner may call from another thread than `main`, one at a
//! time), and finalised by [`finalize`], which the `ember` binary calls before it exits: a
//! rank that exits without `MPI_Finalize` makes `mpirun` report the job as failed.
//!
//! A rank that dies (killed, panicked, exited early) ends the job: Open MPI's `mpirun` kills
//! the other ranks within seconds and exits non-zero, naming the rank that died.

use super::{Collective, Group, Mailbox};
use crate::error::{Result, TrainError};
use ::mpi::Threading;
use ::mpi::collective::SystemOperation;
use ::mpi::datatype::PartitionMut;
use ::mpi::environment::Universe;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::*;
use std::sync::{Arc, Mutex};

static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);

/// MPI's world: every rank of the job.
struct World {
    comm: SimpleCommunicator,
}

// SAFETY: MPI is initialised with MPI_THREAD_SERIALIZED and Ember makes the collective calls
// of a run from one thread at a time (the training loop's), which that level allows.
unsafe impl Send for World {}
unsafe impl Sync for World {}

/// The job's world, initialising MPI the first time; an error outside `mpirun`/`srun`.
pub fn world() -> Result<Group> {
    Ok(Arc::new(World {
        comm: world_comm()?,
    }))
}

/// The job's world as a [`Mailbox`] (the ranks of a search), initialising MPI the first time.
pub fn mailbox() -> Result<Arc<dyn Mailbox>> {
    Ok(Arc::new(Post {
        comm: world_comm()?,
        serial: Mutex::new(()),
    }))
}

fn world_comm() -> Result<SimpleCommunicator> {
    if !super::launched_by_mpi() {
        return Err(TrainError::Knob {
            path: "runtime.distributed".into(),
            msg: "is `mpi`, but no MPI launcher started this process: run it as `mpirun -np N \
                  ember train ...` (or `srun` under Slurm)"
                .into(),
        });
    }
    let mut universe = UNIVERSE.lock().unwrap_or_else(|e| e.into_inner());
    if universe.is_none() {
        let (u, level) =
            ::mpi::initialize_with_threading(Threading::Serialized).ok_or_else(|| {
                TrainError::Training("MPI is already initialised by someone else".into())
            })?;
        if matches!(level, Threading::Single | Threading::Funneled) {
            return Err(TrainError::Training(format!(
                "this MPI offers thread level {level:?}; Ember needs Serialized"
            )));
        }
        *universe = Some(u);
    }
    let comm = universe
        .as_ref()
        .map(|u| u.world())
        .ok_or_else(|| TrainError::Training("MPI is not initialised".into()))?;
    Ok(comm)
}

/// Finalises MPI if it was initialised: call once, before the process exits.
pub fn finalize() {
    let mut universe = UNIVERSE.lock().unwrap_or_else(|e| e.into_inner());
    universe.take();
}

impl Collective for World {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) {
        let send = buf.to_vec();
        self.comm
            .all_reduce_into(&send[..], buf, SystemOperation::sum());
    }

    fn all_gather_u64(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0u64; self.size()];
        self.comm.all_gather_into(&value, &mut all[..]);
        all
    }

    fn all_gather_varcount(&self, local: &[f32], counts: &[usize]) -> Vec<f32> {
        let counts: Vec<i32> = counts.iter().map(|&c| c as i32).collect();
        let displs: Vec<i32> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let total = counts.iter().sum::<i32>() as usize;
        let mut all = vec![0f32; total];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.comm.all_gather_varcount_into(local, &mut partition);
        }
        all
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        let root = self.comm.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
    }
}

/// Point-to-point messages over MPI's world, from any thread.
///
/// Rank 0 of a search waits for several ranks at once, one thread each, but MPI runs at
/// `MPI_THREAD_SERIALIZED`: so every MPI call here is made under `serial`, and no call
/// blocks while holding it. A receive polls (`MPI_Improbe`, then the matched receive of the
/// probed message); a send starts (`MPI_Isend`) and polls for completion. The polls sleep
/// 2 ms between tries: nothing next to a trial's seconds, and no core spinning.
struct Post {
    comm: SimpleCommunicator,
    serial: Mutex<()>,
}

// SAFETY: every MPI call of a `Post` is made under its `serial` mutex, one at a time, which
// MPI_THREAD_SERIALIZED allows from any thread.
unsafe impl Send for Post {}
unsafe impl Sync for Post {}

const POLL: std::time::Duration = std::time::Duration::from_millis(2);

impl Post {
    fn serial(&self) -> std::sync::MutexGuard<'_, ()> {
        self.serial.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Mailbox for Post {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }

    fn size(&self) -> usize {
        self.comm.size() as usize
    }

    fn send(&self, to: usize, tag: u16, bytes: &[u8]) {
        let process = self.comm.process_at_rank(to as i32);
        ::mpi::request::scope(|scope| {
            let mut request = {
                let _serial = self.serial();
                process.immediate_send_with_tag(scope, bytes, tag as i32)
            };
            loop {
                let tested = {
                    let _serial = self.serial();
                    request.test()
                };
                match tested {
                    Ok(_) => return,
                    Err(pending) => request = pending,
                }
                std::thread::sleep(POLL);
            }
        })
    }

    fn receive(&self, from: usize, tag: u16) -> Vec<u8> {
        let process = self.comm.process_at_rank(from as i32);
        loop {
            {
                let _serial = self.serial();
                if let Some(probed) = process.immediate_matched_probe_with_tag(tag as i32) {
                    return probed.matched_receive_vec::<u8>().0;
                }
            }
            std::thread::sleep(POLL);
        }
    }
}
