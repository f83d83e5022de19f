//! App instances (SPEC §11.5, issue #21) in memory: rendering, the checks on
//! rendered objects, the quota at plan time, and removal under the policy.

use super::*;
use tenantry_model::TemplateFile;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: budget
  labels: { app: budget }
spec:
  replicas: {{ values.replicas }}
  selector: { matchLabels: { app: budget } }
  template:
    metadata: { labels: { app: budget } }
    spec:
      containers:
        - name: web
          image: \"{{ values.image }}\"
          env: [{ name: OWNER, value: \"{{ email }}\" }]
          resources: { requests: { cpu: \"{{ values.cpu }}\", memory: 64Mi } }
---
apiVersion: v1
kind: Service
metadata: { name: budget, namespace: \"{{ namespace }}\" }
spec: { selector: { app: budget }, ports: [{ port: 80 }] }
";

const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: { name: budget }
spec:
  tls: [{ hosts: [\"{{ host }}\"], secretName: tls-secret }]
  rules: [{ host: \"{{ host }}\" }]
";

fn team(users: &str) -> String {
    format!(
        "platform:\n  domain: example.org\n  apps:\n    budget: {{ template: apps/budget, host: \"budget.{{user}}\", values: {{ replicas: 1, image: \"budget:1\", cpu: 100m }} }}\nusers:\n{users}"
    )
}

const TWO: &str = "  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [budget] }\n  bob: { email: bob@example.org, tier: namespace-owner, namespaces: [bob], apps: [{ name: budget, values: { replicas: 2 } }] }\n";

fn with_templates(text: &str, files: &[(&str, &str)]) -> Roster {
    let mut roster = roster(text);
    for app in roster.platform.apps.values_mut() {
        app.files = files.iter().map(|(p, t)| TemplateFile { path: p.to_string(), text: t.to_string() }).collect();
    }
    roster
}

fn budget(text: &str) -> Roster {
    with_templates(text, &[("apps/budget/app.yaml", DEPLOYMENT), ("apps/budget/ingress.yaml", INGRESS)])
}

#[test]
fn each_user_gets_the_rendered_objects_labelled_owned_and_traced_to_the_template() {
    let desired = derive(&budget(&team(TWO)), &Settings::default(), &Facts::default());
    assert!(desired.failures.is_empty(), "{:?}", desired.failures);
    let all = ids(&desired);
    for user in ["alice", "bob"] {
        for kind in ["Deployment", "Service", "Ingress"] {
            let id = format!("kubernetes/{kind}/{user}/budget");
            assert!(all.contains(&id), "{id} missing from {all:?}");
        }
    }
    let deployment = content_of(&desired, "kubernetes/Deployment/bob/budget");
    assert_eq!(deployment["spec"]["replicas"], 2, "bob's values win over the app's");
    assert_eq!(deployment["metadata"]["namespace"], "bob", "the instance's namespace is set");
    assert_eq!(deployment["metadata"]["labels"]["tenantry.dev/user"], "bob");
    assert_eq!(deployment["metadata"]["labels"]["tenantry.dev/app"], "budget");
    assert_eq!(deployment["metadata"]["labels"]["app"], "budget", "the template's own labels stay");
    assert_eq!(deployment["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"], "bob@example.org");
    assert_eq!(
        content_of(&desired, "kubernetes/Ingress/alice/budget")["spec"]["rules"][0]["host"],
        "budget.alice.example.org"
    );

    let service = desired.resources().iter().find(|r| r.id.to_string() == "kubernetes/Service/alice/budget").unwrap();
    assert_eq!(service.owner, Owner::User("alice".to_string()));
    assert_eq!(service.origin.line, 6, "the user's entry in the roster");
    assert_eq!(service.template.as_deref(), Some("apps/budget/app.yaml:18"), "the Service's document starts there");
    let deps: Vec<String> = service.deps.iter().map(ToString::to_string).collect();
    assert_eq!(deps, ["kubernetes/Namespace/-/alice"]);
    // The host is covered by the namespace's TLS secret like a user domain.
    let tls_roster = budget(&team(TWO).replace("  domain: example.org\n", "  domain: example.org\n  tls: { source: { namespace: certs, name: wildcard } }\n  dns: { cname_target: tunnel.example.org }\n"));
    let desired = derive(&tls_roster, &Settings::default(), &Facts::default());
    assert!(ids(&desired).contains("dns/CNAME/example.org/budget.alice.example.org"));
    let secret = content_of(&desired, "kubernetes/Secret/alice/tls-secret");
    assert_eq!(secret["metadata"]["annotations"]["tenantry.dev/tls-domains"], "budget.alice.example.org");
}

#[test]
fn one_users_broken_values_fail_only_that_instance_and_keep_its_objects() {
    let template = DEPLOYMENT.replace("{{ values.image }}", "{{ values.image }}{{ values.tag }}");
    let alice_tagged = TWO.replace("apps: [budget]", "apps: [{ name: budget, values: { tag: \"-a\" } }]");
    let working = alice_tagged.replace("{ replicas: 2 }", "{ replicas: 2, tag: \"-x\" }");
    let good = with_templates(&team(&working), &[("apps/budget/app.yaml", &template)]);
    let before = derive(&good, &Settings::default(), &Facts::default());
    assert!(before.failures.is_empty(), "{:?}", before.failures);
    let (observed, inventory) = applied(&before, true);

    let broken = with_templates(&team(&alice_tagged), &[("apps/budget/app.yaml", &template)]);
    let now = derive(&broken, &Settings::default(), &Facts::default());
    assert_eq!(now.failures.len(), 1, "{:?}", now.failures);
    let failure = &now.failures[0];
    assert_eq!((failure.owner.as_str(), failure.app.as_str(), failure.origin.line), ("bob", "budget", 7));
    assert!(
        failure.message.starts_with("apps/budget/app.yaml:14: cannot render the template: undefined value"),
        "{}",
        failure.message
    );
    assert!(failure.message.ends_with("in `values.tag`"), "names the undefined variable: {}", failure.message);
    assert!(!ids(&now).contains("kubernetes/Deployment/bob/budget"), "nothing of a failed instance is derived");
    assert!(ids(&now).contains("kubernetes/Deployment/alice/budget"), "alice's instance is unaffected");

    for policy in [Policy::default(), Policy { allow_revoke: true, ..Policy::default() }] {
        let plan = diff(&broken, &now, &observed, &inventory, &routing(), &policy);
        assert_eq!(action_of(&plan, "kubernetes/Deployment/bob/budget"), None, "bob's running app is left alone");
        assert!(
            plan.problems.iter().any(|p| !p.blocking && p.message.contains("user `bob`: app `budget` (line 7)")),
            "{:?}",
            plan.problems
        );
    }
}

#[test]
fn rendered_objects_outside_the_instance_are_refused_with_the_file_and_line() {
    let cases = [
        (
            "apiVersion: v1\nkind: Service\nmetadata: { name: x, namespace: kube-system }\n",
            "names namespace \"kube-system\", not the instance's `alice`",
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: { name: x }\n",
            "kind `ClusterRole` is not allowed",
        ),
        ("apiVersion: v1\nkind: Secret\nmetadata: { name: x }\n", "kind `Secret` is not allowed"),
        (
            "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: { name: x }\n",
            "must be `apiVersion: networking.k8s.io/v1`",
        ),
        (
            "apiVersion: v1\nkind: Service\nmetadata: { name: x, labels: { tenantry.dev/user: bob } }\n",
            "label `tenantry.dev/user` is tenantry's own",
        ),
        ("apiVersion: v1\nkind: Service\nmetadata: { name: \"{{ values.name }}\" }\n", "undefined value"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: { v: {{ values.text }} }\n", "line break"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: tls-secret-x }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: tls-secret-x }\n",
            "already defined at apps/x/a.yaml:1",
        ),
        ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "fuel"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: { v: \"{{ values.quote }}\" }\n",
            "a double quote",
        ),
    ];
    let text = "platform:\n  apps:\n    x: { template: apps/x, values: { text: \"a\\nkind: Namespace\", quote: 'a\", namespace: \"b' } }\nusers:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [x] }\n";
    for (template, says) in cases {
        let desired =
            derive(&with_templates(text, &[("apps/x/a.yaml", template)]), &Settings::default(), &Facts::default());
        assert_eq!(desired.failures.len(), 1, "{template}");
        let message = &desired.failures[0].message;
        assert!(message.starts_with("apps/x/a.yaml"), "{message}");
        assert!(message.contains(says), "{says:?} not in {message}");
        assert!(ids(&desired).iter().all(|id| !id.contains("/alice/x")), "nothing derived for {template}");
    }
    // tojson writes any value safely.
    let safe = "apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata: { v: {{ values.text | tojson }} }\n";
    let desired = derive(&with_templates(text, &[("apps/x/a.yaml", safe)]), &Settings::default(), &Facts::default());
    assert!(desired.failures.is_empty(), "{:?}", desired.failures);
    assert_eq!(content_of(&desired, "kubernetes/ConfigMap/alice/x")["data"]["v"], "a\nkind: Namespace");
}

#[test]
fn an_object_named_like_tenantrys_own_fails_its_instance() {
    let text = "platform:\n  apps:\n    x: { template: apps/x }\nusers:\n  alice: { email: alice@example.org, tier: namespace-owner, namespaces: [alice], apps: [x] }\n";
    let clash = "apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: alice-deployer }\n";
    let before = derive(&roster(text), &Settings::default(), &Facts::default());
    assert!(ids(&before).contains("kubernetes/ServiceAccount/alice/alice-deployer"), "{:?}", ids(&before));
    let desired = derive(&with_templates(text, &[("apps/x/a.yaml", clash)]), &Settings::default(), &Facts::default());
    assert_eq!(desired.failures.len(), 1);
    assert!(desired.failures[0].message.contains("also derived by tenantry"), "{}", desired.failures[0].message);
    let account = desired
        .resources()
        .iter()
        .find(|r| r.id.to_string() == "kubernetes/ServiceAccount/alice/alice-deployer")
        .unwrap();
    assert!(account.template.is_none(), "tenantry's own object stays");
}

#[test]
fn an_instance_over_the_namespaces_quota_fails_naming_the_numbers() {
    // Default quota: requests.cpu 2. alice: one replica of 100m; bob: three of 800m = 2.4.
    let users = TWO.replace("{ replicas: 2 }", "{ replicas: 3, cpu: 800m }");
    let desired = derive(&budget(&team(&users)), &Settings::default(), &Facts::default());
    assert_eq!(desired.failures.len(), 1, "{:?}", desired.failures);
    let failure = &desired.failures[0];
    assert_eq!(failure.owner, "bob");
    assert!(
        failure.message.contains("requests.cpu in namespace `bob` to 2.4 (this instance 2.4, other instances 0), over the namespace's ResourceQuota requests.cpu: 2"),
        "{}",
        failure.message
    );
    assert!(ids(&desired).contains("kubernetes/Deployment/alice/budget"));
}

#[test]
fn a_removed_app_is_withheld_then_revoked_and_its_volume_claim_kept() {
    let pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: { name: data }\nspec: { accessModes: [ReadWriteOnce], resources: { requests: { storage: 1Gi } } }\n";
    let files = [("apps/budget/app.yaml", DEPLOYMENT), ("apps/budget/pvc.yaml", pvc)];
    let before = derive(&with_templates(&team(TWO), &files), &Settings::default(), &Facts::default());
    let (observed, inventory) = applied(&before, true);
    let without = with_templates(&team(&TWO.replace(", apps: [budget]", "")), &files);
    let now = derive(&without, &Settings::default(), &Facts::default());

    let plan = diff(&without, &now, &observed, &inventory, &routing(), &Policy::default());
    assert_eq!(action_of(&plan, "kubernetes/Deployment/alice/budget"), Some(Action::Withheld));
    assert_eq!(action_of(&plan, "kubernetes/Deployment/bob/budget"), None, "bob keeps his");
    let revoke = Policy { allow_revoke: true, ..Policy::default() };
    let plan = diff(&without, &now, &observed, &inventory, &routing(), &revoke);
    assert_eq!(action_of(&plan, "kubernetes/Deployment/alice/budget"), Some(Action::Delete));
    assert_eq!(action_of(&plan, "kubernetes/Service/alice/budget"), Some(Action::Delete));
    assert_eq!(
        action_of(&plan, "kubernetes/PersistentVolumeClaim/alice/data"),
        Some(Action::Kept),
        "data stays until destroy"
    );
}

#[test]
fn an_app_without_loaded_templates_fails_each_instance_and_derivation_stays_deterministic() {
    let desired = derive(&roster(&team(TWO)), &Settings::default(), &Facts::default());
    assert_eq!(desired.failures.len(), 2);
    assert!(desired.failures[0].message.contains("holds no manifests"));
    let text = team(TWO);
    let first = derive(&budget(&text), &Settings::default(), &Facts::default());
    let second = derive(&budget(&text), &Settings::default(), &Facts::default());
    let contents = |d: &Desired| {
        d.resources().iter().map(|r| (r.id.to_string(), r.content.as_str().to_string())).collect::<Vec<_>>()
    };
    assert_eq!(contents(&first), contents(&second));
    for resource in first.resources() {
        for dep in resource.deps.iter() {
            assert!(
                kind_rank(dep) < kind_rank(&resource.id) || dep.domain != resource.id.domain,
                "{} needs {dep}",
                resource.id
            );
        }
    }
}
