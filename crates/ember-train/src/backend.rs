//! Run-time choice among the backends compiled in.
//!
//! Cargo features decide which backends exist in the binary; `--backend NAME` picks one, and
//! `auto` (the default everywhere) picks the first compiled GPU backend that finds real
//! hardware: CUDA, then wgpu with a discrete, integrated or virtual GPU adapter. A software
//! adapter (Mesa's lavapipe, which makes wgpu run on the CPU) does not count; with no GPU,
//! Flex. We never fall back on Burn's `Device::default()`, whose choice silently changes
//! with the compiled features (wgpu wins over flex as soon as it is compiled in, lavapipe
//! or not).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A Burn backend Ember knows how to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The first compiled GPU backend with real hardware, else Flex ([`Backend::resolve`]).
    Auto,
    /// Burn's pure-Rust CPU backend (SIMD + rayon).
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
    #[error("unknown backend `{0}`; expected one of auto, flex, ndarray, wgpu, cuda")]
    Unknown(String),
    /// A backend this binary was built without.
    #[error(
        "backend `{0}` is not compiled into this binary (compiled: {1}); rebuild with `--features {0}`"
    )]
    NotCompiled(Backend, String),
    /// Compiled in, but the machine cannot run it (no driver, no device).
    #[error("backend `{0}` cannot start on this machine: {1}")]
    Unavailable(Backend, String),
}

/// What [`Backend::resolve`] chose, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// A concrete backend (never `Auto`).
    pub backend: Backend,
    /// One line for the user, e.g. `wgpu: NVIDIA H100 (discrete GPU)`.
    pub reason: String,
}

impl Backend {
    /// All concrete backends, compiled or not.
    pub const ALL: [Backend; 4] = [
        Backend::Flex,
        Backend::Ndarray,
        Backend::Wgpu,
        Backend::Cuda,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this binary was built with it.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Auto => true,
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

    /// The concrete backend: itself, or for `Auto` the first compiled GPU backend that finds
    /// a hardware device (CUDA, then wgpu; a CPU adapter such as lavapipe does not count),
    /// else Flex (else the first compiled CPU backend).
    pub fn resolve(self) -> Resolved {
        if self != Backend::Auto {
            return Resolved {
                backend: self,
                reason: "chosen with `runtime.backend`".into(),
            };
        }
        let mut why: Vec<String> = Vec::new();
        #[cfg(feature = "cuda")]
        match cuda_available() {
            Ok(()) => {
                return Resolved {
                    backend: Backend::Cuda,
                    reason: "cuda: a CUDA device answered".into(),
                };
            }
            Err(e) => why.push(format!("no CUDA device ({e})")),
        }
        #[cfg(feature = "wgpu")]
        match hardware_adapter() {
            Ok(name) => {
                return Resolved {
                    backend: Backend::Wgpu,
                    reason: format!("wgpu: {name}"),
                };
            }
            Err(e) => why.push(e),
        }
        if !cfg!(any(feature = "cuda", feature = "wgpu")) {
            why.push("no GPU backend compiled in (--features wgpu or cuda)".into());
        }
        let cpu = [Backend::Flex, Backend::Ndarray]
            .into_iter()
            .find(|b| b.is_compiled())
            .unwrap_or(Backend::Flex);
        Resolved {
            backend: cpu,
            reason: format!("{}: {}", cpu.name(), why.join("; ")),
        }
    }

    /// The device of this backend (the first GPU for wgpu and cuda; `Auto` resolved).
    #[allow(unreachable_code, deprecated)]
    pub fn device(self) -> Result<Device, BackendError> {
        if self == Backend::Auto {
            return self.resolve().backend.device();
        }
        let not_compiled = || {
            let names: Vec<_> = Self::compiled().iter().map(|b| b.name()).collect();
            BackendError::NotCompiled(self, names.join(", "))
        };
        match self {
            Backend::Auto => unreachable!("resolved above"),
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
                // Without a driver, cudarc panics on the first tensor (in Burn's device thread):
                // ask first, so that `--backend cuda` on such a machine is an error, not a panic.
                #[cfg(feature = "cuda")]
                return cuda_available()
                    .map(|()| Device::cuda(0))
                    .map_err(|e| BackendError::Unavailable(self, e));
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
        std::iter::once(Backend::Auto)
            .chain(Self::ALL)
            .find(|b| b.name() == s.to_ascii_lowercase())
            .ok_or_else(|| BackendError::Unknown(s.to_string()))
    }
}

/// The first wgpu adapter that is real hardware, as `name (kind)`; else why not.
#[cfg(feature = "wgpu")]
fn hardware_adapter() -> Result<String, String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::PRIMARY,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters =
        futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let infos: Vec<_> = adapters.iter().map(|a| a.get_info()).collect();
    let kind = |t: wgpu::DeviceType| match t {
        wgpu::DeviceType::DiscreteGpu => Some("discrete GPU"),
        wgpu::DeviceType::IntegratedGpu => Some("integrated GPU"),
        wgpu::DeviceType::VirtualGpu => Some("virtual GPU"),
        _ => None,
    };
    if let Some((info, k)) = infos
        .iter()
        .find_map(|i| kind(i.device_type).map(|k| (i, k)))
    {
        return Ok(format!("{} ({k}, {:?})", info.name, info.backend));
    }
    if infos.is_empty() {
        Err("wgpu finds no adapter".into())
    } else {
        let names: Vec<_> = infos
            .iter()
            .map(|i| format!("{} ({:?})", i.name, i.device_type))
            .collect();
        Err(format!("wgpu sees only {}", names.join(", ")))
    }
}

/// Whether a CUDA device can run a kernel: Burn's CUDA client panics without a driver, so
/// the probe runs a tiny tensor operation with the panic caught and its message muted.
#[cfg(feature = "cuda")]
fn cuda_available() -> Result<(), String> {
    // The first panic may happen in Burn's device thread (what reaches this thread is then a
    // "task panicked" error about a missing tensor): keep the first message of any thread.
    let first = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let hook = std::panic::take_hook();
    let seen = first.clone();
    std::panic::set_hook(Box::new(move |info| {
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get_or_insert_with(|| crate::panics::panic_message(info.payload()));
    }));
    let result = std::panic::catch_unwind(|| {
        let d = Device::cuda(0);
        burn::tensor::Tensor::<1>::zeros([1], &d).into_data()
    });
    std::panic::set_hook(hook);
    result.map(|_| ()).map_err(|e| {
        let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
        let message = first.unwrap_or_else(|| crate::panics::panic_message(e.as_ref()));
        if message.contains("Unable to dynamically load") {
            // cudarc lists some thirty library names it tried; say what they mean.
            "the NVIDIA driver's libcuda.so was not found (no NVIDIA driver on this machine, \
             or its folder is not on LD_LIBRARY_PATH)"
                .into()
        } else {
            message
        }
    })
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
        assert_eq!("auto".parse::<Backend>(), Ok(Backend::Auto));
    }

    #[test]
    fn auto_picks_a_concrete_backend_and_says_why() {
        let r = Backend::Auto.resolve();
        assert_ne!(r.backend, Backend::Auto);
        assert!(r.backend.is_compiled());
        assert!(r.reason.starts_with(r.backend.name()), "{}", r.reason);
        // No GPU on a CI machine: lavapipe is a CPU adapter, so auto must not choose it.
        if std::env::var_os("CI").is_some() {
            assert!(
                matches!(r.backend, Backend::Flex | Backend::Ndarray),
                "{}",
                r.reason
            );
        }
        assert_eq!(Backend::Flex.resolve().backend, Backend::Flex);
    }
}
