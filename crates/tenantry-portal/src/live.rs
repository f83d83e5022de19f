//! Live data a page reads when it is viewed: quota usage from the
//! ResourceQuota status in the user's namespaces. Behind a small trait so
//! `serve` (or a test) hands in its own client; [`KubeQuotas`] is the real
//! one: one list of ResourceQuotas per namespace of the user (from the
//! apiserver's watch cache), all at once, under one timeout.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ResourceQuota;
use std::collections::BTreeMap;
use std::time::Duration;

/// Quota usage of one namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceUsage {
    pub namespace: String,
    /// Every ResourceQuota in the namespace (tenantry's `user-quota`, and any other).
    pub quotas: Vec<QuotaUsage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuotaUsage {
    pub name: String,
    pub items: Vec<UsageItem>,
}

/// One resource of a quota: used against hard, as the apiserver reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageItem {
    pub resource: String,
    pub used: String,
    pub hard: String,
    /// `used / hard` when both parse as quantities and hard is not zero.
    pub fraction: Option<f64>,
}

impl UsageItem {
    pub fn new(resource: String, used: String, hard: String) -> UsageItem {
        let fraction = tenantry_core::doctor::quota_ratio(&used, &hard);
        UsageItem { resource, used, hard, fraction }
    }

    /// Whole percent, for the label beside the meter.
    pub fn percent(&self) -> Option<u64> {
        self.fraction.map(|f| (f * 100.0).round().max(0.0) as u64)
    }

    /// The meter's value: the fraction, capped at 1.
    pub fn meter(&self) -> f64 {
        self.fraction.unwrap_or_default().clamp(0.0, 1.0)
    }
}

/// Reads quota usage for a page view.
#[async_trait]
pub trait QuotaSource: Send + Sync {
    /// Usage in each of `namespaces`, or why it cannot be read now.
    async fn usage(&self, namespaces: &[String]) -> Result<Vec<NamespaceUsage>, String>;
}

/// No cluster is configured: there is nothing live to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCluster;

#[async_trait]
impl QuotaSource for NoCluster {
    async fn usage(&self, _: &[String]) -> Result<Vec<NamespaceUsage>, String> {
        Err("no cluster is configured for the portal".to_string())
    }
}

/// Quota usage from the Kubernetes API.
#[derive(Clone)]
pub struct KubeQuotas {
    client: kube::Client,
    timeout: Duration,
}

impl std::fmt::Debug for KubeQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeQuotas").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl KubeQuotas {
    pub fn new(client: kube::Client, timeout: Duration) -> KubeQuotas {
        KubeQuotas { client, timeout }
    }
}

#[async_trait]
impl QuotaSource for KubeQuotas {
    async fn usage(&self, namespaces: &[String]) -> Result<Vec<NamespaceUsage>, String> {
        let lists = namespaces.iter().map(|namespace| async move {
            let api: kube::Api<ResourceQuota> = kube::Api::namespaced(self.client.clone(), namespace);
            // resourceVersion=0: answered from the apiserver's watch cache (no etcd read per page view).
            let list = api
                .list(&kube::api::ListParams::default().match_any())
                .await
                .map_err(|e| format!("{namespace}: {e}"))?;
            Ok::<_, String>(NamespaceUsage {
                namespace: namespace.clone(),
                quotas: list.items.iter().map(usage_of).collect(),
            })
        });
        tokio::time::timeout(self.timeout, futures::future::try_join_all(lists))
            .await
            .map_err(|_| format!("the cluster did not answer within {}", humantime::format_duration(self.timeout)))?
    }
}

fn usage_of(quota: &ResourceQuota) -> QuotaUsage {
    let status = quota.status.as_ref();
    let hard = status.and_then(|s| s.hard.as_ref()).or_else(|| quota.spec.as_ref().and_then(|s| s.hard.as_ref()));
    let used = status.and_then(|s| s.used.as_ref());
    let items = hard
        .into_iter()
        .flatten()
        .map(|(resource, hard)| {
            let used = used.and_then(|u| u.get(resource)).map(|q| q.0.clone()).unwrap_or_else(|| "0".to_string());
            UsageItem::new(resource.clone(), used, hard.0.clone())
        })
        .collect();
    QuotaUsage { name: quota.metadata.name.clone().unwrap_or_default(), items }
}

/// Configured limits as items with nothing used, for when live usage is unavailable.
pub fn configured(quota: &BTreeMap<String, String>) -> Vec<UsageItem> {
    quota
        .iter()
        .map(|(resource, hard)| UsageItem {
            resource: resource.clone(),
            used: String::new(),
            hard: hard.clone(),
            fraction: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_a_fraction_of_hard() {
        let item = UsageItem::new("limits.memory".into(), "2Gi".into(), "8Gi".into());
        assert_eq!((item.percent(), item.meter()), (Some(25), 0.25));
        let over = UsageItem::new("pods".into(), "30".into(), "20".into());
        assert_eq!((over.percent(), over.meter()), (Some(150), 1.0));
        let zero = UsageItem::new("services.nodeports".into(), "0".into(), "0".into());
        assert_eq!(zero.percent(), None);
    }
}
