//! Ember's single-device training loop, plugged into Burn's Learner where Burn lets a loop be
//! plugged in (`TrainingStrategy::Custom`, [`SupervisedLearningStrategy::fit`]), for what
//! happens *between* optimizer steps, which Burn's built-in loop has no hook for:
//!
//! - **freezing after N epochs** (airbench's whitening bias trains for 3): from epoch N + 1
//!   the parameters' gradients are dropped before the optimizer step, so they get no update,
//!   no decay, and their momentum stays, as `requires_grad = False` does in PyTorch;
//! - **lookahead** ([`LookaheadConfig`]): every `every` steps the weights and batch-norm
//!   statistics are pulled to their running average, and after the last step the network is
//!   the average. The average lives in the model ([`Classifier::average`]), so it is in every
//!   checkpoint and a resumed run continues bit-exactly.
//! - **model EMA** (`loop.ema_decay`): after every optimizer step the EMA moves toward the
//!   weights ([`Classifier::ema_update`]); validation evaluates the EMA. It lives in the
//!   model too ([`Classifier::ema`]).
//!
//! Everything else is Burn's single-device strategy (`burn-train` 0.22.1,
//! `learner/supervised/strategies/single`), step for step: the same events to the metrics
//! and renderers, validation, checkpointing, early stopping and interruption.

use crate::config::{LookaheadConfig, LoopConfig};
use crate::distributed::Group;
use crate::distributed::parallel::{all_reduce_gradients, gather_output, sync_from_rank0};
use crate::training::classifier::{Classifier, Network};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents,
    TrainingItem, ValidLoader,
};
use std::collections::HashSet;

/// The loop: one device, with freezing and lookahead between steps.
pub(crate) struct StepStrategy {
    /// The (autodiff) training device.
    pub device: Device,
    /// Optimizer steps in a full epoch.
    pub steps_per_epoch: usize,
    /// Optimizer steps of the whole run.
    pub total_steps: usize,
    /// Parameters that stop training after their number of epochs.
    pub freeze: Vec<(usize, HashSet<ParamId>)>,
    /// Lookahead, if on.
    pub lookahead: Option<LookaheadConfig>,
    /// The loop's config when it keeps a model EMA (its decay and warm-up).
    pub ema: Option<LoopConfig>,
    /// Data parallelism: the process group, whose ranks train on parts of each batch (the
    /// loaders are sharded) and average their gradients ([`crate::distributed`]).
    pub group: Option<Group>,
    /// The classes (the width of the outputs the ranks gather).
    pub classes: usize,
}

impl<N: Network> SupervisedLearningStrategy<Classifier<N>> for StepStrategy {
    fn fit(
        &self,
        components: TrainingComponents<Classifier<N>>,
        mut learner: Learner<Classifier<N>>,
        train: TrainLoader<Classifier<N>>,
        valid: ValidLoader<Classifier<N>>,
        starting_epoch: usize,
    ) -> (
        Classifier<N>,
        SupervisedTrainingEventProcessor<Classifier<N>>,
    ) {
        let train = train.to_device(&self.device);
        let valid = valid.to_device(&self.device.clone().inner());
        let (train_items, valid_items) = (train.num_items(), valid.num_items());
        learner.fork(&self.device);
        let mut processor = components.event_processor;
        let mut checkpointer = components.checkpointer;
        let mut early_stopping = components.early_stopping;
        let interrupter = components.interrupter;
        let total_epochs = components.num_epochs;

        for epoch in starting_epoch..=total_epochs {
            interrupter.fail_on_error(processor.process_train(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: train_items,
            }));
            self.train_epoch(&mut learner, &train, epoch, &mut processor, &interrupter);
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndSplit(epoch)));
            if interrupter.should_stop() {
                break;
            }
            if let Some(group) = &self.group {
                // Rank 0's batch-norm statistics everywhere before validating and saving.
                match sync_from_rank0(group.as_ref(), learner.model()) {
                    Ok(m) if group.rank() > 0 => learner.load_model(m.into_record()),
                    Ok(_) => {}
                    Err(e) => {
                        interrupter.fail(group_failure(e));
                        break;
                    }
                }
            }

            interrupter.fail_on_error(processor.process_valid(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: valid_items,
            }));
            validate(
                &learner,
                &valid,
                &mut processor,
                &interrupter,
                self.group.as_ref().map(|g| (g.as_ref(), self.classes)),
            );
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::EndSplit(epoch)));
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch)));
            if checkpointer.is_some() || early_stopping.is_some() {
                interrupter.fail_on_error(processor.flush());
            }
            if interrupter.should_stop() {
                break;
            }
            // Rank 0 owns the run directory; the others' checkpoints would never be read.
            let root = self.group.as_ref().is_none_or(|g| g.rank() == 0);
            if let Some(c) = &mut checkpointer
                && root
            {
                c.checkpoint(&learner, epoch, &components.event_store);
            }
            if let Some(e) = &mut early_stopping
                && e.should_stop(epoch, &components.event_store)
            {
                break;
            }
        }
        (learner.model(), processor)
    }
}

impl StepStrategy {
    /// One epoch (1-based `epoch`) of steps: Burn's `SingleDeviceTrainEpoch::run` without
    /// gradient accumulation, with the freezing and lookahead of this strategy.
    fn train_epoch<N: Network>(
        &self,
        learner: &mut Learner<Classifier<N>>,
        loader: &TrainLoader<Classifier<N>>,
        epoch: usize,
        processor: &mut SupervisedTrainingEventProcessor<Classifier<N>>,
        interrupter: &Interrupter,
    ) {
        let frozen: HashSet<ParamId> = self
            .freeze
            .iter()
            .filter(|(after, _)| epoch > *after)
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        // Steps done before this epoch: the loader cuts only the last epoch short.
        let mut step = (epoch - 1) * self.steps_per_epoch;
        let mut iterator = loader.iter();
        let mut iteration = 0;
        // Seconds of the steps and of their collectives (`EMBER_PROFILE_COLLECTIVES`).
        let (mut step_secs, mut collective_secs) = (0.0, 0.0);
        loop {
            let next = iterator.next();
            let step_started = std::time::Instant::now();
            let Some(item) = agree_on_batch(self.group.as_deref(), next, interrupter) else {
                break;
            };
            iteration += 1;
            let progress = iterator.progress();
            let drop_frozen = |grads: &mut GradientsParams| {
                if !frozen.is_empty() {
                    drop_gradients(&learner.model().net, &frozen, grads);
                }
            };
            let (item, grads) = match &self.group {
                None => {
                    let mut output = learner.train_step(item);
                    drop_frozen(&mut output.grads);
                    (output.item, output.grads)
                }
                Some(group) => {
                    // A rank whose part of a short batch is empty adds nothing but takes part.
                    let [images, ..] = item.images.dims();
                    let (local_item, mut grads) = match images {
                        0 => (None, GradientsParams::new()),
                        _ => {
                            let o = learner.train_step(item);
                            (Some(o.item), o.grads)
                        }
                    };
                    drop_frozen(&mut grads);
                    let started = std::time::Instant::now();
                    let net = &learner.model().net;
                    let grads = all_reduce_gradients(group.as_ref(), net, grads, images);
                    let device = self.device.clone().inner();
                    let item = gather_output(group.as_ref(), local_item, self.classes, &device);
                    collective_secs += started.elapsed().as_secs_f64();
                    (item, grads)
                }
            };
            learner.lr_step();
            learner.optimizer_step(grads);
            step_secs += step_started.elapsed().as_secs_f64();
            step += 1;
            if let Some(l) = &self.lookahead {
                let last = step >= self.total_steps;
                if step.is_multiple_of(l.every) || last {
                    // After the last step the network is the average itself (decay 1).
                    let decay = if last {
                        1.0
                    } else {
                        l.decay_at(step as u64, self.total_steps as u64)
                    };
                    let pulled = learner.model().lookahead_pull(decay);
                    learner.load_model(pulled.into_record());
                }
            }
            if let Some(decay) = self.ema.as_ref().and_then(|l| l.ema_decay_at(step as u64)) {
                let updated = learner.model().ema_update(decay);
                learner.load_model(updated.into_record());
            }
            let item =
                TrainingItem::new(item, progress, Some(iteration), Some(learner.lr_current()));
            interrupter.fail_on_error(processor.process_train(LearnerEvent::ProcessedItem(item)));
            // With a group, the next step's agreement stops every rank together.
            if interrupter.should_stop() && self.group.is_none() {
                break;
            }
        }
        if let Some(g) = &self.group
            && g.rank() == 0
            && std::env::var_os("EMBER_PROFILE_COLLECTIVES").is_some()
        {
            // A benchmark's measurement (docs/benchmarks.md), one JSON line per epoch.
            eprintln!(
                "{{\"epoch\":{epoch},\"ranks\":{},\"steps\":{iteration},\"step_secs\":{step_secs:.3},\"collective_secs\":{collective_secs:.3}}}",
                g.size()
            );
        }
    }
}

/// The loader's next batch, if the step goes ahead. One process: the batch, or `None` at
/// the end of the epoch or on a loading error (which fails the run). Several: every rank says
/// whether it has a batch, failed to load one, or was asked to stop, and all go on only
/// together, so that no rank waits in a collective the others never enter; an error on one
/// rank (its part of the batch is its own images) fails the run on every rank, naming it.
fn agree_on_batch<T>(
    group: Option<&dyn crate::distributed::Collective>,
    next: Option<Result<T, burn::data::dataset::DatasetError>>,
    interrupter: &Interrupter,
) -> Option<T> {
    let Some(group) = group else {
        return match next? {
            Ok(item) => Some(item),
            Err(err) => {
                interrupter.fail(err);
                None
            }
        };
    };
    // 0: no batch left, 1: a batch, 2: failed to load, 3: asked to stop.
    let (state, item) = match next {
        _ if interrupter.should_stop() => (3, None),
        None => (0, None),
        Some(Ok(item)) => (1, Some(item)),
        Some(Err(err)) => {
            interrupter.fail(err);
            (2, None)
        }
    };
    let states = group.all_gather_u64(state);
    if let Some(rank) = states.iter().position(|s| *s == 2) {
        if state != 2 {
            interrupter.fail(group_failure(format!(
                "rank {rank} could not load its part of the batch (its log says why)"
            )));
        }
        return None;
    }
    if states.contains(&3) {
        if state != 3 {
            interrupter.stop(Some("another rank stopped"));
        }
        return None;
    }
    if states.iter().all(|s| *s == 1) {
        return item;
    }
    if states.contains(&1) {
        interrupter.fail(group_failure(
            "the ranks' loaders disagree on the number of batches (a bug)",
        ));
    }
    None
}

/// Burn's `SingleDeviceValidEpoch::run`; with a process group, each rank evaluates its part
/// of each batch and every rank's metrics see the whole batch.
fn validate<N: Network>(
    learner: &Learner<Classifier<N>>,
    loader: &burn::train::ValidLoader<Classifier<N>>,
    processor: &mut SupervisedTrainingEventProcessor<Classifier<N>>,
    interrupter: &Interrupter,
    group: Option<(&dyn crate::distributed::Collective, usize)>,
) {
    // The model EMA when there is one: what the run reports and keeps as its best. `valid`
    // first: it also folds the network's pending batch-norm updates into its running
    // statistics (Burn's `RunningState` keeps a step's update pending), as every run's
    // validation has, so a resumed run reads the same statistics as an uninterrupted one.
    let model = learner.model().valid().evaluated();
    let mut iterator = loader.iter();
    let mut iteration = 0;
    // Each rank reads its own part of each batch: a load error on one must stop them all.
    while let Some(item) = agree_on_batch(group.map(|(g, _)| g), iterator.next(), interrupter) {
        let progress = iterator.progress();
        iteration += 1;
        let output = match group {
            None => InferenceStep::step(&model, item),
            Some((group, classes)) => {
                let device = item.images.device();
                let [images, ..] = item.images.dims();
                let local = (images > 0).then(|| InferenceStep::step(&model, item));
                gather_output(group, local, classes, &device)
            }
        };
        let item = TrainingItem::new(output, progress, Some(iteration), None);
        interrupter.fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
        if interrupter.should_stop() && group.is_none() {
            break;
        }
    }
}

/// A failure of the process group, as the error type Burn's interrupter takes.
fn group_failure(msg: impl Into<String>) -> burn::data::dataset::DatasetError {
    ember_data::DataError::Invalid(msg.into()).into()
}

/// Removes the gradients of `frozen` from `grads`: the optimizer then skips them.
fn drop_gradients<M: Module>(net: &M, frozen: &HashSet<ParamId>, grads: &mut GradientsParams) {
    struct Drop<'a> {
        frozen: &'a HashSet<ParamId>,
        grads: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Drop<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.frozen.contains(&param.id) {
                self.grads.remove::<D>(param.id);
            }
        }
    }
    net.visit(&mut Drop { frozen, grads });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed::Collective;
    use crate::distributed::parallel::tests::Threads;

    /// A validation or training batch that rank 1 cannot load: rank 0 loaded its own part,
    /// but must not go on into a collective rank 1 never enters.
    #[test]
    fn a_load_error_on_one_rank_stops_every_rank() {
        let ranks = Threads::group(2);
        let outcomes: Vec<(Option<u32>, Option<String>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|group| {
                    scope.spawn(move || {
                        let interrupter = Interrupter::new();
                        let next = match group.rank() {
                            1 => Some(Err(group_failure("image 17 is truncated"))),
                            _ => Some(Ok(7u32)),
                        };
                        let item =
                            agree_on_batch(Some(group as &dyn Collective), next, &interrupter);
                        (item, interrupter.error().map(|e| e.to_string()))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(outcomes[0].0, None, "rank 0 does not step alone");
        let said = outcomes[0].1.as_deref().unwrap_or("");
        assert!(said.contains("rank 1 could not load"), "{said}");
        let own = outcomes[1].1.as_deref().unwrap_or("");
        assert!(own.contains("image 17 is truncated"), "{own}");
        // All ranks with a batch step; all at the end stop without an error.
        let both = |next: [Option<u32>; 2]| -> Vec<(Option<u32>, bool)> {
            std::thread::scope(|scope| {
                let handles: Vec<_> = ranks
                    .iter()
                    .zip(next)
                    .map(|(group, n)| {
                        scope.spawn(move || {
                            let interrupter = Interrupter::new();
                            let item = agree_on_batch(
                                Some(group as &dyn Collective),
                                n.map(Ok),
                                &interrupter,
                            );
                            (item, interrupter.error().is_some())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            })
        };
        assert_eq!(
            both([Some(1), Some(2)]),
            [(Some(1), false), (Some(2), false)]
        );
        assert_eq!(both([None, None]), [(None, false), (None, false)]);
        // One rank with a batch, the other without: a bug, named, not a hang.
        assert_eq!(both([Some(1), None]), [(None, true), (None, true)]);
    }
}
