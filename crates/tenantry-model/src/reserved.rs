//! Names a roster may not give to a user, a namespace or a host account,
//! because they already belong to the platform, the cluster or the host.
//!
//! Roster entries often arrive in pull requests from careless or hostile
//! authors. A name that collides with something the platform owns turns a
//! tenant grant into a platform grant: a user keyed like the roster's own
//! Vault path gets a policy over the roster; a namespace-owner of
//! `cert-manager` gets its CA keys; an `os_user: root` is root. These lists
//! are built in (a pull request cannot shorten them); admins can add
//! namespaces with `platform.reserved_namespaces`.

/// User keys that name platform paths. A namespace-owner's Vault policy
/// covers `<kv>/data/<key>` and `<key>/*`, and the origin platform keeps the
/// roster itself at `secret/platform`.
pub const RESERVED_USER_KEYS: &[(&str, &str)] = &[
    (
        "platform",
        "the platform's own Vault KV entry (`secret/platform`, where the origin keeps the roster) is named so",
    ),
    ("tenantry", "it is tenantry's own name (namespace, Vault paths, labels)"),
    ("root", "it names the host's superuser and Vault's root paths"),
];

/// Namespaces a cluster's platform components run in (exact names).
///
/// A namespace-owner becomes `admin` of their namespaces, including their
/// Secrets: owning one of these would hand over CA keys, Vault unseal keys,
/// GitOps deploy keys or the ingress' certificates.
pub const RESERVED_NAMESPACES: &[&str] = &[
    "default",
    "platform",
    "tenantry",
    // Certificates, secrets and identity.
    "cert-manager",
    "vault",
    "openbao",
    "external-secrets",
    "sealed-secrets",
    "authentik",
    "keycloak",
    "dex",
    // GitOps.
    "flux-system",
    "argocd",
    "argo-cd",
    // Ingress, networking, DNS.
    "ingress-nginx",
    "traefik",
    "cilium",
    "calico-apiserver",
    "tigera-operator",
    "istio-ingress",
    "linkerd",
    "external-dns",
    "metallb",
    // Observability.
    "monitoring",
    "prometheus",
    "grafana",
    "logging",
    "loki",
    // Storage, backup, policy, management.
    "rook-ceph",
    "longhorn",
    "local-path-storage",
    "velero",
    "kyverno",
    "kubernetes-dashboard",
];

/// Namespace prefixes that belong to the cluster or its distribution.
pub const RESERVED_NAMESPACE_PREFIXES: &[&str] = &["kube-", "openshift-", "cattle-", "tenantry-"];

/// Namespace suffix operators use for their own namespaces (`metallb-system`,
/// `longhorn-system`, `gatekeeper-system`, `calico-system`, `istio-system`…).
pub const RESERVED_NAMESPACE_SUFFIX: &str = "-system";

/// Why a namespace is reserved by the built-in list, if it is.
pub fn builtin_namespace_reason(namespace: &str) -> Option<String> {
    if namespace == "default" {
        return Some("`default` belongs to the cluster".to_string());
    }
    if namespace == "tenantry" || namespace.starts_with("tenantry-") {
        return Some("it is tenantry's own namespace".to_string());
    }
    if namespace.starts_with("kube-") {
        return Some("`kube-*` namespaces belong to Kubernetes".to_string());
    }
    if let Some(prefix) = RESERVED_NAMESPACE_PREFIXES.iter().find(|p| namespace.starts_with(**p)) {
        return Some(format!("`{prefix}*` namespaces belong to the cluster's distribution"));
    }
    if namespace.ends_with(RESERVED_NAMESPACE_SUFFIX) {
        return Some("`*-system` namespaces belong to cluster operators".to_string());
    }
    if RESERVED_NAMESPACES.contains(&namespace) {
        return Some("a platform component runs there (tenantry's built-in list of platform namespaces)".to_string());
    }
    None
}

/// Host accounts that exist on a Debian, Ubuntu, RHEL or Alpine machine, or
/// that a platform host runs services as. `useradd` refuses some, but an
/// existing account would otherwise be adopted: its shell, groups and home
/// reset, its login handed to a tenant.
pub const SYSTEM_ACCOUNTS: &[&str] = &[
    "root",
    "daemon",
    "bin",
    "sys",
    "sync",
    "games",
    "man",
    "lp",
    "mail",
    "news",
    "uucp",
    "proxy",
    "www-data",
    "backup",
    "list",
    "irc",
    "gnats",
    "nobody",
    "nogroup",
    "messagebus",
    "syslog",
    "sshd",
    "polkitd",
    "avahi",
    "dnsmasq",
    "tss",
    "uuidd",
    "tcpdump",
    "landscape",
    "pollinate",
    "fwupd-refresh",
    "usbmux",
    "rtkit",
    "colord",
    "geoclue",
    "pulse",
    "saned",
    "lightdm",
    "gdm",
    "kernoops",
    "whoopsie",
    "speech-dispatcher",
    "cups-pk-helper",
    "hplip",
    "ntp",
    "chrony",
    "postfix",
    "postgres",
    "mysql",
    "redis",
    "nginx",
    "apache",
    "httpd",
    "halt",
    "shutdown",
    "operator",
    "ftp",
    "adm",
    "lxd",
    "dockremap",
    "containerd",
    "git",
    "forgejo",
    "gitea",
    "ttyd",
    "tenantry",
    "vault",
    "openbao",
    "node_exporter",
    "prometheus",
    "grafana",
    // Default login accounts of cloud images: they have passwordless sudo.
    "ubuntu",
    "debian",
    "admin",
    "ec2-user",
    "centos",
    "fedora",
    "rocky",
    "alpine",
    "cloud-user",
    "opc",
    "core",
];

/// Groups that grant root (or read every secret) to their members. A host
/// account with one of these names would be created into the group; a
/// non-admin tier given one of them through `tier_groups` would be root.
pub const ROOT_GROUPS: &[&str] = &["root", "sudo", "wheel", "admin", "shadow", "disk", "kmem", "staff", "adm"];

/// Groups whose members can become root through a daemon (a container
/// runtime or hypervisor socket). Granting them to non-admin tiers is a
/// deliberate choice on some shared hosts, so it is a warning, not an error.
pub const ROOT_EQUIVALENT_GROUPS: &[&str] = &["docker", "lxd", "incus", "incus-admin", "libvirt", "kvm", "podman"];

/// Why a host account name is reserved, if it is.
pub fn os_user_reason(name: &str) -> Option<String> {
    if name == "root" {
        return Some("`root` is the host's superuser".to_string());
    }
    if name.starts_with("systemd-") {
        return Some("`systemd-*` accounts belong to systemd".to_string());
    }
    if name.starts_with('_') {
        return Some("names starting with `_` are system accounts by convention (`_apt`, `_chrony`)".to_string());
    }
    if ROOT_GROUPS.contains(&name) || ROOT_EQUIVALENT_GROUPS.contains(&name) {
        return Some(format!("`{name}` is a privileged group on the host; an account of that name would join it"));
    }
    if SYSTEM_ACCOUNTS.contains(&name) {
        return Some(format!("`{name}` is a system or service account on the host"));
    }
    None
}

/// The segments of a `vault://<mount>/<path>#<key>` roster source (mount and
/// every path segment), or nothing for another source. Any segment may be
/// the first path segment of some KV entry a user key would cover.
pub fn vault_source_segments(source: &str) -> Vec<String> {
    let Some(rest) = source.strip_prefix("vault://") else { return Vec::new() };
    let location = rest.split_once('#').map_or(rest, |(location, _)| location);
    location.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for reserved in [
            "default",
            "kube-system",
            "kube-public",
            "tenantry",
            "tenantry-system",
            "cert-manager",
            "vault",
            "flux-system",
            "metallb-system",
            "argocd",
            "monitoring",
            "openshift-x",
            "cattle-system",
        ] {
            assert!(builtin_namespace_reason(reserved).is_some(), "{reserved}");
        }
        for free in ["alice", "alice-prod", "certs", "systems", "my-systemd", "vaulty"] {
            assert!(builtin_namespace_reason(free).is_none(), "{free}");
        }
    }

    #[test]
    fn host_accounts() {
        for reserved in ["root", "daemon", "www-data", "systemd-network", "_apt", "sudo", "docker", "ubuntu", "git"] {
            assert!(os_user_reason(reserved).is_some(), "{reserved}");
        }
        for free in ["alice", "wizard", "rooty", "gitlab-alice"] {
            assert!(os_user_reason(free).is_none(), "{free}");
        }
    }

    #[test]
    fn vault_segments() {
        assert_eq!(vault_source_segments("vault://secret/platform#k8s_users"), ["secret", "platform"]);
        assert_eq!(vault_source_segments("vault://kv//teams/a/#x"), ["kv", "teams", "a"]);
        assert!(vault_source_segments("roster.yaml").is_empty());
    }
}
