//! The roster's JSON Schema, generated from the same types the parser uses.

/// The JSON Schema of the roster format (draft 2020-12), as pretty JSON.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(crate::raw::RawRoster);
    schema.to_value()
}
