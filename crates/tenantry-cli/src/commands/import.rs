//! `tenantry import`: the origin's two rosters merged into one.

use crate::cli::{GlobalArgs, ImportArgs, OutputFormat};
use crate::shell::Shell;
use crate::{Result, exit};
use tenantry_app::{Clock as _, CrdImportOutcome, CrdImportRequest, ImportRequest};

pub fn import(global: &GlobalArgs, args: &ImportArgs, shell: &mut Shell) -> Result<i32> {
    if args.to_crds || args.from_crds {
        return crds(global, args, shell);
    }
    let request = ImportRequest {
        config: global.config.clone(),
        k8s_users: args.k8s_users.clone(),
        workstation: args.workstation.clone(),
        platform_from: global.platform_from.clone(),
        out: args.out.clone(),
        force: args.force,
        generated_at: tenantry_app::SystemClock.now(),
    };
    let outcome = tenantry_app::import(&request)?;
    match global.output {
        OutputFormat::Json => shell.json(&outcome.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            if outcome.written.is_none() {
                shell.print(&outcome.imported.roster_yaml);
            }
            shell.eprintln(&outcome.imported.report.to_string());
            if let Some(out) = &outcome.written {
                shell.eprintln(&format!(
                    "wrote {}; check it with `tenantry --roster {} plan`",
                    out.display(),
                    out.display()
                ));
            }
        }
    }
    Ok(exit::OK)
}

/// `--to-crds` and `--from-crds`.
fn crds(global: &GlobalArgs, args: &ImportArgs, shell: &mut Shell) -> Result<i32> {
    let mut labels = std::collections::BTreeMap::new();
    for label in &args.labels {
        let Some((key, value)) = label.split_once('=').filter(|(key, _)| !key.is_empty()) else {
            return Err(crate::CliError::Usage {
                message: format!("`--label {label}` is not KEY=VALUE"),
                help: "write e.g. --label tenantry.dev/roster=lab".to_string(),
            });
        };
        labels.insert(key.to_string(), value.to_string());
    }
    let from_origin = args.k8s_users.is_some() || args.workstation.is_some();
    let origin_text = if from_origin {
        let request = ImportRequest {
            config: global.config.clone(),
            k8s_users: args.k8s_users.clone(),
            workstation: args.workstation.clone(),
            platform_from: global.platform_from.clone(),
            out: None,
            force: false,
            generated_at: tenantry_app::SystemClock.now(),
        };
        let outcome = tenantry_app::import(&request)?;
        shell.eprintln(&outcome.imported.report.to_string());
        Some(outcome.imported.roster_yaml)
    } else {
        None
    };
    let request = CrdImportRequest {
        config: global.config.clone(),
        source: if from_origin { "(imported)".to_string() } else { global.roster.clone() },
        text: origin_text,
        labels,
        out: args.out.clone(),
        force: args.force,
        generated_at: tenantry_app::SystemClock.now(),
    };
    let outcome = if args.to_crds {
        tenantry_app::import_to_crds(&request)?
    } else if tenantry_app::SourceKind::of(&global.roster) == tenantry_app::SourceKind::Tenants {
        tenantry_app::import_from_crds(&request)?
    } else {
        // --roster names no Tenant source (e.g. the default roster.yaml): every object.
        tenantry_app::import_from_crds(&CrdImportRequest { source: String::new(), ..request })?
    };
    finish(outcome, global, shell)
}

fn finish(outcome: CrdImportOutcome, global: &GlobalArgs, shell: &mut Shell) -> Result<i32> {
    match global.output {
        OutputFormat::Json => shell.json(&outcome.to_json()),
        OutputFormat::Human | OutputFormat::Markdown => {
            if outcome.written.is_none() {
                shell.print(&outcome.text);
            }
            for diagnostic in &outcome.held_back {
                shell.eprintln(&format!("warning: {diagnostic}"));
            }
            if let Some(out) = &outcome.written {
                shell.eprintln(&format!("wrote {} ({} user(s))", out.display(), outcome.users));
            }
        }
    }
    Ok(exit::OK)
}
