//! The portal's model: everything a page shows that does not change between
//! reconciles, computed once per roster or reconcile change and swapped in
//! atomically ([`crate::Portal::publish`]). A page view only looks a user up
//! (hash maps by key and by email) and reads live quota usage.

use crate::reconcile::{LastReconcile, ResourceState};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;
use tenantry_app::{GrantWhy, UserView};
use tenantry_core::Domain;
use tenantry_model::{Platform, Tier};

/// Why a download cannot be offered, with the fix for the admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub message: String,
    pub help: String,
}

/// One user as the portal shows them.
#[derive(Debug, Clone)]
pub struct PortalUser {
    pub view: UserView,
    /// Each grant's state after the last reconcile, aligned with `view.grants`.
    pub states: Vec<ResourceState>,
    /// One row per domain of the user.
    pub dns: Vec<DnsRow>,
    /// Lowercased key, email, tier and namespaces: what the admin search matches.
    search: String,
}

/// Whether a domain's record is where it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRow {
    pub domain: String,
    /// `CNAME → tunnel.example.net`, or empty when tenantry does not manage it.
    pub record: String,
    pub state: DnsState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsState {
    /// The record exists as wanted (observed, or applied without error).
    Points,
    /// Missing or pointing elsewhere: the next apply fixes it (`create`, `update`).
    Pending(String),
    Failed(String),
    /// Another owner's record holds the name.
    Conflict(String),
    /// Rendered into files only (no DNS provider configured).
    RenderedOnly,
    /// The name is outside every zone tenantry manages.
    Unmanaged,
    /// No reconcile has run yet.
    Unknown,
}

/// Everything the portal shows, at one moment.
#[derive(Debug, Clone)]
pub struct PortalModel {
    users: Vec<PortalUser>,
    by_key: HashMap<String, usize>,
    by_email: HashMap<String, usize>,
    /// The roster's platform block (the setup script's input).
    pub platform: Arc<Platform>,
    /// The roster source (`roster.yaml`, `vault://…`).
    pub source: String,
    pub kubeconfig: Result<Arc<str>, Unavailable>,
    pub reconcile: Option<LastReconcile>,
    pub built_at: SystemTime,
}

impl PortalModel {
    /// Build the model from every user's view (`Session::user_views`), the
    /// platform block, the kubeconfig every user downloads (or why there is
    /// none) and the last reconcile, if one ran.
    pub fn new(
        views: Vec<UserView>,
        platform: Platform,
        source: String,
        kubeconfig: Result<String, Unavailable>,
        reconcile: Option<LastReconcile>,
        built_at: SystemTime,
    ) -> PortalModel {
        let mut users = Vec::with_capacity(views.len());
        let mut by_key = HashMap::with_capacity(views.len());
        let mut by_email = HashMap::with_capacity(views.len());
        for view in views {
            let states = view.grants.iter().map(|grant| grant_state(grant, reconcile.as_ref())).collect::<Vec<_>>();
            let dns = view
                .domains
                .iter()
                .map(|domain| {
                    let grant = view.grants.iter().position(|g| g.id.domain == Domain::Dns && &*g.id.name == domain);
                    dns_row(domain, grant.map(|i| (&view.grants[i], &states[i])), &platform)
                })
                .collect();
            let search = format!("{} {} {} {}", view.user, view.email, view.tier.as_str(), view.namespaces.join(" "))
                .to_lowercase();
            by_key.insert(view.user.clone(), users.len());
            by_email.insert(view.email.to_lowercase(), users.len());
            users.push(PortalUser { view, states, dns, search });
        }
        PortalModel {
            users,
            by_key,
            by_email,
            platform: Arc::new(platform),
            source,
            kubeconfig: kubeconfig.map(Arc::from),
            reconcile,
            built_at,
        }
    }

    pub fn user(&self, key: &str) -> Option<&PortalUser> {
        self.by_key.get(key).and_then(|&i| self.users.get(i))
    }

    /// The roster user with this email, compared case-insensitively (as validation compares them).
    pub fn user_by_email(&self, email: &str) -> Option<&PortalUser> {
        self.by_email.get(&email.trim().to_lowercase()).and_then(|&i| self.users.get(i))
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Page `page` (from 1) of the users matching `query` (every word must
    /// match key, email, tier or a namespace), and how many match in all.
    /// One pass over the users; a page past the last one is empty.
    pub fn search(&self, query: &str, page: usize, per_page: usize) -> (Vec<&PortalUser>, usize) {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        if words.is_empty() {
            return (self.users.iter().skip(skip).take(per_page).collect(), self.users.len());
        }
        let mut total = 0;
        let mut rows = Vec::with_capacity(per_page);
        for user in self.users.iter().filter(|u| words.iter().all(|w| u.search.contains(w.as_str()))) {
            if total >= skip && rows.len() < per_page {
                rows.push(user);
            }
            total += 1;
        }
        (rows, total)
    }
}

impl PortalUser {
    pub fn is_admin(&self) -> bool {
        self.view.tier == Tier::Admin
    }

    /// Grants whose last reconcile did not leave them in place.
    pub fn pending(&self) -> usize {
        self.states.iter().filter(|s| !matches!(s, ResourceState::InPlace | ResourceState::Unknown)).count()
    }
}

fn grant_state(grant: &GrantWhy, reconcile: Option<&LastReconcile>) -> ResourceState {
    match reconcile {
        None => ResourceState::Unknown,
        Some(last) => last.state_of(&grant.id.to_string()),
    }
}

fn dns_row(domain: &str, grant: Option<(&GrantWhy, &ResourceState)>, platform: &Platform) -> DnsRow {
    let Some((grant, state)) = grant else {
        return DnsRow { domain: domain.to_string(), record: String::new(), state: DnsState::Unmanaged };
    };
    let target = platform.dns.as_ref().map(|dns| match &dns.target {
        tenantry_model::DnsTarget::Cname(name) => format!("CNAME → {name}"),
        tenantry_model::DnsTarget::A(address) => format!("A → {address}"),
    });
    let state = if grant.target.as_deref().is_none_or(|t| t == "local") {
        DnsState::RenderedOnly
    } else {
        match state {
            ResourceState::Unknown => DnsState::Unknown,
            ResourceState::InPlace => DnsState::Points,
            ResourceState::Pending(action) => DnsState::Pending(action.clone()),
            ResourceState::Failed(error) => DnsState::Failed(error.clone()),
            ResourceState::Conflict(why) => DnsState::Conflict(why.clone()),
        }
    };
    DnsRow { domain: domain.to_string(), record: target.unwrap_or_default(), state }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(user: &str, email: &str, tier: Tier, namespaces: &[&str]) -> UserView {
        UserView {
            user: user.to_string(),
            email: email.to_string(),
            tier,
            line: 1,
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            domains: Vec::new(),
            quota: Default::default(),
            ports: Default::default(),
            workstation: None,
            vault: None,
            grants: Vec::new(),
        }
    }

    fn model() -> PortalModel {
        let views = vec![
            view("alice", "Alice@Example.org", Tier::NamespaceOwner, &["alice", "shop"]),
            view("bob", "bob@example.org", Tier::NamespaceOwner, &["bob"]),
            view("carol", "carol@example.org", Tier::PowerUser, &[]),
            view("wizard", "wizard@example.org", Tier::Admin, &[]),
        ];
        let text = b"platform: { name: lab }\nusers:\n  x: { email: x@example.org, tier: admin }\n";
        let raw = tenantry_model::parse_raw("r.yaml", text).unwrap();
        let platform = tenantry_model::validate("r.yaml", raw, &Default::default()).unwrap().platform;
        PortalModel::new(
            views,
            platform,
            "roster.yaml".into(),
            Err(Unavailable { message: String::new(), help: String::new() }),
            None,
            SystemTime::UNIX_EPOCH,
        )
    }

    #[test]
    fn emails_match_whatever_their_case() {
        let model = model();
        assert_eq!(model.user_by_email("alice@example.ORG").map(|u| u.view.user.as_str()), Some("alice"));
        assert_eq!(model.user_by_email(" bob@example.org ").map(|u| u.view.user.as_str()), Some("bob"));
        assert!(model.user_by_email("mallory@example.org").is_none());
        assert!(model.user("wizard").is_some_and(PortalUser::is_admin));
    }

    #[test]
    fn search_matches_every_word_and_pages() {
        let model = model();
        let keys = |(rows, total): (Vec<&PortalUser>, usize)| {
            (rows.iter().map(|u| u.view.user.clone()).collect::<Vec<_>>(), total)
        };
        assert_eq!(keys(model.search("", 1, 3)), (vec!["alice".into(), "bob".into(), "carol".into()], 4));
        assert_eq!(keys(model.search("", 2, 3)), (vec!["wizard".into()], 4));
        assert_eq!(keys(model.search("SHOP", 1, 3)), (vec!["alice".into()], 1), "namespaces, case-insensitively");
        assert_eq!(keys(model.search("namespace-owner example", 1, 1)), (vec!["alice".into()], 2));
        assert_eq!(keys(model.search("namespace-owner example", 2, 1)), (vec!["bob".into()], 2));
        assert_eq!(keys(model.search("nobody", 1, 3)), (vec![], 0));
    }
}
