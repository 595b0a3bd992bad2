//! The vocabulary of transfer learning: weight paths, prefixes and key tables. Each family says
//! in its own file ([`Family`](crate::family::Family)) which parameters form its classifier head
//! (re-initialised for new classes), the order of its stages (frozen from the bottom up:
//! low-level features are the general ones) and how torchvision names its weights.
//!
//! Parameter names are Ember's weight paths with enum variants left out, as
//! [`ParamPath`](crate::ParamPath) and safetensors files write them: `layer1.0.conv1.conv.weight`,
//! `layer1.0.conv1.bn.gamma`, `fc.weight`.

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
    /// The start of every torchvision table: batch norm's `num_batches_tracked` counters have
    /// no Ember counterpart.
    pub fn torchvision() -> Self {
        Self::default().ignore(r"\.num_batches_tracked$")
    }

    /// Adds a rule: keys matching the regex `from` are rewritten to `to` (`${1}` groups).
    pub fn rule(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.rules.push((from.into(), to.into()));
        self
    }

    /// Drops source keys matching the regex `pattern` silently.
    pub fn ignore(mut self, pattern: &str) -> Self {
        self.ignored.push(pattern.into());
        self
    }
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
