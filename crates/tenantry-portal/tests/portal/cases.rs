//! The cases, in the order they run (they share the world and alice's browser).

use crate::browser::{Browser, file_is};
use crate::world::World;
use k8s_openapi::api::core::v1::ResourceQuota;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tenantry_portal::respond::CONTENT_SECURITY_POLICY;

pub type Outcome = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err(format!($($message)+));
        }
    };
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_default()
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// GET `path` with `cookie` (may be empty): status, Location, Set-Cookie values, body.
async fn get(world: &World, path: &str, cookie: &str) -> Result<(u16, String, Vec<String>, String), String> {
    let mut request = http().get(world.url(path));
    if !cookie.is_empty() {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let location = header("location");
    let set_cookies =
        response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    let body = response.text().await.unwrap_or_default();
    Ok((status, location, set_cookies, body))
}

pub async fn without_a_session_every_page_but_sign_in_redirects(world: &World) -> Outcome {
    let alice = &world.alice.key;
    let paths = [
        "/".to_string(),
        format!("/users/{alice}"),
        format!("/users/{alice}/kubeconfig"),
        format!("/users/{alice}/setup/linux"),
        "/admin".to_string(),
        "/admin?q=bob&page=2".to_string(),
        "/admin/reconcile".to_string(),
        format!("/admin/users/{alice}"),
        "/no/such/page".to_string(),
    ];
    for path in &paths {
        let (status, location, _, body) = get(world, path, "").await?;
        ensure!(status == 303, "{path}: HTTP {status}, expected 303 to the sign-in");
        ensure!(location == format!("/signin?next={}", encode(path)), "{path}: sent to {location}");
        ensure!(!body.contains(alice.as_str()), "{path}: a redirect shows nothing");
    }
    let (status, _, _, body) = get(world, "/signin", "").await?;
    ensure!(status == 200 && body.contains("Sign in with your platform account"), "/signin: HTTP {status}");
    let response = http().get(world.url("/static/portal.css")).send().await.map_err(|e| e.to_string())?;
    ensure!(response.status() == 200, "the stylesheet is public: HTTP {}", response.status());
    let response = http().post(world.url("/signout")).form(&[("csrf", "x")]).send().await.map_err(|e| e.to_string())?;
    ensure!(response.status() == 303, "sign-out without a session: HTTP {}", response.status());
    Ok(())
}

/// Quota usage as the apiserver reports it, once the pod and config maps of the setup count.
async fn live_usage(world: &World, namespace: &str) -> Result<BTreeMap<String, String>, String> {
    let client =
        kube::Client::try_from(world.kube.config().await.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let api: kube::Api<ResourceQuota> = kube::Api::namespaced(client, namespace);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let quota = api.get("user-quota").await.map_err(|e| e.to_string())?;
        let used: BTreeMap<String, String> =
            quota.status.and_then(|s| s.used).unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        let counted = used.get("pods").is_some_and(|p| p == "1")
            && used.get("configmaps").and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| c >= 2);
        if counted {
            return Ok(used);
        }
        if Instant::now() > deadline {
            return Err(format!("the quota controller never counted the setup's pod and config maps: {used:?}"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub async fn alice_signs_in_through_keycloak_and_sees_her_platform(world: &World, browser: &Browser) -> Outcome {
    let alice = &world.alice;
    let home = format!("/users/{}", alice.key);
    browser.goto(&world.url(&home)).await?;
    let at = browser.wait_path("/signin").await?;
    ensure!(at == format!("/signin?next={}", encode(&home)), "sent to {at}");
    browser.screenshot(world, "01-signin").await?;
    browser.click("a.button").await?;
    browser.text("#kc-login").await?;
    browser.screenshot(world, "02-keycloak-login").await?;
    browser.keycloak_form(alice).await?;
    browser.wait_path(&home).await?;

    let used = live_usage(world, &world.ns("alice")).await?;
    browser.client.refresh().await.map_err(|e| e.to_string())?;
    ensure!(browser.text("h1").await? == alice.key, "the page is alice's");
    let body = browser.body().await?;
    ensure!(body.contains(&alice.email) && body.contains("namespace-owner"), "email and tier shown");
    ensure!(!body.contains(&world.bob.email) && !body.contains(&world.bob.key), "nothing of bob's");
    let namespaces = browser.texts("article.namespace h3").await?;
    ensure!(namespaces == [world.ns("alice"), world.ns("alice-prod")], "namespaces: {namespaces:?}");
    // The numbers are the apiserver's: each row of alice's first namespace against the quota status.
    let rows = browser.texts("article.namespace:first-of-type table.usage tbody tr").await?;
    for resource in ["pods", "configmaps", "requests.cpu"] {
        let row = rows.iter().find(|r| r.starts_with(resource)).ok_or(format!("no {resource} row in {rows:?}"))?;
        let used_value = used.get(resource).ok_or(format!("the apiserver reports no {resource}"))?;
        ensure!(
            row.split_whitespace().nth(1) == Some(used_value.as_str()),
            "{resource}: page `{row}`, apiserver {used_value}"
        );
    }
    let pods = rows.iter().find(|r| r.starts_with("pods")).cloned().unwrap_or_default();
    ensure!(pods.contains("1 20") && pods.contains("5 %"), "pods: 1 of 20 (5 %): `{pods}`");
    let meters = browser.client.find_all(fantoccini::Locator::Css("meter")).await.map_err(|e| e.to_string())?;
    ensure!(meters.len() >= 8, "a bar per quota line: {} meters", meters.len());

    let dns = browser.texts("section[aria-labelledby=domains] tbody tr").await?;
    ensure!(
        dns.len() == 1 && dns[0].contains(&world.domain("budget")) && dns[0].contains("points where it should"),
        "DNS observed in BIND: {dns:?}"
    );
    let vault = browser.text("section[aria-labelledby=vault]").await?;
    ensure!(vault.contains(&format!("namespace-owner-{}", alice.key)), "Vault policy: {vault}");
    ensure!(vault.contains(&format!("secret/data/{}/*", alice.key)), "Vault paths: {vault}");
    let station = browser.text("section[aria-labelledby=workstation]").await?;
    let ports = world.session.user_views().await.map_err(|e| e.to_string())?;
    let view = ports.iter().find(|v| v.user == alice.key).ok_or("alice has no view")?;
    let terminal = view.ports.get("terminal").ok_or("alice has no terminal port")?;
    ensure!(station.contains(&format!("/home/{}", alice.key)) && station.contains(&terminal.to_string()), "{station}");
    let link = browser.client.find(fantoccini::Locator::Css("section[aria-labelledby=workstation] td a")).await;
    let href = link.map_err(|e| e.to_string())?.attr("href").await.map_err(|e| e.to_string())?;
    ensure!(href == Some(format!("https://t3.{}/?port={terminal}", world.bind.zone)), "terminal link {href:?}");

    let grants = browser.texts("table.grants tbody tr th").await?;
    ensure!(grants.len() == view.grants.len(), "{} grant rows for {} grants", grants.len(), view.grants.len());
    for grant in &view.grants {
        ensure!(grants.iter().any(|g| g.starts_with(&grant.id.to_string())), "grant {} missing", grant.id);
    }
    let why = browser.text("table.grants").await?;
    ensure!(why.contains("quota: { configmaps: \"10\", pods: \"20\" }"), "the roster line of the quota is shown");
    ensure!(why.contains("platform default quota merged with the user's quota"), "the rule is shown");
    browser.screenshot_full(world, "03-tenant", 1280).await?;
    browser.screenshot_full(world, "04-tenant-phone", 390).await?;
    Ok(())
}

pub async fn alice_downloads_a_kubeconfig_kubectl_loads_and_a_setup_script_bash_runs(
    world: &World,
    browser: &Browser,
) -> Outcome {
    let expected = world.session.kubeconfig(&world.alice.key).map_err(|e| e.to_string())?;
    browser.click("a[href$='/kubeconfig']").await?;
    let name = format!("portal-{}.kubeconfig", world.run);
    let file = browser.downloaded(&name).await?;
    ensure!(file_is(&file, &expected), "the download is the CLI's kubeconfig, byte for byte");
    let output = std::process::Command::new(&world.kubectl)
        .args(["config", "view", "--kubeconfig"])
        .arg(&file)
        .args(["-o", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(output.status.success(), "kubectl refused it: {}", String::from_utf8_lossy(&output.stderr));
    let config: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())?;
    ensure!(config["clusters"][0]["cluster"]["server"] == world.kube.url.as_str(), "server: {config}");
    let exec = &config["users"][0]["user"]["exec"];
    let args: Vec<&str> = exec["args"].as_array().into_iter().flatten().filter_map(|a| a.as_str()).collect();
    ensure!(exec["command"] == "kubectl" && args.contains(&"oidc-login"), "exec plugin: {exec}");
    ensure!(args.contains(&format!("--oidc-issuer-url={}", world.keycloak.issuer).as_str()), "issuer: {args:?}");

    // Chromium holds a shell script from a site first visited today for a "Keep" click
    // (its file-type policy), which a headless browser cannot give: the scripts are
    // fetched from the links on the page with the browser's session instead.
    let cookie = browser.session_cookie().await?;
    let home = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut scripts = Vec::new();
    for os in ["linux", "mac"] {
        let link = browser.client.find(fantoccini::Locator::Css(&format!("a[href$='/setup/{os}']"))).await;
        let href = link.map_err(|e| e.to_string())?.attr("href").await.map_err(|e| e.to_string())?.unwrap_or_default();
        let response =
            http().get(world.url(&href)).header("cookie", &cookie).send().await.map_err(|e| e.to_string())?;
        let disposition =
            response.headers().get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        ensure!(disposition == format!("attachment; filename=\"tenantry-setup-{os}.sh\""), "{os}: {disposition}");
        let path = home.path().join(format!("tenantry-setup-{os}.sh"));
        std::fs::write(&path, response.text().await.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        scripts.push(path);
    }
    let (script, mac) = (&scripts[0], &scripts[1]);
    let syntax = std::process::Command::new("bash").arg("-n").arg(mac).output().map_err(|e| e.to_string())?;
    ensure!(syntax.status.success(), "the macOS script parses: {}", String::from_utf8_lossy(&syntax.stderr));
    // Run the Linux script as a user would, with kubectl and kubelogin already installed (stubs).
    let bin = home.path().join(".local/bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    for tool in ["kubectl", "kubectl-oidc_login"] {
        let path = bin.join(tool);
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    }
    let ran = std::process::Command::new("bash")
        .arg(script)
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(ran.status.success(), "the setup script failed: {}", String::from_utf8_lossy(&ran.stderr));
    ensure!(file_is(&home.path().join(".kube/config"), &expected), "the script wrote the same kubeconfig");
    Ok(())
}

pub async fn alice_cannot_reach_bobs_pages_nor_the_admin_pages(world: &World, browser: &Browser) -> Outcome {
    let (alice, bob) = (&world.alice.key, &world.bob.key);
    browser.goto(&world.url(&format!("/users/{bob}"))).await?;
    ensure!(browser.text("h1").await? == "Not found", "bob's page does not exist for alice");
    browser.screenshot(world, "05-not-found").await?;
    let cookie = browser.session_cookie().await?;
    for path in [
        format!("/users/{bob}"),
        format!("/users/{bob}/kubeconfig"),
        format!("/users/{bob}/setup/linux"),
        format!("/users/{alice}/setup/windows"),
        "/users/nobody".to_string(),
        "/admin".to_string(),
        "/admin/reconcile".to_string(),
        format!("/admin/users/{alice}"),
        format!("/admin/users/{bob}"),
    ] {
        let (status, _, _, body) = get(world, &path, &cookie).await?;
        ensure!(status == 404, "{path}: HTTP {status} for alice, expected 404");
        ensure!(!body.contains(&world.bob.email), "{path}: bob's email shown to alice");
    }
    let (status, _, _, _) = get(world, &format!("/users/{alice}"), &cookie).await?;
    ensure!(status == 200, "her own page: HTTP {status}");
    Ok(())
}

pub async fn a_tampered_or_forged_cookie_is_refused(world: &World, browser: &Browser) -> Outcome {
    let path = format!("/users/{}", world.alice.key);
    let cookie = browser.session_cookie().await?;
    let (name, value) = cookie.split_once('=').ok_or("no cookie value")?;
    let middle = value.len() / 2;
    let flipped = if value.as_bytes()[middle] == b'A' { 'B' } else { 'A' };
    let tampered = format!("{name}={}{flipped}{}", &value[..middle], &value[middle + 1..]);
    let (status, location, cookies, _) = get(world, &path, &tampered).await?;
    ensure!(status == 303 && location.starts_with("/signin?next="), "tampered: HTTP {status} to {location}");
    ensure!(
        cookies.iter().any(|c| c.starts_with("tenantry_portal=;") && c.contains("Max-Age=0")),
        "the refused cookie is cleared: {cookies:?}"
    );
    // A session sealed with any other key (a forgery) is refused the same way.
    let forger = tenantry_portal::session::CookieSealer::new(None, false);
    let session = tenantry_portal::session::SessionData {
        user: world.wizard.key.clone(),
        email: world.wizard.email.clone(),
        issued: 0,
        expires: u64::MAX,
        csrf: "x".into(),
    };
    let forged = forger.seal(tenantry_portal::session::SESSION_COOKIE, &session, Duration::from_secs(60));
    let forged = forged.split(';').next().unwrap_or_default().to_string();
    let (status, _, _, _) = get(world, "/admin", &forged).await?;
    ensure!(status == 303, "forged admin session: HTTP {status}");
    let (status, _, _, _) = get(world, &path, &cookie).await?;
    ensure!(status == 200, "the real cookie still works: HTTP {status}");
    Ok(())
}

pub async fn an_expired_session_signs_in_again(world: &World, browser: &Browser) -> Outcome {
    let path = format!("/users/{}", world.alice.key);
    world.skew.fetch_add(3601, Ordering::SeqCst);
    browser.goto(&world.url(&path)).await?;
    let at = browser.wait_path("/signin").await?;
    ensure!(at.ends_with("&m=expired"), "sent to {at}");
    ensure!(browser.body().await?.contains("Your session ended"), "the page says why");
    browser.screenshot(world, "06-session-expired").await?;
    browser.click("a.button").await?;
    // Keycloak still knows alice: no form this time, straight back.
    browser.wait_path(&path).await?;
    ensure!(browser.text("h1").await? == world.alice.key, "back on her page");
    Ok(())
}

pub async fn pages_carry_a_strict_policy_and_no_secret(world: &World, browser: &Browser) -> Outcome {
    let cookie = browser.session_cookie().await?;
    let response = http()
        .get(world.url(&format!("/users/{}", world.alice.key)))
        .header("cookie", &cookie)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let header =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    ensure!(header("content-security-policy") == CONTENT_SECURITY_POLICY, "CSP: {}", header("content-security-policy"));
    ensure!(header("x-frame-options") == "DENY" && header("cache-control") == "no-store", "headers");
    let body = response.text().await.map_err(|e| e.to_string())?;
    ensure!(!body.contains("<script") && !body.contains(" style="), "no script and no inline style");
    let value = cookie.split_once('=').map(|(_, v)| v).unwrap_or_default();
    for secret in [world.keycloak.portal_client_secret.as_str(), value, world.alice.password.as_str()] {
        ensure!(!body.contains(secret), "a secret is on the page");
    }
    ensure!(!body.contains("<label for=\"q\""), "alice's page has no admin search");
    Ok(())
}

pub async fn signing_out_takes_a_post_with_the_csrf_token(world: &World, browser: &Browser) -> Outcome {
    let path = format!("/users/{}", world.alice.key);
    let cookie = browser.session_cookie().await?;
    let response = http()
        .post(world.url("/signout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "0123456789abcdef0123456789abcdef")])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(response.status() == 403, "a sign-out without the page's token: HTTP {}", response.status());
    let (status, _, _, _) = get(world, &path, &cookie).await?;
    ensure!(status == 200, "still signed in: HTTP {status}");

    browser.click("form.signout button").await?;
    let at = browser.wait_path("/signin").await?;
    ensure!(at == "/signin?m=signed-out", "after sign-out: {at}");
    ensure!(browser.body().await?.contains("You are signed out."), "the page says so");
    browser.screenshot(world, "07-signed-out").await?;
    browser.goto(&world.url(&path)).await?;
    browser.wait_path("/signin").await?;
    let (status, _, _, _) = get(world, &path, &cookie).await?;
    ensure!(status == 303, "the signed-out cookie, replayed: HTTP {status}");
    Ok(())
}

pub async fn the_admin_sees_every_user_searches_pages_and_explains(world: &World) -> Outcome {
    let browser = Browser::open(world).await?;
    let result = admin_case(world, &browser).await;
    browser.close().await;
    result
}

async fn admin_case(world: &World, browser: &Browser) -> Outcome {
    browser.sign_in(world, &world.wizard, "/admin").await?;
    let users = browser.texts("table.users tbody th").await?;
    ensure!(users.len() == 3, "page 1 holds 3 users: {users:?}");
    let status = browser.text("section[aria-labelledby=everyone] p[role=status]").await?;
    ensure!(status == "Users 1–3 of 5.", "{status}");
    let last = browser.text("section[aria-labelledby=last]").await?;
    // Withheld: every resource of the namespace alice gave up; departing: dave.
    ensure!(
        last.contains("planned, not applied") && last.contains("withheld 8") && last.contains("departing users 1"),
        "{last}"
    );
    browser.screenshot_full(world, "08-admin", 1280).await?;
    browser.screenshot_full(world, "08-admin-phone", 390).await?;
    browser.click("a[rel=next]").await?;
    browser.wait_path("/admin?page=2").await?;
    let second = browser.texts("table.users tbody th").await?;
    ensure!(second.len() == 2 && second.iter().all(|u| !users.contains(u)), "page 2: {second:?}");

    browser.type_into("#q", &world.bob.key).await?;
    browser.click("form.search button").await?;
    browser.wait_path("/admin?q=").await?;
    let found = browser.texts("table.users tbody th").await?;
    ensure!(found == [world.bob.key.clone()], "search for bob: {found:?}");
    browser.screenshot(world, "09-admin-search").await?;

    browser.goto(&world.url("/admin/reconcile")).await?;
    let drift = browser.text("section[aria-labelledby=drift]").await?;
    ensure!(
        drift.contains(&format!("dns/CNAME/{}/{}", world.bind.zone, world.domain("notes"))),
        "bob's new domain is drift: {drift}"
    );
    let withheld = browser.text("section[aria-labelledby=withheld]").await?;
    ensure!(withheld.contains(&format!("kubernetes/Namespace/-/{}", world.ns("alice-old"))), "{withheld}");
    let departing = browser.text("section[aria-labelledby=departing]").await?;
    ensure!(departing.contains(&format!("dave{}", world.run)), "{departing}");
    let targets = browser.text("section[aria-labelledby=result] table").await?;
    ensure!(targets.contains("kubernetes") && targets.contains("dns") && targets.contains("local"), "{targets}");
    browser.screenshot_full(world, "10-reconcile", 1280).await?;
    browser.screenshot_full(world, "10-reconcile-phone", 390).await?;

    browser.goto(&world.url(&format!("/admin/users/{}", world.alice.key))).await?;
    ensure!(browser.text("h1").await?.contains(&world.alice.key), "explain page");
    let views = world.session.explain(&world.alice.key).await.map_err(|e| e.to_string())?;
    let rows = browser.texts("table.grants tbody th").await?;
    ensure!(
        rows == views.resources.iter().map(|g| g.id.to_string()).collect::<Vec<_>>(),
        "the explain page lists what `tenantry explain` lists"
    );
    browser.screenshot_full(world, "11-explain", 1280).await?;

    browser.goto(&world.url(&format!("/users/{}", world.bob.key))).await?;
    ensure!(browser.text("h1").await? == world.bob.key, "an admin opens anyone's page");
    ensure!(browser.body().await?.contains("viewing another user's page as an admin"), "and is told so");
    let dns = browser.texts("section[aria-labelledby=domains] tbody tr").await?;
    ensure!(
        dns.iter().any(|r| r.contains(&world.domain("notes")) && r.contains("the next apply will create it")),
        "bob's new domain is pending: {dns:?}"
    );
    Ok(())
}

pub async fn an_email_on_no_roster_entry_sees_not_on_this_platform(world: &World) -> Outcome {
    let browser = Browser::open(world).await?;
    let result = async {
        browser.goto(&world.url("/signin")).await?;
        browser.click("a.button").await?;
        browser.keycloak_form(&world.stranger).await?;
        browser.wait_path("/auth/callback").await?;
        ensure!(browser.text("h1").await? == "You are not on this platform", "the page says so");
        ensure!(browser.body().await?.contains(&world.stranger.email), "with the email they signed in as");
        browser.screenshot(world, "12-not-on-this-platform").await?;
        ensure!(browser.client.get_named_cookie("tenantry_portal").await.is_err(), "no session was given");
        browser.goto(&world.url(&format!("/users/{}", world.alice.key))).await?;
        browser.wait_path("/signin").await.map(drop)
    }
    .await;
    browser.close().await;
    result
}
