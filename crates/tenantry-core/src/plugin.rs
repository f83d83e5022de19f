//! How a target crate plugs into tenantry: its section of tenantry.toml,
//! how it connects, and what it adds to derivation settings and roster
//! validation. The composition root (`tenantry-app`) keeps one list of
//! plugins; adding a target is one crate and one line in that list.

use crate::derive::Settings;
use crate::target::{Target, TargetError};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenantry_model::ValidationContext;

/// Where a section of tenantry.toml is read from, for resolving its paths.
#[derive(Debug, Clone, Default)]
pub struct LoadContext {
    /// The directory of tenantry.toml: relative paths in it are relative to it.
    pub base: PathBuf,
    /// The directory of the roster file, when the roster is a file.
    pub roster_dir: Option<PathBuf>,
}

impl LoadContext {
    /// `~/x` → `$HOME/x`; a relative path is taken relative to tenantry.toml;
    /// the result is absolute (commands run in other working directories).
    pub fn resolve(&self, path: &Path) -> PathBuf {
        let expanded = match (path.strip_prefix("~"), std::env::var_os("HOME")) {
            (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
            _ => self.base.join(path),
        };
        std::path::absolute(&expanded).unwrap_or(expanded)
    }
}

/// One kind of target, as tenantry.toml knows it.
pub trait TargetPlugin: Sync {
    /// Its section: `[vault]`.
    fn section(&self) -> &'static str;

    /// Active even when its section is absent (the embedded local target).
    fn on_by_default(&self) -> bool {
        false
    }

    /// The keys its section takes, in order (for help texts).
    fn keys(&self) -> &'static [&'static str];

    /// Read its section (TOML, given as the equivalent JSON value; `Null`
    /// when absent and on by default). The error says what is wrong, in
    /// serde's words; the caller adds where and the keys.
    fn load(&self, section: serde_json::Value, context: &LoadContext) -> Result<Box<dyn TargetSetup>, String>;
}

/// A configured target, ready to connect.
#[async_trait::async_trait]
pub trait TargetSetup: Send + Sync + std::fmt::Debug {
    /// What derivation and validation need to know from this configuration
    /// (mount paths, managed zones).
    fn contribute(&self, _settings: &mut Settings, _validation: &mut ValidationContext) {}

    /// Connect (read credentials, check them against the peer) as the target
    /// of `platform` (the roster's `platform.name`, the marks of its objects).
    async fn connect(&self, platform: &str) -> Result<Arc<dyn Target>, TargetError>;

    /// What to check when connecting fails.
    fn connect_help(&self) -> String;

    /// False when the section switches its target off (`[local] enabled = false`).
    fn enabled(&self) -> bool {
        true
    }
}

/// The field names of a struct that derives `Deserialize`, in declaration
/// order, read from serde itself so help texts never drift from the type.
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Fields(Option<&'static [&'static str]>);

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("stop")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Stop {
            Stop
        }
    }

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0.unwrap_or(&[])
}

/// `a, b and c`.
pub fn list_in_words(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Example {
        address: String,
        token_file: Option<String>,
    }

    #[test]
    fn fields_come_from_serde_in_declaration_order() {
        assert_eq!(struct_fields::<Example>(), &["address", "token_file"]);
        assert_eq!(list_in_words(struct_fields::<Example>()), "address and token_file");
    }
}
