//! The dns target against real BIND 9 (RFC 2136 + TSIG) and PowerDNS (HTTP
//! API), started by `testenv/up bind pdns`, and against a local Cloudflare
//! API fixture (axum on 127.0.0.1) following Cloudflare's documented shapes.
//! Results are checked with real DNS queries, not only through the APIs.
//! Every test uses its own names (`dnst-<run>-…`) in the shared zone `lab.test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/fixture.rs"]
mod fixture;
#[path = "dns/platforms.rs"]
mod platforms;

use hickory_client::client::{Client, ClientHandle};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tenantry_core::{Action, ObserveRequest, Owner, Policy, ResourceId, Settings, Target};
use tenantry_dns::{DnsConfig, DnsTarget, Provider};
use tenantry_engine::{ApplyOptions, ApplyReport, Engine, FixedClock, Prepared, State};

const ZONE: &str = "lab.test";

use tenantry_testenv::run_id;

fn need<T>(peer: tenantry_testenv::Result<T>) -> T {
    peer.unwrap_or_else(|e| panic!("{e}"))
}

fn roster(text: &str) -> tenantry_model::Roster {
    let context = tenantry_model::ValidationContext { dns_zones: vec![ZONE.to_string()], ..Default::default() };
    tenantry_model::load("roster.yaml", text.as_bytes(), &context).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A roster with one power-user per name, each with one domain `dnst-<id>-<name>.lab.test`.
fn team(id: &str, users: &[&str], dns: &str) -> tenantry_model::Roster {
    let mut text = format!("platform:\n  dns: {dns}\nusers:\n");
    for user in users {
        text.push_str(&format!(
            "  {user}{id}: {{ email: {user}{id}@example.org, tier: power-user, domains: [dnst-{id}-{user}.{ZONE}] }}\n"
        ));
    }
    roster(&text)
}

fn fqdn(id: &str, user: &str) -> String {
    format!("dnst-{id}-{user}.{ZONE}")
}

fn settings(proxy: bool) -> Settings {
    Settings { dns_zones: vec![ZONE.to_string()], dns_proxy_supported: proxy, ..Settings::default() }
}

fn engine(target: &Arc<DnsTarget>) -> Engine {
    let proxy = target.provider().supports_proxy();
    Engine::new(
        vec![Arc::clone(target) as Arc<dyn Target>],
        State::in_memory().unwrap(),
        Arc::new(FixedClock("2026-11-29T04:00:00Z".into())),
        settings(proxy),
    )
}

async fn apply(engine: &Engine, roster: &tenantry_model::Roster, policy: Policy) -> (Prepared, ApplyReport) {
    let prepared = engine.prepare(roster, policy).await.unwrap();
    assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
    let options = ApplyOptions { concurrency: 4, command: "test".into(), ..ApplyOptions::default() };
    let report = engine.apply(roster, &prepared, &options, &|_| {}).await.unwrap();
    (prepared, report)
}

fn action(prepared: &Prepared, id: &str) -> Option<Action> {
    prepared.plan.changes.iter().find(|c| c.id.to_string() == id).map(|c| c.action)
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// A file with mode 0600 holding `text`.
fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

async fn query_client(addr: SocketAddr) -> Client {
    let conn =
        hickory_proto::udp::UdpClientStream::builder(addr, hickory_proto::runtime::TokioRuntimeProvider::default())
            .with_timeout(Some(std::time::Duration::from_secs(5)))
            .build();
    let (client, background) = Client::connect(conn).await.unwrap();
    tokio::spawn(background);
    client
}

/// What a real DNS query for `name` returns (CNAME or A data, without the root dot).
async fn resolve(addr: SocketAddr, name: &str, rtype: RecordType) -> Vec<String> {
    let mut client = query_client(addr).await;
    let response = client.query(Name::from_ascii(format!("{name}.")).unwrap(), DNSClass::IN, rtype).await.unwrap();
    response
        .answers()
        .iter()
        .filter(|r| r.record_type() == rtype)
        .map(|r| r.data().to_string().trim_end_matches('.').to_string())
        .collect()
}

// ------------------------------------------------------------------ peers

struct Peer {
    config: DnsConfig,
    dns: SocketAddr,
    _dir: tempfile::TempDir,
}

fn bind_peer() -> Peer {
    let bind = need(tenantry_testenv::bind());
    let config = DnsConfig {
        provider: Provider::Rfc2136,
        zones: vec![ZONE.to_string()],
        server: Some(bind.addr.to_string()),
        tsig_key_file: Some(bind.tsig_key_file.clone()),
        api_url: None,
        api_key_file: None,
        server_id: None,
        api_token_file: None,
    };
    Peer { config, dns: bind.addr, _dir: tempfile::tempdir().unwrap() }
}

fn pdns_peer() -> Peer {
    let pdns = need(tenantry_testenv::powerdns());
    let dir = tempfile::tempdir().unwrap();
    let key = secret_file(dir.path(), "pdns-key", &format!("{}\n", pdns.api_key));
    let config = DnsConfig {
        provider: Provider::Powerdns,
        zones: vec![ZONE.to_string()],
        server: None,
        tsig_key_file: None,
        api_url: Some(pdns.api_url.clone()),
        api_key_file: Some(key),
        server_id: None,
        api_token_file: None,
    };
    Peer { config, dns: pdns.dns_addr, _dir: dir }
}

/// Put a record into the zone behind tenantry's back.
async fn foreign(provider: Provider, name: &str, rdata: RData) {
    match provider {
        Provider::Rfc2136 => {
            let bind = need(tenantry_testenv::bind());
            let mut client = bind.update_client().await.unwrap();
            let record = Record::from_rdata(Name::from_ascii(format!("{name}.")).unwrap(), 60, rdata);
            let response = client.append(record, bind.zone_name().unwrap(), false).await.unwrap();
            assert_eq!(response.response_code(), hickory_proto::op::ResponseCode::NoError);
        }
        Provider::Powerdns => {
            let pdns = need(tenantry_testenv::powerdns());
            let (rtype, content) = match &rdata {
                RData::CNAME(target) => ("CNAME".to_string(), target.0.to_ascii()),
                other => (other.record_type().to_string(), other.to_string()),
            };
            let patch = json!({ "rrsets": [{ "name": format!("{name}."), "type": rtype, "ttl": 60, "changetype": "REPLACE",
                "records": [{ "content": content, "disabled": false }] }] });
            // PowerDNS on SQLite answers concurrent writes (other tests on
            // the shared zone) with 500 "database is locked": try again.
            let mut attempt = 0;
            let response = loop {
                let response = pdns
                    .http()
                    .unwrap()
                    .patch(pdns.url("servers/localhost/zones/lab.test."))
                    .json(&patch)
                    .send()
                    .await
                    .unwrap();
                attempt += 1;
                if response.status() != reqwest::StatusCode::INTERNAL_SERVER_ERROR || attempt == 10 {
                    break response;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            };
            assert!(response.status().is_success(), "{}", response.text().await.unwrap());
        }
        Provider::Cloudflare => unreachable!("the fixture is seeded directly"),
    }
}

/// Remove every record at these names and their ownership records, so
/// reruns do not grow the shared zone.
async fn tidy(provider: Provider, names: &[String]) {
    let marks = names.iter().map(|name| format!("{}.{name}", tenantry_dns::MARK_LABEL));
    let names: Vec<String> = names.iter().cloned().chain(marks).collect();
    match provider {
        Provider::Rfc2136 => bulk_update(&names, RecordType::ANY).await,
        Provider::Powerdns => {
            let pdns = need(tenantry_testenv::powerdns());
            let rrsets: Vec<serde_json::Value> = names
                .iter()
                .flat_map(|name| {
                    ["A", "CNAME", "TXT"]
                        .map(|t| json!({ "name": format!("{name}."), "type": t, "changetype": "DELETE" }))
                })
                .collect();
            let response = pdns
                .http()
                .unwrap()
                .patch(pdns.url("servers/localhost/zones/lab.test."))
                .json(&json!({ "rrsets": rrsets }))
                .send()
                .await
                .unwrap();
            assert!(response.status().is_success(), "{}", response.text().await.unwrap());
        }
        Provider::Cloudflare => {}
    }
}

fn cname(target: &str) -> RData {
    RData::CNAME(CNAME(Name::from_ascii(format!("{target}.")).unwrap()))
}

// ------------------------------------------------------------------ shared scenarios

/// Create, no-op (one listing, no writes), change of target, reversible cut
/// (records stay), destroy (only the departed user's record goes; a foreign
/// record in the zone survives) — each checked with a real DNS query.
async fn lifecycle(peer: Peer) {
    let provider = peer.config.provider;
    let id = run_id();
    let foreign_name = fqdn(&id, "foreign");
    foreign(provider, &foreign_name, RData::A(A::new(192, 0, 2, 7))).await;

    let target = Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap());
    let engine = engine(&target);
    let dns = "{ cname_target: tunnel-a.example.net, proxied: true, record_budget: 100000 }";
    let first = team(&id, &["a", "b"], dns);
    let (prepared, report) = apply(&engine, &first, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    for user in ["a", "b"] {
        assert_eq!(
            action(&prepared, &format!("dns/CNAME/{ZONE}/{}", fqdn(&id, user))),
            Some(Action::Create),
            "{:#?}",
            prepared.plan.changes
        );
        assert_eq!(resolve(peer.dns, &fqdn(&id, user), RecordType::CNAME).await, vec!["tunnel-a.example.net"]);
    }

    // A second run changes nothing and costs one listing of the zone.
    let before = target.requests();
    let (again, report) = apply(&engine, &first, Policy::default()).await;
    assert!(!again.plan.has_changes(), "{:#?}", again.plan.changes);
    assert_eq!(report.applied_total(), 0);
    let after = target.requests();
    assert_eq!(after.writes, before.writes, "a no-op apply writes nothing");
    assert_eq!(after.reads - before.reads, 1, "one listing of {ZONE} for plan+apply");
    // (The zone's SOA serial is no proof here: other tests update lab.test concurrently.)
    println!("{provider:?} no-op plan+apply: {} reads, {} writes", after.reads - before.reads, 0);

    // A new target is an update of every record.
    let dns = "{ cname_target: tunnel-b.example.net, proxied: true, record_budget: 100000 }";
    let second = team(&id, &["a", "b"], dns);
    let (prepared, report) = apply(&engine, &second, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("dns/CNAME/{ZONE}/{}", fqdn(&id, "a"))), Some(Action::Update));
    for user in ["a", "b"] {
        assert_eq!(resolve(peer.dns, &fqdn(&id, user), RecordType::CNAME).await, vec!["tunnel-b.example.net"]);
    }

    // b leaves; the reversible cut keeps the name resolving.
    let without_b = team(&id, &["a"], dns);
    let (prepared, report) = apply(&engine, &without_b, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("dns/CNAME/{ZONE}/{}", fqdn(&id, "b"))), Some(Action::Kept));
    assert_eq!(resolve(peer.dns, &fqdn(&id, "b"), RecordType::CNAME).await, vec!["tunnel-b.example.net"]);

    // The destroy stage removes b's record only, after a backup.
    let backups = tempfile::tempdir().unwrap();
    let plan = engine.destroy_plan(&without_b, &format!("b{id}")).await.unwrap();
    let report = engine.destroy(&plan, backups.path(), "test destroy").await.unwrap();
    assert!(report.is_success(), "{:?}", report.targets);
    assert!(resolve(peer.dns, &fqdn(&id, "b"), RecordType::CNAME).await.is_empty(), "b's record is gone");
    assert_eq!(resolve(peer.dns, &fqdn(&id, "a"), RecordType::CNAME).await, vec!["tunnel-b.example.net"]);
    assert_eq!(resolve(peer.dns, &foreign_name, RecordType::A).await, vec!["192.0.2.7"], "foreign record kept");
    let backup = std::fs::read_to_string(backups.path().join(format!("dns-b{id}.json"))).unwrap();
    assert!(backup.contains(&fqdn(&id, "b")) && backup.contains("tunnel-b.example.net"), "{backup}");
    assert!(!engine.prepare(&without_b, Policy::default()).await.unwrap().plan.has_changes());
    tidy(provider, &[foreign_name, fqdn(&id, "a")]).await;
}

/// An unmarked record that points elsewhere (or is of another type) is a
/// conflict and is left alone; one that already points at the tunnel is adopted.
async fn foreign_records(peer: Peer) {
    let provider = peer.config.provider;
    let id = run_id();
    foreign(provider, &fqdn(&id, "c"), cname("elsewhere.example.net")).await;
    foreign(provider, &fqdn(&id, "d"), cname("tunnel.example.net")).await;
    foreign(provider, &fqdn(&id, "e"), RData::A(A::new(192, 0, 2, 9))).await;

    let target = Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap());
    let engine = engine(&target);
    let roster = team(&id, &["c", "d", "e"], "{ cname_target: tunnel.example.net }");
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    let change = |user: &str| {
        prepared.plan.changes.iter().find(|c| c.id.to_string() == format!("dns/CNAME/{ZONE}/{}", fqdn(&id, user)))
    };
    let conflict = change("c").unwrap();
    assert_eq!(conflict.action, Action::Conflict);
    assert!(conflict.reason.contains("points elsewhere"), "{}", conflict.reason);
    assert_eq!(change("d").unwrap().action, Action::Adopt);
    assert_eq!(change("e").unwrap().action, Action::Conflict, "an A record is in the way of the CNAME");

    let failed: Vec<String> = report.failed_users().into_iter().map(|o| o.to_string()).collect();
    assert_eq!(failed, vec![format!("c{id}"), format!("e{id}")]);
    assert_eq!(resolve(peer.dns, &fqdn(&id, "c"), RecordType::CNAME).await, vec!["elsewhere.example.net"]);
    assert_eq!(resolve(peer.dns, &fqdn(&id, "e"), RecordType::A).await, vec!["192.0.2.9"]);
    assert_eq!(resolve(peer.dns, &fqdn(&id, "d"), RecordType::CNAME).await, vec!["tunnel.example.net"]);

    // Adopted: remembered, so the next plan is a no-op for d.
    let again = engine.prepare(&roster, Policy::default()).await.unwrap();
    assert_eq!(action(&again, &format!("dns/CNAME/{ZONE}/{}", fqdn(&id, "d"))), None);
    tidy(provider, &["c", "d", "e"].map(|user| fqdn(&id, user))).await;
}

/// `a_target` rosters get A records; a changed address is an update.
async fn a_records(peer: Peer) {
    let id = run_id();
    let target = Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap());
    let engine = engine(&target);
    let first = team(&id, &["h"], "{ a_target: 192.0.2.80, ttl: 120 }");
    let (prepared, report) = apply(&engine, &first, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("dns/A/{ZONE}/{}", fqdn(&id, "h"))), Some(Action::Create));
    assert_eq!(resolve(peer.dns, &fqdn(&id, "h"), RecordType::A).await, vec!["192.0.2.80"]);
    assert!(!engine.prepare(&first, Policy::default()).await.unwrap().plan.has_changes());
    let second = team(&id, &["h"], "{ a_target: 192.0.2.81, ttl: 120 }");
    let (prepared, report) = apply(&engine, &second, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("dns/A/{ZONE}/{}", fqdn(&id, "h"))), Some(Action::Update));
    assert_eq!(resolve(peer.dns, &fqdn(&id, "h"), RecordType::A).await, vec!["192.0.2.81"]);
    tidy(peer.config.provider, &[fqdn(&id, "h")]).await;
}

/// A CNAME tenantry created that someone replaced with an A record: the plan
/// shows drift, and the update fails loudly instead of being ignored.
async fn replaced_by_another_type(peer: Peer) {
    let provider = peer.config.provider;
    let id = run_id();
    let target = Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap());
    let engine = engine(&target);
    let roster = team(&id, &["k"], "{ cname_target: tunnel.example.net }");
    assert!(apply(&engine, &roster, Policy::default()).await.1.is_success());
    tidy(provider, &[fqdn(&id, "k")]).await;
    foreign(provider, &fqdn(&id, "k"), RData::A(A::new(192, 0, 2, 66))).await;
    let (prepared, report) = apply(&engine, &roster, Policy::default()).await;
    assert_eq!(action(&prepared, &format!("dns/CNAME/{ZONE}/{}", fqdn(&id, "k"))), Some(Action::Update));
    let failure = report.failures.first().expect("the update cannot succeed next to an A record");
    println!("{provider:?}: {}", failure.error);
    assert_eq!(resolve(peer.dns, &fqdn(&id, "k"), RecordType::A).await, vec!["192.0.2.66"], "left alone");
    tidy(provider, &[fqdn(&id, "k")]).await;
}

/// The zone's total (foreign records included) is counted against the budget.
async fn record_budget(peer: Peer) {
    let id = run_id();
    foreign(peer.config.provider, &fqdn(&id, "other"), RData::A(A::new(192, 0, 2, 1))).await;
    let target = Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap());
    let observed = target.observe(&ObserveRequest::default()).await.unwrap();
    let total = observed.scope_totals[ZONE];
    assert!(total >= 3, "NS, ns A and the foreign record at least: {total}");

    let engine = engine(&target);
    let tight = team(&id, &["f"], "{ cname_target: tunnel.example.net, record_budget: 2 }");
    let prepared = engine.prepare(&tight, Policy::default()).await.unwrap();
    assert!(prepared.plan.is_blocked(), "{:?}", prepared.plan.problems);
    let message = &prepared.plan.problems[0].message;
    assert!(message.contains("zone `lab.test` would hold") && message.contains("record budget of 2"), "{message}");
    let roomy = team(&id, &["f"], "{ cname_target: tunnel.example.net, record_budget: 1000000 }");
    assert!(!engine.prepare(&roomy, Policy::default()).await.unwrap().plan.is_blocked());
    tidy(peer.config.provider, &[fqdn(&id, "other")]).await;
}

// ------------------------------------------------------------------ BIND

#[tokio::test]
async fn bind_records_are_created_kept_by_the_cut_and_destroyed_with_one_axfr_per_plan() {
    lifecycle(bind_peer()).await;
}

#[tokio::test]
async fn bind_foreign_records_are_conflicts_or_adopted_never_overwritten() {
    foreign_records(bind_peer()).await;
}

#[tokio::test]
async fn bind_record_budget_counts_the_whole_zone() {
    record_budget(bind_peer()).await;
}

#[tokio::test]
async fn bind_a_targets_become_a_records() {
    a_records(bind_peer()).await;
}

#[tokio::test]
async fn bind_a_cname_replaced_by_an_a_record_fails_loudly() {
    replaced_by_another_type(bind_peer()).await;
}

#[tokio::test]
async fn bind_wrong_tsig_key_names_the_key_and_the_server() {
    let bind = need(tenantry_testenv::bind());
    let dir = tempfile::tempdir().unwrap();
    let wrong = secret_file(
        dir.path(),
        "wrong.key",
        &format!(
            "key \"{}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{}\";\n}};\n",
            bind.tsig_key_name,
            data_encoding_base64(&[7_u8; 32])
        ),
    );
    let mut config = bind_peer().config;
    config.tsig_key_file = Some(wrong.clone());
    let target = DnsTarget::connect_with_env(&config, &no_env).await.unwrap();
    let error = target.observe(&ObserveRequest::default()).await.unwrap_err().to_string();
    println!("wrong TSIG key: {error}");
    assert!(error.contains(&format!("TSIG key `{}`", bind.tsig_key_name)), "{error}");
    assert!(error.contains(&bind.addr.to_string()), "{error}");
    assert!(error.contains("BADKEY/BADSIG"), "{error}");
    assert!(!error.contains(&data_encoding_base64(&[7_u8; 32])), "never the secret: {error}");
    let name = fqdn(&run_id(), "w");
    let error = target.apply(&create(&name, "w"), &tenantry_core::Snapshot::default()).await.unwrap_err().to_string();
    assert!(error.contains(&format!("TSIG key `{}`", bind.tsig_key_name)), "{error}");
    assert!(error.contains(&bind.addr.to_string()), "{error}");
    assert!(resolve(bind.addr, &name, RecordType::CNAME).await.is_empty(), "nothing was written");

    // A key file others can read is refused before anything is sent.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = DnsTarget::connect_with_env(&config, &no_env).await.unwrap_err().to_string();
    assert!(error.contains(&format!("chmod 600 {}", wrong.display())), "{error}");
}

/// A hand-made plan line creating `name` → tunnel.example.net for `user`.
fn create(name: &str, user: &str) -> tenantry_core::Change {
    tenantry_core::Change {
        target: "dns".into(),
        id: format!("dns/CNAME/{ZONE}/{name}").parse().unwrap(),
        owner: Owner::User(user.into()),
        action: Action::Create,
        before: None,
        after: Some(tenantry_core::Content::from_value(&json!({ "zone": ZONE, "name": name,
            "type": "CNAME", "content": "tunnel.example.net", "proxied": false, "ttl": 300 }))),
        reason: "test".into(),
        origin: tenantry_model::Span::UNKNOWN,
        rule: "test",
        deps: Arc::from([]),
        sensitive: false,
        rank: 0,
        platform: tenantry_core::DEFAULT_PLATFORM.into(),
    }
}

/// One signed UPDATE: `A` adds an A record at each name; another type
/// deletes that rrset at each name (`ANY`: every rrset).
async fn bulk_update(names: &[String], rtype: RecordType) {
    use futures::StreamExt;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, UpdateMessage};
    use hickory_proto::xfer::DnsHandle;
    let bind = need(tenantry_testenv::bind());
    let client = bind.update_client().await.unwrap();
    let mut zone = Query::new();
    zone.set_name(bind.zone_name().unwrap()).set_query_class(DNSClass::IN).set_query_type(RecordType::SOA);
    let mut message = Message::new();
    message.set_message_type(MessageType::Query).set_op_code(OpCode::Update);
    message.add_zone(zone);
    for name in names {
        let owner = Name::from_ascii(format!("{name}.")).unwrap();
        if rtype == RecordType::A {
            message.add_update(Record::from_rdata(owner, 60, RData::A(A::new(192, 0, 2, 50))));
        } else {
            let mut clear = Record::update0(owner, 0, rtype);
            clear.set_dns_class(DNSClass::ANY);
            message.add_update(clear);
        }
    }
    let response = client.send(message).next().await.unwrap().unwrap();
    assert_eq!(response.response_code(), hickory_proto::op::ResponseCode::NoError);
}

#[tokio::test]
async fn bind_a_zone_spanning_several_axfr_messages_is_observed_with_one_transfer() {
    let id = run_id();
    let names: Vec<String> = (0..1500).map(|i| fqdn(&id, &format!("bulk{i}"))).collect();
    bulk_update(&names, RecordType::A).await;
    let target = DnsTarget::connect_with_env(&bind_peer().config, &no_env).await.unwrap();
    let wanted: ResourceId = format!("dns/A/{ZONE}/{}", names[1234]).parse().unwrap();
    let observed = target
        .observe(&ObserveRequest { resources: vec![(wanted.clone(), Owner::User("u".into()))], ..Default::default() })
        .await;
    bulk_update(&names, RecordType::ANY).await;
    let observed = observed.unwrap();
    assert!(observed.scope_totals[ZONE] >= 1500, "{}", observed.scope_totals[ZONE]);
    assert!(observed.get(&wanted).unwrap().content.as_str().contains("192.0.2.50"));
    assert_eq!(target.requests().reads, 1, "one AXFR, whatever the zone's size");
}

fn data_encoding_base64(bytes: &[u8]) -> String {
    // Standard base64 without a dependency: enough for a test key.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

// ------------------------------------------------------------------ PowerDNS

#[tokio::test]
async fn powerdns_records_are_created_kept_by_the_cut_and_destroyed_with_one_get_per_plan() {
    lifecycle(pdns_peer()).await;
}

#[tokio::test]
async fn powerdns_foreign_records_are_conflicts_or_adopted_never_overwritten() {
    foreign_records(pdns_peer()).await;
}

#[tokio::test]
async fn powerdns_a_targets_become_a_records() {
    a_records(pdns_peer()).await;
}

#[tokio::test]
async fn powerdns_a_cname_replaced_by_an_a_record_fails_loudly() {
    replaced_by_another_type(pdns_peer()).await;
}

#[tokio::test]
async fn powerdns_record_budget_counts_the_whole_zone() {
    record_budget(pdns_peer()).await;
}

#[tokio::test]
async fn powerdns_destroy_user_records_removes_only_the_given_records() {
    let peer = pdns_peer();
    let id = run_id();
    foreign(Provider::Powerdns, &fqdn(&id, "keep"), cname("tunnel.example.net")).await;
    let target = Arc::new(DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap());
    let engine = engine(&target);
    let roster = team(&id, &["g"], "{ cname_target: tunnel.example.net }");
    assert!(apply(&engine, &roster, Policy::default()).await.1.is_success());
    let mine: ResourceId = format!("dns/CNAME/{ZONE}/{}", fqdn(&id, "g")).parse().unwrap();
    let destroyed = target.destroy_user_records(std::slice::from_ref(&mine)).await.unwrap();
    assert_eq!(destroyed.removed, vec![mine]);
    assert!(destroyed.notes.is_empty(), "{:?}", destroyed.notes);
    assert!(resolve(peer.dns, &fqdn(&id, "g"), RecordType::CNAME).await.is_empty());
    assert_eq!(resolve(peer.dns, &fqdn(&id, "keep"), RecordType::CNAME).await, vec!["tunnel.example.net"]);
    tidy(Provider::Powerdns, &[fqdn(&id, "keep")]).await;
}

#[tokio::test]
async fn powerdns_bad_api_key_is_a_clear_error() {
    let mut peer = pdns_peer();
    let dir = tempfile::tempdir().unwrap();
    peer.config.api_key_file = Some(secret_file(dir.path(), "bad", "not-the-key"));
    let target = DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap();
    let error = target.observe(&ObserveRequest::default()).await.unwrap_err().to_string();
    assert!(error.contains("HTTP 401") && error.contains("api_key_file"), "{error}");
    assert!(!error.contains("not-the-key"), "{error}");

    // Without a file, the key comes from PDNS_API_KEY.
    peer.config.api_key_file = None;
    let pdns = need(tenantry_testenv::powerdns());
    let env = |name: &str| (name == "PDNS_API_KEY").then(|| pdns.api_key.clone());
    let target = DnsTarget::connect_with_env(&peer.config, &env).await.unwrap();
    target.observe(&ObserveRequest::default()).await.unwrap();
    let error = DnsTarget::connect_with_env(&peer.config, &no_env).await.unwrap_err().to_string();
    assert!(error.contains("PDNS_API_KEY") && error.contains("api_key_file"), "{error}");
}

/// A 200 answer to the zone listing that holds no rrsets (a proxy's page, an
/// API change) is an error: read as an empty zone, every record would be
/// planned anew.
#[tokio::test]
async fn powerdns_a_zone_answer_without_rrsets_is_an_error_not_an_empty_zone() {
    let api_url = tenantry_testenv::fixed_answer::json_ok(r#"{"name":"lab.test.","kind":"Native"}"#).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = DnsConfig {
        provider: Provider::Powerdns,
        zones: vec![ZONE.to_string()],
        server: None,
        tsig_key_file: None,
        api_url: Some(api_url),
        api_key_file: Some(secret_file(dir.path(), "key", "some-key")),
        server_id: None,
        api_token_file: None,
    };
    let target = DnsTarget::connect_with_env(&config, &no_env).await.unwrap();
    let error = target.observe(&ObserveRequest::default()).await.unwrap_err().to_string();
    assert!(error.contains("has no rrsets") && error.contains("Native"), "{error}");
}

// ------------------------------------------------------------------ Cloudflare (fixture)

async fn cloudflare(fixture: &fixture::Cloudflare) -> Arc<DnsTarget> {
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
    Arc::new(DnsTarget::connect_with_env(&config, &env).await.unwrap())
}

#[tokio::test]
async fn cloudflare_records_carry_the_owner_comment_and_follow_the_whole_lifecycle() {
    let fixture = fixture::Cloudflare::start().await;
    // Foreign records spread the zone over several pages (the fixture serves 3 per page).
    for i in 0..5 {
        fixture.seed(&format!("other{i}.{ZONE}"), "A", "192.0.2.10", None);
    }
    fixture.seed(&fqdn("x", "taken"), "CNAME", "tunnel.example.net", Some("managed-by tenantry user=mallory"));
    let target = cloudflare(&fixture).await;
    let engine = engine(&target);
    let dns = "{ cname_target: tunnel-a.example.net, proxied: true, ttl: 600, record_budget: 1000 }";
    let first = team("x", &["a", "b"], dns);
    let (prepared, report) = apply(&engine, &first, Policy::default()).await;
    assert!(report.is_success(), "{:?}", report.failures);
    assert_eq!(action(&prepared, &format!("dns/CNAME/{ZONE}/{}", fqdn("x", "a"))), Some(Action::Create));
    let stored = fixture.record(&fqdn("x", "a")).unwrap();
    assert_eq!(stored["comment"], "managed-by tenantry user=ax platform=kubernetes ttl=600");
    assert_eq!(stored["proxied"], true);
    assert_eq!(stored["ttl"], 1, "proxied records have an automatic TTL");

    // The owner is read back from the comment.
    let id: ResourceId = format!("dns/CNAME/{ZONE}/{}", fqdn("x", "a")).parse().unwrap();
    let observed = target
        .observe(&ObserveRequest { resources: vec![(id.clone(), Owner::User("ax".into()))], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(observed.get(&id).unwrap().owner, Some(Owner::User("ax".into())));
    assert_eq!(observed.scope_totals[ZONE], 8);

    // No-op: only the listing pages (the zone id is cached), no writes.
    fixture.clear_log();
    let (again, _) = apply(&engine, &first, Policy::default()).await;
    assert!(!again.plan.has_changes(), "{:#?}", again.plan.changes);
    let log = fixture.log();
    assert!(log.iter().all(|(method, _)| method == "GET"), "{log:?}");
    assert_eq!(log.len(), 3, "8 records at 3 per page: {log:?}");
    println!("Cloudflare no-op plan+apply: {} GETs (8 records, 3 per page), 0 writes", log.len());

    // A record marked for another user is a conflict naming them.
    let taken = team("x", &["taken"], dns);
    let prepared = engine.prepare(&taken, Policy::default()).await.unwrap();
    let conflict = prepared.plan.changes.iter().find(|c| c.action == Action::Conflict).unwrap();
    assert!(conflict.reason.contains("`mallory`"), "{}", conflict.reason);

    // Change of target: PUT of both records.
    fixture.clear_log();
    let second = team("x", &["a", "b"], &dns.replace("tunnel-a", "tunnel-b"));
    assert!(apply(&engine, &second, Policy::default()).await.1.is_success());
    assert_eq!(fixture.record(&fqdn("x", "b")).unwrap()["content"], "tunnel-b.example.net");
    assert_eq!(fixture.log().iter().filter(|(m, _)| m == "PUT").count(), 2, "{:?}", fixture.log());

    // Cut keeps, destroy removes only b's record.
    let without_b = team("x", &["a"], &dns.replace("tunnel-a", "tunnel-b"));
    assert!(apply(&engine, &without_b, Policy { offboard: true, ..Policy::default() }).await.1.is_success());
    assert!(fixture.record(&fqdn("x", "b")).is_some());
    let backups = tempfile::tempdir().unwrap();
    let plan = engine.destroy_plan(&without_b, "bx").await.unwrap();
    assert!(engine.destroy(&plan, backups.path(), "test").await.unwrap().is_success());
    assert!(fixture.record(&fqdn("x", "b")).is_none());
    assert!(fixture.record(&fqdn("x", "a")).is_some());
    assert!(fixture.record(&fqdn("x", "taken")).is_some());
    assert_eq!(fixture.count(), 7);
}

#[tokio::test]
async fn cloudflare_errors_are_quoted_and_rate_limits_are_waited_out() {
    let fixture = fixture::Cloudflare::start().await;
    fixture.seed(&fqdn("y", "busy"), "A", "192.0.2.3", None);
    let target = cloudflare(&fixture).await;

    // Two 429s with Retry-After: 1, then the answer.
    fixture.throttle(2);
    let started = std::time::Instant::now();
    let observed = target.observe(&ObserveRequest::default()).await.unwrap();
    assert_eq!(observed.scope_totals[ZONE], 1);
    assert!(started.elapsed() >= std::time::Duration::from_secs(2), "Retry-After honoured");
    assert_eq!(fixture.log().iter().filter(|(_, path)| path.starts_with("/client/v4/zones?")).count(), 3);

    // A listing page without its records is an error, not an empty zone;
    // a zone lookup without its result is not a missing zone.
    fixture.drop_listing_results(1);
    let error = target.observe(&ObserveRequest::default()).await.unwrap_err().to_string();
    assert!(error.contains("listing records") && error.contains("no `result` list"), "{error}");
    fixture.drop_listing_results(1);
    let error = cloudflare(&fixture).await.observe(&ObserveRequest::default()).await.unwrap_err().to_string();
    assert!(error.contains("looking up zone") && error.contains("no `result` list"), "{error}");

    // The API's error body is quoted with its code.
    let change = create(&fqdn("y", "busy"), "busyy");
    let error = target.apply(&change, &tenantry_core::Snapshot::default()).await.unwrap_err().to_string();
    assert!(error.contains("81053") && error.contains("already exists"), "{error}");
    assert_eq!(fixture.record(&fqdn("y", "busy")).unwrap()["type"], "A", "never overwritten");

    // A create retried after it succeeded is harmless.
    let fresh = create(&fqdn("y", "fresh"), "freshy");
    target.apply(&fresh, &tenantry_core::Snapshot::default()).await.unwrap();
    target.apply(&fresh, &tenantry_core::Snapshot::default()).await.unwrap();
    assert_eq!(
        fixture.record(&fqdn("y", "fresh")).unwrap()["comment"],
        "managed-by tenantry user=freshy platform=kubernetes"
    );
    assert_eq!(fixture.count(), 2);

    // A wrong token: Cloudflare's authentication error, with what to check.
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
    let env = |_: &str| Some("wrong-token".to_string());
    let wrong = DnsTarget::connect_with_env(&config, &env).await.unwrap();
    let error = wrong.observe(&ObserveRequest::default()).await.unwrap_err().to_string();
    assert!(error.contains("10000") && error.contains("CLOUDFLARE_API_TOKEN"), "{error}");
    assert!(!error.contains("wrong-token") && !format!("{wrong:?}").contains("wrong-token"), "{error}");
}

// ------------------------------------------------------------------ config

#[tokio::test]
async fn config_refuses_unknown_misplaced_and_missing_settings() {
    let parse = |text: &str| toml::from_str::<DnsConfig>(text);
    let error = parse("provider = \"rfc2136\"\nzones = [\"lab.test\"]\nsevrer = \"x\"\n").unwrap_err().to_string();
    assert!(error.contains("sevrer"), "{error}");
    assert!(parse("provider = \"route53\"\nzones = []\n").is_err());

    let config = parse("provider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"127.0.0.1:53\"\n").unwrap();
    let error = DnsTarget::connect_with_env(&config, &no_env).await.unwrap_err().to_string();
    assert!(error.contains("needs `tsig_key_file`"), "{error}");

    let config =
        parse("provider = \"powerdns\"\nzones = [\"lab.test\"]\napi_url = \"http://x\"\nserver = \"y\"\n").unwrap();
    let error = DnsTarget::connect_with_env(&config, &no_env).await.unwrap_err().to_string();
    assert!(error.contains("`server` does not apply to provider `powerdns`"), "{error}");

    let config = parse("provider = \"cloudflare\"\nzones = [\"lab.test\"]\n").unwrap();
    let error = DnsTarget::connect_with_env(&config, &no_env).await.unwrap_err().to_string();
    assert!(error.contains("CLOUDFLARE_API_TOKEN") && error.contains("api_token_file"), "{error}");
    assert_eq!(config.api_url, None, "the default API URL is Cloudflare's");

    let dir = tempfile::tempdir().unwrap();
    let bad = secret_file(dir.path(), "bad.key", "key \"k\" { algorithm hmac-sha256; };\n");
    let mut config = parse("provider = \"rfc2136\"\nzones = [\"lab.test\"]\nserver = \"127.0.0.1:53\"\n").unwrap();
    config.tsig_key_file = Some(bad);
    let error = DnsTarget::connect_with_env(&config, &no_env).await.unwrap_err().to_string();
    assert!(error.contains("no `secret`") && error.contains("tsig-keygen"), "{error}");

    // The key file's secret never shows in Debug output.
    let bind = need(tenantry_testenv::bind());
    let target = DnsTarget::connect_with_env(&bind_peer().config, &no_env).await.unwrap();
    let shown = format!("{target:?}");
    assert!(shown.contains("tenantry-test-key") && shown.contains("(redacted)"), "{shown}");
    assert!(!shown.contains(&data_encoding_base64(&bind.tsig_secret)), "{shown}");

    // A server without a port means port 53.
    let mut config = bind_peer().config;
    config.server = Some("127.0.0.1".to_string());
    let target = DnsTarget::connect_with_env(&config, &no_env).await.unwrap();
    assert!(format!("{target:?}").contains("server: 127.0.0.1:53"), "{target:?}");
}
