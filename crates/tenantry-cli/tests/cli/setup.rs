//! `tenantry setup-script` with `[vault]` configured and `--with terraform`:
//! the script, run by `sh` with every tool already on PATH (so it downloads
//! nothing), writes the Vault sign-in file with tenantry.toml's address and
//! OIDC mount, and `vault_login` signs in with exactly those.

use super::*;

#[test]
fn the_setup_script_brings_the_vault_sign_in_and_terraform_from_the_configuration() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = workdir(WORKSTATION_ROSTER);
    fs::write(
        dir.path().join("tenantry.toml"),
        "[vault]\naddress = \"https://vault.lab.test:8200\"\noidc_mount = \"oidc-lab\"\n",
    )
    .unwrap();
    let script = tenantry(dir.path(), &["setup-script", "--os", "linux", "--with", "terraform"]);
    assert_eq!(script.status.code(), Some(0), "{}", text(&script));
    let script_text = String::from_utf8(script.stdout).unwrap();
    assert!(script_text.contains("installing OpenTofu") && script_text.contains("installing the OpenBao CLI"));
    let without = tenantry(dir.path(), &["setup-script", "--os", "linux"]);
    assert!(!String::from_utf8_lossy(&without.stdout).contains("OpenTofu"), "terraform only on request");
    let unknown = tenantry(dir.path(), &["setup-script", "--os", "linux", "--with", "terraformm"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));

    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    for tool in ["kubectl", "kubectl-oidc_login", "tofu", "bao"] {
        fs::write(bin.join(tool), format!("#!/bin/sh\necho {tool} \"$@\"\n")).unwrap();
        fs::set_permissions(bin.join(tool), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let home = dir.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = Command::new("sh").arg("-c").arg(&script_text).env_clear().env("HOME", &home).env("PATH", &path).output();
    let run = run.unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert!(!text(&run).contains("installing"), "everything was there: {}", text(&run));
    let vault_file = home.join(".config/tenantry/lab-vault.sh");
    let login = Command::new("sh")
        .arg("-c")
        .arg(format!(". '{}' && echo \"$VAULT_ADDR\" && vault_login", vault_file.display()))
        .env_clear()
        .env("HOME", &home)
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&login.stdout),
        "https://vault.lab.test:8200\nbao login -method=oidc -path=oidc-lab\n",
        "{}",
        text(&login)
    );
    assert_eq!(fs::metadata(&vault_file).unwrap().permissions().mode() & 0o777, 0o600);
}
