//! The kubeconfig and setup-script generators, tested by their consumers:
//! kube-rs's kubeconfig parser (every string, as a property), kubectl
//! (`config view`, on hostile values), and `sh`/`bash` running the script in
//! a temporary HOME. Roster values here bypass validation on purpose: the
//! generators must be safe on their own (issue #11, finding 4 and 10).
//!
//! kubectl comes from the test environment (`. target/testenv/env.sh`, `$KUBECTL`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use tenantry_core::kubeconfig::{EXEC_API_VERSION, Kubeconfig, oidc_kubeconfig};
use tenantry_core::setup::{SetupError, SetupOs, setup_script};
use tenantry_model::Platform;

#[path = "kubeconfig/setup_downloads.rs"]
mod setup_downloads;

fn platform() -> Platform {
    let roster = "platform:\n  name: lab\n  api_server: https://k8s.lab.test:6443\n  oidc: { issuer_url: https://auth.lab.test/o/kubernetes/, client_id: kubernetes }\nusers: {}\n";
    tenantry_model::load("roster.yaml", roster.as_bytes(), &Default::default()).unwrap().platform
}

fn with(name: &str, server: &str, issuer: &str, client: &str, ca: Option<&str>) -> Platform {
    let mut platform = platform();
    platform.name = name.to_string();
    platform.api_server = Some(server.to_string());
    platform.api_server_ca = ca.map(str::to_string);
    let oidc = platform.oidc.as_mut().unwrap();
    oidc.issuer_url = issuer.to_string();
    oidc.client_id = client.to_string();
    platform
}

fn kubectl() -> PathBuf {
    let kube = tenantry_testenv::kube().unwrap_or_else(|e| panic!("{e}"));
    kube.kubectl.unwrap_or_else(|| panic!("$KUBECTL is not set: source target/testenv/env.sh (testenv/up kube)"))
}

/// What kube-rs reads from the text: (cluster name, server, CA data, current context, exec api version, args).
fn read_back(text: &str) -> (String, String, Option<String>, String, String, Vec<String>) {
    let parsed = kube::config::Kubeconfig::from_yaml(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!((parsed.kind.as_deref(), parsed.api_version.as_deref()), (Some("Config"), Some("v1")), "{text}");
    let cluster = &parsed.clusters[0];
    let data = cluster.cluster.as_ref().unwrap();
    let exec = parsed.auth_infos[0].auth_info.as_ref().unwrap().exec.as_ref().unwrap();
    assert_eq!(parsed.contexts[0].context.as_ref().unwrap().cluster, cluster.name);
    (
        cluster.name.clone(),
        data.server.clone().unwrap(),
        data.certificate_authority_data.clone(),
        parsed.current_context.clone().unwrap(),
        exec.api_version.clone().unwrap(),
        exec.args.clone().unwrap(),
    )
}

/// Strings a hostile or careless roster could hold, for every field at once.
const HOSTILE: &[&str] = &[
    "kubernetes\n- --exec-command=touch /tmp/pwned",
    "a: b\nusers: []",
    "\"quoted\" and 'single'",
    "yes",
    "~",
    "null",
    "# not a comment",
    "&anchor *alias !!binary",
    "line\u{2028}separator\u{2029}paragraph\u{85}nel",
    "\ttab and trailing space ",
    " leading space",
    "---",
    "...",
    "%YAML 1.1",
    "{ flow: [mapping] }",
    "- item",
    "$(touch /tmp/pwned) `id` ${HOME} '\\''",
    "\u{202E}reversed\u{2066}",
    "TENANTRY_KUBECONFIG_abcdef123456",
    "\u{1b}[31mred\u{7}",
    "caf\u{e9} \u{1F600}",
    "",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever the strings, the file serializes, and kube-rs reads back exactly them.
    #[test]
    fn any_text_round_trips_through_kube_rs(
        name in any::<String>(),
        server in any::<String>(),
        issuer in any::<String>(),
        client in any::<String>(),
        ca in proptest::option::of(any::<String>()),
    ) {
        let text = oidc_kubeconfig(&with(&name, &server, &issuer, &client, ca.as_deref()))
            .map_err(|e| TestCaseError::fail(e.to_string()))?
            .unwrap();
        let (cluster, read_server, read_ca, current, api_version, args) = read_back(&text);
        prop_assert_eq!(cluster, name.clone());
        prop_assert_eq!(current, name);
        prop_assert_eq!(read_server, server);
        use base64::Engine as _;
        prop_assert_eq!(read_ca, ca.map(|pem| base64::engine::general_purpose::STANDARD.encode(pem)));
        prop_assert_eq!(api_version, EXEC_API_VERSION);
        prop_assert_eq!(args, vec![
            "oidc-login".to_string(),
            "get-token".to_string(),
            format!("--oidc-issuer-url={issuer}"),
            format!("--oidc-client-id={client}"),
            "--oidc-extra-scope=email".to_string(),
        ]);
    }
}

/// kubectl's own reading of a kubeconfig file, as JSON.
fn kubectl_view(path: &Path) -> serde_json::Value {
    let output = Command::new(kubectl())
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(path)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "kubectl rejected {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn kubectl_reads_exactly_the_values_given_even_hostile_ones() {
    let dir = tempfile::tempdir().unwrap();
    // The plain file first: kubectl rejected the spliced text (issue #11, finding 10).
    let path = dir.path().join("plain");
    std::fs::write(&path, oidc_kubeconfig(&platform()).unwrap().unwrap()).unwrap();
    let view = kubectl_view(&path);
    assert_eq!(view["current-context"], "lab");
    assert_eq!(view["clusters"][0]["cluster"]["server"], "https://k8s.lab.test:6443");
    assert_eq!(view["users"][0]["user"]["exec"]["apiVersion"], EXEC_API_VERSION);
    assert_eq!(view["users"][0]["user"]["exec"]["command"], "kubectl");
    assert_eq!(view["users"][0]["user"]["exec"]["interactiveMode"], "IfAvailable");

    for (index, hostile) in HOSTILE.iter().enumerate() {
        let name = format!("n{index}{}", hostile.replace(['\n', '\r'], ""));
        let platform = with(&name, &format!("https://k8s.lab.test/{hostile}"), hostile, hostile, Some(hostile));
        let text = oidc_kubeconfig(&platform).unwrap().unwrap();
        let path = dir.path().join(format!("hostile-{index}"));
        std::fs::write(&path, &text).unwrap();
        let view = kubectl_view(&path);
        assert_eq!(view["users"].as_array().unwrap().len(), 1, "{hostile:?} added a user:\n{text}");
        assert_eq!(view["clusters"].as_array().unwrap().len(), 1, "{hostile:?}:\n{text}");
        assert_eq!(view["current-context"], name.as_str(), "{hostile:?}:\n{text}");
        assert_eq!(view["clusters"][0]["cluster"]["server"], format!("https://k8s.lab.test/{hostile}"));
        let args: Vec<&str> =
            view["users"][0]["user"]["exec"]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "oidc-login",
                "get-token",
                &format!("--oidc-issuer-url={hostile}"),
                &format!("--oidc-client-id={hostile}"),
                "--oidc-extra-scope=email"
            ],
            "{hostile:?}:\n{text}"
        );
        assert_eq!(view["users"][0]["user"]["exec"]["command"], "kubectl", "{hostile:?}:\n{text}");
    }
}

/// A directory with stand-ins for kubectl and kubelogin, so the script installs nothing.
fn stub_tools(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["kubectl", "kubectl-oidc_login"] {
        std::fs::write(bin.join(tool), "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(bin.join(tool), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

#[test]
fn the_setup_script_writes_hostile_values_as_data_in_sh_and_bash() {
    let dir = tempfile::tempdir().unwrap();
    let bin = stub_tools(dir.path());
    let marker = dir.path().join("pwned");
    let m = marker.display().to_string();
    let hostile = [
        format!("x'; touch {m}; '"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("k\ntouch {m}\n"),
        format!("k\nTENANTRY_KUBECONFIG_nonce12345\ntouch {m}\n"),
        format!("k\nEOF\ntouch {m}\n"),
        format!("\\\ntouch {m}"),
    ]
    .join("\n");
    let platform = with("lab", "https://k8s.lab.test:6443", &hostile, &hostile, Some(&hostile));
    let expected = oidc_kubeconfig(&platform).unwrap().unwrap();
    for shell in ["sh", "bash"] {
        for os in [SetupOs::Linux, SetupOs::Mac] {
            let script = setup_script(&platform, os, "nonce12345").unwrap();
            let syntax = Command::new(shell).arg("-n").arg("-c").arg(&script).output().unwrap();
            assert!(syntax.status.success(), "{shell} -n: {}", String::from_utf8_lossy(&syntax.stderr));
            if os == SetupOs::Mac {
                continue; // it needs Homebrew to run; its syntax is checked above
            }
            let home = dir.path().join(format!("home-{shell}"));
            std::fs::create_dir_all(&home).unwrap();
            let run = Command::new(shell)
                .arg("-c")
                .arg(&script)
                .env_clear()
                .env("HOME", &home)
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{shell}: {}{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            );
            assert!(!marker.exists(), "{shell} ran a command from the roster");
            let written = std::fs::read_to_string(home.join(".kube/config")).unwrap();
            assert_eq!(written, expected, "{shell}: the file is the kubeconfig, byte for byte");
            let (_, _, _, _, _, args) = read_back(&written);
            assert_eq!(args[2], format!("--oidc-issuer-url={hostile}"));
            assert_eq!(args[3], format!("--oidc-client-id={hostile}"));
        }
    }
}

#[test]
fn the_setup_script_refuses_what_it_cannot_write_safely() {
    let unsafe_name = with("lab'; touch /tmp/x; '", "https://k", "https://i", "c", None);
    assert!(matches!(setup_script(&unsafe_name, SetupOs::Linux, "nonce12345"), Err(SetupError::UnsafePlatformName(_))));
    for nonce in ["short", "has space1", "x'; id; '12", &"n".repeat(65)] {
        assert!(matches!(setup_script(&platform(), SetupOs::Linux, nonce), Err(SetupError::BadNonce)), "{nonce:?}");
    }
    let mut without = platform();
    without.oidc = None;
    assert!(matches!(setup_script(&without, SetupOs::Linux, "nonce12345"), Err(SetupError::NoKubeconfig)));
    assert!(Kubeconfig::for_platform(&without).is_none());
    // The delimiter carries the nonce: two scripts differ only there.
    let a = setup_script(&platform(), SetupOs::Linux, "aaaaaaaa").unwrap();
    let b = setup_script(&platform(), SetupOs::Linux, "bbbbbbbb").unwrap();
    assert_eq!(a.replace("TENANTRY_KUBECONFIG_aaaaaaaa", "X"), b.replace("TENANTRY_KUBECONFIG_bbbbbbbb", "X"));
}
