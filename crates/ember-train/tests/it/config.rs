//! The config's knobs: declared once, and everything derived from the declaration agrees.

use ember_train::config::knob::{Flag, Section};
use ember_train::config::{
    DataConfig, LoopConfig, OptimConfig, OptimizerKind, RuntimeConfig, ScheduleConfig, TrainConfig,
};
use ember_train::error::TrainError;
use ember_train::finetune::FinetuneConfig;
use std::collections::BTreeSet;

#[test]
fn every_knob_is_a_field_with_a_doc_and_one_path_and_one_flag() {
    let mut paths = BTreeSet::new();
    let mut flags = BTreeSet::new();
    let mut names = BTreeSet::new();
    for section in TrainConfig::SECTIONS {
        for k in section {
            // A name in two sections would make the older flat files ambiguous.
            assert!(names.insert(k.name), "{} is in two sections", k.name);
        }
    }
    for k in TrainConfig::knobs() {
        assert!(paths.insert(k.path), "{} twice", k.path);
        assert_eq!(k.path, format!("{}.{}", k.section, k.name));
        assert!(!k.doc.trim().is_empty(), "{} has no doc", k.path);
        if let Some(f) = k.flag.name() {
            assert!(flags.insert(f), "--{f} twice");
        }
    }
    // Each section's table is its struct: every field, in order, and nothing else.
    fn fields<S: Section>() -> Vec<String> {
        let table = toml::Value::try_from(S::default()).unwrap();
        let mut all: Vec<String> = S::KNOBS.iter().map(|k| k.name.to_string()).collect();
        let written: BTreeSet<String> = table.as_table().unwrap().keys().cloned().collect();
        // Unset optional knobs are not written; every written key is a knob.
        assert!(written.iter().all(|w| all.contains(w)), "{written:?}");
        all.retain(|n| written.contains(n));
        all
    }
    assert!(fields::<DataConfig>().contains(&"crop_padding".to_string()));
    assert!(fields::<OptimConfig>().contains(&"lr".to_string()));
    assert!(fields::<ScheduleConfig>().contains(&"kind".to_string()));
    assert!(fields::<LoopConfig>().contains(&"drop_last".to_string()));
    assert!(fields::<RuntimeConfig>().contains(&"diagnostics".to_string()));
    assert!(fields::<FinetuneConfig>().contains(&"backbone_lr_factor".to_string()));
    // The headline flags stay what users typed before the knobs were declared.
    for flag in [
        "dataset",
        "data-dir",
        "val-split",
        "classes",
        "resize",
        "augment",
        "cutout",
        "optimizer",
        "lr",
        "momentum",
        "nesterov",
        "weight-decay",
        "no-decay-norm-bias",
        "grad-clip",
        "schedule",
        "step-size",
        "gamma",
        "warmup-epochs",
        "epochs",
        "batch-size",
        "label-smoothing",
        "early-stop-patience",
        "monitor",
        "tta",
        "seed",
        "backend",
        "devices",
        "workers",
        "out",
        "log-every",
        "no-diagnostics",
        "from",
        "freeze",
        "unfreeze-after",
        "allow-partial",
    ] {
        assert!(flags.contains(flag), "--{flag} is gone");
    }
    assert_eq!(
        TrainConfig::knob("schedule").unwrap().flag,
        Flag::Value("schedule")
    );
    assert_eq!(TrainConfig::knob("lr").unwrap().path, "optim.lr");
}

#[test]
fn set_reads_each_knob_as_its_type_and_any_other_path_as_toml() {
    let mut c = TrainConfig::default();
    c.set("optim.lr", "0.05").unwrap();
    c.set("lr", "0.07").unwrap(); // the older flat name
    c.set("optimizer", "adamw").unwrap();
    c.set("runtime.out", "2024").unwrap(); // a path that looks like a number
    c.set("data.resize", "32").unwrap(); // the flag's shorthand
    c.set("data.classes", "3-5").unwrap();
    c.set("loop.epochs", "9.9").unwrap();
    c.set("model_options.width_divisor", "4").unwrap();
    c.set("loop.lookahead.every", "5").unwrap();
    assert_eq!(c.optim.lr, 0.07);
    assert_eq!(c.optim.optimizer, OptimizerKind::Adamw);
    assert_eq!(c.runtime.out, std::path::PathBuf::from("2024"));
    assert_eq!(c.data.resize, Some([32, 32]));
    assert_eq!(c.data.classes, Some(vec![3, 4, 5]));
    assert_eq!(
        (c.train_loop.epochs, c.train_loop.fractional_epochs),
        (10, Some(9.9))
    );
    assert_eq!(c.model_options["width_divisor"].as_integer(), Some(4));
    assert_eq!(c.train_loop.lookahead.as_ref().unwrap().every, 5);
    // A whole number of epochs clears the fraction again.
    c.set("loop.epochs", "12").unwrap();
    assert_eq!(
        (c.train_loop.epochs, c.train_loop.fractional_epochs),
        (12, None)
    );
    // Text the type does not read is an error that names the knob, and changes nothing.
    let before = c.clone();
    let e = c.set("optim.lr", "fast").unwrap_err().to_string();
    assert!(e.contains("optim.lr"), "{e}");
    let e = c.set("optim.optimizer", "adamax").unwrap_err().to_string();
    assert!(e.contains("adamax") && e.contains("adamw"), "{e}");
    let e = c.set("optim.learning_rate", "0.1").unwrap_err().to_string();
    assert!(e.contains("learning_rate"), "{e}");
    assert_eq!(c, before);
}

#[test]
fn a_failed_check_names_the_config_path_and_the_value() {
    let mut c = TrainConfig::default();
    c.optim.lr = -1.0;
    match c.validate_options() {
        Err(TrainError::Knob { path, msg }) => {
            assert_eq!(path, "optim.lr");
            assert!(msg.contains("> 0") && msg.contains("-1"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    let mut c = TrainConfig::default();
    c.runtime.workers = 1000;
    let e = c.validate_options().unwrap_err().to_string();
    assert!(e.contains("runtime.workers") && e.contains("1000"), "{e}");
    let mut c = TrainConfig::default();
    c.data.val_split = 0.0;
    c.train_loop.early_stop_patience = Some(3);
    let e = c.validate_options().unwrap_err().to_string();
    assert!(
        e.contains("loop.early_stop_patience") && e.contains("`data.val_split`"),
        "{e}"
    );
    let c = TrainConfig {
        finetune: Some(FinetuneConfig {
            backbone_lr_factor: f64::NAN,
            ..FinetuneConfig::default()
        }),
        ..TrainConfig::default()
    };
    let e = c.validate_options().unwrap_err().to_string();
    assert!(e.contains("finetune.backbone_lr_factor"), "{e}");
    // Every default passes its own checks.
    TrainConfig::default().validate_options().unwrap();
}

#[cfg(feature = "cli")]
mod cli {
    use super::*;
    use clap::Parser;
    use ember_train::cli::{TrainArgs, in_flag_words};

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        train: TrainArgs,
    }

    fn parse(args: &[&str]) -> Result<TrainConfig, String> {
        let mut all = vec!["test", "--model", "lenet5_modern", "--dataset", "mnist"];
        all.extend(args);
        let args = Args::try_parse_from(all).map_err(|e| e.to_string())?;
        args.train.config().map_err(|e| e.to_string())
    }

    #[test]
    fn flags_and_set_override_in_order_and_switches_switch() {
        let c = parse(&[
            "--lr",
            "0.2",
            "--nesterov",
            "--momentum",
            "0.9",
            "--no-diagnostics",
            "--epochs",
            "2.5",
            "--flip",
            "alternating",
            "--set",
            "optim.lr=0.3",
            "--schedule",
            "piecewise-linear",
            "--set",
            "schedule.knots=[[0, 1], [1, 0]]",
            "--set",
            "optim.groups=[{params = \"fc.*\", lr_factor = 10}]",
        ])
        .unwrap();
        assert_eq!(c.optim.lr, 0.3, "--set comes after the flags");
        assert!(c.optim.nesterov);
        assert!(!c.runtime.diagnostics);
        assert_eq!(c.train_loop.epochs, 3);
        assert_eq!(c.train_loop.fractional_epochs, Some(2.5));
        assert_eq!(c.data.flip, ember_train::config::FlipMode::Alternating);
        assert_eq!(c.schedule.knots, vec![[0.0, 1.0], [1.0, 0.0]]);
        assert_eq!(c.optim.groups.len(), 1);
        assert_eq!(
            (
                c.optim.groups[0].params.as_str(),
                c.optim.groups[0].lr_factor
            ),
            ("fc.*", 10.0)
        );
        // Not given: the defaults, and the run directory named after model and dataset.
        assert_eq!(c.train_loop.batch_size, 128);
        assert_eq!(
            c.runtime.out,
            std::path::PathBuf::from("runs/lenet5_modern-mnist")
        );
    }

    #[test]
    fn errors_name_the_flag_on_the_command_line() {
        let e = parse(&["--lr", "0"]).unwrap_err();
        assert!(
            e.contains("--lr (optim.lr)") || e.contains("--lr must"),
            "{e}"
        );
        let e = parse(&["--lr", "fast"]).unwrap_err();
        assert!(e.contains("--lr"), "{e}");
        let e = parse(&["--optimizer", "adamax"]).unwrap_err();
        assert!(
            e.contains("--optimizer")
                && e.contains("unknown optimizer `adamax`")
                && e.contains("`adamw`"),
            "{e}"
        );
        let e = parse(&["--val-split", "0", "--early-stop-patience", "3"]).unwrap_err();
        assert!(
            e.contains("--early-stop-patience") && e.contains("--val-split"),
            "{e}"
        );
        let e = parse(&["--set", "optim.lr"]).unwrap_err();
        assert!(e.contains("PATH=VALUE"), "{e}");
        // Library text becomes flag text, switches included; paths without a flag stay.
        assert_eq!(
            in_flag_words("try `data.resize` = [224, 224]; set `finetune.allow_partial` = true"),
            "try --resize [224, 224]; set --allow-partial"
        );
        assert_eq!(
            in_flag_words("`schedule.knots` must"),
            "`schedule.knots` must"
        );
    }

    #[test]
    fn help_shows_each_knobs_doc_and_default() {
        use clap::CommandFactory;
        let help = Args::command().render_long_help().to_string();
        assert!(help.contains("--batch-size <BATCH_SIZE>"), "{help}");
        assert!(help.contains("Images per batch"), "{help}");
        assert!(help.contains("[default: 128]"), "{help}");
        assert!(help.contains("--set <PATH=VALUE>"), "{help}");
        assert!(help.contains("Training loop"), "{help}");
    }
}

#[test]
fn the_augmentation_is_a_preset_or_a_pipeline_of_any_transforms() {
    use ember_data::transform::{Augment, Preset, Transform};
    use ember_train::training::trainer::load_data;
    let mut c = TrainConfig::default();
    c.set("data.augment", "cifar").unwrap();
    assert_eq!(c.data.augment, Augment::Preset(Preset::Cifar));
    let e = c
        .set("data.augment", "autoaugment")
        .unwrap_err()
        .to_string();
    assert!(e.contains("autoaugment") && e.contains("imagenet"), "{e}");
    c.set(
        "data.augment",
        r#"[{ type = "trivial_augment_wide" }, { type = "normalize" }]"#,
    )
    .unwrap();
    assert_eq!(
        c.data.augment,
        Augment::Pipeline(vec![
            Transform::TrivialAugmentWide {
                num_magnitude_bins: 31
            },
            Transform::Normalize {
                mean: vec![],
                std: vec![],
            },
        ])
    );
    // A config file keeps the list as it was written.
    let back = TrainConfig::from_toml(&toml::to_string(&c).unwrap()).unwrap();
    assert_eq!(back, c);
    // The preset knobs do not silently apply to a list.
    let mut tuned = c.clone();
    tuned.data.cutout = 16;
    let e = tuned.validate_options().unwrap_err().to_string();
    assert!(e.contains("data.cutout") && e.contains("\"cutout\""), "{e}");

    // The run fills in the dataset's statistics and tries the pipeline on a real image.
    c.data.data_dir = Some(crate::mnist_subset());
    c.train_loop.seed = 3;
    let data = load_data(&c).unwrap();
    assert_eq!(
        data.train_transforms[1],
        Transform::Normalize {
            mean: vec![0.1307],
            std: vec![0.3081]
        }
    );
    let mut crop = c.clone();
    crop.set(
        "data.augment",
        r#"[{ type = "random_crop", size = [24, 24], padding = 0 }, { type = "normalize" }]"#,
    )
    .unwrap();
    let e = load_data(&crop).err().unwrap().to_string();
    assert!(
        e.contains("data.augment") && e.contains("size = [28, 28]"),
        "{e}"
    );
    let mut bare = c.clone();
    bare.set(
        "data.augment",
        r#"[{ type = "rand_augment", magnitude = 5 }]"#,
    )
    .unwrap();
    let e = load_data(&bare).err().unwrap().to_string();
    assert!(e.contains("no `normalize`"), "{e}");
    bare.set(
        "data.augment",
        r#"[{ type = "rand_augment", magnitude = 31 }, { type = "normalize" }]"#,
    )
    .unwrap();
    let e = load_data(&bare).err().unwrap().to_string();
    assert!(e.contains("magnitude must be below"), "{e}");
}
