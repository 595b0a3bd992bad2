//! A knob is declared once, in its section's [`section!`](crate::section) block, with its
//! type, default, doc, flag and checks; everything else is derived from that declaration:
//! the serde struct and its `Default`, the section's [`Knob`] table (paths for search spaces
//! and `--set`, legacy flat keys, flag help with the default shown), the CLI overlay
//! ([`crate::cli`]) and the validation, whose errors name the config path (`optim.lr`).
//!
//! This is the job Burn's `#[derive(Config)]` does for model configs (a field, its default,
//! its builder); a declarative macro does it here because a knob also needs a flag and a
//! check, which no derive in Burn, serde or clap writes for a nested serde struct.

use crate::error::TrainError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a knob appears on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    /// Only through `--set section.name=VALUE` (and config files).
    None,
    /// `--NAME VALUE`.
    Value(&'static str),
    /// `--NAME` sets it to `true`.
    On(&'static str),
    /// `--NAME` sets it to `false` (`--no-diagnostics`).
    Off(&'static str),
}

impl Flag {
    /// The flag's long name, if it has one.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Flag::None => None,
            Flag::Value(n) | Flag::On(n) | Flag::Off(n) => Some(n),
        }
    }
}

/// Writes a knob's value, given as text (a flag's or `--set`'s), into its section's TOML table.
pub type Setter = fn(&mut toml::Table, &'static str, &str) -> Result<(), String>;

/// One knob of a config section, as declared.
#[derive(Debug)]
pub struct Knob {
    /// Its path in the config: `optim.lr`.
    pub path: &'static str,
    /// Its section (`optim`).
    pub section: &'static str,
    /// Its name in the section (`lr`).
    pub name: &'static str,
    /// Its doc comment: the flag's help.
    pub doc: &'static str,
    /// Its flag.
    pub flag: Flag,
    /// How a flag's text becomes its value.
    pub set: Setter,
}

impl Knob {
    /// Sets it in a whole config table (sections at the top) from text.
    pub fn set_in(&self, config: &mut toml::Table, raw: &str) -> Result<(), String> {
        let section = section_table(config, self.section)?;
        (self.set)(section, self.name, raw).map_err(|e| {
            let what = format!("unknown {}", self.name.replace('_', " "));
            format!("{}: {}", self.path, e.replace("unknown variant", &what))
        })
    }
}

/// The table of `section` in `config`, created when missing.
pub fn section_table<'a>(
    config: &'a mut toml::Table,
    section: &str,
) -> Result<&'a mut toml::Table, String> {
    match config
        .entry(section)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    {
        toml::Value::Table(t) => Ok(t),
        _ => Err(format!("`{section}` must be a table")),
    }
}

/// A section of [`TrainConfig`](super::TrainConfig) declared with [`section!`](crate::section).
pub trait Section: Default + Serialize {
    /// Its name in the config file (`[optim]`).
    const NAME: &'static str;
    /// Its heading in `--help`.
    const HEADING: &'static str;
    /// Its knobs, in declaration order.
    const KNOBS: &'static [Knob];
    /// The checks declared beside its knobs, in order; the first that fails is the error.
    fn check_knobs(&self) -> Result<(), TrainError>;
}

/// The default setter: the text is read as the knob's type would read it from a config file,
/// trying a TOML literal (`0.1`, `true`, `[32, 32]`), then a number, then the text as a
/// string (`cifar10`, `runs/a`), and the first the type accepts is stored in its canonical
/// form. So no knob needs a parser of its own unless its flag has a shorthand (`--resize 32`).
pub fn set_value<T: DeserializeOwned + Serialize>(
    section: &mut toml::Table,
    name: &'static str,
    raw: &str,
) -> Result<(), String> {
    section.insert(name.to_string(), typed_value::<T>(raw)?);
    Ok(())
}

/// `raw` read as a TOML literal (`0.1`, `true`, `[32, 32]`, `{ every = 5 }`), if it is one.
pub fn toml_literal(raw: &str) -> Option<toml::Value> {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
}

/// `raw` as a value of type `T` (see [`set_value`]), in TOML.
pub fn typed_value<T: DeserializeOwned + Serialize>(raw: &str) -> Result<toml::Value, String> {
    let literal = toml_literal(raw);
    let number = raw.trim().parse::<f64>().ok().map(toml::Value::Float);
    let text = Some(toml::Value::String(raw.to_string()));
    let mut first_error = None;
    for candidate in [literal, number, text].into_iter().flatten() {
        match candidate.try_into::<T>() {
            Ok(v) => {
                return toml::Value::try_from(&v).map_err(|e| e.to_string());
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.message().to_string());
            }
        }
    }
    Err(first_error.unwrap_or_else(|| format!("`{raw}` is not a valid value")))
}

/// `raw` read as a value of `T`, as a flag or `--set` reads it (see [`set_value`]).
pub fn parse_value<T: DeserializeOwned + Serialize>(raw: &str) -> Result<T, String> {
    typed_value::<T>(raw)?
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// `value` as it would be written in a config file, for error messages (`0.5`, `"sgd"`).
pub fn shown<T: Serialize>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(toml::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => "(none)".into(),
    }
}

/// The error of a failed check: `optim.lr must be > 0, got 0`.
pub fn invalid<T: Serialize>(section: &str, name: &str, why: &str, value: &T) -> TrainError {
    TrainError::Knob {
        path: format!("{section}.{name}"),
        msg: format!("{why}, got {}", shown(value)),
    }
}

/// The default of every knob of a section, as text for `--help` (`None` for optional knobs
/// that are unset by default and for empty lists).
pub fn defaults<S: Section>() -> Vec<(&'static str, Option<String>)> {
    let table = toml::Value::try_from(S::default())
        .ok()
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    S::KNOBS
        .iter()
        .map(|k| {
            let text = table.get(k.name).and_then(|v| match v {
                toml::Value::Array(a) if a.is_empty() => None,
                toml::Value::Table(_) => None,
                toml::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            });
            (k.name, text)
        })
        .collect()
}

/// Declares a config section: a serde struct whose every field is a knob with its doc, type,
/// default, optional flag, optional setter and checks.
///
/// ```ignore
/// section! {
///     /// How each step changes the weights.
///     pub struct OptimConfig in "optim", "Optimizer" {
///         /// The (peak) learning rate.
///         lr: f64 = 0.1; flag "lr"; check |v| *v > 0.0 && v.is_finite() => "must be > 0",
///     }
/// }
/// ```
///
/// After the default, in this order, each optional: `flag "NAME"` (`--NAME VALUE`), `switch
/// "NAME"` (`--NAME` sets true), `switch_off "NAME"` (`--NAME` sets false), `set FN` (a
/// [`Setter`] for flags with a shorthand), and any number of `check CLOSURE => "why"`.
#[macro_export]
macro_rules! section {
    (
        $(#[doc = $sdoc:literal])*
        pub struct $name:ident in $section:literal, $heading:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr
                $(; flag $flag:literal)?
                $(; switch $on:literal)?
                $(; switch_off $off:literal)?
                $(; set $set:path)?
                $(; check $check:expr => $why:literal)*
                ,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Debug, Clone, PartialEq, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl $crate::config::knob::Section for $name {
            const NAME: &'static str = $section;
            const HEADING: &'static str = $heading;
            const KNOBS: &'static [$crate::config::knob::Knob] = &[$(
                $crate::config::knob::Knob {
                    path: concat!($section, ".", stringify!($field)),
                    section: $section,
                    name: stringify!($field),
                    doc: concat!($($doc, "\n",)* ""),
                    flag: $crate::section!(@flag $($flag)? ; $($on)? ; $($off)?),
                    set: $crate::section!(@set $ty ; $($set)?),
                },
            )*];

            fn check_knobs(&self) -> ::std::result::Result<(), $crate::error::TrainError> {
                $($(
                    {
                        let ok: fn(&$ty) -> bool = $check;
                        if !ok(&self.$field) {
                            return Err($crate::config::knob::invalid(
                                $section, stringify!($field), $why, &self.$field,
                            ));
                        }
                    }
                )*)*
                Ok(())
            }
        }
    };
    (@flag $flag:literal ; ; ) => { $crate::config::knob::Flag::Value($flag) };
    (@flag ; $on:literal ; ) => { $crate::config::knob::Flag::On($on) };
    (@flag ; ; $off:literal) => { $crate::config::knob::Flag::Off($off) };
    (@flag ; ; ) => { $crate::config::knob::Flag::None };
    (@set $ty:ty ; $set:path) => { $set };
    (@set $ty:ty ; ) => { $crate::config::knob::set_value::<$ty> };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_becomes_the_value_the_type_reads() {
        assert_eq!(typed_value::<f64>("0.5").unwrap(), toml::Value::Float(0.5));
        assert_eq!(typed_value::<f64>("3").unwrap(), toml::Value::Float(3.0));
        assert_eq!(typed_value::<f64>(".5").unwrap(), toml::Value::Float(0.5));
        assert_eq!(typed_value::<usize>("3").unwrap(), toml::Value::Integer(3));
        assert!(typed_value::<usize>("3.5").is_err());
        assert_eq!(
            typed_value::<Option<usize>>("7").unwrap(),
            toml::Value::Integer(7)
        );
        // A path that looks like a number is still a path.
        assert_eq!(
            typed_value::<std::path::PathBuf>("2024").unwrap(),
            toml::Value::String("2024".into())
        );
        assert_eq!(
            typed_value::<[usize; 2]>("[32, 24]").unwrap(),
            toml::Value::Array(vec![32.into(), 24.into()])
        );
        let e = typed_value::<bool>("maybe").unwrap_err();
        assert!(e.contains("bool") || e.contains("boolean"), "{e}");
    }

    #[test]
    fn values_show_as_a_config_file_writes_them() {
        assert_eq!(shown(&0.5), "0.5");
        assert_eq!(shown(&"sgd"), "sgd");
        assert_eq!(shown(&Some(3usize)), "3");
        assert_eq!(shown(&Option::<usize>::None), "(none)");
    }
}
