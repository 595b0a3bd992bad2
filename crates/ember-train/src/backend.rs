//! Run-time choice among the backends compiled in.
//!
//! Cargo features decide which backends exist in the binary; `--backend NAME` picks one.
//! We never fall back on Burn's `Device::default()`, whose choice silently changes with the
//! compiled features (wgpu wins over flex as soon as it is compiled in).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Burn backend Ember knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (SIMD + rayon); the default.
    Flex,
    /// The ndarray CPU backend (deprecated upstream, slower; kept for comparison).
    Ndarray,
    /// wgpu: Vulkan, Metal or DX12; on a machine without a GPU, Mesa's lavapipe.
    Wgpu,
    /// CUDA (its build downloads an LLVM bundle, so it needs internet to compile).
    Cuda,
}

/// The backend asked for is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// Not a backend name.
    #[error("unknown backend `{0}`; expected one of flex, ndarray, wgpu, cuda")]
    Unknown(String),
    /// A backend this binary was built without.
    #[error(
        "backend `{0}` is not compiled into this binary (compiled: {1}); rebuild with `--features {0}`"
    )]
    NotCompiled(Backend, String),
}

impl Backend {
    /// All backends, compiled or not.
    pub const ALL: [Backend; 4] = [
        Backend::Flex,
        Backend::Ndarray,
        Backend::Wgpu,
        Backend::Cuda,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this binary was built with it.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled in, in order of preference for a default (CPU first: it always works).
    pub fn compiled() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The first compiled backend: flex in a default build.
    pub fn default_compiled() -> Option<Backend> {
        Self::compiled().into_iter().next()
    }

    /// The device of this backend (the first GPU for wgpu and cuda).
    #[allow(unreachable_code, deprecated)]
    pub fn device(self) -> Result<Device, BackendError> {
        let not_compiled = || {
            let names: Vec<_> = Self::compiled().iter().map(|b| b.name()).collect();
            BackendError::NotCompiled(self, names.join(", "))
        };
        match self {
            Backend::Flex => {
                #[cfg(feature = "flex")]
                return Ok(Device::flex());
                Err(not_compiled())
            }
            Backend::Ndarray => {
                #[cfg(feature = "ndarray")]
                return Ok(Device::ndarray());
                Err(not_compiled())
            }
            Backend::Wgpu => {
                #[cfg(feature = "wgpu")]
                return Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
                Err(not_compiled())
            }
            Backend::Cuda => {
                #[cfg(feature = "cuda")]
                return Ok(Device::cuda(0));
                Err(not_compiled())
            }
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|b| b.name() == s.to_ascii_lowercase())
            .ok_or_else(|| BackendError::Unknown(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_uncompiled_backends_are_clear_errors() {
        for b in Backend::ALL {
            assert_eq!(b.name().parse::<Backend>(), Ok(b));
        }
        assert!(matches!(
            "tpu".parse::<Backend>(),
            Err(BackendError::Unknown(_))
        ));
        for b in Backend::ALL {
            match b.device() {
                Ok(_) => assert!(b.is_compiled()),
                Err(e) => {
                    assert!(!b.is_compiled());
                    assert!(
                        e.to_string().contains(&format!("--features {}", b.name())),
                        "{e}"
                    );
                }
            }
        }
        #[cfg(feature = "flex")]
        assert_eq!(Backend::default_compiled(), Some(Backend::Flex));
    }
}
