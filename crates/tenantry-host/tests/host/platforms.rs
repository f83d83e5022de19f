//! Issue #12 on the sandbox root: two rosters with different `platform.name`
//! applied to one host never take, prune or cut each other's resources (the
//! records under the root say which platform applied each), and records an
//! earlier version wrote (no platform) are claimed only through the inventory.

use super::*;

const ALICE: &str = "  alice: { email: alice@example.org, tier: power-user, workstation: {} }\n";
const CAROL: &str = "  carol: { email: carol@example.org, tier: power-user, workstation: {} }\n";
const SAM: &str = "  sam: { email: sam@example.org, tier: power-user, workstation: {} }\n";

/// One platform's view of the sandbox: its target and its own state database.
struct Platform<'a> {
    sandbox: &'a Sandbox,
    name: &'static str,
}

impl Platform<'_> {
    fn target(&self) -> HostTarget {
        self.sandbox.target().with_platform(self.name)
    }

    fn engine_on(&self, state: &str) -> Engine {
        let state = State::open(&self.sandbox.base.join(state)).unwrap();
        let targets: Vec<Arc<dyn Target>> = vec![Arc::new(self.target())];
        Engine::new(targets, state, Arc::new(FixedClock("2026-11-28T12:00:00Z".into())), Settings::default())
    }

    fn engine(&self) -> Engine {
        self.engine_on(&format!("{}.db", self.name))
    }

    fn roster(&self, users: &str) -> Roster {
        let platform = PLATFORM.replace("  name: lab\n", &format!("  name: {}\n", self.name));
        let text = format!("{}{users}", platform.replace("@REPOS@", &self.sandbox.repos.display().to_string()));
        tenantry_model::load("roster.yaml", text.as_bytes(), &Default::default()).unwrap()
    }

    async fn apply(&self, engine: &Engine, roster: &Roster, policy: Policy) -> (Prepared, ApplyReport) {
        let prepared = engine.prepare(roster, policy).await.unwrap();
        assert!(prepared.unavailable.is_empty(), "{:?}", prepared.unavailable);
        let report = engine.apply(roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
        (prepared, report)
    }
}

/// Every record under the sandbox's records directory, by path.
fn records(sandbox: &Sandbox) -> BTreeMap<PathBuf, serde_json::Value> {
    fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, serde_json::Value>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.insert(path.clone(), serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&sandbox.root.join("var/lib/tenantry/host"), &mut out);
    out
}

/// Rewrite every record as an earlier version wrote it: without a platform.
fn as_an_earlier_version_wrote_them(sandbox: &Sandbox) -> usize {
    let all = records(sandbox);
    for (path, mut record) in all.clone() {
        record.as_object_mut().unwrap().remove("platform");
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    }
    all.len()
}

fn platform_of(sandbox: &Sandbox, relative: &str) -> Option<String> {
    let path = sandbox.root.join("var/lib/tenantry/host").join(relative);
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["platform"].as_str().map(str::to_string)
}

fn users_changed(prepared: &Prepared) -> BTreeSet<Owner> {
    prepared.plan.changes.iter().filter(|c| c.action.is_change()).map(|c| c.owner.clone()).collect()
}

#[tokio::test]
async fn two_platforms_on_one_host_never_take_or_cut_each_others_accounts_or_files() {
    let sandbox = Sandbox::new();
    let lab = Platform { sandbox: &sandbox, name: "lab" };
    let prod = Platform { sandbox: &sandbox, name: "prod" };
    let (lab_engine, prod_engine) = (lab.engine(), prod.engine());
    let lab_roster = lab.roster(&format!("{ALICE}{SAM}"));
    let prod_roster = prod.roster(&format!("{CAROL}{SAM}"));

    let (_, report) = lab.apply(&lab_engine, &lab_roster, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(platform_of(&sandbox, "Account/-/sam.json").as_deref(), Some("lab"));
    let dispatch = std::fs::read_to_string(sandbox.path("/etc/t3-serve/dispatch.json")).unwrap();

    // prod: sam's resources and the shared routing files are lab's — conflicts naming lab;
    // carol's converge.
    let (prepared, report) = prod.apply(&prod_engine, &prod_roster, Policy::default()).await;
    let conflicts: Vec<&Change> = prepared.plan.changes.iter().filter(|c| c.action == Action::Conflict).collect();
    assert!(conflicts.iter().any(|c| c.id.to_string() == "host/Account/-/sam"), "{conflicts:#?}");
    assert!(conflicts.iter().any(|c| c.id.to_string() == "host/GeneratedFile/-/dispatch.json"), "{conflicts:#?}");
    for conflict in &conflicts {
        assert!(
            conflict.owner == Owner::User("sam".into()) || conflict.owner == Owner::Platform,
            "{}: {:?}",
            conflict.id,
            conflict.owner
        );
        assert!(conflict.reason.contains("platform `lab`"), "{}: {}", conflict.id, conflict.reason);
    }
    assert_eq!(change(&prepared, "host/Account/-/carol").map(|c| c.action), Some(Action::Create));
    let failed: BTreeSet<String> = report.failures.iter().map(|f| f.owner.to_string()).collect();
    assert!(!failed.contains("carol"), "{:#?}", report.failures);
    assert!(std::fs::read_to_string(sandbox.root.join("etc/passwd")).unwrap().contains("\ncarol:"));
    assert_eq!(platform_of(&sandbox, "Account/-/carol.json").as_deref(), Some("prod"));
    assert_eq!(platform_of(&sandbox, "Account/-/sam.json").as_deref(), Some("lab"), "never taken over");
    assert_eq!(
        std::fs::read_to_string(sandbox.path("/etc/t3-serve/dispatch.json")).unwrap(),
        dispatch,
        "lab's routing is never overwritten by prod"
    );

    // A no-op plan of lab shows nothing of carol, with a lost state database too.
    let again = lab_engine.prepare(&lab_roster, Policy::default()).await.unwrap();
    assert!(!again.plan.has_changes(), "{:#?}", again.plan.changes);
    let fresh = lab.engine_on("lab-fresh.db");
    let forgetful = fresh.prepare(&lab_roster, Policy { offboard: true, ..Policy::default() }).await.unwrap();
    let named: BTreeSet<String> = forgetful.plan.changes.iter().map(|c| c.owner.to_string()).collect();
    assert!(!named.contains("carol"), "{:#?}", forgetful.plan.changes);
    assert!(forgetful.plan.departing.is_empty(), "{:?}", forgetful.plan.departing);

    // --offboard of lab (alice left) cuts alice only: carol's login stays open.
    let without_alice = lab.roster(SAM);
    let (prepared, report) =
        lab.apply(&lab_engine, &without_alice, Policy { offboard: true, ..Policy::default() }).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let touched = users_changed(&prepared);
    assert!(touched.contains(&Owner::User("alice".into())), "{touched:?}");
    assert!(touched.iter().all(|o| *o == Owner::User("alice".into()) || *o == Owner::Platform), "{touched:?}");
    assert_eq!(sandbox.shadow("alice")[7], "1", "alice's login is cut");
    assert_eq!(sandbox.shadow("carol")[7], "", "prod's carol is never cut by lab");

    // --offboard of prod (carol left) cuts carol only: lab's sam and alice are not prod's.
    let (prepared, _) =
        prod.apply(&prod_engine, &prod.roster(SAM), Policy { offboard: true, ..Policy::default() }).await;
    let touched = users_changed(&prepared);
    assert!(touched.contains(&Owner::User("carol".into())), "{touched:?}");
    assert!(touched.iter().all(|o| *o == Owner::User("carol".into()) || *o == Owner::Platform), "{touched:?}");
    assert_eq!(sandbox.shadow("carol")[7], "1");
    assert_eq!(sandbox.shadow("sam")[7], "", "lab's sam is never cut by prod");
}

#[tokio::test]
async fn records_an_earlier_version_wrote_are_claimed_through_the_inventory_or_adopted() {
    let sandbox = Sandbox::new();
    let lab = Platform { sandbox: &sandbox, name: "lab" };
    let engine = lab.engine();
    let roster = lab.roster(ALICE);
    let (_, report) = lab.apply(&engine, &roster, Policy::default()).await;
    assert!(report.is_success(), "{:#?}", report.failures);

    // In the inventory: each resource is claimed with a plan line saying so, then recorded as lab's.
    let written = as_an_earlier_version_wrote_them(&sandbox);
    let prepared = engine.prepare(&roster, Policy::default()).await.unwrap();
    let claimed: Vec<&Change> = prepared.plan.changes.iter().filter(|c| c.action.is_change()).collect();
    assert_eq!(claimed.len(), written, "{:#?}", prepared.plan.changes);
    for change in &claimed {
        assert_eq!(change.action, Action::Update, "{}: {change:?}", change.id);
        assert!(change.reason.contains("inventory remembers it"), "{}: {}", change.id, change.reason);
    }
    let report = engine.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(records(&sandbox).values().all(|r| r["platform"] == "lab"), "{:#?}", records(&sandbox));
    sandbox_no_changes(&engine, &roster).await;

    // Not in the inventory (a fresh state database): the same resources are adopted, shown in the plan.
    as_an_earlier_version_wrote_them(&sandbox);
    let fresh = lab.engine_on("fresh.db");
    let prepared = fresh.prepare(&roster, Policy::default()).await.unwrap();
    let adopted: Vec<&Change> = prepared.plan.changes.iter().filter(|c| c.action.is_change()).collect();
    assert_eq!(adopted.len(), written, "{:#?}", prepared.plan.changes);
    for change in &adopted {
        assert_eq!(change.action, Action::Adopt, "{}: {change:?}", change.id);
        assert!(change.reason.contains("earlier version's marks"), "{}: {}", change.id, change.reason);
    }
    let report = fresh.apply(&roster, &prepared, &ApplyOptions::default(), &|_| {}).await.unwrap();
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(records(&sandbox).values().all(|r| r["platform"] == "lab"));
    sandbox_no_changes(&fresh, &roster).await;
}

async fn sandbox_no_changes(engine: &Engine, roster: &Roster) {
    let prepared = engine.prepare(roster, Policy::default()).await.unwrap();
    assert!(!prepared.plan.has_changes(), "{:#?}", prepared.plan.changes);
}
