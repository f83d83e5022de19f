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

thread_local! {
    /// Where `Content::object` writes before copying the text into its `Arc`.
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Writes canonical JSON straight into text, for the derivation's hot paths
/// (tens of thousands of near-identical objects, where building a
/// `serde_json::Value` per object and then printing it is most of the cost).
/// Keys must be written in sorted order; debug builds check it, and a test
/// holds every derived object to `Content::parse` giving the same bytes.
#[derive(Debug)]
pub(crate) struct ObjectWriter<'a> {
    out: &'a mut String,
    first: bool,
    #[cfg(debug_assertions)]
    last_key: String,
}

impl<'a> ObjectWriter<'a> {
    fn open(out: &'a mut String) -> ObjectWriter<'a> {
        out.push('{');
        ObjectWriter {
            out,
            first: true,
            #[cfg(debug_assertions)]
            last_key: String::new(),
        }
    }

    fn key(&mut self, key: &str) {
        #[cfg(debug_assertions)]
        {
            debug_assert!(self.first || self.last_key.as_str() < key, "key `{key}` after `{}`", self.last_key);
            self.last_key = key.to_string();
        }
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        write_string(key, self.out);
        self.out.push(':');
    }

    pub(crate) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        write_string(value, self.out);
        self
    }

    pub(crate) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.push_str(if value { "true" } else { "false" });
        self
    }

    pub(crate) fn strs<'s>(&mut self, key: &str, values: impl IntoIterator<Item = &'s str>) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (index, value) in values.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            write_string(value, self.out);
        }
        self.out.push(']');
        self
    }

    /// A value that is already canonical JSON text (a shared, precomputed part).
    pub(crate) fn raw(&mut self, key: &str, canonical: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(canonical);
        self
    }

    pub(crate) fn object(&mut self, key: &str, fill: impl FnOnce(&mut ObjectWriter<'_>)) -> &mut Self {
        self.key(key);
        let mut inner = ObjectWriter::open(self.out);
        fill(&mut inner);
        inner.out.push('}');
        self
    }

    /// An array of objects.
    pub(crate) fn objects<T>(
        &mut self,
        key: &str,
        items: impl IntoIterator<Item = T>,
        mut fill: impl FnMut(&mut ObjectWriter<'_>, T),
    ) -> &mut Self {
        self.key(key);
        self.out.push('[');
        for (index, item) in items.into_iter().enumerate() {
            if index > 0 {
                self.out.push(',');
            }
            let mut inner = ObjectWriter::open(self.out);
            fill(&mut inner, item);
            inner.out.push('}');
        }
        self.out.push(']');
        self
    }
}

impl Content {
    /// Canonical content written directly by an [`ObjectWriter`].
    pub(crate) fn object(capacity: usize, fill: impl FnOnce(&mut ObjectWriter<'_>)) -> Content {
        let write = |out: &mut String| {
            let mut writer = ObjectWriter::open(out);
            fill(&mut writer);
            out.push('}');
            Content(Arc::from(out.as_str()))
        };
        // The text is copied into its shared allocation either way; written
        // into this thread's reused buffer first, a quarter of a million
        // resources cost no buffer of their own and no regrowth.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut buffer) => {
                buffer.clear();
                write(&mut buffer)
            }
            // Content written while writing content: a buffer of its own.
            Err(_) => write(&mut String::with_capacity(capacity)),
        })
    }

    /// The canonical text of a JSON value, for splicing into an [`ObjectWriter`].
    pub(crate) fn canonical_text(value: &Value) -> String {
        let mut out = String::new();
        write_canonical(value, &mut out);
        out
    }
}

/// JSON string escaping as serde_json writes it, without an intermediate allocation.
/// Whether `text` holds a byte JSON escapes (a control character, `"` or
/// `\\`), eight bytes at a time: every string of every derived object goes
/// through here.
fn needs_escaping(text: &str) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH_BITS: u64 = ONES << 7;
    // Whether any byte of `word` is below `n` (n ≤ 128); `n = 1` finds a zero byte.
    let any_below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH_BITS != 0;
    let mut words = text.as_bytes().chunks_exact(8);
    for chunk in &mut words {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else { return true };
        let word = u64::from_ne_bytes(bytes);
        if any_below(word, 0x20)
            || any_below(word ^ (ONES * u64::from(b'"')), 1)
            || any_below(word ^ (ONES * u64::from(b'\\')), 1)
        {
            return true;
        }
    }
    words.remainder().iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    // Most names need no escaping: copy them whole.
    if !needs_escaping(text) {
        out.push_str(text);
        out.push('"');
        return;
    }
    // Otherwise runs that need no escaping are still copied whole; only the
    // bytes JSON escapes are written one by one. Each is ASCII, so every
    // slice boundary below is a character boundary.
    let mut run_start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(text.get(run_start..index).unwrap_or_default());
        if escaped.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escaped);
        }
        run_start = index + 1;
    }
    out.push_str(text.get(run_start..).unwrap_or_default());
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
    fn the_object_writer_gives_the_same_bytes_as_a_value() {
        let written = Content::object(64, |o| {
            o.str("apiVersion", "v1")
                .object("metadata", |m| {
                    m.object("labels", |l| {
                        l.str("a/b", "x\"y");
                    })
                    .str("name", "n");
                })
                .objects("subjects", ["u1", "u2"], |s, name| {
                    s.str("kind", "User").str("name", name);
                })
                .raw("z", "[1,2]");
        });
        let value = json!({
            "z": [1, 2],
            "subjects": [{"name": "u1", "kind": "User"}, {"kind": "User", "name": "u2"}],
            "metadata": {"name": "n", "labels": {"a/b": "x\"y"}},
            "apiVersion": "v1",
        });
        assert_eq!(written, Content::from_value(&value));
    }

    #[test]
    #[should_panic(expected = "after")]
    fn keys_out_of_order_are_caught_in_debug_builds() {
        let _ = Content::object(8, |o| {
            o.str("b", "1").str("a", "2");
        });
    }

    #[test]
    fn numbers_read_back_as_they_are_written() {
        // Found by the `content` fuzz target: without serde_json's
        // `float_roundtrip`, a long number read twice gave two canonical
        // texts, so the same object would look changed on every plan.
        for text in
            ["888888888888888888888888888888888888888888888888888888888888888888888888888", "0.1", "1e300", "-0.0"]
        {
            let content = Content::parse(text).unwrap();
            assert_eq!(Content::parse(content.as_str()).unwrap(), content, "{text}");
        }
    }

    #[test]
    fn escaping_is_found_at_every_position_of_a_word() {
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in 0..20 {
                let mut text: String = "abcdefghijklmnopqrst".into();
                text.replace_range(at..=at, &special.to_string());
                assert!(needs_escaping(&text), "{text:?}");
            }
        }
        for clean in ["", "a", "namespace-owner-alice", "ünïcødé ✓ with \u{7f} and ~ and !#$%&'()*+,-./", " "] {
            assert!(!needs_escaping(clean), "{clean:?}");
        }
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        for text in [
            "plain",
            "quote \" and \\ backslash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}\u{8}\u{c}",
            "ünïcødé ✓",
            "ü\"ü\u{1f}✓\nend",
        ] {
            let mut out = String::new();
            write_string(text, &mut out);
            assert_eq!(out, serde_json::to_string(text).unwrap());
        }
    }
}
