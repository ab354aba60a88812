//! The HTTP endpoint: `/metrics`, `/healthz` and `/readyz`.

use std::future::{Future, IntoFuture};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::TelemetryError;
use super::metrics::{CONTENT_TYPE, Metrics};

/// The endpoint's default address: loopback only, port 9464.
pub const DEFAULT_ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9464));

/// How long open connections may take to finish once shutdown begins; after that the server
/// stops regardless.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The running server's task; it ends after shutdown, with the error that stopped it, if any.
pub type ServerHandle = JoinHandle<Result<(), TelemetryError>>;

/// The endpoint's routes, for embedding in another server or testing without a socket.
///
/// - `GET /metrics`: every metric in the Prometheus text format.
/// - `GET /healthz`: 200 `ok` while the process runs.
/// - `GET /readyz`: 200 once [`Metrics::ready`] was set (agent state restored), else 503.
/// - `GET /suppressions`: the suppressions in force, as a JSON array of their
///   `suppression_created` audit records.
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
/// tokio runtime until `shutdown` resolves. Returns the bound address and the server's task.
///
/// On shutdown the listener closes at once and open connections get [`SHUTDOWN_GRACE`] to
/// finish their requests.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, ServerHandle), TelemetryError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| TelemetryError::Bind { addr, source })?;
    let bound = listener.local_addr().map_err(TelemetryError::Serve)?;

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let server = axum::serve(listener, router(metrics))
        .with_graceful_shutdown(async move {
            // Also ends if the sender is dropped, which happens only when the task ends.
            let _ = stop_rx.wait_for(|stop| *stop).await;
        })
        .into_future();

    let handle = tokio::spawn(async move {
        let stop_after_grace = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::select! {
            result = server => result.map_err(TelemetryError::Serve),
            () = stop_after_grace => Ok(()),
        }
    });
    Ok((bound, handle))
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
        let _ = tokio::signal::ctrl_c().await;
    })
}
