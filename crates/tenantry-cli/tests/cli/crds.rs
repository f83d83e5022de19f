//! `tenantry crds` and `tenantry import --to-crds` / `--from-crds` through
//! the binary and kubectl on the real apiserver: the definitions install,
//! a roster goes to the cluster as objects and comes back the same, and the
//! objects plan as the file does.

use super::*;
use serde_json::Value;

fn kubectl_stdin(kube: &tenantry_testenv::Kube, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(kube.kubectl.clone().unwrap_or_else(|| "kubectl".into()))
        .arg("--kubeconfig")
        .arg(&kube.kubeconfig)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_roster_goes_to_tenant_objects_and_back_unchanged() {
    let id = format!("c{}", run_id());
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    // The example roster with cluster-unique keys and platform name.
    let mut roster: Value = serde_saphyr::from_str(EXAMPLE).unwrap();
    roster["platform"]["name"] = Value::String(id.clone());
    // Its push whitelist names user keys, which are renamed below.
    roster["platform"].as_object_mut().unwrap().remove("forge");
    let users = roster["users"].as_object().unwrap().clone();
    roster["users"] = Value::Object(users.into_iter().map(|(key, user)| (format!("{id}{key}"), user)).collect());
    for user in roster["users"].as_object_mut().unwrap().values_mut() {
        if let Some(workstation) = user.get_mut("workstation").and_then(Value::as_object_mut) {
            workstation.remove("os_user");
        }
    }
    let dir = workdir(&serde_json::to_string(&roster).unwrap());
    let config = dir.path().join("tenantry.toml");
    fs::write(&config, format!("[kubernetes]\nkubeconfig = \"{}\"\n", kube.kubeconfig.display())).unwrap();

    let crds = tenantry(dir.path(), &["crds"]);
    assert!(crds.status.success(), "{}", text(&crds));
    let installed = kubectl_stdin(&kube, &["apply", "--server-side", "--force-conflicts", "-f", "-"], &crds.stdout);
    assert!(installed.status.success(), "{}", text(&installed));
    let established = kubectl_stdin(
        &kube,
        &["wait", "--for=condition=Established", "--timeout=30s", "crd/tenants.tenantry.dev"],
        b"",
    );
    assert!(established.status.success(), "{}", text(&established));

    let label = format!("tenantry.dev/test-roster={id}");
    let objects = tenantry(dir.path(), &["import", "--to-crds", "--label", &label]);
    assert!(objects.status.success(), "{}", text(&objects));
    let applied = kubectl_stdin(&kube, &["apply", "--server-side", "-f", "-"], &objects.stdout);
    assert!(applied.status.success(), "kubectl refused the objects: {}", text(&applied));

    let source = format!("kubernetes://tenants?selector={label}");
    let back = tenantry(
        dir.path(),
        &["--config", config.to_str().unwrap(), "--roster", &source, "import", "--from-crds", "--out", "back.yaml"],
    );
    assert!(back.status.success(), "{}", text(&back));
    let read: Value = serde_saphyr::from_str(&fs::read_to_string(dir.path().join("back.yaml")).unwrap()).unwrap();
    assert_eq!(read, roster, "the roster came back changed");

    // The objects are a roster source: it validates as the file does.
    let validated = tenantry(dir.path(), &["--config", config.to_str().unwrap(), "--roster", &source, "validate"]);
    assert!(validated.status.success(), "{}", text(&validated));

    let _ = kubectl_stdin(&kube, &["delete", "tenants,platforms", "-l", &label, "--wait=false"], b"");
}
