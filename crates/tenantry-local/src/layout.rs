//! Where each resource's files go, what they contain, and how to read them back.
//!
//! A resource's main file path depends only on its id and owner, so it can
//! be found before its content is known. Companion files (a policy's HCL, a
//! host file's literal text) are rendered from the content.

use serde_json::Value;
use std::path::PathBuf;
use tenantry_core::{Content, Domain, Owner, ResourceId};

/// The files of one resource; the first is the main file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

fn owner_dir(owner: &Owner) -> &str {
    match owner {
        Owner::Platform => "_platform",
        Owner::User(user) => user,
    }
}

/// A name made safe as one path component, reversibly.
fn escape(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

enum Format {
    Yaml,
    Json,
}

fn format_of(id: &ResourceId) -> Format {
    match (id.domain, &*id.kind) {
        // A copy instruction, not an applicable manifest: keep it away from `kubectl apply -R`.
        (Domain::Kubernetes, "Secret") => Format::Json,
        (Domain::Kubernetes, _) => Format::Yaml,
        _ => Format::Json,
    }
}

pub fn primary_path(id: &ResourceId, owner: &Owner) -> PathBuf {
    let kind = id.kind.to_ascii_lowercase();
    let owner = owner_dir(owner);
    match id.domain {
        Domain::Kubernetes => {
            let scope = if id.is_global() { "cluster" } else { &*id.scope };
            let extension = match format_of(id) {
                Format::Yaml => "yaml",
                Format::Json => "copy",
            };
            PathBuf::from(format!("kubernetes/{owner}/{scope}/{kind}-{}.{extension}", escape(&id.name)))
        }
        _ => {
            let scope = if id.is_global() { String::new() } else { format!("{}-", escape(&id.scope)) };
            PathBuf::from(format!("{}/{owner}/{kind}-{scope}{}.json", id.domain, escape(&id.name)))
        }
    }
}

/// Render a resource's files from its content.
pub fn render(id: &ResourceId, owner: &Owner, content: &Content) -> Rendered {
    let value = content.to_value();
    let main = match format_of(id) {
        Format::Yaml => {
            let yaml = serde_saphyr::to_string(&value).unwrap_or_default();
            format!(
                "# Managed by tenantry for {}; rendered from the roster, edits are overwritten.\n{yaml}",
                owner_dir(owner)
            )
        }
        Format::Json => format!("{}\n", content.pretty()),
    };
    let mut files = vec![(primary_path(id, owner), main.into_bytes())];
    match (id.domain, &*id.kind) {
        (Domain::Vault, "Policy") => {
            if let Some(policy) = value.get("policy").and_then(Value::as_str) {
                files.push((
                    PathBuf::from(format!("vault/{}/policy-{}.hcl", owner_dir(owner), escape(&id.name))),
                    policy.as_bytes().to_vec(),
                ));
            }
        }
        (Domain::Host, "GeneratedFile") => {
            if let (Some(path), Some(text)) =
                (value.get("path").and_then(Value::as_str), value.get("text").and_then(Value::as_str))
            {
                let relative = path.trim_start_matches('/');
                if !relative.split('/').any(|part| part == ".." || part.is_empty()) {
                    files.push((PathBuf::from("host/root").join(relative), text.as_bytes().to_vec()));
                }
            }
        }
        _ => {}
    }
    Rendered { files }
}

/// Read a main file back into canonical content; `None` when it does not parse.
pub fn parse_primary(id: &ResourceId, text: &str) -> Option<Content> {
    let value: Value = match format_of(id) {
        Format::Yaml => serde_saphyr::from_str(text).ok()?,
        Format::Json => serde_json::from_str(text).ok()?,
    };
    Some(Content::from_value(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_manifests_round_trip_with_numeric_looking_strings() {
        let id: ResourceId = "kubernetes/ResourceQuota/alice/user-quota".parse().unwrap();
        let owner = Owner::User("alice".to_string());
        let content = Content::from_value(&json!({
            "apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": { "name": "user-quota", "namespace": "alice", "labels": { "tenantry.dev/user": "alice" } },
            "spec": { "hard": { "pods": "20", "requests.cpu": "2", "limits.memory": "8Gi", "flag": "true", "n": "1e3", "o": "0755" } },
        }));
        let rendered = render(&id, &owner, &content);
        assert_eq!(rendered.files[0].0, PathBuf::from("kubernetes/alice/alice/resourcequota-user-quota.yaml"));
        let text = String::from_utf8(rendered.files[0].1.clone()).unwrap();
        assert_eq!(parse_primary(&id, &text), Some(content));
    }

    #[test]
    fn paths_escape_slashes_and_keep_companions() {
        let id: ResourceId = "host/ManagedFile/alice/.codex/AGENTS.md".parse().unwrap();
        assert_eq!(
            primary_path(&id, &Owner::User("alice".into())),
            PathBuf::from("host/alice/managedfile-alice-.codex%2FAGENTS.md.json")
        );
        let id: ResourceId = "host/GeneratedFile/-/ttyd-user-map".parse().unwrap();
        let content = Content::from_value(&json!({ "path": "/etc/ttyd-user-map", "mode": "0644", "text": "a=b\n" }));
        let rendered = render(&id, &Owner::Platform, &content);
        assert_eq!(rendered.files[1], (PathBuf::from("host/root/etc/ttyd-user-map"), b"a=b\n".to_vec()));
    }
}
