//! The roster's JSON Schema, generated from the same types the parser uses.

/// The JSON Schema of the roster format (draft 2020-12), as pretty JSON.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(crate::raw::RawRoster);
    schema.to_value()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_schema_describes_the_contract_fields() {
        let schema = super::json_schema();
        assert_eq!(schema["title"], "tenantry roster");
        assert_eq!(schema["required"], serde_json::json!(["users"]));
        let user = &schema["$defs"]["User"];
        assert_eq!(user["additionalProperties"], false, "unknown fields are refused");
        let mut required: Vec<&str> =
            user["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        required.sort();
        assert_eq!(required, ["email", "tier"]);
        for field in ["namespaces", "domains", "quota", "forge_user", "workstation"] {
            assert!(user["properties"].get(field).is_some(), "{field}");
        }
        let tiers = schema["$defs"]["Tier"].to_string();
        for tier in ["admin", "power-user", "namespace-owner"] {
            assert!(tiers.contains(tier));
        }
    }
}
