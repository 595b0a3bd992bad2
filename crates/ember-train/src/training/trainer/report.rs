//! The end of a run: the final and best weights, the curves, and the evaluation of the best
//! weights on the test split (or the validation split).

use super::{AsItems, RunData, TrainOutcome, best_epoch, load_weights, save_weights};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::inspect::eval::{EvalSplit, evaluate};
use crate::store::run::RunDir;
use crate::training::classifier::Network;
use crate::training::logger::EpochRecord;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use ember_data::ImageItem;
use ember_data::loader::{ImageLoader, LoaderConfig};
use std::sync::Arc;

/// Writes the final and best weights, the curves and the evaluation report of a trained run.
pub(crate) fn finish<N: Network>(
    config: &TrainConfig,
    run: RunDir,
    data: &RunData,
    records: Vec<EpochRecord>,
    (final_net, final_ema): (N, Option<N>),
    (seconds, data_init_seconds): (f64, f64),
    device: &Device,
) -> Result<TrainOutcome> {
    let has_validation = !data.valid.is_empty();
    save_weights(&final_net, &run.final_weights())?;
    // With a model EMA, it is what validation scored: the best epoch's EMA is best.bpk.
    if let Some(ema) = &final_ema {
        save_weights(ema, &run.ema())?;
    }

    let best_epoch = best_epoch(&records, config.train_loop.monitor);
    let mut eval_net = final_ema.unwrap_or_else(|| final_net.clone()).valid();
    if let Some(best) = best_epoch {
        // Checkpoints hold the Learner's model (the network inside a `Classifier`); best.bpk
        // and final.bpk hold the network alone, as `ember eval` and fine-tuning load it.
        let path = run.model_checkpoint(best);
        if path.is_file() {
            let best_model =
                load_weights(super::phases::classifier(config, final_net.clone()), &path)?;
            let best_net = best_model.ema.unwrap_or(best_model.net);
            save_weights(&best_net, &run.best())?;
            eval_net = best_net.valid();
        }
    }
    let last_epoch = records.last().map_or(0, |r| r.epoch);
    let stopped_early = last_epoch < config.train_loop.epochs;
    if !records.is_empty() {
        let name = config.model.clone();
        crate::inspect::plot::curves_png(&[(name, records.clone())], &run.curves())?;
    }

    // Evaluate on the official test split, else on the validation split.
    let (split_name, eval_ds) = match (&data.test, has_validation) {
        (Some(t), _) => (EvalSplit::Test, Some(t.clone())),
        (None, true) => (EvalSplit::Val, Some(data.valid.clone())),
        (None, false) => (EvalSplit::Train, None),
    };
    let eval_device = device.clone();
    let report = match eval_ds {
        Some(ds) => {
            let ds: Arc<dyn Dataset<ImageItem>> = Arc::new(AsItems(ds));
            let loader = ImageLoader::new(
                ds.clone(),
                data.eval_transforms.clone(),
                LoaderConfig {
                    batch_size: config.train_loop.batch_size.max(64),
                    shuffle: false,
                    seed: config.train_loop.seed,
                    workers: config.runtime.workers,
                    drop_last: false,
                    total_batches: None,
                    shard: None,
                },
                eval_device,
            )?;
            let report = evaluate(&eval_net, &loader, &data.classes, config.train_loop.tta)?;
            // The best epoch was chosen on the validation split: scored there, it is optimistic.
            let which = match best_epoch {
                Some(e) if split_name == EvalSplit::Val => format!(
                    "best epoch ({e}), chosen on these images (optimistic; `ember eval --weights final` scores the last epoch)"
                ),
                Some(e) => format!("best epoch ({e})"),
                None => "final weights".into(),
            };
            report.save(
                &run.root,
                &format!(
                    "{} on the {} split of {}, {which}",
                    config.model, split_name, config.data.dataset
                ),
            )?;
            crate::inspect::viz::top_losses_png(
                &*ds,
                &data.eval_transforms,
                &report,
                &run.root.join("top_losses.png"),
            )?;
            Some(report)
        }
        None => None,
    };
    Ok(TrainOutcome {
        run,
        records,
        best_epoch,
        report,
        report_split: split_name,
        stopped_early,
        seconds,
        data_init_seconds,
    })
}
