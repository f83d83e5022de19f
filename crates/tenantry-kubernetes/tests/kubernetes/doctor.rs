//! `tenantry doctor` on the real apiserver (issue #19): TLS copies replaced
//! by an expired certificate, by git-crypt ciphertext and by a certificate
//! for other domains, and a namespace kept terminating by a finalizer —
//! each named with its fix — while a healthy user reports nothing.

use super::*;
use tenantry_core::Target as _;
use tenantry_core::doctor::{DiagnoseRequest, Finding, Severity};

/// Replace the copy `tls-secret` in `namespace` with this data, as a hand (or a locked checkout) would.
async fn replace_copy(admin: &kube::Client, namespace: &str, crt: &[u8], key: &[u8]) {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), namespace);
    let mut secret = secrets.get("tls-secret").await.unwrap();
    let mut data = std::collections::BTreeMap::new();
    data.insert("tls.crt".to_string(), k8s_openapi::ByteString(crt.to_vec()));
    data.insert("tls.key".to_string(), k8s_openapi::ByteString(key.to_vec()));
    secret.data = Some(data);
    secrets.replace("tls-secret", &PostParams::default(), &secret).await.unwrap();
}

#[tokio::test]
async fn doctor_names_broken_tls_copies_and_a_terminating_namespace_with_their_fixes() {
    let id = run_id();
    let admin = client(None).await;
    let source_ns = format!("doc-src-{id}");
    let (crt, key) = certificate(&["*.example.org"], 90);
    tls_source(&admin, &source_ns, crt.as_bytes(), key.as_bytes()).await;
    let users = ["old", "enc", "oth", "end", "ok"];
    let mut text = format!(
        "platform:\n  name: doc{id}\n  domain: example.org\n  tls: {{ source: {{ namespace: {source_ns}, name: wildcard }} }}\nusers:\n"
    );
    for user in users {
        text.push_str(&format!(
            "  {user}{id}: {{ email: {user}{id}@example.org, tier: namespace-owner, namespaces: [{user}{id}], domains: [{user}{id}] }}\n"
        ));
    }
    let roster = roster(&text);
    let target = KubernetesTarget::from_client(admin.clone());
    let engine = engine(target.clone(), State::in_memory().unwrap());
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);

    // The faults.
    let (expired, expired_key) = certificate(&["*.example.org"], -3);
    replace_copy(&admin, &format!("old{id}"), expired.as_bytes(), expired_key.as_bytes()).await;
    let mut ciphertext = b"\0GITCRYPT\0".to_vec();
    ciphertext.extend_from_slice(&[0x13, 0x9f, 0x00, 0xe2, 0x41]);
    replace_copy(&admin, &format!("enc{id}"), &ciphertext, &ciphertext).await;
    let (other, other_key) = certificate(&["*.example.net"], 90);
    replace_copy(&admin, &format!("oth{id}"), other.as_bytes(), other_key.as_bytes()).await;
    // A ConfigMap with a finalizer nobody removes keeps the deleted namespace terminating.
    let held: Api<ConfigMap> = Api::namespaced(admin.clone(), &format!("end{id}"));
    let map: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "held", "finalizers": ["tenantry.dev/test-hold"] }
    }))
    .unwrap();
    held.create(&PostParams::default(), &map).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces.delete(&format!("end{id}"), &DeleteParams::default()).await.unwrap();

    let request = DiagnoseRequest {
        platform: format!("doc{id}"),
        desired: prepared.desired.resources().to_vec(),
        now: std::time::SystemTime::now(),
        emails: Default::default(),
    };
    let diagnosis = target.diagnose(&request).await.unwrap();
    let of = |user: &str| -> Vec<&Finding> {
        diagnosis.findings.iter().filter(|f| f.owner.user() == Some(&format!("{user}{id}"))).collect()
    };
    let only = |user: &str, check: &str| -> &Finding {
        let found = of(user);
        assert_eq!(found.len(), 1, "{user}: {:#?}", diagnosis.findings);
        assert_eq!(found[0].check, check);
        assert_eq!(found[0].severity, Severity::Problem);
        found[0]
    };

    let old = only("old", "tls");
    assert_eq!(old.resource.as_deref(), Some(format!("kubernetes/Secret/old{id}/tls-secret").as_str()));
    assert!(
        old.cause.starts_with(&format!(
            "the TLS secret `old{id}/tls-secret` is unusable: certificate 1 (`CN=*.example.org`) expired on "
        )),
        "{}",
        old.cause
    );
    assert!(
        old.fix.starts_with("put a valid chain (leaf first) and its unencrypted key into the source Secret"),
        "{}",
        old.fix
    );
    assert!(
        old.fix.contains(&format!("source `{source_ns}/wildcard`, then `tenantry apply --only old{id}`")),
        "{}",
        old.fix
    );

    let enc = only("enc", "tls");
    assert!(
        enc.cause.ends_with("git-crypt ciphertext: the checkout is locked; run `git-crypt unlock`"),
        "{}",
        enc.cause
    );
    assert!(enc.fix.starts_with("unlock the checkout (`git-crypt unlock`)"), "{}", enc.fix);

    let oth = only("oth", "tls");
    assert!(
        oth.cause
            .ends_with(&format!("the certificate does not cover `oth{id}.example.org` (it names `*.example.net`)")),
        "{}",
        oth.cause
    );
    assert_eq!(oth.evidence, [format!("domains to cover: oth{id}.example.org")]);
    assert!(oth.fix.starts_with("use a certificate that names these domains"), "{}", oth.fix);

    let end = of("end");
    let terminating =
        end.iter().find(|f| f.resource.as_deref() == Some(format!("kubernetes/Namespace/-/end{id}").as_str()));
    let terminating = terminating.unwrap_or_else(|| panic!("{end:#?}"));
    assert_eq!(terminating.cause, format!("namespace `end{id}` is terminating: nothing new can be created in it"));
    assert!(terminating.evidence[0].starts_with("deletionTimestamp 20"), "{:?}", terminating.evidence);
    assert!(terminating.fix.contains(&format!("kubectl get namespace end{id}")), "{}", terminating.fix);
    assert!(
        terminating.fix.ends_with(&format!("then `tenantry apply --only end{id}` re-creates it")),
        "{}",
        terminating.fix
    );

    assert_eq!(of("ok"), Vec::<&Finding>::new(), "a healthy user reports nothing");

    // Let the namespace go, and leave the shared cluster as it was.
    held.patch("held", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "finalizers": null } })))
        .await
        .unwrap();
    for user in users.iter().filter(|u| **u != "end") {
        let _ = namespaces.delete(&format!("{user}{id}"), &DeleteParams::default()).await;
    }
    let _ = namespaces.delete(&source_ns, &DeleteParams::default()).await;
}
