//! `platform.apps` and each user's `apps` (SPEC §11.5): names, template
//! directories, host and namespace patterns, and each instance resolved for
//! its user — an app the roster does not define, a host outside the managed
//! zones or a namespace the user does not own is an error at the entry.

use super::users::{AllClaims, qualify_domain};
use super::{Checker, located, span};
use crate::diagnostic::did_you_mean;
use crate::names::{is_dns1123_label, is_safe_relative_path};
use crate::raw::{RawApp, RawAppEntry};
use crate::roster::{APP_USER_PLACEHOLDER, App, AppInstance, Located, Platform};
use crate::spanned_map::SpannedMap;
use serde_saphyr::Spanned;
use std::collections::{BTreeMap, BTreeSet};

/// The default namespace pattern: the user's namespace named like the user.
const DEFAULT_NAMESPACE_PATTERN: &str = APP_USER_PLACEHOLDER;

pub(super) fn check_platform(checker: &mut Checker<'_>, raw: Option<&SpannedMap<RawApp>>) -> BTreeMap<String, App> {
    let mut apps = BTreeMap::new();
    for (key, raw) in raw.map(|m| m.entries.as_slice()).unwrap_or_default() {
        let name = key.value.as_str();
        let at = span(key);
        if !is_dns1123_label(name) {
            checker.error(
                at,
                "invalid-app-name",
                format!("app name `{name}` is not a DNS-1123 label"),
                "use 1–63 lowercase letters, digits and `-`, e.g. `budget`",
            );
            continue;
        }
        let raw = &raw.value;
        if checker.plain(&raw.template, "the app template") && !is_safe_relative_path(&raw.template.value) {
            checker.error(
                span(&raw.template),
                "invalid-app-template",
                format!("`{}` must be a directory inside the roster's directory", raw.template.value),
                "use a relative path without `..`, e.g. `apps/budget` (relative to the roster file)",
            );
        }
        if let Some(host) = &raw.host {
            check_pattern(checker, host, "host");
        }
        if let Some(namespace) = &raw.namespace {
            check_pattern(checker, namespace, "namespace");
        }
        apps.insert(
            name.to_string(),
            App {
                name: name.to_string(),
                template: located(&raw.template),
                host: raw.host.as_ref().map(located),
                namespace: raw
                    .namespace
                    .as_ref()
                    .map(located)
                    .unwrap_or_else(|| Located::new(DEFAULT_NAMESPACE_PATTERN.to_string(), at)),
                values: raw.values.clone(),
                span: at,
                files: Vec::new(),
            },
        );
    }
    apps
}

/// A host or namespace pattern holds no placeholder but `{user}`.
fn check_pattern(checker: &mut Checker<'_>, pattern: &Spanned<String>, field: &str) {
    if !checker.plain(pattern, &format!("the app {field}")) {
        return;
    }
    let rest = pattern.value.replace(APP_USER_PLACEHOLDER, "");
    if rest.contains(['{', '}']) {
        checker.error(
            span(pattern),
            "invalid-app-pattern",
            format!("app {field} `{}` has a placeholder other than `{APP_USER_PLACEHOLDER}`", pattern.value),
            format!("the only placeholder is `{APP_USER_PLACEHOLDER}` (the user key), e.g. `budget.{{user}}`"),
        );
    }
}

/// What a user's app entries are checked against.
pub(super) struct UserApps<'a> {
    pub user_key: &'a str,
    pub platform: &'a Platform,
    pub dns_zones: &'a [String],
    pub owned: &'a [Located<String>],
}

/// Resolve a user's `apps`; each instance's host joins `domains`.
pub(super) fn check_user(
    checker: &mut Checker<'_>,
    raw: &[Spanned<RawAppEntry>],
    rules: &UserApps<'_>,
    claims: &mut AllClaims,
    domains: &mut Vec<Located<String>>,
) -> Vec<AppInstance> {
    let mut instances = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in raw {
        let at = span(entry);
        let name = entry.value.name.as_str();
        let Some(app) = rules.platform.apps.get(name) else {
            let help = match did_you_mean(name, rules.platform.apps.keys().map(String::as_str)) {
                Some(candidate) => format!("did you mean `{candidate}`?"),
                None if rules.platform.apps.is_empty() => {
                    "define it under `platform.apps`, e.g. `budget: { template: apps/budget, host: \"budget.{user}\" }`"
                        .to_string()
                }
                None => format!(
                    "list one of `platform.apps`: {}",
                    rules.platform.apps.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
                ),
            };
            checker.error(at, "unknown-app", format!("`{name}` is not an app of `platform.apps`"), help);
            continue;
        };
        if !seen.insert(name) {
            checker.error(
                at,
                "duplicate-app",
                format!("app `{name}` is listed twice for user `{}`", rules.user_key),
                "a user has one instance of an app; remove one entry",
            );
            continue;
        }
        let namespace = app.namespace.value.replace(APP_USER_PLACEHOLDER, rules.user_key);
        if !rules.owned.iter().any(|owned| owned.value == namespace) {
            let owned: Vec<String> = rules.owned.iter().map(|n| format!("`{}`", n.value)).collect();
            checker.error(
                at,
                "app-namespace-not-owned",
                format!(
                    "app `{name}` goes into namespace `{namespace}` (`platform.apps.{name}.namespace` is `{}`), which \
                     user `{}` does not own{}",
                    app.namespace.value,
                    rules.user_key,
                    if owned.is_empty() { String::new() } else { format!(" (they own {})", owned.join(", ")) }
                ),
                format!("add `{namespace}` to the user's `namespaces`, or change the app's `namespace`"),
            );
            continue;
        }
        let host = match &app.host {
            None => None,
            Some(pattern) => {
                let written = pattern.value.replace(APP_USER_PLACEHOLDER, rules.user_key);
                match qualify_domain(&written, rules.platform.domain.as_deref(), rules.dns_zones) {
                    Ok(fqdn) => {
                        if let Some((other, earlier)) = claims.domains.claim(&fqdn, rules.user_key, at) {
                            checker.error(
                                at,
                                "duplicate-domain",
                                format!(
                                    "app `{name}`'s host `{fqdn}` is already claimed by user `{other}` ({})",
                                    checker.at(earlier)
                                ),
                                "a domain routes to one user; change the app's `host` or remove the other domain",
                            );
                            continue;
                        }
                        domains.push(Located::new(fqdn.clone(), at));
                        Some(fqdn)
                    }
                    Err((message, help)) => {
                        checker.error(at, "invalid-app-host", format!("app `{name}`: {message}"), help);
                        continue;
                    }
                }
            }
        };
        let mut values = app.values.clone();
        values.extend(entry.value.values.clone());
        instances.push(AppInstance { app: name.to_string(), namespace, host, values, span: at });
    }
    instances
}
