//! Per-user app instances (SPEC §11.5, issue #21) on the real apiserver and
//! BIND: two users, one app — both instances apply with their DNS records,
//! a second plan is a no-op, a template change updates both, one user's
//! broken values fail only that user, a removed app is withheld and then
//! revoked, and offboarding scales the instance to zero at the cut and backs
//! it up with its namespace before destroying it.

use super::*;

/// The example template (examples/apps/budget), as an admin would copy it.
const APP: &str = include_str!("../../../../examples/apps/budget/app.yaml");
const INGRESS: &str = include_str!("../../../../examples/apps/budget/ingress.yaml");

fn kubectl_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&kubectl_admin(&[args, &["-o", "json"]].concat())).unwrap()
}

/// Whether an object exists (kubectl exits non-zero with NotFound otherwise).
fn exists(kind: &str, namespace: &str, name: &str) -> bool {
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(kube.kubectl.unwrap())
        .args(["get", kind, name, "-n", namespace, "--kubeconfig"])
        .arg(&kube.kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    if !output.status.success() {
        assert!(text(&output).contains("NotFound"), "kubectl get {kind} {name}: {}", text(&output));
    }
    output.status.success()
}

fn image_of(namespace: &str) -> String {
    let deployment = kubectl_json(&["get", "deployment", "budget", "-n", namespace]);
    deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap().to_string()
}

#[test]
fn two_users_get_an_app_instance_each_updated_isolated_withheld_revoked_and_backed_up() {
    let id = run_id();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let (ann, ben) = (format!("ann{id}"), format!("ben{id}"));
    let roster = |ann_entry: &str, ben_entry: &str| {
        format!(
            "platform:\n  name: apps{id}\n  domain: lab.test\n  isolation: none\n  dns: {{ cname_target: tunnel.lab.test }}\n  apps:\n    budget: {{ template: apps/budget, host: \"budget-{{user}}\", values: {{ replicas: 1, image: \"registry.lab.test/budget:1\" }} }}\nusers:\n  {ann}: {{ email: {ann}@lab.test, tier: namespace-owner, namespaces: [{ann}]{ann_entry} }}\n  {ben}: {{ email: {ben}@lab.test, tier: namespace-owner, namespaces: [{ben}]{ben_entry} }}\n"
        )
    };
    let dir = workdir(&roster(", apps: [budget]", ", apps: [{ name: budget, values: { replicas: 2 } }]"));
    let templates = dir.path().join("apps/budget");
    fs::create_dir_all(&templates).unwrap();
    fs::write(templates.join("app.yaml"), APP).unwrap();
    fs::write(templates.join("ingress.yaml"), INGRESS).unwrap();
    fs::write(
        dir.path().join("tenantry.toml"),
        format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\n[dns]\nprovider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"{}\"\ntsig_key_file = \"{}\"\n",
            kube.kubeconfig.display(),
            bind.addr,
            bind.tsig_key_file.display()
        ),
    )
    .unwrap();

    // Both instances apply, each with its DNS record.
    let plan = tenantry(dir.path(), &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains(&format!("kubernetes/Deployment/{ben}/budget")), "{}", text(&plan));
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    for (user, replicas) in [(&ann, 1), (&ben, 2)] {
        let deployment = kubectl_json(&["get", "deployment", "budget", "-n", user]);
        assert_eq!(deployment["spec"]["replicas"], replicas, "{user}");
        let labels = &deployment["metadata"]["labels"];
        assert_eq!(
            (labels["tenantry.dev/user"].as_str(), labels["tenantry.dev/app"].as_str()),
            (Some(user.as_str()), Some("budget"))
        );
        assert_eq!(labels["tenantry.dev/platform"], format!("apps{id}"));
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"][0];
        assert_eq!(env["value"], format!("{user}@lab.test"));
        let ingress = kubectl_json(&["get", "ingress", "budget", "-n", user]);
        assert_eq!(ingress["spec"]["rules"][0]["host"], format!("budget-{user}.lab.test"));
        assert!(exists("service", user, "budget"));
        assert!(
            text(&apply).contains(&format!("dns/CNAME/lab.test/budget-{user}.lab.test")),
            "the instance's host gets its record: {}",
            text(&apply)
        );
    }
    let again = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "a second plan has nothing to do: {}", text(&again));

    // `why` names the roster line and the template's file and line.
    let why = tenantry(dir.path(), &["why", &format!("kubernetes/Service/{ben}/budget")]);
    assert_eq!(why.status.code(), Some(0), "{}", text(&why));
    assert!(text(&why).contains("template: apps/budget/app.yaml:20"), "{}", text(&why));
    assert!(text(&why).contains(&format!("{ben}: {{ email: {ben}@lab.test")), "{}", text(&why));

    // A template change updates both instances.
    fs::write(templates.join("app.yaml"), APP.replace("{{ values.image }}", "{{ values.image }}-2")).unwrap();
    let plan = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    for user in [&ann, &ben] {
        assert!(text(&plan).contains(&format!("~ update    kubernetes/Deployment/{user}/budget")), "{}", text(&plan));
    }
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert_eq!(image_of(&ann), "registry.lab.test/budget:1-2");
    assert_eq!(image_of(&ben), "registry.lab.test/budget:1-2");

    // ben's values lack what the new template needs: only ben fails, ann converges.
    fs::write(templates.join("app.yaml"), APP.replace("{{ values.image }}", "{{ values.image }}-{{ values.channel }}"))
        .unwrap();
    fs::write(
        dir.path().join("roster.yaml"),
        roster(
            ", apps: [{ name: budget, values: { channel: stable } }]",
            ", apps: [{ name: budget, values: { replicas: 2 } }]",
        ),
    )
    .unwrap();
    let plan = tenantry(dir.path(), &["plan"]);
    assert!(text(&plan).contains(&format!("user `{ben}`: app `budget`")), "{}", text(&plan));
    assert!(text(&plan).contains("undefined value"), "{}", text(&plan));
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_ne!(apply.status.code(), Some(0), "ben's instance failed: {}", text(&apply));
    assert!(text(&apply).contains(&ben), "{}", text(&apply));
    assert_eq!(image_of(&ann), "registry.lab.test/budget:1-stable", "ann's instance is applied");
    assert_eq!(image_of(&ben), "registry.lab.test/budget:1-2", "ben's running instance is left as it was");
    assert!(exists("ingress", &ben, "budget"), "nothing of ben's instance is removed");
    fs::write(
        dir.path().join("roster.yaml"),
        roster(
            ", apps: [{ name: budget, values: { channel: stable } }]",
            ", apps: [{ name: budget, values: { replicas: 2, channel: beta } }]",
        ),
    )
    .unwrap();
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert_eq!(image_of(&ben), "registry.lab.test/budget:1-beta");

    // ann's app is removed from her list: withheld, then revoked.
    let without_ann_app = roster("", ", apps: [{ name: budget, values: { replicas: 2, channel: beta } }]");
    fs::write(dir.path().join("roster.yaml"), &without_ann_app).unwrap();
    let plan = tenantry(dir.path(), &["plan", "--output", "json"]);
    let json: serde_json::Value =
        serde_json::from_slice(&plan.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&plan)));
    let owner = json["owners"].as_array().unwrap().iter().find(|o| o["owner"] == ann.as_str()).unwrap();
    let action = |id: String| {
        owner["changes"].as_array().unwrap().iter().find(|c| c["id"] == id.as_str()).map(|c| c["action"].clone())
    };
    assert_eq!(action(format!("kubernetes/Deployment/{ann}/budget")), Some(serde_json::json!("withheld")));
    assert_eq!(action(format!("kubernetes/Ingress/{ann}/budget")), Some(serde_json::json!("withheld")));
    let apply = tenantry(dir.path(), &["apply", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(exists("deployment", &ann, "budget"), "a withheld removal is not applied");
    let revoke = tenantry(dir.path(), &["apply", "--yes", "--allow-revoke"]);
    assert_eq!(revoke.status.code(), Some(0), "{}", text(&revoke));
    for kind in ["deployment", "service", "ingress"] {
        assert!(!exists(kind, &ann, "budget"), "{kind} of ann's revoked instance");
    }
    assert!(exists("deployment", &ben, "budget"), "ben keeps his instance");

    // ben leaves: the cut, then the destroy stage backs his namespace (with the instance) up first.
    let platform_only = without_ann_app.split("users:").next().unwrap().to_string() + "users: {}\n";
    fs::write(dir.path().join("roster.yaml"), &platform_only).unwrap();
    let backups = dir.path().join("backups");
    for user in [&ben, &ann] {
        let cut = tenantry(dir.path(), &["offboard", user, "--yes"]);
        assert_eq!(cut.status.code(), Some(0), "{}", text(&cut));
        if user == &ben {
            let deployment = kubectl_json(&["get", "deployment", "budget", "-n", &ben]);
            assert_eq!(deployment["spec"]["replicas"], 0, "the reversible cut scales the instance to zero");
            assert!(exists("ingress", &ben, "budget"), "and keeps the rest for the destroy stage");
        }
        let destroy = tenantry(
            dir.path(),
            &["offboard", user, "--stage", "destroy", "--backup", backups.to_str().unwrap(), "--yes"],
        );
        assert_eq!(destroy.status.code(), Some(0), "{}", text(&destroy));
    }
    let backup = fs::read_to_string(backups.join(format!("kubernetes-{ben}-namespace-{ben}.json")))
        .unwrap_or_else(|e| panic!("{e}: {:?}", tree(&backups).into_iter().map(|(p, _)| p).collect::<Vec<_>>()));
    let backup: serde_json::Value = serde_json::from_str(&backup).unwrap();
    let kinds: Vec<&str> = backup["items"].as_array().unwrap().iter().filter_map(|i| i["kind"].as_str()).collect();
    assert!(kinds.contains(&"Deployment") && kinds.contains(&"Ingress"), "{kinds:?}");
    let after = tenantry(dir.path(), &["plan", "--detailed-exitcode"]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
}
