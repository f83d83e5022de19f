//! Positions of object keys in JSON text.
//!
//! serde_json reports positions only for syntax errors, not for values that
//! parse but are wrong (an unknown role, a bad quantity). This scanner records
//! where each key of the outer three object levels sits, so those errors and
//! the roster diagnostics mapped back from the merged YAML can point into the
//! JSON. It runs only on text serde_json has already accepted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use tenantry_model::Span;

/// Key path (`["alice"]`, `["alice", "quota"]`, `["alice", "quota", "pods"]`) → position of the key.
#[derive(Debug, Default)]
pub(crate) struct KeyPositions {
    pub by_path: HashMap<Vec<String>, Span>,
    /// Keys that appear twice in the same object, with the second position.
    pub duplicates: Vec<(Vec<String>, Span)>,
}

impl KeyPositions {
    pub fn get(&self, path: &[&str]) -> Span {
        let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
        self.by_path.get(&path).copied().unwrap_or_default()
    }
}

const MAX_DEPTH: usize = 3;

enum Frame {
    /// An object; `key` is the key whose value is being read, once seen.
    Object {
        key: Option<String>,
    },
    Array,
}

pub(crate) fn locate(text: &str) -> KeyPositions {
    let mut found = KeyPositions::default();
    let mut stack: Vec<Frame> = Vec::new();
    let (mut line, mut column) = (1u32, 1u32);
    let mut chars = text.chars().peekable();
    // Whether the next string in the current object is a key.
    let mut expect_key = false;
    while let Some(c) = chars.next() {
        let here = Span::new(line, column);
        advance(c, &mut line, &mut column);
        match c {
            '{' => {
                stack.push(Frame::Object { key: None });
                expect_key = true;
            }
            '[' => {
                stack.push(Frame::Array);
                expect_key = false;
            }
            '}' | ']' => {
                stack.pop();
                expect_key = false;
            }
            ',' => expect_key = matches!(stack.last(), Some(Frame::Object { .. })),
            '"' => {
                let mut raw = String::from('"');
                let mut escaped = false;
                for next in chars.by_ref() {
                    advance(next, &mut line, &mut column);
                    raw.push(next);
                    if escaped {
                        escaped = false;
                    } else if next == '\\' {
                        escaped = true;
                    } else if next == '"' {
                        break;
                    }
                }
                if expect_key {
                    let key: String = serde_json::from_str(&raw).unwrap_or_default();
                    // The enclosing objects' current keys; the innermost object's key is this one.
                    let enclosing = stack.len().saturating_sub(1);
                    let mut path: Vec<String> = stack[..enclosing]
                        .iter()
                        .filter_map(|f| if let Frame::Object { key } = f { key.clone() } else { None })
                        .collect();
                    // Keys inside arrays are not addressed; only the outer object chain is.
                    let inside_array = stack.iter().any(|f| matches!(f, Frame::Array));
                    if !inside_array && stack.len() <= MAX_DEPTH {
                        path.push(key.clone());
                        match found.by_path.entry(path) {
                            Entry::Occupied(first) => found.duplicates.push((first.key().clone(), here)),
                            Entry::Vacant(slot) => {
                                slot.insert(here);
                            }
                        }
                    }
                    if let Some(Frame::Object { key: current }) = stack.last_mut() {
                        *current = Some(key);
                    }
                    expect_key = false;
                }
            }
            _ => {}
        }
    }
    found
}

fn advance(c: char, line: &mut u32, column: &mut u32) {
    if c == '\n' {
        *line = line.saturating_add(1);
        *column = 1;
    } else {
        *column = column.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_keys_and_duplicates() {
        let text = "{\n  \"alice\": {\"role\": \"admin\", \"quota\": {\"pods\": \"2\"}, \"namespaces\": [\"a\", {\"x\": 1}]},\n  \"b\\\"c\": {},\n  \"alice\": {}\n}";
        let found = locate(text);
        assert_eq!(found.get(&["alice"]), Span::new(2, 3));
        assert_eq!(found.get(&["alice", "role"]), Span::new(2, 13));
        assert_eq!(found.get(&["alice", "quota", "pods"]), Span::new(2, 40));
        assert_eq!(found.get(&["b\"c"]), Span::new(3, 3));
        assert!(found.by_path.keys().all(|p| !p.contains(&"x".to_string())));
        assert_eq!(found.duplicates, vec![(vec!["alice".to_string()], Span::new(4, 3))]);
    }
}
