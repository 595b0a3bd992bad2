//! All-reduce over MPI at the gradient sizes of Ember's networks: the time of one averaging
//! of a step's gradients (25 MiB buckets, as training does) and the bandwidth it reaches.
//! Prints one JSON line per size on rank 0.
//!
//! ```sh
//! cargo build --release --features mpi --example mpi_allreduce
//! mpirun -np 2 target/release/examples/mpi_allreduce    # --oversubscribe, --allow-run-as-root as needed
//! ```
//!
//! Bandwidth is the ring all-reduce's bus bandwidth, as NCCL's tests report it: each rank sends
//! and receives `2 (N - 1) / N` times the buffer, so `busbw = 2 (N - 1) / N * bytes / time`.

use ember_train::distributed::parallel::BUCKET_VALUES;
use ember_train::distributed::{Distributed, group};
use std::time::Instant;

#[global_allocator]
static ALLOCATOR: ember_train::allocator::Allocator = ember_train::allocator::Allocator;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let world = group(Distributed::Mpi)?.ok_or("no MPI group")?;
    let n = world.size();
    // Parameters of lenet5_modern (MNIST), resnet18 for CIFAR and airbench94's network.
    let sizes = [
        ("lenet5_modern", 61_706usize),
        ("airbench94", 1_972_792),
        ("resnet18_cifar", 11_173_962),
    ];
    for (name, params) in sizes {
        let mut buckets: Vec<Vec<f32>> = (0..params.div_ceil(BUCKET_VALUES))
            .map(|b| vec![1.0f32; (params - b * BUCKET_VALUES).min(BUCKET_VALUES)])
            .collect();
        let reps = if params < 1_000_000 { 200 } else { 20 };
        // Warm-up: connections and buffers.
        for b in &mut buckets {
            world.all_reduce_sum(b);
        }
        let started = Instant::now();
        for _ in 0..reps {
            for b in &mut buckets {
                world.all_reduce_sum(b);
            }
        }
        let secs = started.elapsed().as_secs_f64() / reps as f64;
        if world.rank() == 0 {
            let bytes = params as f64 * 4.0;
            let busbw = 2.0 * (n as f64 - 1.0) / n as f64 * bytes / secs;
            println!(
                "{{\"bench\":\"mpi_allreduce\",\"model\":\"{name}\",\"params\":{params},\"ranks\":{n},\"ms\":{:.3},\"busbw_gbit_s\":{:.2}}}",
                secs * 1e3,
                busbw * 8.0 / 1e9
            );
        }
    }
    ember_train::distributed::finalize();
    Ok(())
}
