//! A TCP proxy in front of a test peer that a fault test can turn into a
//! dead or a hung peer without touching the shared peer itself (other tests
//! use it at the same time): `Forward` passes bytes both ways; `Refuse`
//! closes the listening socket, so connecting is refused as when the peer
//! is stopped, and cuts the connections that are open; `Stall` accepts and
//! never answers, like a peer that is stopped with SIGSTOP. Switching back
//! to `Forward` is the peer's restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Refuse,
    Stall,
}

/// A running proxy; dropping it stops it and cuts its connections.
#[derive(Debug)]
pub struct TcpProxy {
    /// Where clients connect: 127.0.0.1 and a port of its own.
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    accepted: Arc<AtomicUsize>,
    refuse_after: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn proxy_error(detail: impl std::fmt::Display) -> crate::Error {
    crate::Error::Client { peer: "tcp proxy", detail: detail.to_string() }
}

impl TcpProxy {
    /// Start forwarding 127.0.0.1:(a free port) to `upstream`.
    pub async fn start(upstream: SocketAddr) -> crate::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(proxy_error)?;
        let addr = listener.local_addr().map_err(proxy_error)?;
        let (mode, watching) = watch::channel(Mode::Forward);
        let mode = Arc::new(mode);
        let accepted = Arc::new(AtomicUsize::new(0));
        let refuse_after = Arc::new(AtomicUsize::new(usize::MAX));
        let counts = Counts { accepted: Arc::clone(&accepted), refuse_after: Arc::clone(&refuse_after) };
        let task = tokio::spawn(serve(listener, addr, upstream, Arc::clone(&mode), watching, counts));
        Ok(TcpProxy { addr, mode, accepted, refuse_after, task })
    }

    /// Forward `connections` more connections, then refuse as if the peer
    /// had stopped — exactly there, whatever the test's timing.
    pub fn refuse_after(&self, connections: usize) {
        self.refuse_after.store(self.accepted().saturating_add(connections), Ordering::SeqCst);
    }

    /// Switch now (and forget a [`TcpProxy::refuse_after`] still to come).
    pub fn set(&self, mode: Mode) {
        self.refuse_after.store(usize::MAX, Ordering::SeqCst);
        self.mode.send_replace(mode);
    }

    /// Connections accepted so far (stalled ones included).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// What the accept loop counts.
struct Counts {
    accepted: Arc<AtomicUsize>,
    /// Connections forwarded before the proxy turns to `Refuse`.
    refuse_after: Arc<AtomicUsize>,
}

async fn serve(
    mut listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    setter: Arc<watch::Sender<Mode>>,
    mut mode: watch::Receiver<Mode>,
    counts: Counts,
) {
    loop {
        if *mode.borrow_and_update() == Mode::Refuse {
            drop(listener);
            // Closed until the mode changes, then open again on the same port.
            while *mode.borrow_and_update() == Mode::Refuse {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            listener = loop {
                match TcpListener::bind(addr).await {
                    Ok(listener) => break listener,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                }
            };
        }
        let (client, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => continue,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let number = counts.accepted.fetch_add(1, Ordering::SeqCst) + 1;
        if number > counts.refuse_after.load(Ordering::SeqCst) {
            drop(client);
            setter.send_replace(Mode::Refuse);
            continue;
        }
        tokio::spawn(connection(client, upstream, mode.clone()));
    }
}

/// One client connection, for as long as the mode allows it.
async fn connection(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Refuse => {}
        // Hold the connection and read nothing until the mode changes or the client gives up.
        Mode::Stall => {
            let _ = mode.changed().await;
        }
        Mode::Forward => {
            let Ok(mut server) = TcpStream::connect(upstream).await else { return };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                // Leaving Forward cuts the connection, as a dying peer would.
                _ = mode.changed() => {}
            }
        }
    }
}
