//! The HTTP endpoint: `/metrics`, `/healthz` and `/readyz`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use super::TelemetryError;
use super::metrics::{CONTENT_TYPE, Metrics};

/// The endpoint's default address: loopback only, port 9464.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// How long open connections may take to finish once shutdown begins; after that the server
/// stops regardless.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bounds on the endpoint's connections, so that slow or idle clients cannot hold it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; further ones wait in the listen queue until one ends.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (a slow client is dropped after it).
    pub header_read_timeout: Duration,
    /// Longest a connection stays open, request included: one request per connection.
    pub connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
        }
    }
}

/// The running server's task; it ends after shutdown, with the error that stopped it, if any.
pub type ServerHandle = JoinHandle<Result<(), TelemetryError>>;

/// The endpoint's routes, for embedding in another server or testing without a socket.
///
/// - `GET /metrics`: every metric in the Prometheus text format.
/// - `GET /healthz`: 200 `ok` while the process runs.
/// - `GET /readyz`: 200 once [`Metrics::ready`] was set (agent state restored), else 503.
/// - `GET /suppressions`: the suppressions in force (created by analyst feedback), as a JSON
///   array of their `suppression_created` audit records.
/// - anything else: 404.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/suppressions", get(suppressions))
        .fallback(not_found)
        .with_state(metrics)
}

async fn metrics_text(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render())
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(metrics): State<Arc<Metrics>>) -> (StatusCode, &'static str) {
    if metrics.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn suppressions(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    let body = serde_json::to_string(&metrics.suppressions()).unwrap_or_else(|_| "[]".into());
    ([(header::CONTENT_TYPE, "application/json")], body)
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "not found")
}

/// Binds `addr` (port 0 picks a free port) and serves the endpoint on a task of the current
/// tokio runtime until `shutdown` resolves, within the default [`Limits`]. Returns the bound
/// address and the server's task.
///
/// On shutdown the listener closes at once and open connections get [`SHUTDOWN_GRACE`] to
/// finish their requests.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, ServerHandle), TelemetryError> {
    serve_router(addr, router(metrics), Limits::default(), shutdown).await
}

/// Serves any router as [`serve`] does, within `limits`: at most `max_connections` at once,
/// headers read within `header_read_timeout`, one request per connection, each connection
/// closed after `connection_timeout` whatever it is doing.
pub async fn serve_router(
    addr: SocketAddr,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, ServerHandle), TelemetryError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(TelemetryError::Serve)?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = accept_loop(listener, router, limits, stop_rx);

    let handle = tokio::spawn(async move {
        let stop_after_grace = async move {
            shutdown.await;
            // Ignored when the server already ended: there is nobody left to tell.
            let _ = stop_tx.send(true);
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            () = server => Ok(()),
            () = stop_after_grace => Ok(()),
        }
    });
    Ok((bound, handle))
}

/// Resolves once the server is told to stop (or can no longer be told).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can tell it to stop any more, so stop.
    let _ = stop.wait_for(|s| *s).await;
}

/// Accepts connections until told to stop, each served on its own task while it holds one of
/// `max_connections` permits.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: back off, then accept again.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let service = TowerToHyperService::new(router.clone());
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            // A connection's end, timely or not, is the client's business: nothing to report.
            let _ = tokio::time::timeout(limits.connection_timeout, conn).await;
            drop(permit);
        });
        // Reap finished tasks so that the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    // Open connections finish within the shutdown grace.
    while connections.join_next().await.is_some() {}
}

/// Listens for SIGTERM and SIGINT (Ctrl-C elsewhere than Unix) and returns a future that
/// resolves when one arrives: a `shutdown` for [`serve`] and the drivers. The handlers are
/// installed before this returns, so a signal sent afterwards is never missed. Call it inside a
/// tokio runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, TelemetryError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(TelemetryError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(TelemetryError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

/// Listens for Ctrl-C and returns a future that resolves when it arrives.
#[cfg(not(unix))]
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, TelemetryError> {
    Ok(async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            eprintln!("cinch: cannot listen for Ctrl-C: {e}; stopping");
        }
    })
}
