//! # ember-data
//!
//! Datasets (MNIST, Fashion-MNIST, CIFAR-10/100, ImageFolder) and seeded image augmentation.
//! Not written yet: the data issue tracks it. The crate exists so the workspace layout and the
//! `ember::data` re-export are in place.
