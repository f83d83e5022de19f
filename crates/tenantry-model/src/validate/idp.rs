//! `platform.idp`, each user's `groups`, and `platform.rbac_subjects`:
//! the identity-provider groups tenantry keeps users in, and whether the
//! tier ClusterRoleBindings name those groups instead of every user.

use super::{Checker, span};
use crate::Span;
use crate::diagnostic::did_you_mean;
use crate::names::is_idp_group;
use crate::raw::RawIdp;
use crate::roster::{Idp, Located, Platform, RbacSubjects, Tier, User};
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};

/// One group name; `None` (with an error) when it is not usable.
fn group(checker: &mut Checker<'_>, name: &Spanned<String>, what: &str) -> Option<Located<String>> {
    if !checker.plain(name, what) {
        return None;
    }
    if !is_idp_group(&name.value) {
        checker.error(
            span(name),
            "invalid-idp-group",
            format!("{what} `{}` is not an identity-provider group name", name.value),
            "use 1–100 letters, digits, spaces and `. _ - + @ : ( )` (no `/`, quotes or commas), e.g. `T3 Users`",
        );
        return None;
    }
    Some(Located::new(name.value.clone(), span(name)))
}

/// A list of group names, each once.
fn groups(checker: &mut Checker<'_>, names: &[Spanned<String>], what: &str) -> Vec<Located<String>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for name in names {
        let Some(checked) = group(checker, name, what) else { continue };
        if !seen.insert(checked.value.clone()) {
            checker.error(
                checked.span,
                "duplicate-idp-group",
                format!("{what} `{}` is listed twice", checked.value),
                "remove one of the two",
            );
            continue;
        }
        out.push(checked);
    }
    out
}

pub(super) fn check_platform(checker: &mut Checker<'_>, raw: Option<&Spanned<RawIdp>>) -> Option<Idp> {
    let raw_idp = raw?;
    let mut tier_groups = BTreeMap::new();
    for (tier, list) in raw_idp.value.tier_groups.iter().flat_map(|map| map.entries.iter()) {
        let Some(parsed) = Tier::parse(&tier.value) else {
            let help = match did_you_mean(&tier.value, Tier::ALL.iter().map(|t| t.as_str())) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None => "use admin, power-user or namespace-owner".to_string(),
            };
            checker.error(span(tier), "unknown-tier", format!("unknown tier `{}`", tier.value), help);
            continue;
        };
        tier_groups.insert(parsed, groups(checker, &list.value, "an identity-provider tier group"));
    }
    let workstation_group =
        raw_idp.value.workstation_group.as_ref().and_then(|name| group(checker, name, "`workstation_group`"));
    Some(Idp { tier_groups, workstation_group, span: span(raw_idp) })
}

pub(super) fn check_user_groups(checker: &mut Checker<'_>, names: &[Spanned<String>]) -> Vec<Located<String>> {
    groups(checker, names, "the identity-provider group")
}

/// With `rbac_subjects: groups`, every tier that has users needs a group to bind.
pub(super) fn check_references(
    checker: &mut Checker<'_>,
    platform: &Platform,
    rbac_at: Span,
    users: &BTreeMap<String, User>,
) {
    if platform.rbac_subjects != RbacSubjects::Groups {
        return;
    }
    let tiers: BTreeSet<Tier> = users.values().map(|u| u.tier.value).collect();
    for tier in tiers {
        let bound = platform.idp.as_ref().and_then(|idp| idp.tier_groups.get(&tier)).is_some_and(|g| !g.is_empty());
        if !bound {
            checker.error(
                rbac_at,
                "rbac-groups-missing",
                format!(
                    "`rbac_subjects: groups` binds tiers to identity-provider groups, but tier `{tier}` has users and \
                     no group in `platform.idp.tier_groups`; its users would get no ClusterRoleBinding"
                ),
                format!("add `{tier}: [<group>]` under `platform.idp.tier_groups`, or use `rbac_subjects: users`"),
            );
        }
    }
}
