//! Enum names with one source, their serde attributes: a config file, a flag and an error
//! message all spell `OptimizerKind::Adamw` as serde does (`adamw`), and aliases are serde's
//! `#[serde(alias = "..")]`. [`named_enum!`](crate::named_enum) writes the `FromStr` that
//! clap's flags use.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::de::value::{Error, StrDeserializer};

/// The variant of `T` that serde names `s` (case-insensitive), or an error that lists the
/// names: "unknown optimizer `adamax`, expected one of `sgd`, ...".
pub fn from_name<T: DeserializeOwned>(s: &str, what: &str) -> Result<T, String> {
    let lower = s.trim().to_ascii_lowercase();
    T::deserialize(StrDeserializer::<Error>::new(&lower)).map_err(|e| {
        e.to_string()
            .replace("unknown variant", &format!("unknown {what}"))
    })
}

/// The serde name of a unit variant (`adamw`).
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => format!("({e})"),
    }
}

/// `FromStr` from serde's names for enums of unit variants: `named_enum!(Preset, "preset")`.
#[macro_export]
macro_rules! named_enum {
    ($($t:ty => $what:literal),* $(,)?) => {$(
        impl ::std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> ::std::result::Result<Self, String> {
                $crate::names::from_name(s, $what)
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(rename_all = "kebab-case")]
    enum Kind {
        OneCycle,
        #[serde(alias = "tpe")]
        Bayes,
    }
    named_enum!(Kind => "kind");

    #[test]
    fn names_and_aliases_come_from_serde() {
        assert_eq!("one-cycle".parse::<Kind>(), Ok(Kind::OneCycle));
        assert_eq!("One-Cycle".parse::<Kind>(), Ok(Kind::OneCycle));
        assert_eq!("tpe".parse::<Kind>(), Ok(Kind::Bayes));
        assert_eq!(name_of(&Kind::OneCycle), "one-cycle");
        let e = "cosine".parse::<Kind>().unwrap_err();
        assert!(
            e.contains("unknown kind `cosine`") && e.contains("`one-cycle`, `bayes`"),
            "{e}"
        );
    }
}
