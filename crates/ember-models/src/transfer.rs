//! What transfer learning needs to know about each zoo model: which parameters form the
//! classifier head (re-initialised for new classes), the order of its stages (frozen from the
//! bottom up: low-level features are the general ones), and how torchvision names its weights.
//!
//! Parameter names are Ember's weight paths with enum variants left out, as
//! [`ParamPath`](crate::ParamPath) and safetensors files write them: `layer1.0.conv1.conv.weight`,
//! `layer1.0.conv1.bn.gamma`, `fc.weight`.

use crate::registry::ModelConfig;
use crate::zoo::resnet::ResNetConfig;

/// Whether `path` is `prefix` itself or lies under it (`layer1` holds `layer1.0.conv1.conv.weight`,
/// not `layer10.x`).
pub fn under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// One rule of a key table: a regex over the source key and its replacement (`${1}` groups).
pub type KeyRule = (String, String);

/// How a foreign layout's weight names become Ember's.
#[derive(Debug, Clone, Default)]
pub struct KeyTable {
    /// Applied in order, each to the result of the one before.
    pub rules: Vec<KeyRule>,
    /// Regexes of source keys with no Ember counterpart that are dropped silently
    /// (`num_batches_tracked`; GoogLeNet's auxiliary heads when the model has none).
    pub ignored: Vec<String>,
}

impl KeyTable {
    fn rule(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.rules.push((from.into(), to.into()));
        self
    }
    fn ignore(mut self, pattern: &str) -> Self {
        self.ignored.push(pattern.into());
        self
    }
}

impl ModelConfig {
    /// The prefixes of the classifier head: the layers whose shape depends on the classes.
    pub fn head(&self) -> Vec<String> {
        match self {
            ModelConfig::Mlp(_) => vec!["output".into()],
            ModelConfig::Lenet(_) | ModelConfig::Alexnet(_) | ModelConfig::Vgg(_) => {
                vec!["fc3".into()]
            }
            // The last NiN block's three convolutions all have `classes` channels.
            ModelConfig::Nin(_) => vec!["blocks.3".into()],
            ModelConfig::Googlenet(c) if c.aux_logits => {
                vec!["fc".into(), "aux.0.fc2".into(), "aux.1.fc2".into()]
            }
            ModelConfig::Googlenet(_) | ModelConfig::Resnet(_) | ModelConfig::Resnet9(_) => {
                vec!["fc".into()]
            }
            ModelConfig::Densenet(_) => vec!["classifier".into()],
        }
    }

    /// The feature stages from input to output, each a set of prefixes; `--freeze stages:K`
    /// freezes the first K. What is left after the stages (dense layers, the head) is never
    /// a stage.
    pub fn stages(&self) -> Vec<Vec<String>> {
        let one = |names: &[&str]| names.iter().map(|n| vec![n.to_string()]).collect();
        let numbered =
            |prefix: &str, n: usize| (0..n).map(|i| vec![format!("{prefix}.{i}")]).collect();
        match self {
            ModelConfig::Mlp(c) => numbered("hidden", c.hidden.len()),
            ModelConfig::Lenet(_) => vec![
                vec!["conv1".into()],
                vec!["conv2".into()],
                vec!["fc1".into(), "bn1".into()],
                vec!["fc2".into(), "bn2".into()],
            ],
            ModelConfig::Alexnet(_) => one(&["conv1", "conv2", "conv3", "conv4", "conv5"]),
            ModelConfig::Vgg(c) => numbered("blocks", c.blocks.len()),
            ModelConfig::Nin(_) => numbered("blocks", 3),
            // d2l's b1..b5: the stem convolutions, then Inception 3, 4 and 5.
            ModelConfig::Googlenet(_) => vec![
                vec!["conv1".into()],
                vec!["conv2".into(), "conv3".into()],
                (0..2).map(|i| format!("inception.{i}")).collect(),
                (2..7).map(|i| format!("inception.{i}")).collect(),
                (7..9).map(|i| format!("inception.{i}")).collect(),
            ],
            ModelConfig::Resnet(_) => one(&["stem", "layer1", "layer2", "layer3", "layer4"]),
            ModelConfig::Resnet9(_) => one(&["prep", "layer1", "layer2", "layer3"]),
            ModelConfig::Densenet(c) => {
                let n = c.block_config.len();
                let mut stages = vec![vec!["conv0".to_string(), "norm0".to_string()]];
                for i in 0..n {
                    let mut stage = vec![format!("blocks.{i}")];
                    if i + 1 < n {
                        stage.push(format!("transitions.{i}"));
                    } else {
                        stage.push("norm5".into());
                    }
                    stages.push(stage);
                }
                stages
            }
        }
    }

    /// How torchvision names this model's weights, for the models whose layout matches
    /// torchvision's (ResNet, ResNeXt, VGG, AlexNet without LRN, DenseNet, GoogLeNet).
    pub fn torchvision_keys(&self) -> Option<KeyTable> {
        let base = KeyTable::default().ignore(r"\.num_batches_tracked$");
        Some(match self {
            ModelConfig::Resnet(c) => resnet_keys(c, base),
            ModelConfig::Alexnet(c) if !c.lrn => {
                // features: conv(0) relu pool conv(3) relu pool conv(6) relu conv(8) relu conv(10);
                // classifier: dropout fc(1) relu dropout fc(4) relu fc(6).
                let mut t = base;
                for (i, name) in [
                    (0, "conv1"),
                    (3, "conv2"),
                    (6, "conv3"),
                    (8, "conv4"),
                    (10, "conv5"),
                ] {
                    t = t.rule(format!(r"^features\.{i}\."), format!("{name}."));
                }
                for (i, name) in [(1, "fc1"), (4, "fc2"), (6, "fc3")] {
                    t = t.rule(format!(r"^classifier\.{i}\."), format!("{name}."));
                }
                t
            }
            ModelConfig::Vgg(c) => {
                // torchvision's `features` is one Sequential: per conv, conv [bn] relu; per
                // block, a max pool. Count through it as `make_layers` builds it.
                let mut t = base;
                let mut i = 0;
                for (b, &[convs, _]) in c.blocks.iter().enumerate() {
                    for j in 0..convs {
                        t = t.rule(
                            format!(r"^features\.{i}\."),
                            format!("blocks.{b}.convs.{j}.conv."),
                        );
                        if c.batch_norm {
                            t = t.rule(
                                format!(r"^features\.{}\.", i + 1),
                                format!("blocks.{b}.convs.{j}.bn."),
                            );
                            i += 1;
                        }
                        i += 2;
                    }
                    i += 1;
                }
                t.rule(r"^classifier\.0\.", "fc1.")
                    .rule(r"^classifier\.3\.", "fc2.")
                    .rule(r"^classifier\.6\.", "fc3.")
            }
            ModelConfig::Densenet(c) => {
                // Old torchvision files spell `norm.1`; torchvision's own loader renames them too.
                let mut t = base
                    .rule(r"(denselayer\d+)\.(norm|conv)\.([12])\.", "${1}.${2}${3}.")
                    .rule(r"^features\.(conv0|norm0|norm5)\.", "${1}.");
                for (b, &n) in c.block_config.iter().enumerate() {
                    for l in 0..n {
                        t = t.rule(
                            format!(r"^features\.denseblock{}\.denselayer{}\.", b + 1, l + 1),
                            format!("blocks.{b}.layers.{l}."),
                        );
                    }
                    t = t.rule(
                        format!(r"^features\.transition{}\.", b + 1),
                        format!("transitions.{b}."),
                    );
                }
                t
            }
            ModelConfig::Googlenet(c) => {
                let mut t = base.rule(r"\.branch4\.1\.", ".branch4.");
                for (i, name) in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
                    .iter()
                    .enumerate()
                {
                    t = t.rule(format!(r"^inception{name}\."), format!("inception.{i}."));
                }
                if c.aux_logits {
                    t.rule(r"^aux1\.", "aux.0.").rule(r"^aux2\.", "aux.1.")
                } else {
                    // torchvision's ImageNet file keeps the auxiliary heads even though
                    // `googlenet(weights=...)` drops them after loading.
                    t.ignore(r"^aux[12]\.")
                }
            }
            _ => return None,
        })
    }
}

fn resnet_keys(_: &ResNetConfig, base: KeyTable) -> KeyTable {
    // torchvision: conv1/bn1 stem; blocks with convK/bnK and downsample = Sequential(conv, bn).
    base.rule(r"^conv1\.", "stem.conv.")
        .rule(r"^bn1\.", "stem.bn.")
        .rule(r"^(layer[1-4]\.\d+)\.conv([1-3])\.", "${1}.conv${2}.conv.")
        .rule(r"^(layer[1-4]\.\d+)\.bn([1-3])\.", "${1}.conv${2}.bn.")
        .rule(
            r"^(layer[1-4]\.\d+)\.downsample\.0\.",
            "${1}.downsample.conv.",
        )
        .rule(
            r"^(layer[1-4]\.\d+)\.downsample\.1\.",
            "${1}.downsample.bn.",
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_respects_segment_boundaries() {
        assert!(under("layer1.0.conv1.conv.weight", "layer1"));
        assert!(under("fc", "fc"));
        assert!(!under("layer10.weight", "layer1"));
        assert!(!under("fc1.weight", "fc"));
    }
}
