//! Smoke tests proving each test peer is the real thing. They need the peers
//! running (`testenv/up`); a missing peer fails the test with the command that
//! starts it — nothing is skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_client::client::ClientHandle;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, rdata::A};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ResourceQuota};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

/// Unwraps a peer lookup, failing with its "start it with" message.
fn need<T>(r: tenantry_testenv::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

fn is_forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(&PostParams::default(), &from_json(json!({"metadata": {"name": name}}))).await.unwrap();
}

async fn delete_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api.delete(name, &DeleteParams::default()).await;
}

#[tokio::test]
async fn kube_namespace_round_trip() {
    tenantry_testenv::install_crypto_provider();
    let kube = need(tenantry_testenv::kube());
    let client = kube.client().await.unwrap();
    let name = unique("smoke-ns");
    create_namespace(&client, &name).await;
    let api: Api<Namespace> = Api::all(client.clone());
    let got = api.get(&name).await.unwrap();
    assert_eq!(got.metadata.name.as_deref(), Some(name.as_str()));
    assert!(got.metadata.uid.is_some(), "a real server assigns a uid");
    delete_namespace(&client, &name).await;
}

#[tokio::test]
async fn kube_rolebinding_grants_edit_to_impersonated_user() {
    tenantry_testenv::install_crypto_provider();
    let kube = need(tenantry_testenv::kube());
    let admin = kube.client().await.unwrap();
    let ns_a = unique("smoke-a");
    let ns_b = unique("smoke-b");
    create_namespace(&admin, &ns_a).await;
    create_namespace(&admin, &ns_b).await;

    let rb: RoleBinding = from_json(json!({
        "metadata": {"name": "alice-edit", "namespace": ns_a},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice@example.org"}],
    }));
    Api::<RoleBinding>::namespaced(admin.clone(), &ns_a).create(&PostParams::default(), &rb).await.unwrap();

    let alice = kube.impersonating("alice@example.org", &["tenantry:smoke"]).await.unwrap();
    let cm: ConfigMap = from_json(json!({"metadata": {"name": "hello"}, "data": {"k": "v"}}));

    // The RBAC authorizer reads an informer cache: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Api::<ConfigMap>::namespaced(alice.clone(), &ns_a).create(&PostParams::default(), &cm).await {
            Ok(_) => break,
            Err(e) if is_forbidden(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("alice could not create a ConfigMap in {ns_a}: {e}"),
        }
    }
    match Api::<ConfigMap>::namespaced(alice.clone(), &ns_b).create(&PostParams::default(), &cm).await {
        Err(e) if is_forbidden(&e) => {}
        other => panic!("alice must be Forbidden in {ns_b}, got {other:?}"),
    }

    delete_namespace(&admin, &ns_a).await;
    delete_namespace(&admin, &ns_b).await;
}

#[tokio::test]
async fn kube_pod_over_resource_quota_is_rejected() {
    tenantry_testenv::install_crypto_provider();
    let kube = need(tenantry_testenv::kube());
    let admin = kube.client().await.unwrap();
    let ns = unique("smoke-quota");
    create_namespace(&admin, &ns).await;
    let quota: ResourceQuota = from_json(json!({
        "metadata": {"name": "q"},
        "spec": {"hard": {"pods": "1"}},
    }));
    let quotas = Api::<ResourceQuota>::namespaced(admin.clone(), &ns);
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // Wait for the controller manager to compute the quota's status (hard and
    // used), as a user would see it with `kubectl describe quota`; pods
    // created before that are not counted against it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let q = quotas.get("q").await.unwrap();
        let status = q.status.unwrap_or_default();
        let used = status.used.unwrap_or_default();
        if status.hard.is_some_and(|h| h.contains_key("pods")) && used.get("pods").is_some_and(|u| u.0 == "0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "quota status never computed: is kube-controller-manager running? `testenv/up kube`"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let pod = |name: &str| -> Pod {
        from_json(json!({
            "metadata": {"name": name},
            "spec": {
                "automountServiceAccountToken": false,
                "containers": [{"name": "c", "image": "example.invalid/none"}],
            },
        }))
    };
    let pods = Api::<Pod>::namespaced(admin.clone(), &ns);
    // The first pod fits; it can be refused for a moment until the controller
    // manager has created the default ServiceAccount.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match pods.create(&PostParams::default(), &pod("first")).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("the first pod should fit the quota: {e}"),
        }
    }
    match pods.create(&PostParams::default(), &pod("second")).await {
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("exceeded quota") => {}
        other => panic!("a pod over quota must be rejected with 'exceeded quota', got {other:?}"),
    }
    delete_namespace(&admin, &ns).await;
}

#[tokio::test]
async fn vault_policy_write_and_read() {
    tenantry_testenv::install_crypto_provider();
    let vault = need(tenantry_testenv::vault());
    let http = vault.http().unwrap();
    let name = unique("smoke-policy");
    let policy = "path \"secret/data/smoke/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n";
    let put =
        http.put(vault.url(&format!("sys/policies/acl/{name}"))).json(&json!({"policy": policy})).send().await.unwrap();
    assert!(put.status().is_success(), "PUT policy: {}", put.status());
    let got: serde_json::Value =
        http.get(vault.url(&format!("sys/policies/acl/{name}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(got["data"]["name"], name.as_str());
    assert_eq!(got["data"]["policy"], policy);
    let del = http.delete(vault.url(&format!("sys/policies/acl/{name}"))).send().await.unwrap();
    assert!(del.status().is_success(), "DELETE policy: {}", del.status());
}

async fn a_records(client: &mut hickory_client::client::Client, name: &Name) -> (ResponseCode, Vec<Ipv4Addr>) {
    let resp = client.query(name.clone(), DNSClass::IN, RecordType::A).await.unwrap();
    let ips = resp
        .answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    (resp.response_code(), ips)
}

fn test_ip() -> Ipv4Addr {
    let n = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    Ipv4Addr::new(192, 0, 2, (n % 250) as u8 + 1)
}

#[tokio::test]
async fn bind_tsig_signed_update_is_visible_to_queries() {
    tenantry_testenv::install_crypto_provider();
    let bind = need(tenantry_testenv::bind());
    let zone = bind.zone_name().unwrap();
    let name = Name::from_str(&unique("smoke")).unwrap().append_domain(&zone).unwrap();
    let ip = test_ip();
    let record = Record::from_rdata(name.clone(), 60, RData::A(A(ip)));

    // Unsigned updates are refused: TSIG is really enforced.
    let mut unsigned = bind.query_client().await.unwrap();
    let resp = unsigned.create(record.clone(), zone.clone()).await.unwrap();
    assert_eq!(resp.response_code(), ResponseCode::Refused, "an unsigned update must be refused");

    let mut signed = bind.update_client().await.unwrap();
    let resp = signed.create(record, zone.clone()).await.unwrap();
    assert_eq!(resp.response_code(), ResponseCode::NoError, "the TSIG-signed update must succeed");

    let (rcode, ips) = a_records(&mut unsigned, &name).await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(ips, vec![ip], "{name} after the update");

    let resp = signed.delete_rrset(Record::update0(name.clone(), 0, RecordType::A), zone).await.unwrap();
    assert_eq!(resp.response_code(), ResponseCode::NoError);
}

#[tokio::test]
async fn powerdns_api_rrset_resolves() {
    tenantry_testenv::install_crypto_provider();
    let pdns = need(tenantry_testenv::powerdns());
    let http = pdns.http().unwrap();
    let zone = format!("{}.", pdns.zone.trim_end_matches('.'));
    let name = format!("{}.{zone}", unique("api"));
    let ip = test_ip();
    let patch = json!({"rrsets": [{
        "name": name, "type": "A", "ttl": 60, "changetype": "REPLACE",
        "records": [{"content": ip.to_string(), "disabled": false}],
    }]});
    let resp = http.patch(pdns.url(&format!("servers/localhost/zones/{zone}"))).json(&patch).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204, "PATCH rrsets: {}", resp.text().await.unwrap_or_default());

    let mut dns = pdns.query_client().await.unwrap();
    let (rcode, ips) = a_records(&mut dns, &Name::from_str(&name).unwrap()).await;
    assert_eq!(rcode, ResponseCode::NoError);
    assert_eq!(ips, vec![ip], "{name} after the PATCH");

    let del = json!({"rrsets": [{"name": name, "type": "A", "changetype": "DELETE"}]});
    let resp = http.patch(pdns.url(&format!("servers/localhost/zones/{zone}"))).json(&del).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 204);
}

#[tokio::test]
async fn keycloak_issues_id_tokens_the_apiserver_accepts() {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    tenantry_testenv::install_crypto_provider();
    let keycloak = need(tenantry_testenv::keycloak());
    let kube = need(tenantry_testenv::kube());
    let discovery: serde_json::Value = keycloak
        .http()
        .unwrap()
        .get(format!("{}/.well-known/openid-configuration", keycloak.issuer))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], keycloak.issuer.as_str(), "served over HTTPS with the test CA");
    let name = unique("smoke-kc");
    let email = format!("{name}@example.org");
    keycloak.create_user(&name, &email, "smoke-password-1").await.unwrap();
    let tokens = keycloak.sign_in(&name, "smoke-password-1").await.unwrap();

    // The apiserver trusts the realm: the ID token alone authenticates.
    let mut config = kube.config().await.unwrap();
    config.auth_info = kube::config::AuthInfo { token: Some(tokens.id_token.into()), ..Default::default() };
    let client = kube::Client::try_from(config).unwrap();
    let review: SelfSubjectReview =
        Api::all(client.clone()).create(&PostParams::default(), &from_json(json!({ "metadata": {} }))).await.unwrap();
    let user = review.status.and_then(|s| s.user_info).unwrap();
    assert_eq!(user.username.as_deref(), Some(email.as_str()));
    // Authenticated, and nothing granted: a 403, not a 401.
    let err = Api::<Namespace>::all(client).list(&Default::default()).await.unwrap_err();
    assert!(is_forbidden(&err), "{err}");
    let wrong = keycloak.sign_in(&name, "not-the-password").await.unwrap_err().to_string();
    assert!(wrong.contains("invalid_grant"), "{wrong}");
}
