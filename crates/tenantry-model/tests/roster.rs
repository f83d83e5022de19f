//! The roster as an admin writes it, wrong in every way SPEC §2.2 names: each
//! bad roster is refused with a stable code, the exact line and column, a
//! message that says what is wrong and a help that says how to fix it. Then
//! hostile and mutated input (never a panic, every error positioned), a valid
//! roster read twice the same way, a 10,000-user roster, and the JSON Schema
//! against the example roster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use tenantry_model::*;

#[path = "roster/apps.rs"]
mod apps;
#[path = "roster/idp.rs"]
mod idp;

const EXAMPLE: &str = include_str!("../../../examples/roster.yaml");
const SOURCE: &str = "roster.yaml";

fn load_bytes(bytes: &[u8]) -> Result<Roster, Diagnostics> {
    load(SOURCE, bytes, &ValidationContext::default())
}

/// The errors of a roster that must be refused.
fn errors(text: &[u8]) -> Vec<Diagnostic> {
    match load_bytes(text) {
        Ok(roster) => panic!("accepted a bad roster: {} users\n{}", roster.users.len(), String::from_utf8_lossy(text)),
        Err(found) => found.errors().cloned().collect(),
    }
}

/// The one error of a bad roster, checked for code and position; returned for the text checks.
#[track_caller]
fn refused(text: impl AsRef<[u8]>, code: &str, line: u32, column: u32) -> Diagnostic {
    let found = errors(text.as_ref());
    assert_eq!(found.len(), 1, "expected exactly one error, got:\n{}", render(&found));
    let error = found.into_iter().next().unwrap();
    assert_eq!(error.code, code, "{error}");
    assert_eq!((error.span.line, error.span.column), (line, column), "{error}");
    assert_eq!(error.source, SOURCE);
    assert!(error.help.is_some(), "no fix offered: {error}");
    error
}

fn render(found: &[Diagnostic]) -> String {
    found.iter().map(|d| format!("{d}\n")).collect()
}

#[track_caller]
fn says(diagnostic: &Diagnostic, message_parts: &[&str], help_parts: &[&str]) {
    for part in message_parts {
        assert!(diagnostic.message.contains(part), "message lacks {part:?}: {diagnostic}");
    }
    let help = diagnostic.help.as_deref().unwrap_or_default();
    for part in help_parts {
        assert!(help.contains(part), "help lacks {part:?}: {diagnostic}");
    }
}

fn users(body: &str) -> String {
    format!("users:\n{body}")
}

// ---------------------------------------------------------------------------
// One test per kind of bad roster (SPEC §2.2).
// ---------------------------------------------------------------------------

#[test]
fn unknown_tier_suggests_the_nearest() {
    let e = refused(
        users("  a:\n    email: a@x.org\n    tier: namespace-ownr\n    namespaces: [a]\n"),
        "unknown-value",
        4,
        11,
    );
    says(&e, &["unknown tier `namespace-ownr`"], &["did you mean `namespace-owner`?"]);
    let e = refused(users("  a: { email: a@x.org, tier: admn }\n"), "unknown-value", 2, 30);
    says(&e, &["unknown tier `admn`"], &["did you mean `admin`?"]);
    // Nothing close: the help lists the tiers.
    let e = refused(users("  a: { email: a@x.org, tier: superuser }\n"), "unknown-value", 2, 30);
    says(&e, &["unknown tier `superuser`"], &["admin", "power-user", "namespace-owner"]);
    // Tiers are also keys of `tier_groups`.
    let e = refused("platform:\n  workstation:\n    tier_groups: { admn: [sudo] }\nusers: {}\n", "unknown-tier", 3, 20);
    says(&e, &["unknown tier `admn`"], &["did you mean `admin`?"]);
}

#[test]
fn a_namespace_claimed_twice_names_the_other_owner() {
    let e = refused(
        users(concat!(
            "  a: { email: a@x.org, tier: namespace-owner, namespaces: [shared] }\n",
            "  b: { email: b@x.org, tier: namespace-owner, namespaces: [shared] }\n",
        )),
        "namespace-claimed-twice",
        3,
        60,
    );
    says(&e, &["namespace `shared`", "already owned by user `a`", "roster.yaml:2:60"], &["one owner", "remove it"]);
    // The same user listing it twice is named as such, not as a clash with someone else.
    let e = refused(
        users("  a:\n    email: a@x.org\n    tier: namespace-owner\n    namespaces:\n      - dup\n      - dup\n"),
        "namespace-claimed-twice",
        7,
        9,
    );
    says(&e, &["namespace `dup`", "already listed by this user", "roster.yaml:6:9"], &["remove it"]);
}

#[test]
fn reserved_namespaces_are_refused() {
    let e = refused(
        users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [kube-system] }\n"),
        "reserved-namespace",
        2,
        60,
    );
    says(&e, &["`kube-system` is reserved", "Kubernetes"], &["choose another name"]);
    let e = refused(
        users("  a:\n    email: a@x.org\n    tier: namespace-owner\n    namespaces:\n      - default\n"),
        "reserved-namespace",
        6,
        9,
    );
    says(&e, &["`default` is reserved", "cluster"], &["another name"]);
    let e = refused(
        users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [ok, tenantry] }\n"),
        "reserved-namespace",
        2,
        64,
    );
    says(&e, &["`tenantry` is reserved", "tenantry's own"], &["another name"]);
    // The namespace holding the platform's TLS source secret is the platform's.
    let roster = format!(
        "platform:\n  tls: {{ source: {{ namespace: certs, name: wildcard }} }}\n{}",
        users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [certs] }\n")
    );
    let e = refused(roster, "reserved-namespace", 4, 60);
    says(&e, &["`certs`", "TLS source secret"], &["another name"]);
}

#[test]
fn bad_quantities_and_quota_names_are_pointed_at() {
    let e = refused(
        users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [a], quota: { requests.memory: 4GB } }\n"),
        "invalid-quantity",
        2,
        90,
    );
    says(&e, &["quota `requests.memory`", "`4GB`", "unknown unit `GB`", "did you mean `Gi`"], &["4Gi"]);
    let roster = users(concat!(
        "  a:\n",
        "    email: a@x.org\n",
        "    tier: namespace-owner\n",
        "    namespaces: [a]\n",
        "    quota:\n",
        "      pods: -3\n",
        "      requets.cpu: \"2\"\n",
    ));
    let found = errors(roster.as_bytes());
    assert_eq!(found.len(), 2, "{}", render(&found));
    assert_eq!((found[0].code, found[0].span), ("invalid-quantity", Span::new(7, 13)), "{}", found[0]);
    says(&found[0], &["quota `pods`", "negative"], &["Kubernetes quantity"]);
    assert_eq!((found[1].code, found[1].span), ("invalid-quota-resource", Span::new(8, 7)), "{}", found[1]);
    says(&found[1], &["`requets.cpu` is not a ResourceQuota resource name"], &["did you mean `requests.cpu`?"]);
    // The platform default is checked the same way.
    let e = refused("platform:\n  defaults:\n    quota: { pods: lots }\nusers: {}\n", "invalid-quantity", 3, 20);
    says(&e, &["`lots` does not start with a number"], &["\"500m\""]);
}

#[test]
fn misspelled_fields_suggest_the_right_one() {
    let e = refused(users("  a:\n    emial: a@x.org\n    tier: admin\n"), "unknown-field", 3, 5);
    says(&e, &["unknown field `emial`"], &["did you mean `email`?"]);
    let e = refused(users("  a:\n    email: a@x.org\n    tier: admin\n    namespace: [a]\n"), "unknown-field", 5, 5);
    says(&e, &["unknown field `namespace`"], &["did you mean `namespaces`?"]);
    let e = refused(
        users("  a:\n    email: a@x.org\n    tier: admin\n    workstation:\n      os_usr: a\n"),
        "unknown-field",
        6,
        7,
    );
    says(&e, &["unknown field `os_usr`"], &["did you mean `os_user`?"]);
    let e = refused("platfrom:\n  name: x\nusers: {}\n", "unknown-field", 1, 1);
    says(&e, &["unknown field `platfrom`"], &["did you mean `platform`?"]);
    let e = refused("user:\n  a: { email: a@x.org, tier: admin }\n", "unknown-field", 1, 1);
    says(&e, &["unknown field `user`"], &["did you mean `users`?"]);
    // Nothing close: the help lists what is allowed.
    let e = refused("platform:\n  zebra: 1\nusers: {}\n", "unknown-field", 2, 3);
    says(&e, &["unknown field `zebra`"], &["api_server", "workstation"]);
}

#[test]
fn missing_required_fields_are_named() {
    let e = refused(users("  a:\n    email: a@x.org\n"), "missing-field", 3, 5);
    says(&e, &["missing required field `tier`"], &["add `tier:`"]);
    let e = refused("platform: { name: lab }\n", "missing-field", 1, 1);
    says(&e, &["missing required field `users`"], &["add `users:`"]);
    let e = refused(users("  a: { email: a@x.org, tier: namespace-owner }\n"), "namespaces-required", 2, 3);
    says(&e, &["`a` is a namespace-owner but lists no namespaces"], &["namespaces: [a]"]);
}

#[test]
fn os_user_collisions_are_reported_not_guessed() {
    let e = refused(
        users(concat!(
            "  a: { email: a@x.org, tier: admin, workstation: { os_user: b } }\n",
            "  b: { email: b@x.org, tier: admin, workstation: {} }\n",
        )),
        "os-user-collision",
        3,
        50,
    );
    says(&e, &["host account `b`", "user `a`", "roster.yaml:2:61"], &["distinct `workstation.os_user:`"]);
    // Two keys that sanitise (truncate to 32 characters) to the same account.
    let long = "a".repeat(40);
    let longer = "a".repeat(45);
    let roster = users(&format!(
        "  {long}: {{ email: a@x.org, tier: admin, workstation: {{}} }}\n  {longer}: {{ email: b@x.org, tier: admin, workstation: {{}} }}\n"
    ));
    let e = refused(roster, "os-user-collision", 3, 94);
    says(&e, &[&format!("host account `{}`", "a".repeat(32)), &format!("user `{long}`")], &["os_user"]);
}

#[test]
fn path_unsafe_repo_names_are_refused() {
    let e = refused(
        users("  a: { email: a@x.org, tier: admin, workstation: { code_layout: workspace, repos: [../etc] } }\n"),
        "unsafe-repo-name",
        2,
        84,
    );
    says(&e, &["`../etc` is not safe as a directory name"], &["no `/`"]);
    let roster = format!(
        "platform:\n  workstation:\n    repo_base: https://forge.example.org/ops/\n{}",
        users(
            "  a:\n    email: a@x.org\n    tier: admin\n    workstation:\n      code_layout: workspace\n      repos:\n        - ok\n        - .hidden\n"
        )
    );
    let e = refused(roster, "unsafe-repo-name", 12, 11);
    says(&e, &["`.hidden`"], &["not starting with `.`"]);
    let e = refused(
        "platform:\n  workstation:\n    main_repo: { name: a/b, url: https://x.org/a.git }\nusers: {}\n",
        "unsafe-repo-name",
        3,
        24,
    );
    says(&e, &["`a/b`"], &["letters, digits"]);
}

#[test]
fn namespaces_on_a_non_owner_tier_are_refused() {
    let e =
        refused(users("  a: { email: a@x.org, tier: power-user, namespaces: [a] }\n"), "namespaces-not-allowed", 2, 54);
    says(&e, &["only for namespace-owners", "`a` is power-user"], &["remove `namespaces`", "tier: namespace-owner"]);
    let e = refused(
        users("  a:\n    email: a@x.org\n    tier: admin\n    namespaces:\n      - a\n"),
        "namespaces-not-allowed",
        6,
        7,
    );
    says(&e, &["`a` is admin"], &["remove `namespaces`"]);
}

#[test]
fn duplicate_emails_are_refused_whatever_their_case() {
    let e = refused(
        users("  a: { email: a@x.org, tier: admin }\n  b: { email: A@x.org, tier: admin }\n"),
        "duplicate-email",
        3,
        15,
    );
    says(&e, &["email `A@x.org`", "already used by user `a`", "roster.yaml:2:15"], &["fix one of the two emails"]);
    let e = refused(users("  a: { email: not-an-email, tier: admin }\n"), "invalid-email", 2, 15);
    says(&e, &["`not-an-email` is not an email address"], &["name@example.org"]);
}

#[test]
fn invalid_namespace_and_user_names_are_not_dns_labels() {
    let e = refused(
        users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [Alice_Prod] }\n"),
        "invalid-namespace",
        2,
        60,
    );
    says(&e, &["namespace `Alice_Prod` is not a DNS-1123 label"], &["lowercase letters, digits and `-`"]);
    let long = "n".repeat(64);
    let e = refused(
        users(&format!("  a: {{ email: a@x.org, tier: namespace-owner, namespaces: [{long}] }}\n")),
        "invalid-namespace",
        2,
        60,
    );
    says(&e, &[&long], &["1–63"]);
    let e = refused(users("  Alice.Smith: { email: a@x.org, tier: admin }\n"), "invalid-user-key", 2, 3);
    says(&e, &["user key `Alice.Smith` is not a DNS-1123 label"], &["`alicesmith`"]);
}

#[test]
fn duplicate_domains_are_refused() {
    let roster = format!(
        "platform: {{ domain: example.org }}\n{}",
        users(
            "  a: { email: a@x.org, tier: admin, domains: [blog] }\n  b: { email: b@x.org, tier: admin, domains: [blog.example.org] }\n"
        )
    );
    let e = refused(roster, "duplicate-domain", 4, 47);
    says(&e, &["`blog.example.org` is already claimed by user `a`", "roster.yaml:3:47"], &["remove one"]);
    let e = refused(users("  a: { email: a@x.org, tier: admin, domains: [blog] }\n"), "invalid-domain", 2, 47);
    says(&e, &["outside every zone"], &["platform.domain"]);
}

#[test]
fn alias_bombs_are_refused_without_being_expanded() {
    // Billion laughs where the roster reads a value: refused at the alias, nothing expanded.
    let bomb = concat!(
        "l0: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        "l1: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n",
        "l2: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n",
        "l3: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
        "l4: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
        "l5: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
        "l6: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n",
        "l7: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n",
        "l8: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
    );
    // As the classic top-level document: the first unknown key stops the read.
    let e = refused(format!("{bomb}users: {{}}\n"), "unknown-field", 1, 1);
    says(&e, &["unknown field `l0`"], &["platform, users"]);
    // Where the roster reads a list of names, the first nested level is already the wrong type.
    let nested = concat!(
        "users:\n",
        "  a: { email: a@x.org, tier: admin, domains: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol] }\n",
        "  b: { email: b@x.org, tier: admin, domains: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a] }\n",
        "  c: { email: c@x.org, tier: admin, domains: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b] }\n",
        "  d: { email: d@x.org, tier: admin, domains: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c] }\n",
        "  e: { email: e@x.org, tier: admin, domains: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d] }\n",
        "  f: { email: f@x.org, tier: admin, domains: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e] }\n",
    );
    let e = refused(nested, "yaml-syntax", 3, 50);
    says(&e, &["expected a single value here, not a list"], &["write one value"]);
    assert!(!e.message.contains("line"), "the message is not cut around a position: {e}");
    // A fan-out that is the right type: 999 users each replaying a 300-entry list, ~300,000 events.
    let mut roster = String::from("users:\n  u0: { email: u0@x.org, tier: admin, domains: &d [");
    roster.push_str(&(0..300).map(|i| format!("d{i}")).collect::<Vec<_>>().join(", "));
    roster.push_str("] }\n");
    for i in 1..1000 {
        roster.push_str(&format!("  u{i}: {{ email: u{i}@x.org, tier: admin, domains: *d }}\n"));
    }
    let e = refused(&roster, "yaml-too-expensive", 334, 52);
    assert!(roster.lines().nth(333).unwrap()[51..].starts_with("*d"), "points at the alias that went over");
    says(&e, &["too large or too complex"], &["aliases", "write the values out plainly"]);
}

#[test]
fn oversized_files_are_refused_before_parsing() {
    let mut big = users("  a: { email: a@x.org, tier: admin }\n").into_bytes();
    big.resize(MAX_ROSTER_BYTES + 1, b'#');
    // The whole file is the problem: there is no one position to point at.
    let e = refused(&big, "roster-too-large", 0, 0);
    says(
        &e,
        &[&format!("{} bytes", MAX_ROSTER_BYTES + 1), &format!("limit is {MAX_ROSTER_BYTES} bytes")],
        &["right file"],
    );
    assert_eq!(e.location(), SOURCE, "an unknown position is not printed as 0:0");
}

#[test]
fn binary_garbage_is_not_a_roster() {
    let e = refused([0xff_u8, 0xfe, 0x00, 0x13, 0x88, 0x9a, 0x01], "not-utf8", 1, 1);
    says(&e, &["not UTF-8 text"], &["git-crypt", "unlock"]);
    // git-crypt ciphertext starts with this magic.
    let e = refused(b"\x00GITCRYPT\x00\x8a\xb4\x11\xfe\x00\x01", "not-utf8", 1, 11);
    says(&e, &["binary or encrypted"], &["unlock the checkout"]);
    // Valid UTF-8 with a NUL in it is not text either.
    let e = refused(b"users:\n  a: {email: a@x.org,\0 tier: admin}\n", "not-text", 2, 22);
    says(&e, &["NUL byte"], &["--roster"]);
}

#[test]
fn invalid_utf8_points_at_the_first_bad_byte() {
    let e = refused(b"users:\n  a: { email: \xc3\x28@x.org, tier: admin }\n", "not-utf8", 2, 15);
    says(&e, &["not UTF-8"], &["YAML text file"]);
}

#[test]
fn empty_files_say_what_a_roster_needs() {
    for text in ["", "   \n\n\t\n", "# just a comment\n\n  # another\n"] {
        let e = refused(text, "empty-roster", 0, 0);
        says(&e, &["the roster is empty"], &["users: {}"]);
    }
}

#[test]
fn a_list_or_a_scalar_is_not_a_roster() {
    let e = refused("- users: {}\n- platform: {}\n", "yaml-syntax", 1, 1);
    says(&e, &["must be a mapping with `users:`", "not a list"], &["start the file with `users:`"]);
    let e = refused("# roster\n---\nalice\n", "yaml-syntax", 3, 1);
    says(&e, &["must be a mapping"], &["users:"]);
    // Deeper down, a list where a mapping belongs.
    let e = refused("users:\n  - alice\n", "yaml-syntax", 2, 3);
    says(&e, &["expected a mapping of `key: value` entries here"], &["key: value"]);
    let e = refused(users("  a: { email: a@x.org, tier: namespace-owner, namespaces: a }\n"), "yaml-syntax", 2, 59);
    says(&e, &["expected a list here"], &["[a, b]"]);
}

#[test]
fn tabs_in_indentation_are_refused() {
    let e = refused("users:\n\ta: { email: a@x.org, tier: admin }\n", "yaml-syntax", 2, 2);
    says(&e, &["tabs disallowed"], &["indent with spaces"]);
    let e = refused("users:\n  a:\n\temail: a@x.org\n    tier: admin\n", "yaml-syntax", 3, 2);
    says(&e, &["tab"], &["spaces"]);
}

#[test]
fn duplicate_keys_are_refused() {
    let e = refused(
        users("  a: { email: a@x.org, tier: admin }\n  a: { email: b@x.org, tier: admin }\n"),
        "duplicate-key",
        3,
        3,
    );
    assert_eq!(e.message, "duplicate key `a`");
    says(&e, &[], &["merge the two entries"]);
    let e = refused(users("  a:\n    email: a@x.org\n    tier: admin\n    email: b@x.org\n"), "duplicate-key", 5, 5);
    assert_eq!(e.message, "duplicate key `email`");
    let e = refused("users: {}\nusers: {}\n", "duplicate-key", 2, 1);
    assert_eq!(e.message, "duplicate key `users`");
}

#[test]
fn more_than_one_document_is_refused() {
    let e = refused("users: {}\n---\nusers: {}\n", "multiple-documents", 2, 1);
    says(&e, &["more than one YAML document"], &["remove this `---`"]);
}

#[test]
fn values_of_the_wrong_shape_say_what_was_expected() {
    let e = refused(users("  a: { email: a@x.org, tier: [admin] }\n"), "yaml-syntax", 2, 30);
    says(&e, &["expected a single value here, not a list"], &["tier: admin"]);
    let e = refused(users("  a:\n    email:\n    tier: admin\n"), "yaml-syntax", 3, 10);
    says(&e, &["a value is missing here"], &["write a value after the `:`"]);
    let e = refused(users("  a: { email: *mail, tier: admin }\n"), "yaml-syntax", 2, 15);
    says(&e, &["anchor that is not defined"], &["define `&name`"]);
    let e =
        refused(users("  a: { email: a@x.org, tier: admin, workstation: { parked: maybe } }\n"), "yaml-syntax", 2, 60);
    says(&e, &["expected `true` or `false`"], &["write `true` or `false`"]);
    let e =
        refused("platform:\n  workstation:\n    port_pools: { terminal: 99999 }\nusers: {}\n", "yaml-syntax", 3, 29);
    says(&e, &["whole number", "65535"], &["without quotes or units"]);
    // A tagged value fails inside the position wrapper, so the field's key is what is pointed at.
    let e = refused(users("  a: { email: a@x.org, tier: admin, domains: !!binary aGk= }\n"), "yaml-syntax", 2, 37);
    says(&e, &["wrong type"], &["without a `!!` tag"]);
    assert!(!e.message.contains("span-aware"), "no internal type names: {e}");
    let e =
        refused("platform:\n  workstation:\n    port_pools: { terminal: 80 }\nusers: {}\n", "privileged-port", 3, 29);
    says(&e, &["pool `terminal` starts at port 80"], &["1024 or above"]);
}

/// The warnings of a roster that is accepted.
fn warnings(text: &str) -> Vec<Diagnostic> {
    let raw = parse_raw(SOURCE, text.as_bytes()).unwrap_or_else(|d| panic!("{d}"));
    let (_, found) =
        validate_with_warnings(SOURCE, raw, &ValidationContext::default()).unwrap_or_else(|d| panic!("{d}"));
    found.items
}

#[test]
fn warnings_point_at_the_roster_too() {
    // No `platform.workstation` at all: the warning points at the first user with a workstation.
    let found = warnings(&users(
        "  a: { email: a@x.org, tier: admin }\n  b:\n    email: b@x.org\n    tier: admin\n    workstation: { os_user: bee }\n",
    ));
    assert_eq!(found.len(), 1, "{}", render(&found));
    assert_eq!(
        (found[0].severity, found[0].code, found[0].span),
        (Severity::Warning, "no-main-repo", Span::new(6, 18))
    );
    says(&found[0], &["`platform.workstation.main_repo` is not set"], &["main_repo: {"]);
    // With a `platform.workstation` block, the block is where `main_repo` goes.
    let text = format!(
        "platform:\n  workstation:\n    shell: /bin/zsh\n{}",
        users("  a: { email: a@x.org, tier: admin, workstation: {} }\n")
    );
    let found = warnings(&text);
    assert_eq!((found[0].code, found[0].span), ("no-main-repo", Span::new(3, 5)), "{}", render(&found));
}

#[test]
fn every_error_of_a_roster_is_reported_at_once_in_source_order() {
    let roster = users(concat!(
        "  a: { email: a@x.org, tier: namespace-owner, namespaces: [kube-public] }\n",
        "  b: { email: a@x.org, tier: power-user, namespaces: [b] }\n",
        "  c: { email: c@x.org, tier: namespace-owner, namespaces: [c], quota: { pods: 2GB } }\n",
    ));
    let found = errors(roster.as_bytes());
    let codes: Vec<_> = found.iter().map(|d| (d.code, d.span.line)).collect();
    assert_eq!(
        codes,
        [("reserved-namespace", 2), ("duplicate-email", 3), ("namespaces-not-allowed", 3), ("invalid-quantity", 4)]
    );
}

// ---------------------------------------------------------------------------
// Hostile roster authors (issue #11): names that belong to the platform,
// strings that reach generated files, host paths. Each attack is refused at
// validation with a position and a fix.
// ---------------------------------------------------------------------------

/// The one error of a bad roster loaded under `source` with `context`.
#[track_caller]
fn refused_with(
    source: &str,
    context: &ValidationContext,
    text: &str,
    code: &str,
    line: u32,
    column: u32,
) -> Diagnostic {
    let found = match load(source, text.as_bytes(), context) {
        Ok(_) => panic!("accepted a bad roster:\n{text}"),
        Err(found) => found.errors().cloned().collect::<Vec<_>>(),
    };
    assert_eq!(found.len(), 1, "expected exactly one error, got:\n{}", render(&found));
    let error = found.into_iter().next().unwrap();
    assert_eq!((error.code, error.span.line, error.span.column), (code, line, column), "{error}");
    assert_eq!(error.source, source);
    assert!(error.help.is_some(), "no fix offered: {error}");
    error
}

#[test]
fn a_user_keyed_like_a_platform_path_is_refused() {
    // Finding 3: a namespace-owner's Vault policy covers `secret/data/<key>/*`;
    // keyed `platform`, it covered the origin's roster at `secret/platform`.
    let e = refused(
        users("  platform: { email: p@x.org, tier: namespace-owner, namespaces: [p] }\n"),
        "reserved-user-key",
        2,
        3,
    );
    says(&e, &["user key `platform` is reserved", "secret/platform", "<kv>/data/platform/*"], &["choose another key"]);
    let e = refused(users("  root: { email: r@x.org, tier: power-user }\n"), "reserved-user-key", 2, 3);
    says(&e, &["`root` is reserved"], &["`root-user`"]);

    // Read from vault://, every segment of the roster's own path is reserved too.
    let roster = users(concat!(
        "  alice: { email: a@x.org, tier: namespace-owner, namespaces: [a] }\n",
        "  teams: { email: t@x.org, tier: namespace-owner, namespaces: [t] }\n",
    ));
    let source = "vault://secret/teams/k8s#k8s_users";
    let e = refused_with(source, &ValidationContext::default(), &roster, "reserved-user-key", 3, 3);
    says(
        &e,
        &["`teams` is reserved", "stored at `vault://secret/teams/k8s#k8s_users`", "rewrite the roster"],
        &["`teams-user`"],
    );
    // The same through the context, for callers that validate the roster under another name (an import).
    let context = ValidationContext { roster_vault_source: Some(source.to_string()), ..ValidationContext::default() };
    let e = refused_with(SOURCE, &context, &roster, "reserved-user-key", 3, 3);
    says(&e, &["stored at `vault://secret/teams/k8s#k8s_users`"], &["choose another key"]);
    // From a file the segment is an ordinary key.
    assert!(load_bytes(roster.as_bytes()).is_ok());
}

#[test]
fn platform_namespaces_are_reserved_built_in_and_by_the_roster() {
    for (namespace, reason) in [
        ("cert-manager", "platform component"),
        ("flux-system", "`*-system`"),
        ("vault", "platform component"),
        ("monitoring", "platform component"),
        ("ingress-nginx", "platform component"),
        ("openshift-config", "`openshift-*`"),
        ("tenantry-portal", "tenantry's own"),
    ] {
        let e = refused(
            users(&format!("  a: {{ email: a@x.org, tier: namespace-owner, namespaces: [{namespace}] }}\n")),
            "reserved-namespace",
            2,
            60,
        );
        says(&e, &[&format!("namespace `{namespace}` is reserved"), reason], &["choose another name", "Secrets"]);
    }
    // The admin adds their own: names and `prefix*` patterns.
    let roster = format!(
        "platform:\n  reserved_namespaces: [billing, team-infra-*]\n{}",
        users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [ok, team-infra-db] }\n")
    );
    let e = refused(roster, "reserved-namespace", 4, 64);
    says(
        &e,
        &["`team-infra-db` is reserved", "`platform.reserved_namespaces` as `team-infra-*` (line 2)"],
        &["another name"],
    );
    let roster = format!(
        "platform:\n  reserved_namespaces: [billing]\n{}",
        users("  a:\n    email: a@x.org\n    tier: namespace-owner\n    namespaces:\n      - billing\n")
    );
    let e = refused(roster, "reserved-namespace", 8, 9);
    says(&e, &["`billing` is reserved", "`billing` (line 2)"], &["another name"]);
    let e =
        refused("platform:\n  reserved_namespaces: [ok, Bad_Name]\nusers: {}\n", "invalid-reserved-namespace", 2, 29);
    says(&e, &["`Bad_Name`"], &["`team-infra-*`"]);
}

#[test]
fn a_tls_source_in_a_platform_namespace_is_refused() {
    // Suspected finding: the source could name a CA key pair in cert-manager or kube-system.
    for (namespace, column) in [("cert-manager", 31), ("kube-system", 31), ("vault", 31)] {
        let roster =
            format!("platform:\n  tls: {{ source: {{ namespace: {namespace}, name: ca-key-pair }} }}\nusers: {{}}\n");
        let e = refused(roster, "reserved-tls-source", 2, column);
        says(&e, &[&format!("is in `{namespace}`"), "never be copied into tenant namespaces"], &["`certs`"]);
    }
    let e = refused(
        "platform:\n  tls: { issuer: { name: \"letsencrypt\\nprod\" } }\nusers: {}\n",
        "control-character",
        2,
        26,
    );
    says(&e, &["the issuer name", "a line break (U+000A)"], &["single-line"]);
}

#[test]
fn system_accounts_and_groups_are_not_host_accounts_for_tenants() {
    // Finding 7: `os_user: root` was accepted.
    let e = refused(
        users("  a: { email: a@x.org, tier: power-user, workstation: { os_user: root } }\n"),
        "reserved-os-user",
        2,
        66,
    );
    says(&e, &["host account `root` is reserved", "superuser"], &["choose another `workstation.os_user:`"]);
    for (name, reason) in [
        ("daemon", "system or service account"),
        ("www-data", "system or service account"),
        ("systemd-network", "`systemd-*`"),
        ("_apt", "start"),
        ("sudo", "privileged group"),
        ("docker", "privileged group"),
        ("ubuntu", "system or service account"),
    ] {
        let e = refused(
            users(&format!("  a: {{ email: a@x.org, tier: power-user, workstation: {{ os_user: {name} }} }}\n")),
            "reserved-os-user",
            2,
            66,
        );
        says(&e, &[&format!("`{name}` is reserved"), reason], &["os_user"]);
    }
    // The default account name comes from the key: the fix says so.
    let e =
        refused(users("  daemon: { email: d@x.org, tier: power-user, workstation: {} }\n"), "reserved-os-user", 2, 60);
    says(&e, &["`daemon` is reserved"], &["comes from the key `daemon`", "set `workstation.os_user:`"]);
    // A group the roster hands out is not an account name either.
    let roster = format!(
        "platform:\n  workstation:\n    tier_groups: {{ admin: [sudo, code-shared] }}\n{}",
        users("  a: { email: a@x.org, tier: admin, workstation: { os_user: code-shared } }\n")
    );
    let e = refused(roster, "reserved-os-user", 5, 61);
    says(&e, &["`code-shared` is a group in `tier_groups`"], &["another"]);
}

#[test]
fn root_groups_are_only_for_admins() {
    let e = refused(
        "platform:\n  workstation:\n    tier_groups: { admin: [sudo], namespace-owner: [code, shadow] }\nusers: {}\n",
        "privileged-group",
        3,
        52,
    );
    says(
        &e,
        &["`shadow` gives root", "`namespace-owner` users are not admins"],
        &["remove `shadow` from `tier_groups.namespace-owner`"],
    );
    let e = refused(
        "platform:\n  workstation:\n    tier_groups: { power-user: [\"a b\"] }\nusers: {}\n",
        "invalid-group",
        3,
        32,
    );
    says(&e, &["`a b` is not a host group name"], &["[a-z_]"]);
    // A daemon socket group is a deliberate choice on some hosts: a warning.
    let found =
        warnings("platform:\n  workstation:\n    tier_groups: { admin: [docker], power-user: [docker] }\nusers: {}\n");
    assert_eq!(found.len(), 1, "{}", render(&found));
    assert_eq!((found[0].code, found[0].span), ("root-equivalent-group", Span::new(3, 49)), "{}", found[0]);
    says(&found[0], &["members of `docker` can become root", "every `power-user` user"], &["make sure"]);
}

#[test]
fn oidc_values_cannot_carry_commands_into_kubeconfigs_and_scripts() {
    // Finding 4: a client id with a newline passed validation and was spliced into the setup script.
    let e = refused(
        "platform:\n  oidc: { issuer_url: https://auth.x.org/, client_id: \"k8s\\ntouch /tmp/pwned\" }\nusers: {}\n",
        "control-character",
        2,
        55,
    );
    says(&e, &["`client_id` `k8s\\ntouch /tmp/pwned`", "a line break (U+000A) at character 4"], &["single-line text"]);
    let e = refused(
        "platform:\n  oidc: { issuer_url: https://auth.x.org/, client_id: \"$(id)'\" }\nusers: {}\n",
        "invalid-client-id",
        2,
        55,
    );
    says(&e, &["`$(id)'` is not an OAuth client id"], &["without spaces or quotes"]);
    // URLs are parsed, not prefix-matched.
    for (url, reason) in [
        ("\"https://auth.x.org/ --exec=sh\"", "contains ` `"),
        ("http://auth.x.org/", "scheme `http` is not allowed"),
        ("\"https://user:pw@auth.x.org/\"", "password"),
        ("https://", "not a URL"),
        ("\"https://auth.x.org/\\u2028x\"", "Unicode line separator"),
    ] {
        let text = format!("platform:\n  oidc: {{ issuer_url: {url}, client_id: k }}\nusers: {{}}\n");
        let found = errors(text.as_bytes());
        assert_eq!(found.len(), 1, "{url}: {}", render(&found));
        assert_eq!((found[0].span.line, found[0].span.column), (2, 23), "{}", found[0]);
        assert!(["invalid-url", "control-character"].contains(&found[0].code), "{}", found[0]);
        says(&found[0], &["`issuer_url`", reason], &[]);
    }
    let e = refused("platform:\n  api_server: \"https://k8s.x.org:6443\\tx\"\nusers: {}\n", "control-character", 2, 15);
    says(&e, &["`api_server`", "a tab (U+0009)"], &[]);
    let e = refused("platform:\n  api_server: \"https://k8s.x.org:6443?a=1\"\nusers: {}\n", "invalid-url", 2, 15);
    says(&e, &["`?query`"], &["https://k8s.example.org:6443"]);
    // The CA is PEM, and only PEM (it may span lines).
    let e = refused(
        "platform:\n  api_server_ca: |\n    -----BEGIN CERTIFICATE-----\n    not base64!\n    -----END CERTIFICATE-----\nusers: {}\n",
        "invalid-ca",
        3,
        5,
    );
    says(&e, &["`not base64!` is not a base64 line"], &["-----BEGIN CERTIFICATE-----"]);
    let e = refused(
        "platform:\n  api_server_ca: \"-----BEGIN CERTIFICATE-----\\n\\e[2J\"\nusers: {}\n",
        "control-character",
        2,
        18,
    );
    says(&e, &["a control character (U+001B)"], &[]);
    // Found by the `roster` fuzz target: YAML reads a lone carriage return
    // as a line break, so later positions pointed past the file's last line.
    let e = refused("platform:\n  name: x\r\r\r\nusers: {}\n", "control-character", 2, 10);
    says(&e, &["carriage return"], &["LF (or CRLF) line endings"]);
    assert!(load_bytes(b"platform:\r\n  name: x\r\nusers: {}\r\n").is_ok(), "CRLF line endings stay fine");
}

#[test]
fn identities_reaching_host_files_follow_their_grammar_and_compare_without_case() {
    // Suspected finding: idp_user accepted tabs, CR, Unicode line separators and case variants.
    for (written, what) in
        [("a\\tb", "a tab"), ("a\\rb", "a carriage return"), ("a\\u2028b", "a Unicode line separator")]
    {
        let e = refused(
            users(&format!("  a: {{ email: a@x.org, tier: admin, workstation: {{ idp_user: \"{written}\" }} }}\n")),
            "control-character",
            2,
            62,
        );
        says(&e, &["`idp_user`", what], &["single-line"]);
    }
    let e = refused(
        users("  a: { email: a@x.org, tier: admin, workstation: { idp_user: \"a=root\" } }\n"),
        "invalid-idp-user",
        2,
        62,
    );
    says(&e, &["`a=root` cannot be used as an identity-provider login"], &["no spaces, `=` or quotes"]);
    let e = refused(
        users(concat!(
            "  a: { email: a@x.org, tier: admin, workstation: { idp_user: alice } }\n",
            "  b: { email: b@x.org, tier: admin, workstation: { idp_user: Alice } }\n",
        )),
        "duplicate-idp-user",
        3,
        62,
    );
    says(&e, &["`Alice` is also used by user `a` (roster.yaml:2:62)", "without case"], &["distinct"]);
    // The default login (the email's local part) must fit too.
    let e =
        refused(users("  a: { email: \"o'brien@x.org\", tier: admin, workstation: {} }\n"), "invalid-idp-user", 2, 58);
    says(&e, &["local part `o'brien`"], &["set `workstation.idp_user:`"]);
    // Emails reach /etc/passwd comments and RBAC subjects: no `:`, no spaces, no line breaks.
    let e = refused(users("  a: { email: \"a:0:0::/root:/bin/sh@x.org\", tier: admin }\n"), "invalid-email", 2, 15);
    says(&e, &["is not an email address"], &["name@example.org"]);
    let e =
        refused(users("  a: { email: \"a@x.org\\nroot::0:0::/:/bin/sh\", tier: admin }\n"), "control-character", 2, 15);
    says(&e, &["the email", "a line break"], &[]);
    let e = refused(
        users("  a: { email: Alice@X.org, tier: admin }\n  b: { email: alice@x.ORG, tier: admin }\n"),
        "duplicate-email",
        3,
        15,
    );
    says(&e, &["already used by user `a`"], &[]);
}

#[test]
fn managed_file_sources_stay_inside_the_source_directory() {
    // Finding 5: an absolute or `..` source copied a root-only key into a tenant's home.
    for (source, column) in
        [("/root/.ssh/id_ed25519", 31), ("../../etc/shadow", 31), ("files/../../x", 31), ("\"files/a\\nb\"", 31)]
    {
        let text =
            format!("platform:\n  workstation:\n    managed_files: [{{ source: {source}, dest: .x }}]\nusers: {{}}\n");
        let found = errors(text.as_bytes());
        assert_eq!(found.len(), 1, "{source}: {}", render(&found));
        assert_eq!((found[0].span.line, found[0].span.column), (3, column), "{}", found[0]);
        assert!(["unsafe-path", "control-character"].contains(&found[0].code), "{}", found[0]);
    }
    let e = refused(
        "platform:\n  workstation:\n    managed_files: [{ source: /etc/shadow, dest: .x }]\nusers: {}\n",
        "unsafe-path",
        3,
        31,
    );
    says(&e, &["`/etc/shadow` must be a path inside the host's source directory"], &["without `..`", "source_dir"]);
}

#[test]
fn host_paths_come_from_tenantry_toml_not_from_the_roster() {
    // Finding 6: `dispatch_path: /etc/sudoers.d/zz-dispatch` was created as root.
    let e = refused(
        "platform:\n  workstation:\n    dispatch_path: /etc/sudoers.d/zz-dispatch\nusers: {}\n",
        "host-path-not-allowed",
        3,
        20,
    );
    says(
        &e,
        &["`/etc/sudoers.d/zz-dispatch` is outside /etc/t3-serve/", "as root"],
        &["`[host] dispatch_path` in tenantry.toml"],
    );
    for path in
        ["/etc/t3-serve/../sudoers.d/x.json", "/etc/t3-serve/sub/x.json", "/etc/t3-serve/x.conf", "/etc/t3-serve/.json"]
    {
        let text = format!("platform:\n  workstation:\n    dispatch_path: {path}\nusers: {{}}\n");
        let found = errors(text.as_bytes());
        assert_eq!(found.iter().map(|d| d.code).collect::<Vec<_>>(), ["host-path-not-allowed"], "{path}");
    }
    let ok = load_bytes(b"platform:\n  workstation:\n    dispatch_path: /etc/t3-serve/lab.json\nusers: {}\n").unwrap();
    assert_eq!(ok.platform.workstation.dispatch_path, "/etc/t3-serve/lab.json");
    // tenantry.toml's `[host] dispatch_path` wins; a different roster value is only a warning.
    let context = ValidationContext {
        host_dispatch_path: Some("/srv/t3/dispatch.json".to_string()),
        ..ValidationContext::default()
    };
    let text = "platform:\n  workstation:\n    dispatch_path: /etc/sudoers.d/zz\nusers: {}\n";
    let (roster, found) =
        validate_with_warnings(SOURCE, parse_raw(SOURCE, text.as_bytes()).unwrap(), &context).unwrap();
    assert_eq!(roster.platform.workstation.dispatch_path, "/srv/t3/dispatch.json");
    assert_eq!((found.items[0].code, found.items[0].span), ("dispatch-path-overridden", Span::new(3, 20)));
    says(&found.items[0], &["is ignored", "/srv/t3/dispatch.json"], &["remove `dispatch_path`"]);
    let defaulted = validate(SOURCE, parse_raw(SOURCE, b"users: {}\n").unwrap(), &context).unwrap();
    assert_eq!(defaulted.platform.workstation.dispatch_path, "/srv/t3/dispatch.json");
}

#[test]
fn workstation_programs_and_remotes_are_the_platforms() {
    let e = refused("platform:\n  workstation:\n    shell: /tmp/evil\nusers: {}\n", "unsafe-path", 3, 12);
    says(&e, &["`/tmp/evil` is not a program in a system directory"], &["/bin/, /usr/bin/"]);
    let e = refused("platform:\n  workstation:\n    shell: /bin/../tmp/evil\nusers: {}\n", "unsafe-path", 3, 12);
    says(&e, &["`/bin/../tmp/evil`"], &["e.g. `/bin/zsh`"]);
    let e = refused(
        "platform:\n  workstation:\n    main_repo: { name: infra, url: \"ext::sh -c id\" }\nusers: {}\n",
        "invalid-url",
        3,
        36,
    );
    says(&e, &["`main_repo.url`", "contains ` `"], &["https://forge.example.org/ops/infra.git"]);
    let e = refused(
        "platform:\n  workstation:\n    extra_remote: { name: forge, url: \"--upload-pack=id\" }\nusers: {}\n",
        "invalid-url",
        3,
        39,
    );
    says(&e, &["`extra_remote.url`", "starts with `-`"], &[]);
    let e = refused(
        "platform:\n  workstation:\n    extra_remote: { name: -f, url: https://x.org/a.git }\nusers: {}\n",
        "unsafe-repo-name",
        3,
        27,
    );
    says(&e, &["`-f`"], &["not starting with `.` or `-`"]);
    let e = refused("platform:\n  workstation:\n    repo_base: https://x.org/ops\nusers: {}\n", "invalid-url", 3, 16);
    says(&e, &["must end with `/`"], &[]);
    let e = refused(
        "platform:\n  forge:\n    protected_branches: [{ repo: ops/infra, branch: \"-f\" }]\nusers: {}\n",
        "invalid-branch",
        3,
        53,
    );
    says(&e, &["`-f` is not a git branch name"], &["no leading `-`"]);
}

#[test]
fn hostile_text_is_escaped_in_diagnostics() {
    let found =
        errors(users("  a: { email: a@x.org, tier: namespace-owner, namespaces: [\"x\\e]0;pwned\\a\"] }\n").as_bytes());
    let shown = render(&found);
    assert!(!shown.chars().any(|c| c == '\u{1b}' || c == '\u{7}'), "{shown:?}");
    assert!(shown.contains("\\u{1b}]0;pwned\\u{7}"), "{shown}");
}

/// A roster that sets every string field, one scalar per line.
const EVERY_FIELD: &str = r#"platform:
  name: homelab
  api_server: https://k8s.example.org:6443
  api_server_ca: |
    -----BEGIN CERTIFICATE-----
    TUlJQ2JqQ0NBZFdnQXdJQkFnSUJBREFOQmdrcWhraUc5dzBCQVFzRkFEQVRNUkV3RHdZRFZRUUQ=
    -----END CERTIFICATE-----
  oidc:
    issuer_url: https://auth.example.org/o/kubernetes/
    client_id: kubernetes
  domain: example.org
  reserved_namespaces:
    - billing
    - team-infra-*
  defaults:
    quota:
      pods: "20"
  dns:
    cname_target: tunnel.example.net
  tls:
    secret_name: tls-secret
    source:
      namespace: certs
      name: wildcard-tls
  ci:
    extra_admins:
      - ops-bot
  forge:
    repos:
      - ops/infra
    protected_branches:
      - repo: ops/infra
        branch: master
        push_users:
          - alice
  workstation:
    shell: /bin/zsh
    tier_groups:
      admin:
        - sudo
    port_pools:
      terminal: 3773
    main_repo:
      name: infra
      url: https://forge.example.org/ops/infra.git
    repo_base: https://forge.example.org/ops/
    extra_remote:
      name: forge
      url: git@forge.example.org:ops/infra.git
    dispatch_path: /etc/t3-serve/dispatch.json
    managed_files:
      - source: files/AGENTS.md
        dest: .codex/AGENTS.md
    skeleton_links:
      - link: .claude/skills
        target: /opt/base/skills
users:
  alice:
    email: alice@example.org
    tier: namespace-owner
    namespaces:
      - alice
    domains:
      - budget.alice
    quota:
      pods: "30"
    forge_user: alice
    workstation:
      os_user: alice
      idp_user: alice
      code_layout: workspace
      repos:
        - tripit
"#;

#[test]
fn no_roster_string_may_hold_a_control_separator_or_direction_character() {
    let roster = load_bytes(EVERY_FIELD.as_bytes()).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(roster.users["alice"].workstation.as_ref().unwrap().idp_user.value, "alice");
    // Each scalar (value or key) on each line, one at a time, with each character appended.
    let escapes = ["\\n", "\\r", "\\t", "\\e", "\\a", "\\x85", "\\u2028", "\\u2029", "\\u202E", "\\u2066", "\\uFEFF"];
    let mut tried = 0;
    for (index, line) in EVERY_FIELD.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let body = &line[indent..];
        let (prefix, key, value) = match body.strip_prefix("- ") {
            Some(item) => match item.split_once(": ") {
                Some((key, value)) => ("- ", key, value),
                None => ("- ", "", item),
            },
            None => match body.split_once(": ") {
                Some((key, value)) => ("", key, value),
                None => ("", body.trim_end_matches(':'), ""),
            },
        };
        if value.parse::<u16>().is_ok() {
            continue; // a number field: a quoted string is read as the number or refused as one
        }
        if value == "|" || body.starts_with("-----") || body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'=') {
            continue; // the CA block is checked as PEM
        }
        for escape in escapes {
            let quoted = |text: &str| format!("\"{}{escape}\"", text.trim_matches('"'));
            let mut variants = Vec::new();
            if !value.is_empty() {
                variants.push(format!(
                    "{}{prefix}{key}{}{}",
                    &line[..indent],
                    if key.is_empty() { "" } else { ": " },
                    quoted(value)
                ));
            }
            if !key.is_empty() {
                let rest = if value.is_empty() { ":".to_string() } else { format!(": {value}") };
                variants.push(format!("{}{prefix}{}{rest}", &line[..indent], quoted(key)));
            }
            for variant in variants {
                let text: String = EVERY_FIELD
                    .lines()
                    .enumerate()
                    .map(|(i, l)| if i == index { format!("{variant}\n") } else { format!("{l}\n") })
                    .collect();
                let found = match load_bytes(text.as_bytes()) {
                    Ok(_) => panic!("accepted {escape} in line {}: {variant}", index + 1),
                    Err(found) => found,
                };
                assert!(
                    found.errors().any(|d| d.span.line as usize == index + 1),
                    "no error at line {} for {variant}:\n{}",
                    index + 1,
                    render(&found.items)
                );
                tried += 1;
            }
        }
    }
    assert!(tried > 700, "only {tried} variants");
    // In the CA block (positioned at its first line), only line breaks are text.
    let text = EVERY_FIELD.replace("    -----END CERTIFICATE-----", "    -----END CERTIFICATE-----\u{2028}");
    assert_eq!(
        errors(text.as_bytes()).iter().map(|d| (d.code, d.span.line)).collect::<Vec<_>>(),
        [("control-character", 5)]
    );
}

// ---------------------------------------------------------------------------
// Hostile and mutated input.
// ---------------------------------------------------------------------------

/// Codes about the file as a whole, which have no one position.
const WHOLE_FILE: &[&str] = &["roster-too-large", "empty-roster"];

/// Every error points inside the input (the line after a final newline counts), or is about the whole file.
fn assert_positioned(bytes: &[u8], found: &Diagnostics) -> Result<(), TestCaseError> {
    prop_assert!(found.has_errors(), "a refused roster has at least one error");
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.split('\n').collect();
    for error in found.errors() {
        prop_assert!(error.help.is_some(), "no fix offered: {}", error);
        prop_assert!(!error.message.is_empty(), "empty message: {}", error);
        if WHOLE_FILE.contains(&error.code) {
            continue;
        }
        let Span { line, column } = error.span;
        prop_assert!(line >= 1 && column >= 1, "no position: {}\n--- input:\n{}", error, text);
        let line_text = lines.get(line as usize - 1);
        prop_assert!(
            line_text.is_some(),
            "line {} is past the input ({} lines): {}\n{}",
            line,
            lines.len(),
            error,
            text
        );
        let width = line_text.map(|l| l.len()).unwrap_or_default();
        prop_assert!(column as usize <= width + 1, "column past line {line} ({width} wide): {}\n{}", error, text);
    }
    Ok(())
}

/// Load; a refusal must be positioned, an acceptance must be a real roster read the same way twice.
fn check_any_input(bytes: &[u8]) -> Result<(), TestCaseError> {
    match load_bytes(bytes) {
        Err(found) => assert_positioned(bytes, &found),
        Ok(roster) => {
            // Only a UTF-8 YAML mapping with a `users` key can be a roster.
            let text = std::str::from_utf8(bytes);
            prop_assert!(text.is_ok_and(|t| t.contains("users")), "accepted garbage: {:?}", bytes);
            for (key, user) in &roster.users {
                prop_assert!(names::is_dns1123_label(key), "accepted user key {:?}", key);
                prop_assert!(user.span.is_known(), "user {} has no position", key);
                prop_assert!(user.email.value.contains('@'));
            }
            let again = load_bytes(bytes).map_err(|d| TestCaseError::fail(d.to_string()))?;
            let raw = parse_raw(SOURCE, bytes).map_err(|d| TestCaseError::fail(d.to_string()))?;
            let (_, found) = validate_with_warnings(SOURCE, raw, &ValidationContext::default())
                .map_err(|d| TestCaseError::fail(d.to_string()))?;
            for warning in found.warnings() {
                prop_assert!(warning.span.is_known(), "warning without a position: {}", warning);
            }
            prop_assert_eq!(format!("{roster:?}"), format!("{again:?}"));
            Ok(())
        }
    }
}

/// A YAML node as the grammar generator builds it.
#[derive(Debug, Clone)]
enum Node {
    Scalar(String),
    List(Vec<Node>),
    Map(Vec<(String, Node)>),
}

const KEYS: &[&str] = &[
    "users",
    "platform",
    "email",
    "tier",
    "namespaces",
    "domains",
    "quota",
    "forge_user",
    "workstation",
    "os_user",
    "idp_user",
    "code_layout",
    "repos",
    "parked",
    "name",
    "api_server",
    "oidc",
    "issuer_url",
    "client_id",
    "domain",
    "defaults",
    "dns",
    "cname_target",
    "a_target",
    "proxied",
    "record_budget",
    "tls",
    "secret_name",
    "source",
    "namespace",
    "issuer",
    "kind",
    "ci",
    "extra_admins",
    "forge",
    "protected_branches",
    "repo",
    "branch",
    "push_users",
    "shell",
    "tier_groups",
    "port_pools",
    "main_repo",
    "url",
    "repo_base",
    "extra_remote",
    "dispatch_path",
    "managed_files",
    "dest",
    "skeleton_links",
    "session_command",
    "system_files",
    "link",
    "target",
    "requests.cpu",
    "pods",
    "limits.memory",
    "alice",
    "bob",
    "admin",
    "terminal",
    "emial",
    "Alice",
    "x y",
    "<<",
    "? q",
];

const SCALARS: &[&str] = &[
    "admin",
    "power-user",
    "namespace-owner",
    "namespace-ownr",
    "a@x.org",
    "b@x.org",
    "A@X.ORG",
    "alice",
    "kube-system",
    "default",
    "../etc",
    "4Gi",
    "4GB",
    "-1",
    "500m",
    "20",
    "0",
    "65536",
    "1023",
    "true",
    "false",
    "~",
    "null",
    "''",
    "\"\"",
    "\"quoted: value\"",
    "workspace",
    "single",
    "https://x.org/",
    "/bin/bash",
    "relative/path",
    "example.org",
    "blog",
    "*undefined",
    "&anchor x",
    "!!str 5",
    "!!binary aGk=",
    "|\n  block",
    "1e999",
    "0x10",
    "Ωmega",
    "é",
    "[",
    "{",
    "}",
    "]",
    "- ",
    ": ",
    "#",
    "'unclosed",
    "\"unclosed",
    "\\t",
    "\t",
    "\u{feff}",
    "%YAML 1.2",
];

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => prop::sample::select(SCALARS).prop_map(|s| Node::Scalar(s.to_string())),
        1 => "[a-z0-9@._-]{0,12}".prop_map(Node::Scalar),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Node::List),
            prop::collection::vec((prop::sample::select(KEYS).prop_map(str::to_string), inner), 0..6)
                .prop_map(Node::Map),
        ]
    })
}

/// Emit a node in block style (or flow style when `flow`), at `indent`.
fn emit(node: &Node, indent: usize, flow: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Scalar(s) => out.push_str(s),
        Node::List(items) if flow || items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                emit(item, indent, true, out);
            }
            out.push(']');
        }
        Node::Map(entries) if flow || entries.is_empty() => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push_str(": ");
                emit(value, indent, true, out);
            }
            out.push('}');
        }
        Node::List(items) => {
            for item in items {
                out.push('\n');
                out.push_str(&pad);
                out.push_str("- ");
                emit(item, indent + 2, matches!(item, Node::List(_)), out);
            }
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                out.push('\n');
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                if let Node::Scalar(_) = value {
                    out.push(' ');
                }
                emit(value, indent + 2, false, out);
            }
        }
    }
}

/// A whole document: a mapping with `users` (and sometimes `platform`) at the top, anything below.
fn document() -> impl Strategy<Value = String> {
    let extra = prop::collection::vec((prop::sample::select(KEYS).prop_map(str::to_string), node()), 0..3);
    (node(), node(), extra, any::<bool>()).prop_map(|(users, platform, extra, with_platform)| {
        let mut entries = vec![("users".to_string(), users)];
        if with_platform {
            entries.push(("platform".to_string(), platform));
        }
        entries.extend(extra);
        let mut out = String::new();
        emit(&Node::Map(entries), 0, false, &mut out);
        out.trim_start_matches('\n').to_string() + "\n"
    })
}

const USER_FIELDS: &[&str] =
    &["email", "tier", "namespaces", "domains", "quota", "forge_user", "workstation", "emial", "tier"];
const WORKSTATION_FIELDS: &[&str] = &["os_user", "idp_user", "code_layout", "repos", "parked", "os_usr"];
const QUOTA_KEYS: &[&str] = &["pods", "requests.cpu", "limits.memory", "requets.cpu", "count/deployments.apps", "x/"];

/// A value that is usually the right shape for a roster field, with a random (often wrong) content.
fn field_value(field: &'static str) -> BoxedStrategy<Node> {
    fn scalar() -> BoxedStrategy<Node> {
        prop::sample::select(SCALARS).prop_map(|s| Node::Scalar(s.to_string())).boxed()
    }
    fn names() -> BoxedStrategy<Node> {
        prop::collection::vec(scalar(), 0..4).prop_map(Node::List).boxed()
    }
    match field {
        "namespaces" | "domains" | "repos" => prop_oneof![4 => names(), 1 => scalar()].boxed(),
        "quota" => prop::collection::vec((prop::sample::select(QUOTA_KEYS).prop_map(str::to_string), scalar()), 0..4)
            .prop_map(Node::Map)
            .boxed(),
        "workstation" => prop::collection::vec(
            prop::sample::select(WORKSTATION_FIELDS)
                .prop_flat_map(|f| (Just(f.to_string()), if f == "repos" { names() } else { scalar() })),
            0..4,
        )
        .prop_map(Node::Map)
        .boxed(),
        _ => scalar(),
    }
}

const PLAUSIBLE: &[&str] = &[
    "a@x.org",
    "b@x.org",
    "A@x.org",
    "admin",
    "power-user",
    "namespace-owner",
    "alice",
    "bob",
    "alice-prod",
    "kube-system",
    "blog",
    "blog.example.org",
    "4Gi",
    "4GB",
    "2",
    "true",
    "workspace",
    "single",
    "../etc",
];

/// A roster whose shape is right (users with email, tier and other fields) and whose values are
/// plausible or random: most of these reach validation.
fn roster_shaped() -> impl Strategy<Value = String> {
    let plausible = || prop::sample::select(PLAUSIBLE).prop_map(|s| Node::Scalar(s.to_string()));
    let others = prop::collection::vec(
        prop::sample::select(USER_FIELDS).prop_flat_map(|f| (Just(f.to_string()), field_value(f))),
        0..4,
    );
    let tier = prop_oneof![
        4 => prop::sample::select(&["admin", "power-user", "namespace-owner"][..]).prop_map(|s| Node::Scalar(s.to_string())),
        1 => plausible(),
    ];
    let user = (plausible(), tier, others).prop_map(|(email, tier, others)| {
        let mut entries = vec![("email".to_string(), email), ("tier".to_string(), tier)];
        entries.extend(others);
        Node::Map(entries)
    });
    let key = prop_oneof![prop::sample::select(PLAUSIBLE).prop_map(str::to_string), "[a-z][a-z0-9-]{0,8}"];
    (prop::collection::vec((key, user), 1..6), any::<bool>()).prop_map(|(users, flow)| {
        let mut out = String::from("platform: { domain: example.org }\nusers:");
        for (key, user) in users {
            out.push_str(&format!("\n  {key}:"));
            if flow {
                out.push(' ');
                emit(&user, 4, true, &mut out);
            } else {
                emit(&user, 4, false, &mut out);
            }
        }
        out + "\n"
    })
}

/// One edit of the example roster, by line.
#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    SwapValues(usize, usize),
    DuplicateBlock { start: usize, len: usize, at: usize },
    Indent(usize, i8),
    TabIndent(usize),
    Truncate(usize),
    ReplaceValue(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(|i| Mutation::DeleteLine(i.index(1000))),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Mutation::SwapValues(a.index(1000), b.index(1000))),
        (any::<prop::sample::Index>(), 1..8usize, any::<prop::sample::Index>())
            .prop_map(|(s, len, at)| Mutation::DuplicateBlock { start: s.index(1000), len, at: at.index(1000) }),
        (any::<prop::sample::Index>(), -4..=4i8).prop_map(|(i, d)| Mutation::Indent(i.index(1000), d)),
        any::<prop::sample::Index>().prop_map(|i| Mutation::TabIndent(i.index(1000))),
        any::<prop::sample::Index>().prop_map(|i| Mutation::Truncate(i.index(4000))),
        (any::<prop::sample::Index>(), prop::sample::select(SCALARS))
            .prop_map(|(i, s)| Mutation::ReplaceValue(i.index(1000), s.to_string())),
    ]
}

fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for m in mutations {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match m {
            Mutation::DeleteLine(i) => {
                lines.remove(i % n);
            }
            Mutation::SwapValues(a, b) => {
                let split = |l: &str| l.split_once(": ").map(|(k, v)| (k.to_string(), v.to_string()));
                if let (Some((ka, va)), Some((kb, vb))) = (split(&lines[a % n]), split(&lines[b % n])) {
                    lines[a % n] = format!("{ka}: {vb}");
                    lines[b % n] = format!("{kb}: {va}");
                }
            }
            Mutation::DuplicateBlock { start, len, at } => {
                let start = start % n;
                let block: Vec<String> = lines[start..(start + len).min(n)].to_vec();
                let at = at % (n + 1);
                lines.splice(at..at, block);
            }
            Mutation::Indent(i, delta) => {
                let line = &mut lines[i % n];
                if *delta >= 0 {
                    line.insert_str(0, &" ".repeat(*delta as usize));
                } else {
                    let strip = line.len() - line.trim_start_matches(' ').len();
                    line.drain(..strip.min(delta.unsigned_abs() as usize));
                }
            }
            Mutation::TabIndent(i) => lines[i % n].insert(0, '\t'),
            Mutation::Truncate(at) => {
                let mut joined = lines.join("\n");
                let mut cut = at % (joined.len() + 1);
                while !joined.is_char_boundary(cut) {
                    cut -= 1;
                }
                joined.truncate(cut);
                lines = joined.split('\n').map(str::to_string).collect();
            }
            Mutation::ReplaceValue(i, value) => {
                let line = &mut lines[i % n];
                if let Some((key, _)) = line.split_once(": ") {
                    *line = format!("{key}: {value}");
                }
            }
        }
    }
    lines.join("\n") + "\n"
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_and_never_pass_as_a_roster(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        check_any_input(&bytes)?;
        prop_assert!(load_bytes(&bytes).is_err(), "random bytes accepted");
    }

    #[test]
    fn yaml_shaped_text_never_panics(text in "[ -~\t\n\u{e9}\u{feff}]{0,400}") {
        check_any_input(text.as_bytes())?;
    }
}

/// A user key that is neither reserved nor a host system account (`lp`, `man`, `root`…).
fn free_key() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,10}".prop_filter("reserved", |key| {
        reserved::os_user_reason(key).is_none() && !reserved::RESERVED_USER_KEYS.iter().any(|(name, _)| name == key)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_yaml_never_panics_and_every_error_is_positioned(text in document()) {
        check_any_input(text.as_bytes())?;
    }

    #[test]
    fn roster_shaped_yaml_with_random_values_never_panics_and_every_error_is_positioned(text in roster_shaped()) {
        check_any_input(text.as_bytes())?;
    }

    #[test]
    fn mutated_example_rosters_never_panic_and_every_error_is_positioned(
        mutations in prop::collection::vec(mutation(), 1..6)
    ) {
        let text = mutate(EXAMPLE, &mutations);
        check_any_input(text.as_bytes())?;
    }

    #[test]
    fn generated_valid_rosters_load_and_read_the_same_twice(
        people in prop::collection::btree_map(free_key(), (0..3usize, any::<bool>(), 0..3usize), 1..12)
    ) {
        let mut text = String::from("platform:\n  domain: example.org\nusers:\n");
        for (key, (tier, workstation, domains)) in &people {
            let tier = ["admin", "power-user", "namespace-owner"][*tier];
            text.push_str(&format!("  {key}:\n    email: {key}@example.org\n    tier: {tier}\n"));
            if tier == "namespace-owner" {
                text.push_str(&format!("    namespaces: [{key}, {key}-prod]\n    quota: {{ pods: \"30\" }}\n"));
            }
            if *domains > 0 {
                let list: Vec<String> = (0..*domains).map(|d| format!("d{d}.{key}")).collect();
                text.push_str(&format!("    domains: [{}]\n", list.join(", ")));
            }
            if *workstation {
                text.push_str("    workstation: {}\n");
            }
        }
        let roster = load_bytes(text.as_bytes()).map_err(|d| TestCaseError::fail(format!("{d}\n{text}")))?;
        prop_assert_eq!(roster.users.len(), people.len());
        let again = load_bytes(text.as_bytes()).map_err(|d| TestCaseError::fail(d.to_string()))?;
        prop_assert_eq!(format!("{roster:?}"), format!("{again:?}"));
        for (key, (_, workstation, domains)) in &people {
            let user = &roster.users[key];
            prop_assert_eq!(&user.email.value, &format!("{key}@example.org"));
            prop_assert_eq!(user.domains.len(), *domains);
            prop_assert_eq!(user.workstation.as_ref().map(|w| w.os_user.value.clone()), workstation.then(|| key.clone()));
        }
    }
}

#[test]
fn the_example_roster_is_valid_and_reads_the_same_twice() {
    let first = load_bytes(EXAMPLE.as_bytes()).unwrap_or_else(|d| panic!("{d}"));
    let second = load_bytes(EXAMPLE.as_bytes()).unwrap();
    assert_eq!(format!("{first:?}"), format!("{second:?}"));
    assert_eq!(first.users.keys().collect::<Vec<_>>(), ["alice", "bob", "carol", "emo", "wizard"]);
    let alice = &first.users["alice"];
    assert_eq!(alice.namespaces.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(), ["alice", "alice-prod"]);
    let line = EXAMPLE.lines().position(|l| l.contains("namespaces: [alice, alice-prod]")).unwrap() + 1;
    assert_eq!(alice.namespaces[0].span, Span::new(line as u32, 18));
    assert_eq!(
        first.platform.reserved_namespaces.iter().map(|n| n.value.as_str()).collect::<Vec<_>>(),
        ["backups", "ops-*"]
    );
    assert_eq!(alice.domains[0].value, "budget.alice.example.org");
    assert_eq!(alice.quota["pods"].value.as_str(), "30", "the user's own value wins");
    assert_eq!(alice.quota["limits.memory"].value.as_str(), "8Gi", "the platform default is merged in");
    assert_eq!(first.users["bob"].forge_user.value, "bob-dev");
    assert_eq!(first.users["emo"].workstation.as_ref().unwrap().idp_user.value, "ebarzin");
    // The warnings-returning entry point agrees.
    let raw = parse_raw(SOURCE, EXAMPLE.as_bytes()).unwrap();
    let (third, warnings) = validate_with_warnings(SOURCE, raw, &ValidationContext::default()).unwrap();
    assert_eq!(format!("{first:?}"), format!("{third:?}"));
    assert_eq!(warnings.items, []);
}

// ---------------------------------------------------------------------------
// Scale.
// ---------------------------------------------------------------------------

#[test]
fn a_ten_thousand_user_roster_parses_and_validates() {
    const USERS: usize = 10_000;
    let mut text = String::from(concat!(
        "platform:\n",
        "  domain: example.org\n",
        "  defaults:\n",
        "    quota: { requests.cpu: \"2\", requests.memory: 4Gi, limits.memory: 8Gi, pods: \"20\" }\n",
        "  workstation:\n",
        "    main_repo: { name: infra, url: https://forge.example.org/ops/infra.git }\n",
        "    repo_base: https://forge.example.org/ops/\n",
        "users:\n",
    ));
    for i in 0..USERS {
        match i % 3 {
            0 => text.push_str(&format!(
                "  user{i:05}:\n    email: user{i:05}@example.org\n    tier: namespace-owner\n    namespaces: [user{i:05}, user{i:05}-prod]\n    domains: [app.user{i:05}]\n    quota: {{ pods: \"{}\" }}\n    workstation:\n      code_layout: workspace\n      repos: [tools, notes]\n",
                30 + i % 7
            )),
            1 => text.push_str(&format!("  user{i:05}: {{ email: user{i:05}@example.org, tier: power-user }}\n")),
            _ => text.push_str(&format!(
                "  user{i:05}: {{ email: user{i:05}@example.org, tier: admin, workstation: {{ os_user: op{i:05} }} }}\n"
            )),
        }
    }
    assert!(text.len() < MAX_ROSTER_BYTES);
    let roster = load_bytes(text.as_bytes())
        .unwrap_or_else(|d| panic!("{}", d.items.iter().take(5).map(|d| d.to_string()).collect::<Vec<_>>().join("\n")));
    assert_eq!(roster.users.len(), USERS);
    let owners = roster.users.values().filter(|u| u.tier.value == Tier::NamespaceOwner).count();
    assert_eq!(owners, USERS.div_ceil(3));
    assert_eq!(roster.users.values().map(|u| u.namespaces.len()).sum::<usize>(), 2 * owners);
    assert_eq!(roster.users.values().filter(|u| u.workstation.is_some()).count(), USERS - USERS / 3);

    let first = &roster.users["user00000"];
    assert_eq!(first.span, Span::new(9, 3));
    assert_eq!(first.domains[0].value, "app.user00000.example.org");
    assert_eq!(first.quota["pods"].value.as_str(), "30");
    assert_eq!(first.quota["requests.memory"].value.as_str(), "4Gi");
    let ws = first.workstation.as_ref().unwrap();
    assert_eq!((ws.os_user.value.as_str(), ws.code_layout), ("user00000", CodeLayout::Workspace));
    assert_eq!(ws.repos.iter().map(|r| r.value.as_str()).collect::<Vec<_>>(), ["tools", "notes"]);

    let last = &roster.users["user09999"];
    assert_eq!(last.tier.value, Tier::NamespaceOwner);
    assert_eq!(last.quota["pods"].value.as_str(), (30 + 9999 % 7).to_string());
    assert_eq!(last.namespaces[1].value, "user09999-prod");
    assert_eq!(roster.users["user05000"].tier.value, Tier::Admin);
    assert_eq!(roster.users["user05000"].workstation.as_ref().unwrap().os_user.value, "op05000");
    assert_eq!(roster.users["user04999"].tier.value, Tier::PowerUser);
    assert!(roster.users["user04999"].workstation.is_none());

    // One clash among 10,000 is still found, and named.
    let clash = text.replace("namespaces: [user09999, user09999-prod]", "namespaces: [user09999, user00000-prod]");
    let found = errors(clash.as_bytes());
    assert_eq!(found.len(), 1, "{}", render(&found));
    assert_eq!(found[0].code, "namespace-claimed-twice");
    assert!(found[0].message.contains("already owned by user `user00000`"), "{}", found[0]);
}

// ---------------------------------------------------------------------------
// The JSON Schema describes every key the example roster uses.
// ---------------------------------------------------------------------------

/// The schema of `key` inside `schema` (following `$ref`, `anyOf`, `oneOf`), or of any key of a map.
fn child<'a>(root: &'a serde_json::Value, schema: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let schema = resolve(root, schema);
    if let Some(found) = schema.get("properties").and_then(|p| p.get(key)) {
        return Some(found);
    }
    if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
        return Some(extra);
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        for option in schema.get(combinator).and_then(|v| v.as_array()).into_iter().flatten() {
            if let Some(found) = child(root, option, key) {
                return Some(found);
            }
        }
    }
    None
}

fn items<'a>(root: &'a serde_json::Value, schema: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
    let schema = resolve(root, schema);
    if let Some(found) = schema.get("items") {
        return Some(found);
    }
    ["anyOf", "oneOf", "allOf"]
        .iter()
        .flat_map(|c| schema.get(*c).and_then(|v| v.as_array()).into_iter().flatten())
        .find_map(|option| items(root, option))
}

fn resolve<'a>(root: &'a serde_json::Value, mut schema: &'a serde_json::Value) -> &'a serde_json::Value {
    while let Some(reference) = schema.get("$ref").and_then(|r| r.as_str()) {
        let name = reference.trim_start_matches("#/$defs/");
        schema = &root["$defs"][name];
    }
    schema
}

fn walk(root: &serde_json::Value, schema: &serde_json::Value, value: &serde_json::Value, path: &str, keys: &mut usize) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let here = format!("{path}.{key}");
                let found = child(root, schema, key).unwrap_or_else(|| panic!("the schema has no `{here}`"));
                *keys += 1;
                walk(root, found, inner, &here, keys);
            }
        }
        serde_json::Value::Array(list) => {
            let each = items(root, schema).unwrap_or_else(|| panic!("the schema has no list at `{path}`"));
            for (i, inner) in list.iter().enumerate() {
                walk(root, each, inner, &format!("{path}[{i}]"), keys);
            }
        }
        _ => {}
    }
}

#[test]
fn the_json_schema_covers_every_key_of_the_example_roster() {
    let schema = json_schema();
    let example: serde_json::Value = serde_saphyr::from_str(EXAMPLE).unwrap();
    let mut keys = 0;
    walk(&schema, &schema, &example, "", &mut keys);
    assert!(keys > 60, "walked only {keys} keys");
    // And the schema refuses what the parser refuses: no unknown fields at the top or in a user.
    assert_eq!(schema["additionalProperties"], false);
    assert!(child(&schema, &schema, "user").is_none());
    let user = child(&schema, child(&schema, &schema, "users").unwrap(), "alice").unwrap();
    assert!(child(&schema, user, "emial").is_none());
    assert!(child(&schema, user, "workstation").is_some());
}

#[test]
fn isolation_settings_are_checked_with_a_fix() {
    let users = "users:\n  a: { email: a@example.org, tier: power-user }\n";
    let error = refused(format!("platform:\n  isolation: strict\n{users}"), "unknown-value", 2, 14);
    says(&error, &["unknown isolation `strict`"], &["standard"]);
    let error = refused(
        format!("platform:\n  isolation_options: {{ egress_cidrs: [10.0.0.0/33] }}\n{users}"),
        "invalid-cidr",
        2,
        39,
    );
    says(&error, &["10.0.0.0/33"], &["address/prefix"]);
    let error = refused(
        format!("platform:\n  isolation_options: {{ cluster_reads: [secrets] }}\n{users}"),
        "unknown-value",
        2,
        40,
    );
    says(&error, &["secrets"], &["namespaces or nodes"]);
    let roster = load_bytes(format!("platform:\n  isolation: none\n{users}").as_bytes()).unwrap();
    assert!(!roster.platform.isolation.is_standard());
    let roster = load_bytes(users.as_bytes()).unwrap();
    assert!(roster.platform.isolation.is_standard(), "standard is the default of a roster that does not say");
}

#[test]
fn a_session_command_is_argv_words_with_known_placeholders() {
    let ok = "platform:\n  workstation:\n    session_command: claude --resume {conversation}\nusers: {}\n";
    let roster = load_bytes(ok.as_bytes()).unwrap();
    let command = roster.platform.workstation.session_command.unwrap();
    assert_eq!(command.words, ["claude", "--resume", "{conversation}"]);
    assert_eq!(
        command.argv("main", "/home/a", Some("c-1; rm -rf /")).unwrap(),
        ["claude", "--resume", "c-1; rm -rf /"]
    );
    assert_eq!(command.argv("main", "/home/a", None), None, "no conversation: the login shell");
    for (bad, what) in [
        ("claude --resume {conversaton}", "did you mean `{conversation}`"),
        ("claude '--resume' x", "quotes and backslashes"),
        ("{conversation} x", "starts with a placeholder"),
        ("claude {session", "without `}`"),
        ("claude session}", "without `{`"),
    ] {
        let text =
            format!("platform:\n  workstation:\n    session_command: \"{}\"\nusers: {{}}\n", bad.replace('"', "\\\""));
        let e = refused(&text, "invalid-session-command", 3, 22);
        assert!(e.to_string().contains(what), "{bad}: {e}");
    }
}

#[test]
fn system_files_go_to_absolute_paths_outside_homes() {
    let ok = "platform:\n  workstation:\n    system_files: [{ source: files/s.json, dest: /etc/claude-code/managed-settings.json }]\nusers: {}\n";
    let roster = load_bytes(ok.as_bytes()).unwrap();
    assert_eq!(roster.platform.workstation.system_files[0].dest, "/etc/claude-code/managed-settings.json");
    for dest in [
        "etc/x.json",
        "/etc/../root/x",
        "/home/alice/.bashrc",
        "/root/x",
        "/tmp/x",
        "/etc/shadow",
        "/etc/sudoers.d/x",
        "/etc/./x",
    ] {
        let text = format!(
            "platform:\n  workstation:\n    system_files: [{{ source: files/s.json, dest: {dest} }}]\nusers: {{}}\n"
        );
        let found = errors(text.as_bytes());
        assert_eq!(found.len(), 1, "{dest}: {}", render(&found));
        assert_eq!((found[0].code, found[0].span.line), ("unsafe-path", 3), "{dest}: {}", found[0]);
    }
}
