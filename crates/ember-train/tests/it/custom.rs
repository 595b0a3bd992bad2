//! A network of the user's own goes through the same entry points as a zoo model: the
//! training builder, `TrainedModel` (evaluate, predict) and the feature-map viewer.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::tensor::{Device, Tensor};
use ember_models::Taps;
use ember_train::config::Tta;
use ember_train::predict::TrainedModel;
use ember_train::run::RunInfo;
use ember_train::trainer::{Event, Training};
use ember_train::{Network, viz};
use std::sync::{Arc, Mutex};

#[derive(Module, Debug)]
struct TwoLayer {
    hidden: Linear,
    relu: Relu,
    out: Linear,
}

fn build(info: &RunInfo, device: &Device) -> ember_train::error::Result<TwoLayer> {
    let [c, h, w] = info.input;
    Ok(TwoLayer {
        hidden: LinearConfig::new(c * h * w, 32).init(device),
        relu: Relu::new(),
        out: LinearConfig::new(32, info.classes.len()).init(device),
    })
}

impl Network for TwoLayer {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_tapped(images, &mut Taps::none())
    }

    fn forward_tapped(&self, images: Tensor<4>, taps: &mut Taps) -> Tensor<2> {
        let x = self.relu.forward(self.hidden.forward(images.flatten(1, 3)));
        // Taps hold feature maps: a vector of features is a 32x1x1 map.
        let [n, f] = x.dims();
        let x = taps.tap("hidden", x.reshape([n, f, 1, 1]));
        self.out.forward(x.flatten(1, 3))
    }
}

#[test]
fn a_custom_network_trains_evaluates_and_shows_its_feature_maps_like_a_zoo_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two_layer");
    let data = crate::mnist_subset();
    let mut config = crate::quick_mnist(&out);
    config.model = "two_layer".into();
    config.data.train_limit = Some(1024);
    config.schedule = Default::default();
    config.train_loop.epochs = 1;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let outcome = Training::new(&config)
        .network(build)
        .on_event(move |e: &Event| seen.lock().unwrap().push(e.clone()))
        .launch()
        .unwrap();
    let trained_report = outcome.report.expect("a report on the test split");
    assert_eq!(outcome.report_split, ember_train::eval::EvalSplit::Test);
    assert!(
        events.lock().unwrap().is_empty(),
        "{:?}",
        events.lock().unwrap()
    );

    // The zoo loader says how to load it; `load_with` and the same `build` rebuild it, and
    // it scores exactly what the run reported (a broken weight load would not).
    let device = Device::flex();
    let err = TrainedModel::load(&out, &device)
        .err()
        .expect("not a zoo model")
        .to_string();
    assert!(
        err.contains("load_with") && err.contains("two_layer"),
        "{err}"
    );
    let trained = TrainedModel::load_with(&out, &device, build).unwrap();
    let test = ember_data::DatasetSpec::Mnist
        .open(Some(&data), ember_data::Split::Test)
        .unwrap();
    let report = trained.evaluate(test, 100, 1, Tta::None).unwrap();
    assert_eq!(report.n, trained_report.n);
    assert_eq!(report.accuracy, trained_report.accuracy);
    assert!(report.accuracy > 0.5, "{}", report.accuracy);

    // Its tap points are what the feature-map viewer lists and shows.
    let names = viz::layer_names(&trained.model, trained.info.input, &device);
    assert_eq!(names, ["hidden"]);
    let maps = viz::layer_output(
        &trained.model,
        Tensor::zeros([2, 1, 28, 28], &device),
        "hidden",
    )
    .unwrap();
    assert_eq!(maps.dims(), [2, 32, 1, 1]);
    let err = viz::layer_output(
        &trained.model,
        Tensor::zeros([1, 1, 28, 28], &device),
        "conv1",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("hidden"), "{err}");

    // Fine-tuning it, as a zoo model: digits 5-9 only (a new five-class head), everything but
    // the head frozen. It needs to know where its head and stages are.
    let mut ft = config.clone();
    ft.runtime.out = dir.path().join("two_layer_ft");
    ft.data.classes = Some(vec![5, 6, 7, 8, 9]);
    ft.finetune = Some(ember_train::finetune::FinetuneConfig {
        from: out.clone(),
        freeze: ember_train::finetune::Freeze::AllButHead,
        ..Default::default()
    });
    let err = Training::new(&ft)
        .network(build)
        .launch()
        .expect_err("no head given")
        .to_string();
    assert!(err.contains("with_transfer"), "{err}");
    let transfer = ember_train::trainer::Transfer {
        head: vec!["out".into()],
        stages: vec![vec!["hidden".into()]],
    };
    let tuned = Training::new(&ft)
        .network(build)
        .with_transfer(transfer)
        .on_event(|_| {})
        .launch()
        .unwrap();
    assert_eq!(tuned.records.len(), 1);
    let tuned = TrainedModel::load_with(&ft.runtime.out, &device, build).unwrap();
    assert_eq!(tuned.info.classes.len(), 5);
    let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(
        values(tuned.model.hidden.weight.val()),
        values(trained.model.hidden.weight.val()),
        "the frozen layer is the pre-trained one"
    );
    assert_eq!(tuned.model.out.weight.val().dims(), [32, 5]);
}
