//! Canonical resource content: compact JSON with sorted keys.
//!
//! Desired and observed content are compared as canonical text, so equal
//! meaning means equal bytes whatever map ordering a dependency prefers.

use serde_json::Value;
use std::fmt::Write as _;
use std::sync::Arc;

/// Canonical JSON text of one resource's managed fields. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Content(Arc<str>);

impl Content {
    pub fn from_value(value: &Value) -> Content {
        let mut out = String::with_capacity(256);
        write_canonical(value, &mut out);
        Content(out.into())
    }

    /// Parse JSON text (from a file or a server) into canonical content.
    pub fn parse(text: &str) -> Result<Content, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        Ok(Content::from_value(&value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// Indented JSON, for humans and diffs.
    pub fn pretty(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).unwrap_or_else(|_| self.0.to_string())
    }
}

impl std::fmt::Display for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            // serde_json's map is already sorted unless a dependency turns on
            // `preserve_order`; sort only in that case.
            if map.keys().zip(map.keys().skip(1)).all(|(a, b)| a <= b) {
                for (index, (key, item)) in map.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    write_canonical(item, out);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                for (index, (key, item)) in entries.into_iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(text) => write_string(text, out),
        Value::Number(number) => {
            let _ = write!(out, "{number}");
        }
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
    }
}

/// JSON string escaping as serde_json writes it, without an intermediate allocation.
fn write_string(text: &str, out: &mut String) {
    out.push('"');
    // Most names need no escaping: copy them whole.
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(text);
        out.push('"');
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_text_sorts_keys_at_every_level() {
        let a = Content::from_value(&json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}}));
        assert_eq!(a.as_str(), r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#);
        assert_eq!(Content::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for text in ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\r", "\u{1}\u{1f}\u{8}\u{c}", "ünïcødé ✓"]
        {
            let mut out = String::new();
            write_string(text, &mut out);
            assert_eq!(out, serde_json::to_string(text).unwrap());
        }
    }
}
