//! What can go wrong when a model is named or configured.

/// Errors of the registry and of model configurations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The name is not in the registry.
    #[error("unknown model `{name}`{hint}; `ember summary --list` lists them all")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// ", did you mean `x`?" or empty.
        hint: String,
    },
    /// The configuration cannot be built.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
}
