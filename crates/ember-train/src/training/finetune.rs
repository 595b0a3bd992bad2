//! Fine-tuning (d2l 14.2): start from a network trained on a source task, give it a fresh
//! output layer for the target classes, fix the lower layers or train them with a smaller
//! learning rate than the new head, optionally train the head alone for a few epochs first.
//!
//! Freezing uses Burn's `freeze_group`: frozen parameters get no gradient (so the optimizer
//! never touches them, weight decay included) and frozen batch-norm layers stop updating their
//! running statistics and normalise with them, as in evaluation.

use crate::error::{Result, TrainError};
use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::tensor::Tensor;
use ember_models::ParamPath;
use ember_models::transfer::under;

pub use crate::config::finetune::{FinetuneConfig, Freeze};

/// One parameter (or batch-norm training flag) of a module, by Ember name.
#[derive(Debug, Clone)]
pub struct NamedParam {
    /// `layer1.0.conv1.bn.gamma`.
    pub name: String,
    /// Burn's id.
    pub id: ParamId,
    /// Number of values (0 for a flag).
    pub numel: usize,
    /// A batch-norm layer's training flag rather than a tensor.
    pub bn_flag: bool,
}

/// Every float parameter and every batch-norm flag of `module`, by name.
pub fn named_params<M: Module>(module: &M) -> Vec<NamedParam> {
    struct Names {
        path: ParamPath,
        containers: Vec<String>,
        out: Vec<NamedParam>,
    }
    impl ModuleVisitor for Names {
        fn enter_module(&mut self, name: &str, container: &str) {
            self.path.enter(name, container);
            self.containers.push(container.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
            self.containers.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let (layer, name) = self.path.layer_and_name();
            let numel = param.shape().num_elements();
            self.out.push(NamedParam {
                name: join(&layer, name),
                id: param.id,
                numel,
                bn_flag: false,
            });
        }
        fn visit_flag(&mut self, flag: &Param<burn::module::Flag>) {
            // Only batch norm's flag: freezing dropout's would change the head's regularisation.
            let in_bn = self
                .containers
                .iter()
                .rev()
                .find(|c| c.starts_with("Struct:"))
                .is_some_and(|c| c == "Struct:BatchNorm");
            if in_bn {
                let (layer, name) = self.path.layer_and_name();
                self.out.push(NamedParam {
                    name: join(&layer, name),
                    id: flag.id,
                    numel: 0,
                    bn_flag: true,
                });
            }
        }
    }
    fn join(layer: &str, name: &str) -> String {
        if layer.is_empty() {
            name.to_string()
        } else {
            format!("{layer}.{name}")
        }
    }
    let mut v = Names {
        path: ParamPath::default(),
        containers: Vec::new(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

/// The prefixes `freeze` stands for in a model with this head and these stages.
pub fn frozen_prefixes(
    freeze: &Freeze,
    head: &[String],
    stages: &[Vec<String>],
    names: &[String],
) -> Result<Vec<String>> {
    let in_head = |n: &str| head.iter().any(|h| under(n, h));
    match freeze {
        Freeze::None => Ok(Vec::new()),
        Freeze::AllButHead => {
            // Every parameter outside the head, by its own name.
            Ok(names.iter().filter(|n| !in_head(n)).cloned().collect())
        }
        Freeze::Stages(k) => {
            if *k > stages.len() {
                return Err(TrainError::Config(format!(
                    "`finetune.freeze` = stages:{k}: this model has {} stages ({})",
                    stages.len(),
                    stages
                        .iter()
                        .map(|s| s.join("+"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Ok(stages[..*k].concat())
        }
        Freeze::Prefixes(prefixes) => {
            for p in prefixes {
                if !names.iter().any(|n| under(n, p)) {
                    let mut layers: Vec<&str> = names
                        .iter()
                        .map(|n| n.split('.').next().unwrap_or(n))
                        .collect();
                    layers.dedup();
                    return Err(TrainError::Config(format!(
                        "`finetune.freeze` = prefix:{p} matches no parameter; the model's layers are {}",
                        layers.join(", ")
                    )));
                }
            }
            Ok(prefixes.clone())
        }
    }
}

/// Freezes the parameters (and batch-norm statistics) under `prefixes`; returns the module and
/// the number of frozen parameter values.
pub fn freeze_prefixes<M: Module>(module: M, prefixes: &[String]) -> (M, usize) {
    if prefixes.is_empty() {
        return (module, 0);
    }
    let chosen: Vec<NamedParam> = named_params(&module)
        .into_iter()
        .filter(|p| {
            prefixes
                .iter()
                .any(|q| under(&p.name, q) || bn_flag_of(p, q))
        })
        .collect();
    let frozen = chosen.iter().map(|p| p.numel).sum();
    let ids = chosen.into_iter().map(|p| p.id).collect();
    (module.freeze_group(ParamGroup::from_ids(ids)), frozen)
}

/// A batch-norm flag belongs to a frozen layer when that layer's parameters are frozen by
/// name (`all-but-head` lists `x.bn.gamma`, whose flag is `x.bn.training`).
fn bn_flag_of(p: &NamedParam, prefix: &str) -> bool {
    p.bn_flag
        && p.name
            .rsplit_once('.')
            .is_some_and(|(layer, _)| prefix.rsplit_once('.').is_some_and(|(l, _)| l == layer))
}

/// The ids of the parameters outside the head: the group that trains at the backbone rate.
pub fn backbone_ids<M: Module>(module: &M, head: &[String]) -> Vec<ParamId> {
    named_params(module)
        .into_iter()
        .filter(|p| !p.bn_flag && !head.iter().any(|h| under(&p.name, h)))
        .map(|p| p.id)
        .collect()
}

/// Trainable and frozen parameter values of `module`.
pub fn count_trainable<M: Module>(module: &M) -> (usize, usize) {
    struct Count(usize, usize);
    impl ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let n = param.shape().num_elements();
            if param.is_require_grad() {
                self.0 += n;
            } else {
                self.1 += n;
            }
        }
    }
    let mut c = Count(0, 0);
    module.visit(&mut c);
    (c.0, c.1)
}

/// The float parameters of `module` whose names match `pattern`, where `*` stands for any run
/// of characters (`*.bn.beta`: every batch-norm bias); an error naming the parameters when
/// none matches, so a typo fails before training.
pub fn matching_params<M: Module>(module: &M, pattern: &str) -> Result<Vec<NamedParam>> {
    let all: Vec<NamedParam> = named_params(module)
        .into_iter()
        .filter(|p| !p.bn_flag)
        .collect();
    let chosen: Vec<NamedParam> = all
        .iter()
        .filter(|p| glob_match(pattern, &p.name))
        .cloned()
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).take(12).collect();
        let more = if all.len() > 12 { ", ..." } else { "" };
        return Err(TrainError::Config(format!(
            "`{pattern}` matches no parameter of the network; its parameters are {}{more}",
            names.join(", ")
        )));
    }
    Ok(chosen)
}

/// Whether `name` matches `pattern`, in which `*` matches any run of characters (dots
/// included) and everything else matches itself.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    if !name.ends_with(last) {
        return false;
    }
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*.bn.beta", "block1.conv1.bn.beta"));
        assert!(!glob_match("*.bn.beta", "block1.conv1.bn.gamma"));
        assert!(glob_match("whiten.bias", "whiten.bias"));
        assert!(!glob_match("whiten.bias", "whiten.bias2"));
        assert!(glob_match("fc.*", "fc.weight"));
        assert!(!glob_match("fc.*", "xfc.weight"));
        assert!(glob_match("block*.conv2.*", "block3.conv2.bn.beta"));
        assert!(!glob_match("a*a", "a"), "the two ends may not overlap");
        assert!(glob_match("*", "anything"));
    }
}
