//! The kinds tenantry manages, and where the API serves them.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
}

const fn kind(
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> KindInfo {
    KindInfo { kind, group, version, plural, namespaced }
}

/// Every kind the catalog derives for the cluster (SPEC §3).
pub const KINDS: &[KindInfo] = &[
    kind("Namespace", "", "v1", "namespaces", false),
    kind("ServiceAccount", "", "v1", "serviceaccounts", true),
    kind("Secret", "", "v1", "secrets", true),
    // App instances (SPEC §11.5): the kinds `tenantry_core::derive::apps::APP_KINDS` allows.
    kind("ConfigMap", "", "v1", "configmaps", true),
    kind("Service", "", "v1", "services", true),
    kind("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims", true),
    kind("Deployment", "apps", "v1", "deployments", true),
    kind("StatefulSet", "apps", "v1", "statefulsets", true),
    kind("Ingress", "networking.k8s.io", "v1", "ingresses", true),
    kind("ResourceQuota", "", "v1", "resourcequotas", true),
    kind("LimitRange", "", "v1", "limitranges", true),
    kind("Role", "rbac.authorization.k8s.io", "v1", "roles", true),
    kind("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings", true),
    kind("ClusterRole", "rbac.authorization.k8s.io", "v1", "clusterroles", false),
    kind("ClusterRoleBinding", "rbac.authorization.k8s.io", "v1", "clusterrolebindings", false),
    kind("Certificate", "cert-manager.io", "v1", "certificates", true),
    kind("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies", true),
    kind("ValidatingAdmissionPolicy", "admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", false),
    kind(
        "ValidatingAdmissionPolicyBinding",
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        false,
    ),
];

impl KindInfo {
    /// `v1` for the core group, `group/version` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_string() } else { format!("{}/{}", self.group, self.version) }
    }
}

pub fn info(kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_an_app_template_may_hold_is_served_at_the_version_derivation_checks() {
        for (kind, api_version) in tenantry_core::derive::apps::APP_KINDS {
            let found = info(kind).unwrap_or_else(|| panic!("{kind} is not a kind of the cluster target"));
            assert_eq!(found.api_version(), *api_version, "{kind}");
            assert!(found.namespaced, "{kind}");
        }
    }
}
