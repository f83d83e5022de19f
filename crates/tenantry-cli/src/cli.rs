//! Command-line definitions (clap).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Onboard people onto a shared Kubernetes platform from one roster.
#[derive(Debug, Parser)]
#[command(name = "tenantry", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The roster: a YAML file, vault://<kv-mount>/<path>#<key> (the origin's k8s_users JSON),
    /// kubernetes://<namespace>/<configmap>#<key>, or kubernetes://tenants[?selector=<labels>] (Tenant objects).
    #[arg(long, global = true, env = "TENANTRY_ROSTER", default_value = "roster.yaml")]
    pub roster: String,
    /// With a vault:// roster: a roster file whose `platform:` block completes it.
    #[arg(long, global = true, env = "TENANTRY_PLATFORM_FROM", value_name = "ROSTER")]
    pub platform_from: Option<PathBuf>,
    /// tenantry.toml; default ./tenantry.toml when present. Without it only the local target is active.
    #[arg(long, global = true, env = "TENANTRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// Plain output without colours (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    /// `plan` only: a compact summary for a pull-request comment.
    Markdown,
}

#[derive(Debug, Clone, Subcommand)]
pub enum SessionCommand {
    /// Snapshot the tmux sessions (name, directory, conversation); an empty or
    /// failed read keeps the last good snapshot. Exit 1 when a user failed.
    Save {
        /// A roster key or os_user; every workstation user when absent.
        user: Option<String>,
        /// The machine's root (a sandbox directory); default `[host] root`, else `/`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Recreate the snapshot's sessions that are not running, with
    /// `platform.workstation.session_command`. Exit 1 when one could not be created.
    Restore {
        /// A roster key or os_user; every workstation user when absent.
        user: Option<String>,
        /// The machine's root (a sandbox directory); default `[host] root`, else `/`.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the roster; exit 1 with diagnostics when it is invalid.
    Validate,
    /// Show what would change, grouped by user, with a diff per resource.
    Plan(PlanArgs),
    /// Apply the plan.
    Apply(ApplyArgs),
    /// Write every derived resource as files into DIR (GitOps).
    Render {
        /// Output directory; files tenantry wrote there before and no longer derives are removed.
        dir: PathBuf,
    },
    /// Why a resource exists: the roster line and rule that produced it, and its history.
    Why {
        /// A resource id: `domain/Kind/scope/name` (scope `-` when global).
        resource: String,
    },
    /// Everything one user gets, and why.
    Explain {
        /// The user's roster key.
        user: String,
    },
    /// Live checks for one user or everyone: cause, evidence and the fix.
    /// Exit 0 healthy, 3 when something was found, 1 on error.
    Doctor {
        /// A roster key; everyone when absent.
        user: Option<String>,
    },
    /// What changed for whom, when, and by which run (the journal and the audit log).
    History {
        /// Only this user's changes (also a user who left the roster).
        user: Option<String>,
        /// Only changes at or after this date or time (2026-01-31, or RFC 3339 in UTC).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// Offboard a user who left the roster: the reversible cut, or (later) the destroy stage.
    Offboard(OffboardArgs),
    /// Turn the origin platform's k8s_users JSON and workstation roster.yaml into one roster.
    Import(ImportArgs),
    /// Print a user's OIDC kubeconfig (kubelogin), or write it to a new file.
    /// Save or restore the workstation users' tmux sessions (the host's timer
    /// and boot service run these). As root: every workstation user, or USER;
    /// run by a user: their own sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    Kubeconfig {
        /// The user's roster key.
        user: String,
        /// Write it here (mode 0600) instead of printing; an existing file is never replaced.
        #[arg(long, value_name = "PATH")]
        write: Option<PathBuf>,
    },
    /// Print a shell script that installs kubectl and kubelogin (and the OpenBao CLI
    /// when [vault] is configured), each checked against its release's SHA-256 sums,
    /// and writes the kubeconfig and the Vault sign-in file (never over an existing one).
    SetupScript {
        #[arg(long, value_enum)]
        os: SetupOs,
        /// Also install these tools: `terraform` (OpenTofu, unless tofu or terraform is there).
        #[arg(long = "with", value_enum, value_name = "TOOL")]
        with: Vec<SetupTool>,
    },
    /// Run as a controller: reconcile on every roster change, on drift and every interval ([serve] in tenantry.toml).
    Serve(ServeArgs),
    /// Print the roster's JSON Schema.
    Schema,
    /// Print the `Tenant` and `Platform` custom resource definitions (`tenantry crds | kubectl apply --server-side -f -`).
    Crds,
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Args, Default)]
pub struct PolicyArgs {
    /// Take away what users still in the roster no longer have (otherwise withheld).
    #[arg(long)]
    pub allow_revoke: bool,
    /// Perform the reversible cut for users who left the roster.
    #[arg(long)]
    pub offboard: bool,
    /// Only this user's resources (repeatable).
    #[arg(long = "only", value_name = "USER")]
    pub only: Vec<String>,
    /// With --only: also update the shared platform resources (routing files, cluster roles).
    #[arg(long, requires = "only")]
    pub with_platform: bool,
    /// Take over this existing object although it holds data that differs from the roster's
    /// (it is replaced; repeatable; ids as `plan` prints them).
    #[arg(long = "adopt", value_name = "ID")]
    pub adopt: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan for `tenantry apply FILE`, which applies exactly it or refuses.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ApplyArgs {
    /// A plan saved by `plan --out`: apply exactly it, or refuse when the roster or
    /// anything it observed changed since (its flags are the plan's own).
    #[arg(value_name = "PLANFILE", conflicts_with_all = ["allow_revoke", "offboard", "only", "with_platform", "adopt"])]
    pub plan: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Changes in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Do not fetch and fast-forward workstation code checkouts after applying.
    #[arg(long)]
    pub no_refresh: bool,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Log lines as text or JSON (one object per line), to standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Listen here instead of [serve] listen.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Operating systems the setup script supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetupOs {
    Linux,
    Mac,
}

impl From<SetupOs> for tenantry_app::SetupOs {
    fn from(os: SetupOs) -> Self {
        match os {
            SetupOs::Linux => tenantry_app::SetupOs::Linux,
            SetupOs::Mac => tenantry_app::SetupOs::Mac,
        }
    }
}

/// Optional tools of the setup script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SetupTool {
    /// OpenTofu (or an existing Terraform).
    Terraform,
}

/// Offboarding stages (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Unbind RBAC, disable the Vault entity, lock the login, unmap routing; keep all data.
    Reversible,
    /// Back up, then delete what the cut kept: namespaces, home, Vault secrets, DNS records.
    Destroy,
}

#[derive(Debug, Clone, Args)]
pub struct OffboardArgs {
    /// The departed user's key (as it was in the roster).
    pub user: String,
    #[arg(long, value_enum, default_value_t = Stage::Reversible)]
    pub stage: Stage,
    /// Where the destroy stage writes its backups before deleting anything.
    #[arg(long, value_name = "DIR", required_if_eq("stage", "destroy"))]
    pub backup: Option<PathBuf>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Changes in flight at once (reversible stage).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("inputs").required(true).multiple(true).args(["k8s_users", "workstation", "to_crds", "from_crds"])))]
pub struct ImportArgs {
    /// The origin's `k8s_users` JSON: a file, or vault://<kv-mount>/<path>#<key>.
    #[arg(long, value_name = "FILE|vault://…")]
    pub k8s_users: Option<String>,
    /// The origin's workstation roster.yaml (`users: {os_user: {...}}`).
    #[arg(long, value_name = "FILE")]
    pub workstation: Option<PathBuf>,
    /// Write the roster here instead of standard output (the report goes to standard error).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace --out when it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Print the roster (--roster, or the origin's data when given) as Tenant and Platform
    /// objects, for `kubectl apply --server-side -f -`.
    #[arg(long, conflicts_with = "from_crds")]
    pub to_crds: bool,
    /// Write the cluster's Tenant and Platform objects (--roster kubernetes://tenants[?selector=…],
    /// default every object) as a roster file.
    #[arg(long, conflicts_with_all = ["k8s_users", "workstation"])]
    pub from_crds: bool,
    /// With --to-crds: a label on every object (KEY=VALUE, repeatable), so
    /// kubernetes://tenants?selector=KEY=VALUE reads this roster's objects.
    #[arg(long = "label", value_name = "KEY=VALUE", requires = "to_crds")]
    pub labels: Vec<String>,
}
