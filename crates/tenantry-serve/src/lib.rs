//! `tenantry serve` (SPEC §11.1): tenantry as a controller that keeps users
//! converged without anyone at the keyboard.
//!
//! One tokio runtime joins the reconcile loop ([`reconcile`]), the triggers
//! that wake it ([`triggers`]: the roster source, the cluster's watches),
//! leader election on a Lease ([`leader`]) and the HTTP server ([`http`]:
//! health, readiness, metrics, status). Every pass goes through
//! `tenantry_app::Controller`, the same use cases as the CLI under the same
//! policy: additive-only, departing users only reported unless
//! `[serve] offboard = "reversible"`, the destroy stage never automatic.

pub mod backoff;
pub mod http;
pub mod leader;
pub mod metrics;
mod portal;
pub mod reconcile;
pub mod settings;
pub mod status;
pub mod triggers;

use crate::leader::{Election, Role};
use crate::metrics::Metrics;
use crate::reconcile::Reconciler;
use crate::settings::ServeSettings;
use crate::status::{RosterStatus, Shared, Status, TargetStatus};
use std::net::SocketAddr;
use std::sync::Arc;
use tenantry_app::{AppError, Controller, SessionOptions, SourceKind};
use tokio::sync::{mpsc, watch};

pub use http::router;

/// What went wrong before serving could start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("{message}")]
    Config { message: String, help: String },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl ServeError {
    /// The fix to show with the message.
    pub fn help(&self) -> Option<String> {
        match self {
            ServeError::App(error) => error.help(),
            ServeError::Config { help, .. } => Some(help.clone()),
            ServeError::Listen { .. } => Some("choose another address with [serve] listen or --listen".to_string()),
        }
    }
}

/// How `serve` is started.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The roster source, tenantry.toml and who runs it (as for every command).
    pub session: SessionOptions,
    /// Overrides `[serve] listen`.
    pub listen: Option<SocketAddr>,
}

/// Log lines as text or JSON (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Log through `tracing` to standard error; `TENANTRY_LOG` (as for every
/// command), else `RUST_LOG`, filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serve until `shutdown` resolves; then stop any pass, release the Lease
/// and return (within a few seconds).
pub async fn run(options: ServeOptions, shutdown: impl std::future::Future<Output = ()>) -> Result<(), ServeError> {
    let source = options.session.roster.clone();
    let session_options = options.session.clone();
    let controller = Arc::new(Controller::open(options.session)?);
    let settings = ServeSettings::from_section(controller.config().section("serve")).map_err(|error| {
        ServeError::Config {
            message: format!("[serve]: {error}"),
            help: "[serve] takes listen, interval, offboard, debounce, roster_poll, concurrency, backoff_min, backoff_max and [serve.leader_election] (namespace, lease, identity, lease_duration, renew_interval, renew_deadline)".to_string(),
        }
    })?;
    let listen = options.listen.unwrap_or(settings.listen);
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { addr: listen, source })?;

    let metrics = Metrics::new();
    let identity =
        settings.leader_election.as_ref().and_then(|e| e.identity.clone()).unwrap_or_else(leader::default_identity);
    let status = Status {
        identity: identity.clone(),
        roster: RosterStatus { source: source.clone(), ..RosterStatus::default() },
        targets: controller.target_names().into_iter().map(|name| (name, TargetStatus::default())).collect(),
        ..Status::default()
    };
    let shared = Arc::new(Shared::new(metrics.clone(), status));

    let election = match &settings.leader_election {
        Some(lease) => {
            let client = controller.config().kube_client().await?;
            Some(Election::start(client, lease, identity.clone()))
        }
        None => None,
    };
    let (_always_leader, standalone_role) = watch::channel(Role::Leader);
    let role = election.as_ref().map_or(standalone_role, Election::role);

    let (triggers_tx, triggers_rx) = mpsc::channel(1024);
    let mut tasks = Vec::new();
    let _file_watch = match SourceKind::of(&source) {
        SourceKind::File => {
            Some(triggers::watch_file(std::path::Path::new(&source), settings.debounce, triggers_tx.clone()).map_err(
                |e| ServeError::Config {
                    message: format!("cannot watch the roster file {source}: {e}"),
                    help: "check that its directory exists and is readable".to_string(),
                },
            )?)
        }
        SourceKind::Vault => {
            tasks.push(triggers::poll_vault(Arc::clone(&controller), settings.roster_poll, triggers_tx.clone()));
            None
        }
        SourceKind::ConfigMap | SourceKind::Tenants => {
            if let Some(changes) = controller.roster_changes().await? {
                tasks.push(triggers::forward_roster_changes(changes, triggers_tx.clone()));
            }
            None
        }
    };
    if let Some(drift) = controller.drift().await? {
        tasks.push(triggers::forward_drift(drift, Arc::clone(&shared), triggers_tx.clone()));
    }

    // The tenant portal, when tenantry.toml has a `[portal]`: its pages on
    // the same listener, each pass's report its "last reconcile".
    let portal = portal::start(&controller, &session_options).await.map_err(|message| ServeError::Config {
        message: format!("[portal]: {message}"),
        help: "see the README's portal section".to_string(),
    })?;
    let on_pass = portal.as_ref().map(|portal| {
        let publisher = portal::Publisher::new(portal, &session_options);
        Box::new(move |report: &tenantry_app::PassReport, trigger: &str| publisher.publish(report, trigger))
            as reconcile::OnPass
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = {
        let mut stop = stop_rx.clone();
        let mut app = router(Arc::clone(&shared));
        if let Some(portal) = &portal {
            app = app.merge(tenantry_portal::router(Arc::clone(portal)));
        }
        tokio::spawn(async move {
            let graceful = async move {
                let _ = stop.changed().await;
            };
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(graceful).await {
                tracing::error!(%error, "the HTTP server stopped");
            }
        })
    };
    tracing::info!(%listen, roster = %source, %identity, leader_election = election.is_some(), "serving");

    let reconciler = Reconciler {
        controller: Arc::clone(&controller),
        settings: settings.clone(),
        shared: Arc::clone(&shared),
        jitter: Box::new(backoff::random_jitter),
        on_pass,
    };
    let standalone = election.is_none();
    let looping = reconciler.run(triggers_rx, role, stop_rx, standalone);
    tokio::pin!(looping);
    tokio::select! {
        _ = &mut looping => {}
        _ = shutdown => {
            tracing::info!("shutting down");
        }
    }
    // Stop the loop (a running pass is dropped between changes) and the server.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), &mut looping).await;
    if let Some(election) = election {
        election.release().await;
    }
    for task in tasks {
        task.abort();
    }
    drop(triggers_tx);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), server).await;
    Ok(())
}
