//! Whose an object is: the marks tenantry writes on everything it applies
//! (SPEC §3, §6) and how a target reads them back.
//!
//! Every object carries tenantry's mark, its owner (a user, or the platform
//! for shared objects) and the identity of the platform — the roster's
//! `platform.name` — that applied it. Two platforms on one cluster, Vault or
//! zone therefore never see each other's objects as their own. Objects an
//! earlier version wrote carry no platform mark: they are claimed only
//! through the state inventory. Each target stores the marks where its peer
//! allows (Kubernetes labels, Vault metadata, DNS comments or ownership TXT
//! records, host records) under the key names of a [`MarkKeys`].

use crate::resource::Owner;
use serde_json::{Map, Value};

/// The platform name of a roster without `platform.name`.
pub const DEFAULT_PLATFORM: &str = "kubernetes";

/// The mark's value: `app.kubernetes.io/managed-by=tenantry`.
pub const MANAGED_BY_VALUE: &str = "tenantry";

/// Where one kind of peer keeps the three marks.
#[derive(Debug, Clone, Copy)]
pub struct MarkKeys {
    pub managed_by: &'static str,
    pub user: &'static str,
    /// Set to `true` on shared objects (absent where the peer marks shared
    /// objects by the absence of a user).
    pub shared: Option<&'static str>,
    pub platform: &'static str,
}

/// Kubernetes labels (and the annotations of Vault's kubernetes roles).
pub const LABELS: MarkKeys = MarkKeys {
    managed_by: "app.kubernetes.io/managed-by",
    user: "tenantry.dev/user",
    shared: Some("tenantry.dev/shared"),
    platform: "tenantry.dev/platform",
};

/// Vault entity and alias metadata (keys without `/`).
pub const METADATA: MarkKeys =
    MarkKeys { managed_by: "managed-by", user: "tenantry-user", shared: None, platform: "tenantry-platform" };

/// What an object's marks say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// This platform's, for this owner.
    Ours(Owner),
    /// tenantry's marks without a platform: written by an earlier version.
    Legacy(Owner),
    /// Another platform's (another roster on the same peer).
    Foreign { platform: String },
    /// No tenantry marks at all.
    Unmarked,
}

impl MarkKeys {
    /// The marks of `owner` on `platform`, as a map to merge into the
    /// object's labels or metadata.
    pub fn write(&self, owner: &Owner, platform: &str) -> Map<String, Value> {
        let mut marks = Map::new();
        marks.insert(self.managed_by.to_string(), Value::String(MANAGED_BY_VALUE.to_string()));
        match (owner, self.shared) {
            (Owner::User(user), _) => {
                marks.insert(self.user.to_string(), Value::String(user.clone()));
            }
            (Owner::Platform, Some(shared)) => {
                marks.insert(shared.to_string(), Value::String("true".to_string()));
            }
            (Owner::Platform, None) => {}
        }
        marks.insert(self.platform.to_string(), Value::String(platform.to_string()));
        marks
    }

    /// Read the marks in `map` (labels or metadata) as seen by `platform`.
    pub fn read(&self, map: &Map<String, Value>, platform: &str) -> Mark {
        let text = |key: &str| map.get(key).and_then(Value::as_str);
        if text(self.managed_by) != Some(MANAGED_BY_VALUE) {
            return Mark::Unmarked;
        }
        let owner = match text(self.user) {
            Some(user) => Owner::User(user.to_string()),
            None => Owner::Platform,
        };
        match text(self.platform) {
            Some(theirs) if theirs == platform => Mark::Ours(owner),
            Some(theirs) => Mark::Foreign { platform: theirs.to_string() },
            None => Mark::Legacy(owner),
        }
    }
}

impl Mark {
    /// Read from words (`managed-by=tenantry user=alice platform=homelab`),
    /// for peers that keep marks as text (DNS comments and TXT records).
    pub fn from_words(text: &str, platform: &str) -> Mark {
        let mut managed = false;
        let (mut user, mut theirs) = (None, None);
        for word in text.split_whitespace() {
            match word.split_once('=') {
                Some(("managed-by", value)) => managed = value == MANAGED_BY_VALUE,
                Some(("user", value)) if !value.is_empty() => user = Some(value),
                Some(("platform", value)) if !value.is_empty() => theirs = Some(value),
                _ => {}
            }
        }
        if !managed {
            return Mark::Unmarked;
        }
        let owner = user.map_or(Owner::Platform, Owner::from_label);
        match theirs {
            Some(theirs) if theirs == platform => Mark::Ours(owner),
            Some(theirs) => Mark::Foreign { platform: theirs.to_string() },
            None => Mark::Legacy(owner),
        }
    }

    /// The words [`Mark::from_words`] reads.
    pub fn words(owner: &Owner, platform: &str) -> String {
        format!("managed-by={MANAGED_BY_VALUE} user={} platform={platform}", owner.as_label())
    }
}

/// Whether two contents are the same object apart from whose it is: the
/// label marks (`metadata.labels`) removed from both. Another platform's
/// shared object that is exactly what this platform wants (a ClusterRole
/// two rosters on one cluster both derive) is used as it is, not a conflict.
pub fn same_but_marks(a: &crate::Content, b: &crate::Content) -> bool {
    let strip = |content: &crate::Content| {
        let mut value = content.to_value();
        if let Some(labels) = value.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
            for key in [LABELS.managed_by, LABELS.user, LABELS.platform].into_iter().chain(LABELS.shared) {
                labels.remove(key);
            }
        }
        value
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_tell_platforms_apart() {
        let alice = Owner::User("alice".to_string());
        for keys in [LABELS, METADATA] {
            let written = keys.write(&alice, "homelab");
            assert_eq!(keys.read(&written, "homelab"), Mark::Ours(alice.clone()));
            assert_eq!(keys.read(&written, "staging"), Mark::Foreign { platform: "homelab".into() });
            let mut legacy = written.clone();
            legacy.remove(keys.platform);
            assert_eq!(keys.read(&legacy, "homelab"), Mark::Legacy(alice.clone()));
            assert_eq!(keys.read(&Map::new(), "homelab"), Mark::Unmarked);
        }
        let shared = LABELS.write(&Owner::Platform, "homelab");
        assert_eq!(LABELS.read(&shared, "homelab"), Mark::Ours(Owner::Platform));
        let words = Mark::words(&alice, "homelab");
        assert_eq!(Mark::from_words(&words, "homelab"), Mark::Ours(alice.clone()));
        assert_eq!(Mark::from_words(&words, "x"), Mark::Foreign { platform: "homelab".into() });
        assert_eq!(Mark::from_words("managed-by=tenantry user=alice", "x"), Mark::Legacy(alice));
        assert_eq!(Mark::from_words("hand-made", "x"), Mark::Unmarked);
    }
}
