//! The search space file: a `[base]` table of fixed `ember train` options and one
//! `[space.NAME]` table per knob.
//!
//! ```toml
//! [base]
//! model = "lenet5_modern"
//! dataset = "mnist"
//! data_dir = "data/mnist-subset"
//! epochs = 4
//! val_split = 0.1
//!
//! [space.lr]
//! type = "float"
//! low = 0.001
//! high = 0.3
//! log = true
//!
//! [space.optimizer]
//! type = "choice"
//! values = ["sgd", "momentum", "adam"]
//!
//! [space."model_options.hidden"]   # a knob of the model's own config
//! type = "int"
//! low = 64
//! high = 512
//! log = true
//! ```
//!
//! A knob names any `ember train` option, by its section (`optim.lr`, `loop.epochs`) or the
//! older flat way (`lr`, `epochs`), or, with `model_options.`, any field of the model's config. Grid search takes `steps` values of a float or int knob
//! (evenly spaced, on the log scale when `log`; default 3) and every value of a choice.

use crate::config::{TrainConfig, set_path};
use crate::error::{Result, TrainError};
use std::path::Path;

/// The most grid values a float or int knob may ask for (`steps`).
pub const MAX_STEPS: usize = 1000;

/// The largest magnitude of an int knob's bounds: 2^53, the last integer a float holds exactly.
const MAX_INT: f64 = 9_007_199_254_740_992.0;

/// The values one knob may take.
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    /// A real number in `[low, high]`, uniform or log-uniform.
    Float {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// Sample `log(x)` uniformly.
        log: bool,
        /// Grid points.
        steps: usize,
    },
    /// An integer in `[low, high]`.
    Int {
        /// Lower bound.
        low: i64,
        /// Upper bound.
        high: i64,
        /// Sample `log(x)` uniformly.
        log: bool,
        /// Grid points (all integers when fewer).
        steps: usize,
    },
    /// One of a list of values (strings, numbers, booleans).
    Choice {
        /// The values.
        values: Vec<toml::Value>,
    },
}

/// A named knob.
#[derive(Debug, Clone, PartialEq)]
pub struct Knob {
    /// `lr`, `optimizer`, `model_options.hidden` ...
    pub name: String,
    /// Its values.
    pub domain: Domain,
}

/// One trial's values, in knob order.
pub type Assignment = Vec<(String, toml::Value)>;

/// A parsed search space.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// Fixed options of every trial.
    pub base: toml::Table,
    /// The knobs, sorted by name (the order TOML tables are read in).
    pub knobs: Vec<Knob>,
}

fn bad(path: &Path, msg: impl Into<String>) -> TrainError {
    TrainError::file(path, msg.into())
}

fn number(v: Option<&toml::Value>) -> Option<f64> {
    match v? {
        toml::Value::Float(f) => Some(*f),
        toml::Value::Integer(i) => Some(*i as f64),
        _ => None,
    }
}

impl Domain {
    /// The unit-interval-free coordinate samplers work in: `log(x)` or `x` for numbers.
    pub fn to_coord(&self, v: &toml::Value) -> Option<f64> {
        match self {
            Domain::Float { log, .. } | Domain::Int { log, .. } => {
                let x = number(Some(v))?;
                Some(if *log { x.ln() } else { x })
            }
            Domain::Choice { values } => values.iter().position(|c| c == v).map(|i| i as f64),
        }
    }

    /// Bounds of the coordinate.
    pub fn coord_bounds(&self) -> (f64, f64) {
        match self {
            Domain::Float { low, high, log, .. } => {
                if *log {
                    (low.ln(), high.ln())
                } else {
                    (*low, *high)
                }
            }
            Domain::Int { low, high, log, .. } => {
                // Widen by half a step so that the end integers are as likely as the others.
                let (lo, hi) = (*low as f64 - 0.499, *high as f64 + 0.499);
                if *log {
                    (lo.max(0.5).ln(), hi.ln())
                } else {
                    (lo, hi)
                }
            }
            Domain::Choice { values } => (0.0, values.len() as f64),
        }
    }

    /// The value at coordinate `c` (clamped into the domain).
    pub fn from_coord(&self, c: f64) -> toml::Value {
        match self {
            Domain::Float { low, high, log, .. } => {
                let x = if *log { c.exp() } else { c };
                toml::Value::Float(x.clamp(*low, *high))
            }
            Domain::Int { low, high, log, .. } => {
                let x = if *log { c.exp() } else { c };
                toml::Value::Integer((x.round() as i64).clamp(*low, *high))
            }
            Domain::Choice { values } => {
                let i = (c.max(0.0) as usize).min(values.len().saturating_sub(1));
                values[i].clone()
            }
        }
    }

    /// The grid values.
    pub fn grid(&self) -> Vec<toml::Value> {
        let spaced = |lo: f64, hi: f64, steps: usize| -> Vec<f64> {
            if steps <= 1 {
                return vec![(lo + hi) / 2.0];
            }
            (0..steps)
                .map(|i| lo + (hi - lo) * i as f64 / (steps - 1) as f64)
                .collect()
        };
        match self {
            Domain::Float {
                low,
                high,
                log,
                steps,
            } => {
                let (lo, hi) = if *log {
                    (low.ln(), high.ln())
                } else {
                    (*low, *high)
                };
                spaced(lo, hi, *steps)
                    .into_iter()
                    .map(|c| self.from_coord(c))
                    .collect()
            }
            Domain::Int {
                low,
                high,
                log,
                steps,
            } => {
                let count = (high - low) as u64 + 1;
                if count <= *steps as u64 {
                    return (*low..=*high).map(toml::Value::Integer).collect();
                }
                let (lo, hi) = if *log {
                    ((*low as f64).ln(), (*high as f64).ln())
                } else {
                    (*low as f64, *high as f64)
                };
                let mut out: Vec<toml::Value> = spaced(lo, hi, *steps)
                    .into_iter()
                    .map(|c| self.from_coord(c))
                    .collect();
                out.dedup();
                out
            }
            Domain::Choice { values } => values.clone(),
        }
    }

    fn parse(name: &str, t: &toml::Table, path: &Path) -> Result<Self> {
        let kind = t.get("type").and_then(|v| v.as_str()).ok_or_else(|| {
            bad(
                path,
                format!("[space.{name}] needs type = \"float\", \"int\" or \"choice\""),
            )
        })?;
        let log = t.get("log").and_then(|v| v.as_bool()).unwrap_or(false);
        let steps = match t.get("steps") {
            None => 3,
            Some(v) => match v.as_integer() {
                Some(n) if (1..=MAX_STEPS as i64).contains(&n) => n as usize,
                _ => {
                    return Err(bad(
                        path,
                        format!(
                            "[space.{name}]: steps must be an integer from 1 to {MAX_STEPS}, got {v}"
                        ),
                    ));
                }
            },
        };
        let known: &[&str] = match kind {
            "float" | "int" => &["type", "low", "high", "log", "steps"],
            "choice" => &["type", "values"],
            other => {
                return Err(bad(
                    path,
                    format!(
                        "[space.{name}]: unknown type `{other}`; expected float, int or choice"
                    ),
                ));
            }
        };
        if let Some(k) = t.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(bad(
                path,
                format!(
                    "[space.{name}]: unknown key `{k}` for a {kind} (keys: {})",
                    known.join(", ")
                ),
            ));
        }
        let bounds = || -> Result<(f64, f64)> {
            let (Some(low), Some(high)) = (number(t.get("low")), number(t.get("high"))) else {
                return Err(bad(
                    path,
                    format!("[space.{name}] needs numbers low and high"),
                ));
            };
            if !low.is_finite() || !high.is_finite() || low >= high {
                return Err(bad(
                    path,
                    format!("[space.{name}]: low ({low}) must be below high ({high})"),
                ));
            }
            if log && low <= 0.0 {
                return Err(bad(
                    path,
                    format!("[space.{name}]: a log scale needs low > 0, got {low}"),
                ));
            }
            Ok((low, high))
        };
        Ok(match kind {
            "float" => {
                let (low, high) = bounds()?;
                Domain::Float {
                    low,
                    high,
                    log,
                    steps,
                }
            }
            "int" => {
                let (low, high) = bounds()?;
                if low.fract() != 0.0 || high.fract() != 0.0 {
                    return Err(bad(
                        path,
                        format!("[space.{name}]: an int knob needs integer bounds"),
                    ));
                }
                // Beyond 2^53 a float no longer holds every integer (and `high - low + 1`
                // would overflow near i64's ends): no training option is that large.
                if low.abs() > MAX_INT || high.abs() > MAX_INT {
                    return Err(bad(
                        path,
                        format!("[space.{name}]: int bounds must lie within +-2^53"),
                    ));
                }
                Domain::Int {
                    low: low as i64,
                    high: high as i64,
                    log,
                    steps,
                }
            }
            _ => {
                let values = t
                    .get("values")
                    .and_then(|v| v.as_array())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        bad(
                            path,
                            format!("[space.{name}]: a choice needs a non-empty values = [...]"),
                        )
                    })?;
                Domain::Choice {
                    values: values.clone(),
                }
            }
        })
    }
}

impl Space {
    /// Reads a space file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(path, format!("cannot read the search space: {e}")))?;
        Self::parse(&text, path)
    }

    /// Parses a space file's text (`path` names it in errors) and checks that every knob's
    /// values make a valid `ember train` config.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| bad(path, format!("not valid TOML: {e}")))?;
        if let Some(k) = doc.keys().find(|k| *k != "base" && *k != "space") {
            return Err(bad(
                path,
                format!("unknown table `{k}`; a space file has [base] and [space.NAME] tables"),
            ));
        }
        let base = match doc.get("base") {
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => return Err(bad(path, "[base] must be a table")),
            None => toml::Table::new(),
        };
        let mut knobs = Vec::new();
        if let Some(toml::Value::Table(space)) = doc.get("space") {
            // `[space.model_options.hidden]` nests; `[space."model_options.hidden"]` does not.
            fn walk(prefix: &str, t: &toml::Table, path: &Path, out: &mut Vec<Knob>) -> Result<()> {
                for (k, v) in t {
                    let name = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    let toml::Value::Table(inner) = v else {
                        return Err(bad(path, format!("space.{name} must be a table")));
                    };
                    if inner.contains_key("type") {
                        out.push(Knob {
                            domain: Domain::parse(&name, inner, path)?,
                            name,
                        });
                    } else {
                        walk(&name, inner, path, out)?;
                    }
                }
                Ok(())
            }
            walk("", space, path, &mut knobs)?;
        }
        if knobs.is_empty() {
            return Err(bad(path, "no knobs: add at least one [space.NAME] table"));
        }
        let space = Space { base, knobs };
        // Every value of every knob must make a config `ember train` accepts.
        let firsts: Assignment = space
            .knobs
            .iter()
            .map(|k| (k.name.clone(), k.domain.grid()[0].clone()))
            .collect();
        for knob in &space.knobs {
            for v in knob.domain.grid() {
                let mut a = firsts.clone();
                if let Some(slot) = a.iter_mut().find(|(n, _)| *n == knob.name) {
                    slot.1 = v;
                }
                space
                    .config(&a)
                    .map_err(|e| bad(path, format!("knob `{}`: {e}", knob.name)))?;
            }
        }
        Ok(space)
    }

    /// The `ember train` config of one trial: `[base]` with the trial's values set.
    pub fn config(&self, a: &Assignment) -> Result<TrainConfig> {
        // Knobs and base may name a key the older, flat way (`lr`) or by its section
        // (`optim.lr`): both are set at the sectioned path, so a knob overrides the base.
        let mut t = TrainConfig::sectioned(self.base.clone()).map_err(TrainError::Config)?;
        for (name, value) in a {
            set_path(&mut t, &TrainConfig::sectioned_path(name), value.clone())
                .map_err(TrainError::Config)?;
        }
        let config = TrainConfig::from_table(t).map_err(TrainError::Config)?;
        config.validate()?;
        Ok(config)
    }

    /// Every combination of the knobs' grid values, the first knob varying slowest. Only for
    /// small spaces: the grid has [`Space::grid_len`] points (`steps^knobs`).
    pub fn grid(&self) -> Vec<Assignment> {
        (0..self.grid_len())
            .map_while(|i| self.grid_point(i))
            .collect()
    }

    /// Points of the grid: the product of the knobs' value counts (saturating).
    pub fn grid_len(&self) -> usize {
        self.knobs
            .iter()
            .fold(1usize, |n, k| n.saturating_mul(k.domain.grid().len()))
    }

    /// Point `index` of the grid (the first knob varying slowest), computed without making the
    /// grid: ten knobs of a thousand steps are 10^30 points, while a search tries a few dozen.
    pub fn grid_point(&self, index: usize) -> Option<Assignment> {
        if index >= self.grid_len() {
            return None;
        }
        let mut rest = index;
        let mut point: Vec<(String, toml::Value)> = Vec::with_capacity(self.knobs.len());
        for knob in self.knobs.iter().rev() {
            let values = knob.domain.grid();
            point.push((knob.name.clone(), values[rest % values.len()].clone()));
            rest /= values.len();
        }
        point.reverse();
        Some(point)
    }
}

/// `lr=0.01 optimizer=adam`: an assignment on one line.
pub fn describe(a: &Assignment) -> String {
    a.iter()
        .map(|(n, v)| format!("{n}={}", short(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value without TOML quoting, floats to 4 significant digits.
pub fn short(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) if (1e-3..1e4).contains(&f.abs()) => {
            let t = format!("{f:.4}");
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        toml::Value::Float(f) => format!("{f:.3e}"),
        other => other.to_string(),
    }
}
