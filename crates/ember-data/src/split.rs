//! Seeded train/validation splits, optionally stratified by class.

use crate::{ClassificationDataset, DataError, ImageItem};
use burn::data::dataset::{Dataset, DatasetError};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

/// A view of some items of a dataset, in the given order.
#[derive(Debug, Clone)]
pub struct Subset<D: ?Sized> {
    inner: Arc<D>,
    indices: Vec<usize>,
}

impl<D: ?Sized> Subset<D> {
    /// Items `indices` of `inner`.
    pub fn new(inner: Arc<D>, indices: Vec<usize>) -> Self {
        Self { inner, indices }
    }

    /// The indices into the underlying dataset.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }
}

impl<D: Dataset<ImageItem> + ?Sized> Dataset<ImageItem> for Subset<D> {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let &i = self.indices.get(index).ok_or_else(|| {
            DataError::Invalid(format!(
                "index {index} out of range 0..{}",
                self.indices.len()
            ))
        })?;
        self.inner.get(i)
    }

    fn len(&self) -> usize {
        self.indices.len()
    }
}

impl<D: ClassificationDataset + ?Sized> ClassificationDataset for Subset<D> {
    fn classes(&self) -> &[String] {
        self.inner.classes()
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.inner.label(*self.indices.get(index)?)
    }

    fn source(&self, index: usize) -> Option<String> {
        self.inner.source(*self.indices.get(index)?)
    }
}

/// Splits indices `0..n` into `(train, validation)` with `round(fraction * n)` validation
/// items, chosen by a seeded shuffle. With `labels`, each class is split on its own
/// (stratified), so both parts keep the class proportions. Both lists come back sorted.
pub fn split_indices(
    n: usize,
    fraction: f64,
    seed: u64,
    labels: Option<&[usize]>,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(DataError::Invalid(format!(
            "the validation fraction must be in [0, 1), got {fraction}"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut groups: Vec<Vec<usize>> = match labels {
        Some(labels) => {
            if labels.len() != n {
                return Err(DataError::Invalid(format!(
                    "{} labels for {n} items",
                    labels.len()
                )));
            }
            let classes = labels.iter().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); classes];
            for (i, &l) in labels.iter().enumerate() {
                g[l].push(i);
            }
            g
        }
        None => vec![(0..n).collect()],
    };
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for group in &mut groups {
        group.shuffle(&mut rng);
        let k = (fraction * group.len() as f64).round() as usize;
        val.extend_from_slice(&group[..k]);
        train.extend_from_slice(&group[k..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    Ok((train, val))
}

/// Splits a dataset into `(train, validation)` views; see [`split_indices`].
pub fn train_val_split<D: ClassificationDataset + ?Sized>(
    dataset: Arc<D>,
    fraction: f64,
    seed: u64,
    stratified: bool,
) -> Result<(Subset<D>, Subset<D>), DataError> {
    let n = dataset.len();
    let labels: Option<Vec<usize>> = if stratified {
        Some(
            (0..n)
                .map(|i| {
                    dataset
                        .label(i)
                        .ok_or_else(|| DataError::Invalid(format!("item {i} has no label")))
                })
                .collect::<Result<_, _>>()?,
        )
    } else {
        None
    };
    let (train, val) = split_indices(n, fraction, seed, labels.as_deref())?;
    Ok((
        Subset::new(dataset.clone(), train),
        Subset::new(dataset, val),
    ))
}

/// The items of some classes only, relabelled `0..k` in the order given: a smaller task carved
/// from a dataset (pre-train on CIFAR-10's classes 0-4, fine-tune on 5-9).
#[derive(Debug, Clone)]
pub struct ClassSubset<D: ?Sized> {
    items: Subset<D>,
    /// `relabel[old label] = Some(new label)`.
    relabel: Vec<Option<usize>>,
    classes: Vec<String>,
}

impl<D: ClassificationDataset + ?Sized> ClassSubset<D> {
    /// The items of `classes` (labels of `inner`), at most `per_class` of each (the first
    /// ones, in dataset order).
    pub fn new(
        inner: Arc<D>,
        classes: &[usize],
        per_class: Option<usize>,
    ) -> Result<Self, DataError> {
        let all = inner.classes();
        let mut relabel = vec![None; all.len()];
        for (new, &old) in classes.iter().enumerate() {
            if old >= all.len() {
                return Err(DataError::Invalid(format!(
                    "class {old} does not exist: the dataset has {} classes (0-{})",
                    all.len(),
                    all.len().saturating_sub(1)
                )));
            }
            if relabel[old].is_some() {
                return Err(DataError::Invalid(format!("class {old} is listed twice")));
            }
            relabel[old] = Some(new);
        }
        let mut taken = vec![0usize; classes.len()];
        let mut indices = Vec::new();
        for i in 0..inner.len() {
            let label = inner
                .label(i)
                .ok_or_else(|| DataError::Invalid(format!("item {i} has no label")))?;
            if let Some(new) = relabel.get(label).copied().flatten()
                && per_class.is_none_or(|n| taken[new] < n)
            {
                taken[new] += 1;
                indices.push(i);
            }
        }
        Ok(Self {
            classes: classes.iter().map(|&c| all[c].clone()).collect(),
            items: Subset::new(inner, indices),
            relabel,
        })
    }

    /// The items of the classes named `names`, labelled by their place in `names`: how a
    /// run's model (which predicts its own classes, in its own order) is scored on a dataset
    /// whose classes are more, fewer or in another order. A name the dataset lacks is an error.
    pub fn by_name(inner: Arc<D>, names: &[String]) -> Result<Self, DataError> {
        let all = inner.classes();
        let mut labels = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for name in names {
            match all.iter().position(|c| c == name) {
                Some(i) => labels.push(i),
                None => missing.push(name.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(DataError::Invalid(format!(
                "the dataset has no class {} (its classes: {})",
                missing.join(", "),
                all.join(", ")
            )));
        }
        Self::new(inner, &labels, None)
    }
}

impl<D: ClassificationDataset + ?Sized> Dataset<ImageItem> for ClassSubset<D> {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let mut item = self.items.get(index)?;
        item.label = self.relabel[item.label].ok_or_else(|| {
            DataError::Invalid(format!("item {index} changed class while being read"))
        })?;
        Ok(item)
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

impl<D: ClassificationDataset + ?Sized> ClassificationDataset for ClassSubset<D> {
    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn label(&self, index: usize) -> Option<usize> {
        self.relabel[self.items.label(index)?]
    }

    fn source(&self, index: usize) -> Option<String> {
        self.items.source(index)
    }
}

/// Most classes a class list may name (ImageNet-21k has about 21,800).
const MAX_CLASSES: usize = 100_000;

/// Reads a list of class labels as `--classes` spells it: `5,6,7`, `5-9` or both (`0,3-5`),
/// in the given order.
pub fn parse_class_list(s: &str) -> Result<Vec<usize>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |x: &str| {
            x.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{x}` is not a class number (expected e.g. 5,6,7 or 5-9)"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("empty range {part}"));
                }
                // Bounded before it is expanded: no dataset has this many classes.
                if b - a >= MAX_CLASSES || out.len() + (b - a) >= MAX_CLASSES {
                    return Err(format!("{part}: more than {MAX_CLASSES} classes"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_seeded_disjoint_complete_and_stratified() {
        let labels: Vec<usize> = (0..1000).map(|i| if i < 900 { 0 } else { 1 }).collect();
        let (t1, v1) = split_indices(1000, 0.1, 7, Some(&labels)).unwrap();
        let (t2, v2) = split_indices(1000, 0.1, 7, Some(&labels)).unwrap();
        assert_eq!((&t1, &v1), (&t2, &v2), "same seed, same split");
        let (_, v3) = split_indices(1000, 0.1, 8, Some(&labels)).unwrap();
        assert_ne!(v1, v3, "another seed, another split");
        assert_eq!(v1.len(), 100);
        assert_eq!(
            v1.iter().filter(|&&i| labels[i] == 1).count(),
            10,
            "10% of each class"
        );
        let mut all: Vec<usize> = t1.iter().chain(&v1).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>(), "disjoint and complete");
        assert!(split_indices(10, 1.0, 0, None).is_err());
        assert!(split_indices(10, -0.1, 0, None).is_err());
    }

    /// Labels only; every image is 1x1 with the label as its value.
    struct Labels(Vec<usize>, Vec<String>);
    impl Dataset<ImageItem> for Labels {
        fn get(&self, i: usize) -> Result<ImageItem, DatasetError> {
            let mut image = crate::image::Image::zeros(1, 1, 1);
            image.data[0] = self.0[i] as f32;
            Ok(ImageItem {
                image,
                label: self.0[i],
            })
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    impl ClassificationDataset for Labels {
        fn classes(&self) -> &[String] {
            &self.1
        }
        fn label(&self, i: usize) -> Option<usize> {
            self.0.get(i).copied()
        }
    }

    #[test]
    fn class_subsets_keep_relabel_and_cap_the_chosen_classes() {
        let labels = (0..40).map(|i| i % 4).collect();
        let names = ["a", "b", "c", "d"].map(String::from).to_vec();
        let ds = Arc::new(Labels(labels, names));
        let sub = ClassSubset::new(ds.clone(), &[3, 1], Some(4)).unwrap();
        assert_eq!(sub.classes(), ["d".to_string(), "b".to_string()]);
        assert_eq!(sub.len(), 8, "4 of each of the two classes");
        let items: Vec<ImageItem> = (0..sub.len()).map(|i| sub.get(i).unwrap()).collect();
        for (i, item) in items.iter().enumerate() {
            let old = item.image.data[0] as usize;
            assert_eq!(
                item.label,
                if old == 3 { 0 } else { 1 },
                "relabelled in the given order"
            );
            assert_eq!(sub.label(i), Some(item.label));
        }
        assert!(
            ClassSubset::new(ds.clone(), &[4], None).is_err(),
            "no class 4"
        );
        assert!(ClassSubset::new(ds, &[1, 1], None).is_err(), "listed twice");
    }

    #[test]
    fn class_lists_read_numbers_and_ranges_in_order() {
        assert_eq!(super::parse_class_list("5-9").unwrap(), [5, 6, 7, 8, 9]);
        assert_eq!(super::parse_class_list("3, 0,1-2").unwrap(), [3, 0, 1, 2]);
        assert!(
            super::parse_class_list("9-5")
                .unwrap_err()
                .contains("empty range")
        );
        assert!(
            super::parse_class_list("a")
                .unwrap_err()
                .contains("not a class number")
        );
        assert!(
            super::parse_class_list("0-999999")
                .unwrap_err()
                .contains("more than")
        );
    }
}
