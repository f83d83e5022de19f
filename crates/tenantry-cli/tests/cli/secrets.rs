//! No secret in any output (SPEC §6): every command that talks to the peers,
//! in human and JSON form and with tracing at trace level, leaves the Vault
//! token, the TSIG secret, the PowerDNS API key and the platform's TLS
//! private key out of stdout, stderr, the state database and every file
//! tenantry writes — except the destroy stage's backups, which hold what was
//! deleted and are readable by their owner only.

use super::*;
use std::os::unix::fs::PermissionsExt as _;

/// A secret and the forms it could leak in.
struct Secret {
    name: &'static str,
    forms: Vec<String>,
}

/// The TSIG secret as its key file spells it (base64).
fn tsig_secret_text(key_file: &Path) -> String {
    let text = fs::read_to_string(key_file).unwrap();
    let at = text.find("secret").unwrap_or_else(|| panic!("no secret in {}", key_file.display()));
    text[at..].split('"').nth(1).unwrap().to_string()
}

/// A certificate and key for `*.lab.test` from openssl, as the platform's TLS source.
fn tls_source(dir: &Path, namespace: &str) -> Secret {
    let (key, cert) = (dir.join("tls.key"), dir.join("tls.crt"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30"])
        .args(["-subj", "/CN=lab.test", "-addext", "subjectAltName=DNS:lab.test,DNS:*.lab.test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl is needed to make a test certificate (apt-get install openssl): {e}"));
    assert!(made.status.success(), "{}", text(&made));
    kubectl_admin(&["create", "namespace", namespace]);
    let (key_arg, cert_arg) = (format!("--key={}", key.display()), format!("--cert={}", cert.display()));
    kubectl_admin(&["create", "secret", "tls", "wildcard", "-n", namespace, &key_arg, &cert_arg]);
    let stored = kubectl_admin(&["get", "secret", "wildcard", "-n", namespace, "-o", "jsonpath={.data.tls\\.key}"]);
    let pem = fs::read_to_string(&key).unwrap();
    // Each line of the key's base64 body, and the whole PEM as the Secret stores it.
    let mut forms: Vec<String> =
        pem.lines().filter(|l| !l.starts_with("-----") && l.len() > 16).map(String::from).collect();
    forms.push(stored.trim().to_string());
    fs::remove_file(&key).unwrap();
    Secret { name: "the TLS private key", forms }
}

/// Where each secret appears in `haystack`, by name.
fn leaks<'a>(secrets: &'a [Secret], haystack: &[u8]) -> Vec<&'a str> {
    let found = |needle: &str| !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle.as_bytes());
    secrets.iter().filter(|s| s.forms.iter().any(|f| found(f))).map(|s| s.name).collect()
}

#[test]
fn no_secret_reaches_any_output_log_state_database_or_file() {
    let id = run_id();
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    let bind = tenantry_testenv::bind().unwrap_or_else(|e| panic!("{e}"));
    let pdns = tenantry_testenv::powerdns().unwrap_or_else(|e| panic!("{e}"));
    let vault = vault_env();
    bao("POST", &format!("sys/auth/sec-oidc-{id}"), serde_json::json!({ "type": "oidc" }));
    bao("POST", &format!("sys/mounts/sec-k8s-{id}"), serde_json::json!({ "type": "kubernetes" }));

    // A token of its own: the dev server's root token is the word `root`,
    // which every log contains ("root certificates").
    let created = bao("POST", "auth/token/create", serde_json::json!({ "policies": ["root"], "ttl": "1h" }));
    let token = created["auth"]["client_token"].as_str().unwrap().to_string();
    assert!(token.len() > 20, "a distinctive token: {token}");

    let keys = tempfile::tempdir().unwrap();
    let certs = format!("sec-certs-{id}");
    let mut secrets = vec![
        Secret { name: "the Vault token", forms: vec![token.clone()] },
        Secret { name: "the TSIG secret", forms: vec![tsig_secret_text(&bind.tsig_key_file)] },
        Secret { name: "the PowerDNS API key", forms: vec![pdns.api_key.clone()] },
    ];
    secrets.push(tls_source(keys.path(), &certs));
    let pdns_key_file = keys.path().join("pdns.key");
    fs::write(&pdns_key_file, &pdns.api_key).unwrap();
    fs::set_permissions(&pdns_key_file, fs::Permissions::from_mode(0o600)).unwrap();

    let dns = [
        (
            "rfc2136",
            format!(
                "provider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"{}\"\ntsig_key_file = \"{}\"\n",
                bind.addr,
                bind.tsig_key_file.display()
            ),
        ),
        (
            "powerdns",
            format!(
                "provider = \"powerdns\"\nzones = [\"lab.test\"]\napi_url = \"{}\"\napi_key_file = \"{}\"\n",
                pdns.api_url,
                pdns_key_file.display()
            ),
        ),
    ];
    for (provider, dns_section) in dns {
        let (sam, tom) = (format!("sam{id}{}", &provider[..1]), format!("tom{id}{}", &provider[..1]));
        let roster = format!(
            "platform:\n  name: sec{id}\n  api_server: https://127.0.0.1:6443\n  oidc: {{ issuer_url: https://auth.lab.test/, client_id: kubernetes }}\n  domain: lab.test\n  dns: {{ cname_target: tunnel.lab.test }}\n  tls: {{ source: {{ namespace: {certs}, name: wildcard }} }}\nusers:\n  {sam}: {{ email: {sam}@lab.test, tier: namespace-owner, namespaces: [{sam}], domains: [app-{sam}.lab.test] }}\n  {tom}: {{ email: {tom}@lab.test, tier: namespace-owner, namespaces: [{tom}], domains: [app-{tom}.lab.test] }}\n"
        );
        let dir = workdir(&roster);
        fs::write(
            dir.path().join("tenantry.toml"),
            format!(
                "[kubernetes]\nkubeconfig = \"{}\"\n\n[vault]\naddress = \"{}\"\noidc_mount = \"sec-oidc-{id}\"\nkubernetes_secrets_mount = \"sec-k8s-{id}\"\n\n[dns]\n{dns_section}",
                kube.kubeconfig.display(),
                vault.addr,
            ),
        )
        .unwrap();
        let backups = dir.path().join("backups");
        let (backup_arg, without_tom) = (
            backups.to_str().unwrap().to_string(),
            roster.lines().filter(|l| !l.contains(&tom)).collect::<Vec<_>>().join("\n"),
        );
        let tom_secret = format!("kubernetes/Secret/{tom}/tls-secret");
        let mut outputs: Vec<(String, Output)> = Vec::new();
        let mut run = |args: &[&str]| {
            let mut output = tenantry_with_env(
                dir.path(),
                args,
                &[("VAULT_ADDR", &vault.addr), ("VAULT_TOKEN", &token), ("TENANTRY_LOG", "trace")],
            );
            // `doctor` exits 3 when it has findings; what it prints is searched all the same.
            let finding = args[0] == "doctor" && output.status.code() == Some(3);
            assert!(matches!(output.status.code(), Some(0 | 2)) || finding, "{args:?}: {}", text(&output));
            // The trace log must be on where peers are talked to, or this
            // test proves nothing about it.
            if matches!(args[0], "plan" | "apply" | "offboard") {
                assert!(String::from_utf8_lossy(&output.stderr).contains("TRACE"), "{args:?}: no trace log");
            }
            output.stdout.extend_from_slice(&output.stderr);
            outputs.push((args.join(" "), output));
        };
        for format in ["human", "json"] {
            run(&["plan", "--output", format]);
        }
        run(&["apply", "--yes"]);
        run(&["apply", "--yes", "--output", "json"]);
        for format in ["human", "json"] {
            run(&["plan", "--detailed-exitcode", "--output", format]);
            run(&["why", &tom_secret, "--output", format]);
            run(&["explain", &sam, "--output", format]);
            run(&["history", "--output", format]);
            run(&["doctor", "--output", format]);
        }
        run(&["kubeconfig", &sam]);
        fs::write(dir.path().join("roster.yaml"), &without_tom).unwrap();
        run(&["offboard", &tom, "--yes"]);
        run(&["offboard", &tom, "--stage", "destroy", "--backup", &backup_arg, "--yes", "--output", "json"]);
        // Everyone leaves; the platform stays (its name marks what is its own).
        let platform_only = roster.split("users:").next().unwrap_or_default().to_string() + "users: {}\n";
        fs::write(dir.path().join("roster.yaml"), platform_only).unwrap();
        run(&["offboard", &sam, "--yes", "--output", "json"]);
        run(&["offboard", &sam, "--stage", "destroy", "--backup", &backup_arg, "--yes"]);

        for (command, output) in &outputs {
            let found = leaks(&secrets, &output.stdout);
            assert!(found.is_empty(), "`tenantry {command}` ({provider}) printed {found:?}");
        }
        // The state database, rendered files, logs: everything but the backups.
        let (mut state_seen, mut key_in_backups) = (false, false);
        for (path, bytes) in tree(dir.path()) {
            let found = leaks(&secrets, &bytes);
            if path.starts_with("backups") {
                let mode = fs::metadata(dir.path().join(&path)).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "the backup {} is readable by others", path.display());
                key_in_backups |= found.contains(&"the TLS private key");
            } else {
                assert!(found.is_empty(), "{} ({provider}) holds {found:?}", path.display());
                state_seen |= path.to_string_lossy().contains("state");
            }
        }
        assert!(state_seen, "no state database was searched ({provider})");
        // The destroyed TLS copies are in the backups: the search finds a key where there is one.
        assert!(key_in_backups, "the backups of the destroyed namespaces hold no TLS key ({provider})");
    }
    kubectl_admin(&["delete", "namespace", &certs, "--wait=false"]);
}
