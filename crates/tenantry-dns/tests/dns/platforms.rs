//! Issue #12 on real BIND and PowerDNS (and the Cloudflare fixture): two
//! rosters with different `platform.name` on one zone never see, take,
//! prune or destroy each other's records; records an earlier version wrote
//! (no mark) are claimed only through the inventory; a configured zone that
//! does not exist is a plan problem for its own records only. Marks are
//! checked with real DNS queries of the ownership TXT records.

use super::*;
use std::collections::BTreeSet;
use tenantry_dns::MARK_LABEL;

/// A roster of `platform` with one power-user per name, each with the domain `dnst-<id>-<name>.lab.test`.
fn platform_team(platform: &str, id: &str, users: &[&str], target: &str) -> tenantry_model::Roster {
    let mut text = format!("platform:\n  name: {platform}\n  dns: {{ cname_target: {target} }}\nusers:\n");
    for user in users {
        text.push_str(&format!(
            "  {user}{id}: {{ email: {user}{id}@example.org, tier: power-user, domains: [dnst-{id}-{user}.{ZONE}] }}\n"
        ));
    }
    roster(&text)
}

async fn target_for(peer: &Peer, platform: &str) -> Arc<DnsTarget> {
    Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap().with_platform(platform))
}

fn id_of(id: &str, user: &str) -> String {
    format!("dns/CNAME/{ZONE}/{}", fqdn(id, user))
}

/// Users named by any line of the plan (every action, shown-only ones included).
fn users_in(prepared: &Prepared) -> BTreeSet<String> {
    prepared.plan.changes.iter().filter_map(|c| c.owner.user().map(str::to_string)).collect()
}

/// The ownership TXT record of `name` as a real query returns it (its strings, space-separated).
async fn mark(addr: SocketAddr, name: &str) -> Option<String> {
    let mut client = query_client(addr).await;
    let owner = Name::from_ascii(format!("{MARK_LABEL}.{name}.")).unwrap();
    let response = client.query(owner, DNSClass::IN, RecordType::TXT).await.unwrap();
    response.answers().iter().find_map(|r| match r.data() {
        RData::TXT(txt) => {
            Some(txt.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect::<Vec<_>>().join(" "))
        }
        _ => None,
    })
}

fn words(user: &str, platform: &str) -> String {
    format!("managed-by=tenantry user={user} platform={platform}")
}

/// Remove the ownership record of `name` behind tenantry's back: the record
/// then looks as an earlier version (without marks) left it.
async fn unmark(provider: Provider, name: &str) {
    let mark = format!("{MARK_LABEL}.{name}");
    match provider {
        Provider::Rfc2136 => bulk_update(&[mark], RecordType::TXT).await,
        Provider::Powerdns => {
            let pdns = need(tenantry_testenv::powerdns());
            let patch = json!({ "rrsets": [{ "name": format!("{mark}."), "type": "TXT", "changetype": "DELETE" }] });
            let response = pdns
                .http()
                .unwrap()
                .patch(pdns.url("servers/localhost/zones/lab.test."))
                .json(&patch)
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.text().await.unwrap());
        }
        Provider::Cloudflare => unreachable!("the fixture is edited directly"),
    }
}

/// Each platform converges; a name both want is the first one's, a
/// conflict for the other; no-op plans, lost state, --offboard and the
/// destroy stage of one never touch the other's records.
async fn two_platforms(peer: Peer) {
    let provider = peer.config.provider;
    let id = run_id();
    let (lab, prod) = (format!("lab-{id}"), format!("prod-{id}"));
    let lab_target = target_for(&peer, &lab).await;
    let prod_target = target_for(&peer, &prod).await;
    let lab_engine = engine(&lab_target);
    let prod_engine = engine(&prod_target);
    let lab_roster = platform_team(&lab, &id, &["a", "s"], "tunnel-lab.example.net");
    let prod_roster = platform_team(&prod, &id, &["c", "s"], "tunnel-prod.example.net");

    let (_, report) = apply(&lab_engine, &lab_roster, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    for user in ["a", "s"] {
        assert_eq!(resolve(peer.dns, &fqdn(&id, user), RecordType::CNAME).await, vec!["tunnel-lab.example.net"]);
        assert_eq!(mark(peer.dns, &fqdn(&id, user)).await, Some(words(&format!("{user}{id}"), &lab)));
    }

    // The shared name is lab's: a conflict for prod naming lab, never overwritten.
    let (prepared, report) = apply(&prod_engine, &prod_roster, Policy::default()).await;
    let conflict = prepared.plan.changes.iter().find(|c| c.id.to_string() == id_of(&id, "s")).unwrap();
    assert_eq!(conflict.action, Action::Conflict);
    assert!(conflict.reason.contains(&format!("platform `{lab}`")), "{}", conflict.reason);
    assert_eq!(action(&prepared, &id_of(&id, "c")), Some(Action::Create));
    assert_eq!(users_in(&prepared), BTreeSet::from([format!("c{id}"), format!("s{id}")]));
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![format!("s{id}")]);
    assert_eq!(resolve(peer.dns, &fqdn(&id, "s"), RecordType::CNAME).await, vec!["tunnel-lab.example.net"]);
    assert_eq!(mark(peer.dns, &fqdn(&id, "s")).await, Some(words(&format!("s{id}"), &lab)));
    assert_eq!(mark(peer.dns, &fqdn(&id, "c")).await, Some(words(&format!("c{id}"), &prod)));

    // No-op plans show nothing of the other platform, with a lost state database too.
    let again = lab_engine.prepare(&lab_roster, Policy::default()).await.unwrap();
    assert!(!again.plan.has_changes(), "{:#?}", again.plan.changes);
    assert!(!users_in(&again).contains(&format!("c{id}")), "{:#?}", again.plan.changes);
    let forgetful = engine(&lab_target).prepare(&lab_roster, Policy { offboard: true, ..Policy::default() }).await;
    let forgetful = forgetful.unwrap();
    assert!(!users_in(&forgetful).contains(&format!("c{id}")), "{:#?}", forgetful.plan.changes);
    let forgetful = engine(&prod_target).prepare(&prod_roster, Policy { offboard: true, ..Policy::default() }).await;
    let forgetful = forgetful.unwrap();
    assert_eq!(users_in(&forgetful), BTreeSet::from([format!("s{id}")]), "{:#?}", forgetful.plan.changes);
    assert!(!forgetful.plan.departing.contains(&format!("a{id}")), "{:?}", forgetful.plan.departing);

    // --offboard of lab (a left) keeps a's name (DNS names are data) and touches nothing of prod's.
    let without_a = platform_team(&lab, &id, &["s"], "tunnel-lab.example.net");
    let (prepared, report) = apply(&lab_engine, &without_a, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &id_of(&id, "a")), Some(Action::Kept));
    assert_eq!(users_in(&prepared), BTreeSet::from([format!("a{id}")]), "{:#?}", prepared.plan.changes);

    // The destroy stage of lab removes a's record and mark only.
    let backups = tempfile::tempdir().unwrap();
    let plan = lab_engine.destroy_plan(&without_a, &format!("a{id}")).await.unwrap();
    assert!(lab_engine.destroy(&plan, backups.path(), "test destroy").await.unwrap().is_success());
    assert!(resolve(peer.dns, &fqdn(&id, "a"), RecordType::CNAME).await.is_empty());
    assert_eq!(mark(peer.dns, &fqdn(&id, "a")).await, None, "the mark goes with its record");
    assert_eq!(resolve(peer.dns, &fqdn(&id, "c"), RecordType::CNAME).await, vec!["tunnel-prod.example.net"]);

    // Asked to destroy lab's record, prod leaves it (another platform's) and says why.
    let shared: ResourceId = id_of(&id, "s").parse().unwrap();
    let destroyed = prod_target.destroy_user_records(std::slice::from_ref(&shared)).await.unwrap();
    assert!(destroyed.removed.is_empty(), "{:?}", destroyed.removed);
    assert!(destroyed.notes[0].contains(&format!("platform `{lab}`")), "{:?}", destroyed.notes);
    assert_eq!(resolve(peer.dns, &fqdn(&id, "s"), RecordType::CNAME).await, vec!["tunnel-lab.example.net"]);
    println!("{provider:?}: two platforms on one zone stay apart");
    tidy(provider, &["a", "c", "s"].map(|user| fqdn(&id, user))).await;
}

/// A record without a mark (as earlier versions wrote them on RFC 2136 and
/// PowerDNS): claimed with a plan line saying so when the inventory
/// remembers it, adopted otherwise; marked afterwards either way.
async fn earlier_versions_records(peer: Peer) {
    let provider = peer.config.provider;
    let id = run_id();
    let lab = format!("lab-{id}");
    let target = target_for(&peer, &lab).await;
    let engine = engine(&target);
    let roster = platform_team(&lab, &id, &["l"], "tunnel.example.net");
    let name = fqdn(&id, "l");
    assert!(apply(&engine, &roster, Policy::default()).await.1.is_success());

    unmark(provider, &name).await;
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    let claimed = prepared.plan.changes.iter().find(|c| c.id.to_string() == id_of(&id, "l")).unwrap();
    assert_eq!(claimed.action, Action::Update, "{claimed:?}");
    assert!(claimed.reason.contains("inventory remembers it"), "{}", claimed.reason);
    assert_eq!(mark(peer.dns, &name).await, Some(words(&format!("l{id}"), &lab)));
    assert!(!engine.prepare(&roster, Policy::default()).await.unwrap().plan.has_changes());

    // Not in the inventory (a fresh state database): an adoption shown in the plan.
    unmark(provider, &name).await;
    let fresh = super::engine(&target);
    let (prepared, report) = apply(&fresh, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    let adopted = prepared.plan.changes.iter().find(|c| c.id.to_string() == id_of(&id, "l")).unwrap();
    assert_eq!(adopted.action, Action::Adopt, "{adopted:?}");
    assert!(adopted.reason.contains("without tenantry's marks"), "{}", adopted.reason);
    assert_eq!(mark(peer.dns, &name).await, Some(words(&format!("l{id}"), &lab)));
    assert_eq!(resolve(peer.dns, &name, RecordType::CNAME).await, vec!["tunnel.example.net"]);
    tidy(provider, &[name]).await;
}

/// `[dns] zones` names a zone the server does not serve: a plan problem for
/// its records, and the rest of the plan (the zone that exists) goes on.
/// `dns`: where to check the existing zone's record with a real query.
async fn a_missing_zone(mut config: DnsConfig, env: &(dyn Fn(&str) -> Option<String> + Sync), dns: Option<SocketAddr>) {
    let id = run_id();
    let missing = format!("missing-{id}.test");
    config.zones.push(missing.clone());
    let target = Arc::new(DnsTarget::connect_with_env(&config, env).await.unwrap());
    let settings = Settings {
        dns_zones: vec![ZONE.to_string(), missing.clone()],
        dns_proxy_supported: config.provider.supports_proxy(),
        ..Settings::default()
    };
    let engine = Engine::new(
        vec![Arc::clone(&target) as Arc<dyn Target>],
        State::in_memory().unwrap(),
        Arc::new(FixedClock("2026-11-29T04:00:00Z".into())),
        settings,
    );
    let text = format!(
        "platform:\n  dns: {{ cname_target: tunnel.example.net }}\nusers:\n  m{id}: {{ email: m{id}@example.org, tier: power-user, domains: [dnst-{id}-m.{ZONE}, www.{missing}] }}\n"
    );
    let context =
        tenantry_model::ValidationContext { dns_zones: vec![ZONE.to_string(), missing.clone()], ..Default::default() };
    let roster = tenantry_model::load("roster.yaml", text.as_bytes(), &context).unwrap();
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "the target stays available: {:?}", prepared.unavailable);
    assert!(!prepared.plan.is_blocked(), "{:#?}", prepared.plan.problems);
    let problem = prepared.plan.problems.iter().find(|p| p.message.contains(&format!("`{missing}`"))).unwrap();
    assert!(
        problem.message.contains("does not exist") && problem.message.contains("1 record(s)"),
        "{}",
        problem.message
    );
    assert!(problem.help.contains("[dns] zones"), "{}", problem.help);
    println!("{:?}: {} — {}", config.provider, problem.message, problem.help);
    assert_eq!(action(&prepared, &id_of(&id, "m")), Some(Action::Create));

    let options = ApplyOptions { concurrency: 4, command: "test".into(), ..ApplyOptions::default() };
    let report = engine.apply(&roster, &prepared, &options, &|_| {}).await.unwrap();
    let failed: Vec<&str> = report.failures.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(failed, vec![format!("dns/CNAME/{missing}/www.{missing}")], "{:#?}", report.failures);
    println!("{:?}: applying into the missing zone: {}", config.provider, report.failures[0].error);
    assert!(report.failures[0].error.contains(&missing), "{}", report.failures[0].error);
    if let Some(dns) = dns {
        assert_eq!(resolve(dns, &fqdn(&id, "m"), RecordType::CNAME).await, vec!["tunnel.example.net"]);
        tidy(config.provider, &[fqdn(&id, "m")]).await;
    }
}

#[tokio::test]
async fn bind_two_platforms_on_one_zone_never_see_take_or_destroy_each_others_records() {
    two_platforms(bind_peer()).await;
}

#[tokio::test]
async fn powerdns_two_platforms_on_one_zone_never_see_take_or_destroy_each_others_records() {
    two_platforms(pdns_peer()).await;
}

#[tokio::test]
async fn bind_records_of_earlier_versions_are_claimed_through_the_inventory_or_adopted() {
    earlier_versions_records(bind_peer()).await;
}

#[tokio::test]
async fn powerdns_records_of_earlier_versions_are_claimed_through_the_inventory_or_adopted() {
    earlier_versions_records(pdns_peer()).await;
}

#[tokio::test]
async fn bind_a_missing_zone_is_a_plan_problem_for_its_records_only() {
    let peer = bind_peer();
    a_missing_zone(peer.config.clone(), &no_env, Some(peer.dns)).await;
}

#[tokio::test]
async fn powerdns_a_missing_zone_is_a_plan_problem_for_its_records_only() {
    let peer = pdns_peer();
    a_missing_zone(peer.config.clone(), &no_env, Some(peer.dns)).await;
}

#[tokio::test]
async fn cloudflare_a_missing_zone_is_a_plan_problem_for_its_records_only() {
    let fixture = fixture::Cloudflare::start().await;
    let config = DnsConfig {
        provider: Provider::Cloudflare,
        zones: vec![ZONE.to_string()],
        server: None,
        tsig_key_file: None,
        api_url: Some(fixture.url()),
        api_key_file: None,
        server_id: None,
        api_token_file: None,
    };
    let env = |name: &str| (name == "CLOUDFLARE_API_TOKEN").then(|| fixture::TOKEN.to_string());
    a_missing_zone(config, &env, None).await;
    assert_eq!(fixture.count(), 1, "the record in the existing zone is written");
}

/// Cloudflare keeps the marks in the comment: another platform's record is
/// a conflict; an earlier version's comment (no `platform=`) is claimed
/// through the inventory or adopted, and gets the platform.
#[tokio::test]
async fn cloudflare_comments_carry_the_platform() {
    let fixture = fixture::Cloudflare::start().await;
    fixture.seed(
        &fqdn("z", "theirs"),
        "CNAME",
        "tunnel.example.net",
        Some("managed-by tenantry user=theirsz platform=prod"),
    );
    fixture.seed(&fqdn("z", "old"), "CNAME", "tunnel.example.net", Some("managed-by tenantry user=oldz"));
    let target = Arc::new(Arc::try_unwrap(cloudflare(&fixture).await).unwrap().with_platform("lab"));
    let engine = engine(&target);
    let roster = platform_team("lab", "z", &["theirs", "old", "new"], "tunnel.example.net");
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    let change = |user: &str| prepared.plan.changes.iter().find(|c| c.id.to_string() == id_of("z", user)).unwrap();
    assert_eq!(change("theirs").action, Action::Conflict);
    assert!(change("theirs").reason.contains("platform `prod`"), "{}", change("theirs").reason);
    assert_eq!(change("old").action, Action::Adopt);
    assert!(change("old").reason.contains("earlier version's marks"), "{}", change("old").reason);
    assert_eq!(change("new").action, Action::Create);
    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec!["theirsz".to_string()]);
    assert_eq!(
        fixture.record(&fqdn("z", "theirs")).unwrap()["comment"],
        "managed-by tenantry user=theirsz platform=prod"
    );
    for user in ["old", "new"] {
        let comment = format!("managed-by tenantry user={user}z platform=lab");
        assert_eq!(fixture.record(&fqdn("z", user)).unwrap()["comment"], comment.as_str());
    }
    // In the inventory, an earlier version's comment is claimed with a plan line saying so.
    let id = fixture.record(&fqdn("z", "old")).unwrap()["id"].as_str().unwrap().to_string();
    fixture.set_comment(&id, "managed-by tenantry user=oldz");
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let claimed = prepared.plan.changes.iter().find(|c| c.id.to_string() == id_of("z", "old")).unwrap();
    assert_eq!(claimed.action, Action::Update);
    assert!(claimed.reason.contains("inventory remembers it"), "{}", claimed.reason);
}
