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
