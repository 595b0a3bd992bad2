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
//!
//! Everything else is Burn's single-device strategy (`burn-train` 0.22.1,
//! `learner/supervised/strategies/single`), step for step: the same events to the metrics
//! and renderers, validation, checkpointing, early stopping and interruption.

use crate::config::LookaheadConfig;
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

            interrupter.fail_on_error(processor.process_valid(LearnerEvent::StartSplit {
                epoch_number: epoch,
                total_items: valid_items,
            }));
            validate(&learner, &valid, &mut processor, &interrupter);
            interrupter.fail_on_error(processor.process_valid(LearnerEvent::EndSplit(epoch)));
            interrupter.fail_on_error(processor.process_train(LearnerEvent::EndEpoch(epoch)));
            if checkpointer.is_some() || early_stopping.is_some() {
                interrupter.fail_on_error(processor.flush());
            }
            if interrupter.should_stop() {
                break;
            }
            if let Some(c) = &mut checkpointer {
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
        while let Some(item) = iterator.next() {
            let item = match item {
                Ok(item) => item,
                Err(err) => {
                    interrupter.fail(err);
                    break;
                }
            };
            iteration += 1;
            let progress = iterator.progress();
            let output = learner.train_step(item);
            let mut grads = output.grads;
            if !frozen.is_empty() {
                drop_gradients(&learner.model().net, &frozen, &mut grads);
            }
            learner.lr_step();
            learner.optimizer_step(grads);
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
            let item = TrainingItem::new(
                output.item,
                progress,
                Some(iteration),
                Some(learner.lr_current()),
            );
            interrupter.fail_on_error(processor.process_train(LearnerEvent::ProcessedItem(item)));
            if interrupter.should_stop() {
                break;
            }
        }
    }
}

/// Burn's `SingleDeviceValidEpoch::run`.
fn validate<N: Network>(
    learner: &Learner<Classifier<N>>,
    loader: &burn::train::ValidLoader<Classifier<N>>,
    processor: &mut SupervisedTrainingEventProcessor<Classifier<N>>,
    interrupter: &Interrupter,
) {
    let model = learner.model().valid();
    let mut iterator = loader.iter();
    let mut iteration = 0;
    while let Some(item) = iterator.next() {
        let item = match item {
            Ok(item) => item,
            Err(err) => {
                interrupter.fail(err);
                break;
            }
        };
        let progress = iterator.progress();
        iteration += 1;
        let output = InferenceStep::step(&model, item);
        let item = TrainingItem::new(output, progress, Some(iteration), None);
        interrupter.fail_on_error(processor.process_valid(LearnerEvent::ProcessedItem(item)));
        if interrupter.should_stop() {
            break;
        }
    }
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
