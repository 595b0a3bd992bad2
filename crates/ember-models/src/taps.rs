//! Intermediate activations ("feature maps") recorded during a forward pass, by layer name.
//!
//! Burn has no forward hooks, so every zoo model has a `forward_tapped(images, &mut Taps)`
//! that hands the output of each of its layers and blocks to [`Taps::tap`]; the plain
//! `forward` is `forward_tapped` with [`Taps::none`], so both are one code path. A tap costs
//! a name comparison when it is not wanted and a handle clone (no copy) when it is.
//!
//! Tap names are the dotted paths of [`summary`](crate::summary) rows and weights: `conv1`
//! (a conv-BN-activation block, after its activation), `layer2.1` (a residual block, after
//! the addition and ReLU), `blocks.0.convs.1`, `fc1` (after its activation). A tap's receptive
//! field is that of the last summary row inside its path ([`crate::Summary::row_of`]).

use burn::prelude::*;
use std::fmt;

/// Which layers to record.
#[derive(Debug, Clone)]
enum Select {
    Nothing,
    Everything,
    Only(Vec<String>),
}

/// The recorder a `forward_tapped` fills.
#[derive(Debug, Clone)]
pub struct Taps {
    select: Select,
    scope: Vec<String>,
    recorded: Vec<(String, Tensor<4>)>,
    seen: Vec<String>,
}

impl Taps {
    /// Records nothing: the plain forward.
    pub fn none() -> Self {
        Self::with(Select::Nothing)
    }

    /// Records every tap point.
    pub fn all() -> Self {
        Self::with(Select::Everything)
    }

    /// Records the named layers only.
    pub fn only<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self::with(Select::Only(names.into_iter().map(Into::into).collect()))
    }

    fn with(select: Select) -> Self {
        Self {
            select,
            scope: Vec::new(),
            recorded: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn active(&self) -> bool {
        !matches!(self.select, Select::Nothing)
    }

    /// Runs `f` with `name` pushed onto the layer path (`layer1` then `0` names `layer1.0.*`).
    pub fn scoped<R>(&mut self, name: impl fmt::Display, f: impl FnOnce(&mut Self) -> R) -> R {
        if !self.active() {
            return f(self);
        }
        self.scope.push(name.to_string());
        let out = f(self);
        self.scope.pop();
        out
    }

    /// Records `x` as the output of layer `name` (relative to the current scope) if wanted,
    /// and passes it on. Outputs of rank 2 (`[N, F]`) are stored as `[N, F, 1, 1]`.
    pub fn tap<const D: usize>(&mut self, name: impl fmt::Display, x: Tensor<D>) -> Tensor<D> {
        if !self.active() {
            return x;
        }
        let mut path = self.scope.join(".");
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(&name.to_string());
        let wanted = match &self.select {
            Select::Nothing => false,
            Select::Everything => true,
            Select::Only(names) => names.contains(&path),
        };
        if wanted {
            let dims = x.dims();
            let at = |i: usize| dims.get(i).copied().unwrap_or(1);
            // Axes past the fourth (none in the zoo) fold into the last one.
            let shape = [at(0), at(1), at(2), dims.iter().skip(3).product::<usize>()];
            self.recorded.push((path.clone(), x.clone().reshape(shape)));
        }
        self.seen.push(path);
        x
    }

    /// The recorded outputs, in forward order.
    pub fn recorded(&self) -> &[(String, Tensor<4>)] {
        &self.recorded
    }

    /// Takes the recorded outputs.
    pub fn into_recorded(self) -> Vec<(String, Tensor<4>)> {
        self.recorded
    }

    /// The output of layer `name`, if it was recorded.
    pub fn get(&self, name: &str) -> Option<&Tensor<4>> {
        self.recorded
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// Every tap point the forward passed (recorded or not), in order: the names a user may
    /// ask for. Empty for [`Taps::none`].
    pub fn points(&self) -> &[String] {
        &self.seen
    }
}
