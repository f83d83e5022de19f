//! A roster assembled from `Tenant` and `Platform` objects.
//!
//! The objects are written out as one roster YAML document (every value on
//! a line of its own, JSON-quoted, so no object's text can change another's
//! structure) and that document goes through the same parser and validator
//! as a roster file. Each line remembers which object and field it came
//! from, so every diagnostic is positioned as `tenant/alice:spec.namespaces[1]`
//! instead of a line of a document nobody wrote.
//!
//! One object's mistake does not stop everyone: users whose objects claim
//! what another object claims (a namespace, an email, a forge login) are
//! *held back* together, as is any `Tenant` the validator finds fault with;
//! the roster holds everyone else. Only a fault in the `Platform` object
//! (or one no object can be blamed for) fails the whole roster.

use crate::diagnostic::{Diagnostic, Diagnostics, Severity};
use crate::{Roster, Span, ValidationContext};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One `Tenant` object as the assembly needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantObject {
    /// `metadata.name`: the user's key.
    pub name: String,
    /// `spec`: one roster user.
    pub spec: Value,
}

/// A roster assembled from objects, and the users held back.
#[derive(Debug, Clone)]
pub struct Assembled {
    pub roster: Roster,
    /// The roster document the objects made (its digest identifies the run's input).
    pub text: String,
    /// Warnings of the valid roster, positioned by object.
    pub warnings: Diagnostics,
    /// Users left out of the roster, with why (errors positioned by object).
    pub held_back: BTreeMap<String, Vec<Diagnostic>>,
}

/// Where a line of the assembled document came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// No object (the document's own `platform:`/`users:` lines).
    Document,
    Platform(String),
    Tenant {
        name: String,
        path: String,
    },
}

impl Origin {
    fn location(&self) -> String {
        match self {
            Origin::Document => String::new(),
            Origin::Platform(path) => format!("platform/{}:{path}", super::PLATFORM_OBJECT),
            Origin::Tenant { name, path } => format!("tenant/{name}:{path}"),
        }
    }
}

/// Assemble the roster named `source` from the `Platform` object's spec
/// (absent: every platform default) and the `Tenant` objects.
pub fn assemble(
    source: &str,
    platform: Option<&Value>,
    tenants: &[TenantObject],
    context: &ValidationContext,
) -> Result<Assembled, Diagnostics> {
    let mut held_back = claimed_twice(tenants);
    loop {
        let candidates: Vec<&TenantObject> = tenants.iter().filter(|t| !held_back.contains_key(&t.name)).collect();
        let (text, origins) = document(platform, &candidates);
        let validated = crate::parse_raw(source, text.as_bytes())
            .and_then(|raw| crate::validate_with_warnings(source, raw, context));
        let diagnostics = match validated {
            Ok((roster, warnings)) => {
                let warnings =
                    Diagnostics { items: warnings.items.iter().map(|d| relocate(source, d, &origins)).collect() };
                return Ok(Assembled { roster, text, warnings, held_back });
            }
            Err(diagnostics) => diagnostics,
        };
        let mut blamed: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
        let mut fatal = Diagnostics::default();
        for diagnostic in diagnostics.errors() {
            let relocated = relocate(source, diagnostic, &origins);
            match origin_of(diagnostic, &origins) {
                Origin::Tenant { name, .. } => blamed.entry(name.clone()).or_default().push(relocated),
                Origin::Platform(_) | Origin::Document => fatal.push(relocated),
            }
        }
        if !fatal.items.is_empty() || blamed.is_empty() {
            // The platform is at fault: nobody can be assembled. What the
            // tenants' objects got wrong is reported with it.
            fatal.items.extend(blamed.into_values().flatten());
            fatal.items.extend(held_back.into_values().flatten());
            return Err(fatal);
        }
        held_back.extend(blamed);
    }
}

/// Users whose objects claim the same namespace, email or forge login:
/// each of them, with the others named.
fn claimed_twice(tenants: &[TenantObject]) -> BTreeMap<String, Vec<Diagnostic>> {
    // (what, value) → [(tenant, field path)]
    let mut claims: BTreeMap<(&'static str, String), Vec<(&str, String)>> = BTreeMap::new();
    for tenant in tenants {
        let spec = &tenant.spec;
        if let Some(namespaces) = spec.get("namespaces").and_then(Value::as_array) {
            for (index, namespace) in namespaces.iter().enumerate() {
                if let Some(namespace) = namespace.as_str() {
                    claims
                        .entry(("namespace", namespace.to_string()))
                        .or_default()
                        .push((&tenant.name, format!("spec.namespaces[{index}]")));
                }
            }
        }
        if let Some(email) = spec.get("email").and_then(Value::as_str) {
            claims.entry(("email", email.to_ascii_lowercase())).or_default().push((&tenant.name, "spec.email".into()));
        }
        let forge_user = spec.get("forge_user").and_then(Value::as_str).unwrap_or(&tenant.name);
        claims
            .entry(("forge login", forge_user.to_ascii_lowercase()))
            .or_default()
            .push((&tenant.name, "spec.forge_user".into()));
    }
    let mut held: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
    for ((what, value), claimants) in claims {
        let names: BTreeSet<&str> = claimants.iter().map(|(name, _)| *name).collect();
        if names.len() < 2 {
            continue;
        }
        let code = match what {
            "namespace" => "namespace-claimed-twice",
            "email" => "duplicate-email",
            _ => "duplicate-forge-user",
        };
        for (name, path) in &claimants {
            let others: Vec<String> =
                names.iter().filter(|other| *other != name).map(|other| format!("tenant/{other}")).collect();
            let diagnostic = Diagnostic::error(
                &format!("tenant/{name}:{path}"),
                Span::UNKNOWN,
                code,
                format!("{what} `{value}` is also claimed by {}; this user is held back", others.join(", ")),
            )
            .with_help(format!("a {what} belongs to one user: change it in one of the objects"));
            held.entry(name.to_string()).or_default().push(diagnostic);
        }
    }
    held
}

/// The roster document of `platform` and `tenants`, and each line's origin (index = line - 1).
fn document(platform: Option<&Value>, tenants: &[&TenantObject]) -> (String, Vec<Origin>) {
    let mut out = Emitter::default();
    if let Some(platform) = platform.filter(|p| p.as_object().is_some_and(|o| !o.is_empty())) {
        out.line("platform:".into(), Origin::Document);
        out.value(platform, 1, &|path| Origin::Platform(path.to_string()), "spec");
    }
    if tenants.is_empty() {
        out.line("users: {}".into(), Origin::Document);
    } else {
        out.line("users:".into(), Origin::Document);
        for tenant in tenants {
            let key = json_text(&Value::String(tenant.name.clone()));
            let at_key = Origin::Tenant { name: tenant.name.clone(), path: "metadata.name".into() };
            match tenant.spec.as_object() {
                Some(fields) if !fields.is_empty() => {
                    out.line(format!("  {key}:"), at_key);
                    let name = tenant.name.clone();
                    let origin = move |path: &str| Origin::Tenant { name: name.clone(), path: path.to_string() };
                    out.value(&tenant.spec, 2, &origin, "spec");
                }
                // No spec: the validator says which fields are missing.
                _ => out.line(format!("  {key}: {{}}"), at_key),
            }
        }
    }
    (out.text, out.origins)
}

#[derive(Default)]
struct Emitter {
    text: String,
    origins: Vec<Origin>,
}

impl Emitter {
    fn line(&mut self, line: String, origin: Origin) {
        self.text.push_str(&line);
        self.text.push('\n');
        self.origins.push(origin);
    }

    /// A mapping's or sequence's entries at `depth`, block style; scalars JSON-quoted.
    fn value(&mut self, value: &Value, depth: usize, origin: &dyn Fn(&str) -> Origin, path: &str) {
        let indent = "  ".repeat(depth);
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    let path = format!("{path}.{key}");
                    let key = json_text(&Value::String(key.clone()));
                    match item {
                        Value::Object(inner) if !inner.is_empty() => {
                            self.line(format!("{indent}{key}:"), origin(&path));
                            self.value(item, depth + 1, origin, &path);
                        }
                        Value::Array(inner) if !inner.is_empty() => {
                            self.line(format!("{indent}{key}:"), origin(&path));
                            self.value(item, depth + 1, origin, &path);
                        }
                        scalar => self.line(format!("{indent}{key}: {}", json_text(scalar)), origin(&path)),
                    }
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for (index, item) in items.iter().enumerate() {
                    let path = format!("{path}[{index}]");
                    match item {
                        Value::Object(inner) if !inner.is_empty() => {
                            // `- ` then the mapping's entries indented under it.
                            self.line(format!("{indent}-"), origin(&path));
                            self.value(item, depth + 1, origin, &path);
                        }
                        Value::Array(inner) if !inner.is_empty() => {
                            self.line(format!("{indent}-"), origin(&path));
                            self.value(item, depth + 1, origin, &path);
                        }
                        scalar => self.line(format!("{indent}- {}", json_text(scalar)), origin(&path)),
                    }
                }
            }
            scalar => self.line(format!("{indent}{}", json_text(scalar)), origin(path)),
        }
    }
}

/// A scalar (or empty collection) as JSON text, which YAML reads as the same value.
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_string())
}

fn origin_of<'a>(diagnostic: &Diagnostic, origins: &'a [Origin]) -> &'a Origin {
    let line = diagnostic.span.line as usize;
    origins.get(line.wrapping_sub(1)).unwrap_or(&Origin::Document)
}

/// `diagnostic` positioned by object and field, with positions in its text rewritten too.
fn relocate(source: &str, diagnostic: &Diagnostic, origins: &[Origin]) -> Diagnostic {
    let origin = origin_of(diagnostic, origins);
    let mut relocated = diagnostic.clone();
    if *origin != Origin::Document {
        relocated.source = origin.location();
        relocated.span = Span::UNKNOWN;
    }
    relocated.message = rewrite_positions(source, &diagnostic.message, origins);
    relocated.help = diagnostic.help.as_ref().map(|help| rewrite_positions(source, help, origins));
    relocated
}

/// `source:LINE:COLUMN` in a message → the object and field of that line.
fn rewrite_positions(source: &str, text: &str, origins: &[Origin]) -> String {
    let prefix = format!("{source}:");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(&prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let line_digits = after.chars().take_while(char::is_ascii_digit).count();
        let line: Option<usize> = after[..line_digits].parse().ok();
        let tail = &after[line_digits..];
        let column_digits = tail.strip_prefix(':').map_or(0, |t| t.chars().take_while(char::is_ascii_digit).count());
        match line.and_then(|line| origins.get(line.wrapping_sub(1))).filter(|o| **o != Origin::Document) {
            Some(origin) if column_digits > 0 => {
                out.push_str(&origin.location());
                rest = &tail[1 + column_digits..];
            }
            _ => {
                out.push_str(&prefix);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The held-back users' diagnostics as warnings of the roster that left them out.
pub fn held_back_warnings(held_back: &BTreeMap<String, Vec<Diagnostic>>) -> Vec<Diagnostic> {
    held_back
        .values()
        .flatten()
        .map(|diagnostic| Diagnostic { severity: Severity::Warning, ..diagnostic.clone() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant(name: &str, spec: Value) -> TenantObject {
        TenantObject { name: name.to_string(), spec }
    }

    fn assemble_all(platform: Option<&Value>, tenants: &[TenantObject]) -> Result<Assembled, Diagnostics> {
        assemble("kubernetes://tenants", platform, tenants, &ValidationContext::default())
    }

    #[test]
    fn objects_make_the_roster_a_file_would() {
        let platform = json!({ "name": "lab", "domain": "example.org", "defaults": { "quota": { "pods": 30 } } });
        let tenants = [
            tenant(
                "alice",
                json!({ "email": "alice@example.org", "tier": "namespace-owner", "namespaces": ["alice", "alice-prod"], "domains": ["budget.alice"] }),
            ),
            tenant(
                "wizard",
                json!({ "email": "admin@example.org", "tier": "admin", "workstation": { "os_user": "wizard" } }),
            ),
        ];
        let assembled = assemble_all(Some(&platform), &tenants).unwrap();
        let roster = &assembled.roster;
        assert_eq!(roster.platform.name, "lab");
        assert_eq!(roster.users.keys().collect::<Vec<_>>(), ["alice", "wizard"]);
        let alice = &roster.users["alice"];
        assert_eq!(alice.namespaces.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(), ["alice", "alice-prod"]);
        assert_eq!(alice.domains[0].value, "budget.alice.example.org");
        assert_eq!(alice.quota["pods"].value.to_string(), "30");
        assert_eq!(roster.users["wizard"].workstation.as_ref().unwrap().os_user.value, "wizard");
        assert!(assembled.held_back.is_empty());

        let empty = assemble_all(None, &[]).unwrap();
        assert!(empty.roster.users.is_empty());
    }

    #[test]
    fn a_namespace_claimed_twice_holds_back_both_claimants_and_no_one_else() {
        let tenants = [
            tenant(
                "alice",
                json!({ "email": "alice@example.org", "tier": "namespace-owner", "namespaces": ["shared"] }),
            ),
            tenant(
                "bob",
                json!({ "email": "bob@example.org", "tier": "namespace-owner", "namespaces": ["bob", "shared"] }),
            ),
            tenant("carol", json!({ "email": "carol@example.org", "tier": "power-user" })),
            tenant("dave", json!({ "email": "CAROL@example.org", "tier": "power-user" })),
            tenant("erin", json!({ "email": "erin@example.org", "tier": "power-user" })),
        ];
        let assembled = assemble_all(None, &tenants).unwrap();
        assert_eq!(assembled.roster.users.keys().collect::<Vec<_>>(), ["erin"]);
        assert_eq!(assembled.held_back.keys().collect::<Vec<_>>(), ["alice", "bob", "carol", "dave"]);
        let bob = &assembled.held_back["bob"][0];
        assert_eq!(bob.code, "namespace-claimed-twice");
        assert_eq!(bob.location(), "tenant/bob:spec.namespaces[1]");
        assert!(bob.message.contains("tenant/alice"), "{}", bob.message);
        assert_eq!(assembled.held_back["dave"][0].code, "duplicate-email");
    }

    #[test]
    fn one_tenants_fault_holds_back_that_user_positioned_by_field() {
        let tenants = [
            tenant(
                "alice",
                json!({ "email": "alice@example.org", "tier": "namespace-owner", "namespaces": ["ok", "kube-public"] }),
            ),
            tenant("bob", json!({ "email": "bob@example.org", "tier": "power-user", "quota": { "pods": "lots" } })),
            tenant("carol", json!({ "email": "carol@example.org", "tier": "power-user" })),
        ];
        let assembled = assemble_all(None, &tenants).unwrap();
        assert_eq!(assembled.roster.users.keys().collect::<Vec<_>>(), ["carol"]);
        assert_eq!(assembled.held_back["alice"][0].location(), "tenant/alice:spec.namespaces[1]");
        assert_eq!(assembled.held_back["bob"][0].location(), "tenant/bob:spec.quota.pods");
    }

    #[test]
    fn a_platform_fault_fails_the_roster_positioned_in_the_platform_object() {
        let platform = json!({ "dns": { "cname_target": "x.example.net", "a_target": "192.0.2.1" } });
        let tenants = [tenant("carol", json!({ "email": "carol@example.org", "tier": "power-user" }))];
        let error = assemble_all(Some(&platform), &tenants).unwrap_err();
        assert!(error.items.iter().all(|d| d.location().starts_with("platform/platform:spec.dns")), "{error}");
    }

    #[test]
    fn hostile_text_stays_a_value() {
        let tenants = [tenant(
            "alice",
            json!({ "email": "alice@example.org\nusers:\n  mallory: {}", "tier": "power-user", "groups": ["a: b", "- c"] }),
        )];
        let outcome = assemble_all(None, &tenants);
        let held = outcome.unwrap().held_back;
        assert_eq!(held["alice"][0].location(), "tenant/alice:spec.email");
        assert!(!held.contains_key("mallory"));
    }
}
