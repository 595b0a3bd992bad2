//! Where to look next: grid, random, and Bayesian optimisation with a tree-structured Parzen
//! estimator (TPE; Bergstra et al. 2011, as Optuna's default sampler does it).
//!
//! TPE splits the finished trials by their objective into the best `γ` fraction ("good") and
//! the rest ("bad") and models each knob's values in both groups with a Parzen estimator
//! `l(x)` (good) and `g(x)` (bad): a mixture of one Gaussian per observation (bandwidth = the
//! larger gap to its neighbours) plus a broad prior, truncated to the knob's range; for a
//! choice, smoothed frequencies. It draws candidates from `l` and keeps the one with the
//! largest `l(x) / g(x)`, which maximises expected improvement under this model. Knobs are
//! modelled independently. Every draw is seeded by the search seed and the trial number, so a
//! search is repeatable.
//!
//! No maintained Rust crate does TPE over mixed float/int/choice spaces with this interface
//! (the `tpe` crate handles one numeric or categorical dimension at a time, without priors or
//! truncation), so it is written here, with its own tests on known functions.

use super::space::{Assignment, Domain, Knob, Space};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the next trial is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Every grid combination in order.
    Grid,
    /// Independent uniform (log-uniform) draws.
    Random,
    /// Tree-structured Parzen estimator after a few random trials.
    #[serde(alias = "tpe")]
    Bayes,
}

ember_data::named_enum!(Strategy => "strategy");

/// A finished trial as the sampler sees it: larger `score` is better.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The trial's values.
    pub assignment: Assignment,
    /// Objective, oriented so that larger is better.
    pub score: f64,
}

/// Random trials before TPE starts modelling.
pub const STARTUP_TRIALS: usize = 5;
/// Candidates drawn from `l(x)` per knob.
const CANDIDATES: usize = 24;

fn rng_for(seed: u64, trial: usize) -> ChaCha8Rng {
    // Distinct, reproducible streams per trial (SplitMix-style mixing of the trial number).
    let mut z = seed ^ (trial as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(z ^ (z >> 31))
}

fn random_value(knob: &Knob, rng: &mut impl Rng) -> toml::Value {
    let (lo, hi) = knob.domain.coord_bounds();
    match &knob.domain {
        Domain::Choice { values } => values[rng.random_range(0..values.len())].clone(),
        d => d.from_coord(lo + (hi - lo) * rng.random::<f64>()),
    }
}

/// The values of trial number `trial` (0-based), or `None` when a grid is exhausted.
pub fn suggest(
    strategy: Strategy,
    space: &Space,
    trial: usize,
    seed: u64,
    history: &[Observation],
) -> Option<Assignment> {
    let mut rng = rng_for(seed, trial);
    match strategy {
        Strategy::Grid => space.grid_point(trial),
        Strategy::Random => Some(
            space
                .knobs
                .iter()
                .map(|k| (k.name.clone(), random_value(k, &mut rng)))
                .collect(),
        ),
        Strategy::Bayes if history.len() < STARTUP_TRIALS => {
            suggest(Strategy::Random, space, trial, seed, history)
        }
        Strategy::Bayes => Some(tpe(space, history, &mut rng)),
    }
}

/// The standard normal CDF, by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7).
fn phi(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + if x >= 0.0 { erf } else { -erf })
}

/// A mixture of Gaussians truncated to `[lo, hi]`: one per observation plus a prior.
struct Parzen {
    mus: Vec<f64>,
    sigmas: Vec<f64>,
    lo: f64,
    hi: f64,
}

impl Parzen {
    fn new(points: &[f64], lo: f64, hi: f64) -> Self {
        let range = (hi - lo).max(1e-12);
        let prior = (lo + hi) / 2.0;
        let mut mus: Vec<f64> = points.to_vec();
        mus.push(prior);
        let mut order: Vec<usize> = (0..mus.len()).collect();
        order.sort_by(|&a, &b| mus[a].total_cmp(&mus[b]));
        let n = mus.len();
        // Bandwidth: the larger distance to a sorted neighbour (or to the range's edge),
        // clipped to [range / min(100, n + 1), range]; the prior is as wide as the range.
        let min_sigma = range / (n as f64 + 1.0).min(100.0);
        let mut sigmas = vec![range; n];
        for (rank, &i) in order.iter().enumerate() {
            let left = if rank == 0 {
                mus[i] - lo
            } else {
                mus[i] - mus[order[rank - 1]]
            };
            let right = if rank + 1 == n {
                hi - mus[i]
            } else {
                mus[order[rank + 1]] - mus[i]
            };
            sigmas[i] = left.max(right).clamp(min_sigma, range);
        }
        sigmas[n - 1] = range;
        Self {
            mus,
            sigmas,
            lo,
            hi,
        }
    }

    fn pdf(&self, x: f64) -> f64 {
        let k = self.mus.len() as f64;
        self.mus
            .iter()
            .zip(&self.sigmas)
            .map(|(&m, &s)| {
                let mass = (phi((self.hi - m) / s) - phi((self.lo - m) / s)).max(1e-12);
                let z = (x - m) / s;
                (-0.5 * z * z).exp() / (s * (2.0 * std::f64::consts::PI).sqrt() * mass)
            })
            .sum::<f64>()
            / k
    }

    fn sample(&self, rng: &mut impl Rng) -> f64 {
        let i = rng.random_range(0..self.mus.len());
        for _ in 0..100 {
            // Box-Muller.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let x = self.mus[i] + self.sigmas[i] * z;
            if (self.lo..=self.hi).contains(&x) {
                return x;
            }
        }
        self.mus[i].clamp(self.lo, self.hi)
    }
}

fn tpe(space: &Space, history: &[Observation], rng: &mut impl Rng) -> Assignment {
    let mut sorted: Vec<&Observation> = history.iter().collect();
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    // γ = 25% of the trials (at least one) are "good".
    let n_good = sorted.len().div_ceil(4).max(1);
    let (good, bad) = sorted.split_at(n_good);
    space
        .knobs
        .iter()
        .map(|knob| {
            let coords = |group: &[&Observation]| -> Vec<f64> {
                group
                    .iter()
                    .filter_map(|o| {
                        o.assignment
                            .iter()
                            .find(|(n, _)| *n == knob.name)
                            .and_then(|(_, v)| knob.domain.to_coord(v))
                    })
                    .collect()
            };
            let (g, b) = (coords(good), coords(bad));
            let value = match &knob.domain {
                Domain::Choice { values } => {
                    let k = values.len();
                    let freq = |pts: &[f64]| -> Vec<f64> {
                        let mut c = vec![1.0; k];
                        for &p in pts {
                            c[(p as usize).min(k - 1)] += 1.0;
                        }
                        let total: f64 = c.iter().sum();
                        c.into_iter().map(|x| x / total).collect()
                    };
                    let (l, gx) = (freq(&g), freq(&b));
                    let mut best = (f64::NEG_INFINITY, 0usize);
                    for _ in 0..CANDIDATES {
                        // Draw from l, keep the largest l / g.
                        let u: f64 = rng.random();
                        let mut acc = 0.0;
                        let mut i = k - 1;
                        for (j, p) in l.iter().enumerate() {
                            acc += p;
                            if u < acc {
                                i = j;
                                break;
                            }
                        }
                        let r = l[i].ln() - gx[i].ln();
                        if r > best.0 {
                            best = (r, i);
                        }
                    }
                    values[best.1].clone()
                }
                d => {
                    let (lo, hi) = d.coord_bounds();
                    let (l, gx) = (Parzen::new(&g, lo, hi), Parzen::new(&b, lo, hi));
                    let mut best = (f64::NEG_INFINITY, (lo + hi) / 2.0);
                    for _ in 0..CANDIDATES {
                        let x = l.sample(rng);
                        let r = l.pdf(x).max(1e-300).ln() - gx.pdf(x).max(1e-300).ln();
                        if r > best.0 {
                            best = (r, x);
                        }
                    }
                    d.from_coord(best.1)
                }
            };
            (knob.name.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_cdf_is_accurate() {
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (-1.96, 0.024_997_895),
            (3.0, 0.998_650_102),
        ] {
            assert!((phi(x) - p).abs() < 2e-7, "phi({x}) = {} vs {p}", phi(x));
        }
    }

    #[test]
    fn a_parzen_estimator_is_a_density_on_its_range() {
        let p = Parzen::new(&[0.2, 0.25, 0.8], 0.0, 1.0);
        let n = 10_000;
        let integral: f64 = (0..n)
            .map(|i| p.pdf((i as f64 + 0.5) / n as f64))
            .sum::<f64>()
            / n as f64;
        assert!((integral - 1.0).abs() < 1e-3, "integrates to {integral}");
        assert!(p.pdf(0.22) > p.pdf(0.5), "mass gathers at the observations");
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        assert!(
            (0..1000)
                .map(|_| p.sample(&mut rng))
                .all(|x| (0.0..=1.0).contains(&x))
        );
    }
}
