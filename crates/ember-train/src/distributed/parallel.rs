//! The collective parts of a data-parallel step: averaging the gradients, gathering the
//! batch's outputs for the metrics, and bringing every rank to rank 0's model.

use super::Collective;
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::store::ModuleRecord;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::ClassificationOutput;

/// Gradients are reduced in buckets of at most this many values (25 MiB of f32: PyTorch
/// DDP's `bucket_cap_mb`): one MPI call per bucket, not one per tensor, and no single
/// buffer the size of a large model.
pub const BUCKET_VALUES: usize = 25 * 1024 * 1024 / 4;

/// One parameter's gradient on this rank.
struct Entry {
    id: ParamId,
    dims: Vec<usize>,
    device: Device,
    values: Option<Vec<f32>>,
}

/// The gradients of the global batch from each rank's gradients of its part: the mean loss's
/// gradient over `B` images is `sum_r (b_r / B) g_r`, with `g_r` rank `r`'s gradient of its
/// mean over its `b_r` images (`local_images`), so unequal parts (a short last batch) weigh
/// right and a rank with no images adds nothing. A parameter gets a gradient when any rank
/// has one for it (the frozen, and the unused, have none on any).
pub fn all_reduce_gradients<M: Module>(
    group: &dyn Collective,
    net: &M,
    mut grads: GradientsParams,
    local_images: usize,
) -> GradientsParams {
    struct Take<'a> {
        grads: &'a mut GradientsParams,
        entries: Vec<Entry>,
    }
    impl ModuleVisitor for Take<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let values = self.grads.remove::<D>(param.id).map(|g| {
                g.into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .unwrap_or_default()
            });
            self.entries.push(Entry {
                id: param.id,
                dims: value.dims().to_vec(),
                device: value.device().inner(),
                values,
            });
        }
    }
    let mut take = Take {
        grads: &mut grads,
        entries: Vec::new(),
    };
    net.visit(&mut take);
    let mut entries = take.entries;

    // Buckets of whole tensors, in the parameters' order (the same on every rank). Each holds
    // its values times b_r, then one flag per tensor (1: this rank has its gradient); the
    // first also holds b_r, whose sum is B.
    let weight = local_images as f32;
    let mut reduced: Vec<(Vec<f32>, f32)> = Vec::with_capacity(entries.len());
    let mut total = 0f32;
    let mut start = 0;
    while start < entries.len() {
        let mut end = start;
        let mut len = 0;
        while end < entries.len() {
            let n: usize = entries[end].dims.iter().product();
            if end > start && len + n > BUCKET_VALUES {
                break;
            }
            len += n;
            end += 1;
        }
        let part = &mut entries[start..end];
        let mut buf = Vec::with_capacity(len + part.len() + 1);
        for e in part.iter() {
            let n: usize = e.dims.iter().product();
            match &e.values {
                Some(v) => buf.extend(v.iter().map(|x| x * weight)),
                None => buf.extend(std::iter::repeat_n(0.0, n)),
            }
        }
        buf.extend(part.iter().map(|e| e.values.is_some() as u8 as f32));
        if start == 0 {
            buf.push(weight);
        }
        group.all_reduce_sum(&mut buf);
        if start == 0 {
            total = buf.pop().unwrap_or(0.0);
        }
        let flags = buf.split_off(len);
        let mut at = 0;
        for (e, flag) in part.iter_mut().zip(flags) {
            let n: usize = e.dims.iter().product();
            reduced.push((buf[at..at + n].to_vec(), flag));
            e.values = None;
            at += n;
        }
        start = end;
    }

    let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
    let mut out = GradientsParams::new();
    struct Put<'a> {
        out: &'a mut GradientsParams,
        entries: std::vec::IntoIter<(Entry, (Vec<f32>, f32))>,
    }
    impl ModuleVisitor for Put<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let Some((entry, (values, flag))) = self.entries.next() else {
                return;
            };
            debug_assert_eq!(entry.id, param.id);
            if flag > 0.0 {
                let data = TensorData::new(values, entry.dims.clone());
                self.out
                    .register::<D>(entry.id, Tensor::from_data(data, &entry.device));
            }
        }
    }
    let entries: Vec<(Entry, (Vec<f32>, f32))> = entries
        .into_iter()
        .zip(
            reduced
                .into_iter()
                .map(|(v, f)| (v.into_iter().map(|x| x * scale).collect::<Vec<f32>>(), f)),
        )
        .collect();
    net.visit(&mut Put {
        out: &mut out,
        entries: entries.into_iter(),
    });
    out
}

/// The whole batch's output from every rank's part, on every rank (an all-gather of one row
/// `[loss, target, logits...]` per image): the metrics then see what a single process sees.
/// `local` is `None` on a rank without images; `classes` is the logits' width.
pub fn gather_output(
    group: &dyn Collective,
    local: Option<ClassificationOutput>,
    classes: usize,
    device: &Device,
) -> ClassificationOutput {
    let width = classes + 2;
    let mut rows = Vec::new();
    if let Some(o) = local {
        let loss = to_f32(o.loss.into_data());
        let logits = to_f32(o.output.into_data());
        let targets = o.targets.into_data().convert::<i64>();
        let targets = targets.try_into_vec::<i64>().unwrap_or_default();
        for (i, t) in targets.iter().enumerate() {
            rows.push(loss.get(i).copied().unwrap_or(0.0));
            // Class indices are exact in f32 up to 2^24.
            rows.push(*t as f32);
            rows.extend_from_slice(&logits[i * classes..(i + 1) * classes]);
        }
    }
    let counts: Vec<usize> = group
        .all_gather_u64(rows.len() as u64)
        .into_iter()
        .map(|c| c as usize)
        .collect();
    let all = group.all_gather_varcount(&rows, &counts);
    let n = all.len() / width;
    let (mut loss, mut targets, mut logits) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n * classes),
    );
    for row in all.chunks_exact(width) {
        loss.push(row[0]);
        targets.push(row[1] as i64);
        logits.extend_from_slice(&row[2..]);
    }
    ClassificationOutput::new(
        Tensor::from_data(TensorData::new(loss, [n]), device),
        Tensor::from_data(TensorData::new(logits, [n, classes]), device),
        Tensor::<1, Int>::from_data(TensorData::new(targets, [n]), device),
    )
}

fn to_f32(data: TensorData) -> Vec<f32> {
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// Rank 0's weights and buffers (batch-norm running statistics, lookahead's average) on
/// every rank. The ranks' weights never differ (same start, same averaged gradients, same
/// optimizer); their batch-norm running statistics do, each from its own part of the
/// batches. PyTorch DDP broadcasts rank 0's buffers before every forward; since training
/// forwards use batch statistics, doing it before each validation and checkpoint gives the
/// same statistics for a fraction of the traffic.
pub fn sync_from_rank0<M: Module>(group: &dyn Collective, model: M) -> Result<M, String> {
    if group.size() == 1 {
        return Ok(model);
    }
    let mut bytes = if group.rank() == 0 {
        model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| format!("cannot serialise the model: {e}"))?
            .to_vec()
    } else {
        Vec::new()
    };
    group.broadcast_bytes(&mut bytes);
    if group.rank() == 0 {
        return Ok(model);
    }
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("rank 0's model does not read: {e}"))?;
    let theirs = model
        .clone()
        .try_load_record(record)
        .map_err(|e| format!("rank 0's model does not fit this rank's: {e}"))?;
    // A loaded record brings rank 0's parameter ids too; this rank's optimizer keeps its
    // momentum under its own, so they are put back (same modules, same order).
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id);
        }
    }
    struct Reid(std::vec::IntoIter<ParamId>);
    impl burn::module::ModuleMapper for Reid {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (theirs, value, mapper) = param.consume();
            Param::from_mapped_value(self.0.next().unwrap_or(theirs), value, mapper)
        }
    }
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    Ok(theirs.map(&mut Reid(ids.0.into_iter())))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::distributed::{Solo, check_same, fingerprint};
    use burn::nn::{Linear, LinearConfig};
    use std::sync::{Arc, Barrier, Mutex};

    /// Ranks as threads of one process: each collective waits for all, then every rank reads
    /// what all wrote. For testing the step's arithmetic without MPI.
    pub(crate) struct Threads {
        rank: usize,
        shared: Arc<(Barrier, Mutex<Vec<Vec<f32>>>)>,
    }

    impl Threads {
        pub(crate) fn group(n: usize) -> Vec<Threads> {
            let shared = Arc::new((Barrier::new(n), Mutex::new(vec![Vec::new(); n])));
            (0..n)
                .map(|rank| Threads {
                    rank,
                    shared: shared.clone(),
                })
                .collect()
        }
        /// Every rank's `mine`, by rank.
        fn exchange(&self, mine: Vec<f32>) -> Vec<Vec<f32>> {
            let (barrier, slots) = &*self.shared;
            slots.lock().unwrap()[self.rank] = mine;
            barrier.wait();
            let all = slots.lock().unwrap().clone();
            barrier.wait();
            all
        }
    }

    impl Collective for Threads {
        fn rank(&self) -> usize {
            self.rank
        }
        fn size(&self) -> usize {
            self.shared.1.lock().unwrap().len()
        }
        fn all_reduce_sum(&self, buf: &mut [f32]) {
            let all = self.exchange(buf.to_vec());
            for (i, v) in buf.iter_mut().enumerate() {
                *v = all.iter().map(|b| b[i]).sum();
            }
        }
        fn all_gather_u64(&self, value: u64) -> Vec<u64> {
            // Exact for the small values the step exchanges.
            let all = self.exchange(vec![value as f32]);
            all.iter().map(|b| b[0] as u64).collect()
        }
        fn all_gather_varcount(&self, local: &[f32], _counts: &[usize]) -> Vec<f32> {
            self.exchange(local.to_vec()).concat()
        }
        fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
            let all = self.exchange(bytes.iter().map(|b| *b as f32).collect());
            *bytes = all[0].iter().map(|v| *v as u8).collect();
        }
    }

    fn model(device: &Device) -> Linear {
        LinearConfig::new(3, 2).init(device)
    }

    /// The gradient of the mean squared output over `rows` of `x`.
    fn grads(
        net: &Linear,
        x: &[f32],
        rows: std::ops::Range<usize>,
        device: &Device,
    ) -> GradientsParams {
        let part = x[rows.start * 3..rows.end * 3].to_vec();
        let input = Tensor::<2>::from_data(TensorData::new(part, [rows.len(), 3]), device);
        let loss = net.forward(input).powi_scalar(2).mean();
        GradientsParams::from_grads(loss.backward(), net)
    }

    fn values(net: &Linear, g: &GradientsParams) -> Vec<f32> {
        let w = g
            .get::<2>(net.weight.id)
            .unwrap()
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        let b = g.get::<1>(net.bias.as_ref().unwrap().id).unwrap();
        [w, b.into_data().try_into_vec::<f32>().unwrap()].concat()
    }

    #[test]
    fn ranks_average_to_the_whole_batch_gradient_even_for_unequal_parts() {
        let device = Device::flex().autodiff();
        let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let net = model(&device);
        let whole = values(&net, &grads(&net, &x, 0..8, &device));
        // Rank 0 has 3 of the 8 rows, rank 1 the other 5; a third rank has none.
        let parts = [0..3, 3..8, 8..8];
        let group = Threads::group(3);
        let results: Vec<Vec<f32>> = std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .zip(parts.clone())
                .map(|(g, rows)| {
                    let (net, x, device) = (net.clone(), &x, device.clone());
                    s.spawn(move || {
                        let n = rows.len();
                        let local = if n > 0 {
                            grads(&net, x, rows, &device)
                        } else {
                            GradientsParams::new()
                        };
                        let reduced = all_reduce_gradients(g, &net, local, n);
                        values(&net, &reduced)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results {
            for (a, b) in r.iter().zip(&whole) {
                assert!((a - b).abs() < 1e-6, "{r:?} vs {whole:?}");
            }
        }
        // One rank: the gradients unchanged.
        let solo = all_reduce_gradients(&Solo, &net, grads(&net, &x, 0..8, &device), 8);
        assert_eq!(values(&net, &solo), whole);
    }

    #[test]
    fn every_rank_sees_the_whole_batch_output() {
        let device = Device::flex();
        let part = |rows: &[(f32, i64, [f32; 2])]| {
            let n = rows.len();
            ClassificationOutput::new(
                Tensor::from_data(
                    TensorData::new(rows.iter().map(|r| r.0).collect(), [n]),
                    &device,
                ),
                Tensor::from_data(
                    TensorData::new(rows.iter().flat_map(|r| r.2).collect(), [n, 2]),
                    &device,
                ),
                Tensor::from_data(
                    TensorData::new(rows.iter().map(|r| r.1).collect(), [n]),
                    &device,
                ),
            )
        };
        let group = Threads::group(2);
        let outs: Vec<ClassificationOutput> = std::thread::scope(|s| {
            let a = s.spawn(|| {
                gather_output(&group[0], Some(part(&[(0.5, 1, [1.0, 2.0])])), 2, &device)
            });
            let b = s.spawn(|| {
                let rows = [(0.25, 0, [3.0, 4.0]), (0.25, 1, [5.0, 6.0])];
                gather_output(&group[1], Some(part(&rows)), 2, &device)
            });
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        for o in outs {
            assert_eq!(
                o.loss.into_data().try_into_vec::<f32>().unwrap(),
                [0.5, 0.25, 0.25]
            );
            assert_eq!(
                o.output.into_data().try_into_vec::<f32>().unwrap(),
                [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
            );
            let t = o
                .targets
                .into_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .unwrap();
            assert_eq!(t, [1, 0, 1]);
        }
    }

    #[test]
    fn other_ranks_take_rank_zeros_model_and_a_mismatch_names_the_rank() {
        let device = Device::flex();
        let group = Threads::group(2);
        let (zero, one) = (model(&device), LinearConfig::new(3, 2).init(&device));
        let synced: Vec<Linear> = std::thread::scope(|s| {
            let a = s.spawn(|| sync_from_rank0(&group[0], zero.clone()).unwrap());
            let b = s.spawn(|| sync_from_rank0(&group[1], one.clone()).unwrap());
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let w = |l: &Linear| l.weight.val().into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(w(&synced[1]), w(&zero));
        assert_eq!(
            synced[1].weight.id, one.weight.id,
            "rank 1 keeps its parameter ids (its optimizer's state is keyed by them)"
        );
        let errors: Vec<String> = std::thread::scope(|s| {
            let a = s.spawn(|| check_same(&group[0], "config", 1).map_err(|e| e.to_string()));
            let b = s.spawn(|| check_same(&group[1], "config", 2).map_err(|e| e.to_string()));
            vec![
                a.join().unwrap().unwrap_err(),
                b.join().unwrap().unwrap_err(),
            ]
        });
        for e in errors {
            assert!(
                e.contains("rank(s) 1 have another config than rank 0"),
                "{e}"
            );
        }
        assert_eq!(fingerprint(b"ember"), 0x0b0e3ab4160db2a4, "FNV-1a, stable");
    }

    #[test]
    #[cfg(not(feature = "mpi"))]
    fn mpi_in_a_build_without_it_says_how_to_build_it() {
        let mut c = crate::config::TrainConfig::default();
        c.runtime.distributed = crate::distributed::Distributed::Mpi;
        let e = c.validate_options().unwrap_err().to_string();
        assert!(
            e.contains("`runtime.distributed`") && e.contains("--features mpi"),
            "{e}"
        );
    }
}
