//! Finding 7 (host part): a roster whose `os_user` names a system account
//! (here a service account with a home under /home, and a second uid 0)
//! had it adopted, added to `sudo`, and web logins routed into it. The host
//! target never adopts, changes, writes into, runs as or routes to an
//! account outside `UID_MIN..=UID_MAX` of the root's own login.defs.

use super::*;

const SYSTEM_USERS: &str = "  mallory: { email: mallory@example.org, tier: admin, workstation: { os_user: svc } }
  eve: { email: eve@example.org, tier: admin, workstation: { os_user: toor } }
";

/// A sandbox whose login.defs starts regular accounts at 1500, with `svc`
/// (uid 1200: regular by shadow's default of 1000, not by this host's
/// login.defs) and `toor` (uid 0), both with homes under /home.
fn sandbox_with_system_accounts() -> Sandbox {
    let sandbox = Sandbox::new();
    let append = |file: &str, text: &str| {
        let path = sandbox.root.join("etc").join(file);
        let mut content = std::fs::read_to_string(&path).unwrap_or_default();
        content.push_str(text);
        std::fs::write(&path, content).unwrap();
    };
    append("login.defs", "# this host's ranges\nUID_MIN\t\t 1500\nUID_MAX\t\t60000\nGID_MIN\t\t 1500\n");
    append("passwd", "svc:x:1200:1200:service:/home/svc:/bin/sh\ntoor:x:0:0:second root:/home/toor:/bin/sh\n");
    append("group", "svc:x:1200:\n");
    append("shadow", "svc:*:19000:0:99999:7:::\ntoor:*:19000:0:99999:7:::\n");
    append("gshadow", "svc:!::\n");
    for (name, uid) in [("svc", 1200), ("toor", 0)] {
        let home = sandbox.path(&format!("/home/{name}"));
        std::fs::create_dir(&home).unwrap();
        std::os::unix::fs::chown(&home, Some(uid), Some(uid)).unwrap();
    }
    sandbox
}

fn shown_steps(sandbox: &Sandbox, prepared: &Prepared, id: &str) -> Vec<String> {
    sandbox.target().commands_for(change(prepared, id).unwrap()).unwrap()
}

#[tokio::test]
async fn system_accounts_are_never_adopted_changed_or_routed_to() {
    let sandbox = sandbox_with_system_accounts();
    let roster = sandbox.roster(&format!("{ALICE_SINGLE}{SYSTEM_USERS}"));
    // A record as the old code left it after adopting `svc`: it changes nothing.
    let record = sandbox.root.join("var/lib/tenantry/host/Account/-/svc.json");
    std::fs::create_dir_all(record.parent().unwrap()).unwrap();
    std::fs::write(
        &record,
        r#"{"owner": "mallory", "content": {"user": "mallory", "os_user": "svc", "groups": ["sudo"]}}"#,
    )
    .unwrap();

    let prepared = sandbox.plan(&roster, Policy::default()).await;
    for (os_user, uid) in [("svc", 1200), ("toor", 0)] {
        let account = change(&prepared, &format!("host/Account/-/{os_user}")).unwrap();
        assert_eq!(account.action, Action::Conflict, "{os_user}: {account:?}");
        // The conflict itself says why (the target's reason for a foreign object).
        assert!(
            account.reason.contains(&format!("system account (uid {uid}, outside UID_MIN 1500")),
            "{}",
            account.reason
        );
    }
    // The plan says the routes to them are left out, and shows what is written instead.
    let steps = shown_steps(&sandbox, &prepared, "host/GeneratedFile/-/ttyd-user-map");
    for entry in ["mallory=svc", "eve=toor"] {
        assert!(
            steps.iter().any(|s| s.starts_with("# warning: ") && s.contains(&format!("`{entry}` is left out"))),
            "{steps:#?}"
        );
    }

    let (report, warnings) = sandbox.apply_with(&roster, Policy::default()).await;
    let failed: BTreeSet<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    assert!(failed.contains("host/Account/-/svc") && failed.contains("host/Account/-/toor"), "{failed:#?}");
    assert!(report.failures.iter().all(|f| f.owner != Owner::User("alice".into())), "{:#?}", report.failures);
    assert!(warnings.iter().any(|w| w.contains("`mallory=svc` is left out")), "{warnings:#?}");

    // Not adopted, not changed, nothing written into their homes, nothing run as them.
    let sudo = sandbox.group_members("sudo");
    assert!(sudo.contains("alice") && !sudo.contains("svc") && !sudo.contains("toor"), "{sudo:?}");
    for home in ["/home/svc", "/home/toor"] {
        let inside: Vec<_> = std::fs::read_dir(sandbox.path(home)).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(inside.is_empty(), "{home}: {inside:?}");
    }
    // No login is routed to them; alice's is.
    let user_map = std::fs::read_to_string(sandbox.path("/etc/ttyd-user-map")).unwrap();
    let routes: Vec<&str> = user_map.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(routes, vec!["alice=alice"]);
    let admins = std::fs::read_to_string(sandbox.path("/etc/ttyd-admins")).unwrap();
    assert_eq!(admins.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>(), vec!["alice"]);
    let dispatch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.path("/etc/t3-serve/dispatch.json")).unwrap()).unwrap();
    let routed: Vec<&str> = dispatch.as_object().unwrap().values().map(|r| r["os_user"].as_str().unwrap()).collect();
    assert_eq!(routed, vec!["alice"]);

    // The next plan still tells the truth: the accounts conflict, the routing file still differs from the roster.
    let again = sandbox.plan(&roster, Policy::default()).await;
    assert_eq!(change(&again, "host/Account/-/svc").unwrap().action, Action::Conflict);
    assert_eq!(change(&again, "host/GeneratedFile/-/ttyd-user-map").unwrap().action, Action::Update);
}

/// Whatever reaches the target directly (a change planned before the
/// account became a system one, a hand-made change, refresh, destroy) is refused too.
#[tokio::test]
async fn every_entry_point_refuses_a_system_account() {
    let sandbox = sandbox_with_system_accounts();
    let target = sandbox.target();
    let refused = |result: Result<tenantry_core::Applied, tenantry_core::TargetError>| {
        let error = result.unwrap_err().to_string();
        assert!(error.contains("is a system account"), "{error}");
    };
    let account = serde_json::json!({
        "user": "mallory", "os_user": "svc", "comment": "m", "shell": "/bin/bash",
        "home": "/home/svc", "groups": ["sudo"], "locked": false,
    });
    refused(
        target
            .apply(
                &hand_change("host/Account/-/svc", Action::Update, account.clone()),
                &tenantry_core::Snapshot::default(),
            )
            .await,
    );
    refused(
        target
            .apply(&hand_change("host/Account/-/svc", Action::Adopt, account), &tenantry_core::Snapshot::default())
            .await,
    );
    let port = serde_json::json!({ "pool": "terminal", "port": 3773, "user": "eve", "os_user": "toor" });
    refused(
        target
            .apply(&hand_change("host/Port/terminal/eve", Action::Create, port), &tenantry_core::Snapshot::default())
            .await,
    );
    let kubeconfig =
        serde_json::json!({ "os_user": "toor", "path": "/home/toor/.kube/config", "mode": "0600", "text": "x" });
    refused(
        target
            .apply(
                &hand_change("host/Kubeconfig/toor/config", Action::Create, kubeconfig),
                &tenantry_core::Snapshot::default(),
            )
            .await,
    );
    let checkout = serde_json::json!({
        "os_user": "toor", "repo": "infra", "url": format!("file://{}/infra.git", sandbox.repos.display()),
        "path": "/home/toor/code", "layout": "single", "migrate_from": null, "extra_remotes": {},
    });
    refused(
        target
            .apply(
                &hand_change("host/Checkout/toor/infra", Action::Create, checkout.clone()),
                &tenantry_core::Snapshot::default(),
            )
            .await,
    );
    refused(target.refresh(&Content::from_value(&checkout)).await.map(|_| tenantry_core::Applied::done()));
    for os_user in ["svc", "toor"] {
        let error = destroy_account(&sandbox.config(), os_user).unwrap_err().to_string();
        assert!(error.contains("is a system account"), "{error}");
    }

    assert!(!sandbox.group_members("sudo").contains("svc"));
    let passwd = std::fs::read_to_string(sandbox.root.join("etc/passwd")).unwrap();
    assert!(passwd.contains("\nsvc:") && passwd.contains("\ntoor:"), "{passwd}");
    for home in ["/home/svc", "/home/toor"] {
        assert!(std::fs::read_dir(sandbox.path(home)).unwrap().next().is_none(), "{home}");
    }
    // A group of this name below GID_MIN is never made a new account's primary group.
    let mut group = std::fs::read_to_string(sandbox.root.join("etc/group")).unwrap();
    group.push_str("wheelish:x:1100:\n");
    std::fs::write(sandbox.root.join("etc/group"), group).unwrap();
    let new = serde_json::json!({
        "user": "w", "os_user": "wheelish", "comment": "w", "shell": "/bin/bash",
        "home": "/home/wheelish", "groups": [], "locked": false,
    });
    let error = target
        .apply(&hand_change("host/Account/-/wheelish", Action::Create, new), &tenantry_core::Snapshot::default())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("system group (gid 1100, below GID_MIN 1500"), "{error}");
    assert!(!std::fs::read_to_string(sandbox.root.join("etc/passwd")).unwrap().contains("wheelish"));
}
