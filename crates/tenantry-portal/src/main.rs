//! `tenantry-portal`: the portal on its own (without `tenantry serve`), for
//! trying it out, the browser tests and the benchmark. It reads the roster
//! and tenantry.toml like every command, builds the model (optionally with
//! a plan, observing every target and applying nothing), serves it, and
//! rebuilds it every `--refresh`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tenantry_app::{Session, SessionOptions};
use tenantry_portal::{
    KubeQuotas, NoCluster, Portal, PortalError, PortalSettings, QuotaSource, ReconcileSource, model_from_session,
    router, system_clock,
};

#[derive(Debug, Parser)]
#[command(name = "tenantry-portal", version, about = "Serve the tenant portal on its own")]
struct Args {
    /// The roster: a file or vault://<mount>/<path>#<key>.
    #[arg(long, env = "TENANTRY_ROSTER", default_value = "roster.yaml")]
    roster: String,
    /// tenantry.toml, with a [portal] section.
    #[arg(long, env = "TENANTRY_CONFIG")]
    config: Option<PathBuf>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Plan (observe every target, apply nothing) for DNS state, drift,
    /// withheld and departing.
    #[arg(long)]
    plan: bool,
    /// Read live quota usage with $KUBECONFIG (or the in-cluster account).
    #[arg(long)]
    live_quotas: bool,
    /// Rebuild the model this often (e.g. 10m); never when absent.
    #[arg(long, value_parser = humantime::parse_duration)]
    refresh: Option<Duration>,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _already = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(help) = error.help() {
                eprintln!("help: {help}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn build(args: &Args) -> Result<(tenantry_portal::PortalModel, Option<PortalSettings>), PortalError> {
    let mut options = SessionOptions::new(args.roster.clone());
    options.config = args.config.clone();
    options.command = "tenantry-portal".to_string();
    let session = tokio::task::spawn_blocking(move || Session::open(options)).await.map_err(|e| {
        PortalError::Config { message: format!("loading the roster stopped: {e}"), help: String::new() }
    })??;
    let settings = PortalSettings::from_config(session.config())?;
    let source = if args.plan { ReconcileSource::Plan } else { ReconcileSource::None };
    // The session (and its hold on the state database) ends here.
    let model = model_from_session(&session, source, SystemTime::now()).await?;
    Ok((model, settings))
}

async fn run(args: Args) -> Result<(), PortalError> {
    let listen = args.listen;
    let (model, settings) = build(&args).await?;
    let settings = settings.ok_or_else(|| PortalError::Config {
        message: "tenantry.toml has no [portal] section".to_string(),
        help: "add [portal] with public_url, client_id and client_secret_file (docs/ARCHITECTURE.md, the portal)"
            .to_string(),
    })?;
    let quotas: Arc<dyn QuotaSource> = if args.live_quotas {
        let client = kube::Client::try_default().await.map_err(|e| PortalError::Config {
            message: format!("--live-quotas: cannot reach the cluster: {e}"),
            help: "set KUBECONFIG, or run in a cluster".to_string(),
        })?;
        Arc::new(KubeQuotas::new(client, settings.live_timeout))
    } else {
        Arc::new(NoCluster)
    };
    let users = model.len();
    let portal = Portal::new(settings, model, quotas, system_clock())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| PortalError::Listen { addr: args.listen, source })?;
    tracing::info!(listen = %args.listen, users, "portal ready");
    if let Some(every) = args.refresh {
        let portal = Arc::clone(&portal);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match build(&args).await {
                    Ok((model, _)) => {
                        tracing::info!(users = model.len(), "model rebuilt");
                        portal.publish(model);
                    }
                    Err(error) => tracing::warn!(%error, "the model could not be rebuilt; the last one stays"),
                }
            }
        });
    }
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, router(portal))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| PortalError::Listen { addr: listen, source })
}
