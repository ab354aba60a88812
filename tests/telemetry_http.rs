//! The telemetry endpoint over real HTTP on a loopback port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use cinch::event::{Format, Outcome};
use cinch::telemetry::{Metrics, PipelineObserver, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::timeout;

/// A response: status code, headers (names lower-cased) and body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one HTTP/1.1 request and reads the whole response (the connection is closed after it).
async fn request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr).await?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .expect("response within 10 s")?;
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("a status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts.next().and_then(|s| s.parse().ok()).expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_string(),
    };
    if let Some(len) = response.header("content-length") {
        assert_eq!(len.parse::<usize>().ok(), Some(response.body.len()));
    }
    Ok(response)
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path).await.expect("request succeeds")
}

#[tokio::test]
async fn endpoint_serves_health_readiness_metrics_and_shuts_down() {
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr, handle) = serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::clone(&metrics),
        async move {
            let _ = stop_rx.await;
        },
    )
    .await
    .expect("binds a free port");
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0, "the bound port is returned");

    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");

    let not_ready = get(addr, "/readyz").await;
    assert_eq!(not_ready.status, 503, "not ready before state is restored");

    let observer: &dyn PipelineObserver = metrics.as_ref();
    observer.restore(0.25);
    observer.ready(true);
    let ready = get(addr, "/readyz").await;
    assert_eq!(ready.status, 200, "ready after ready(true)");

    let none = get(addr, "/suppressions").await;
    assert_eq!((none.status, none.body.as_str()), (200, "[]"));
    let created = serde_json::json!({"kind": "audit", "event": "suppression_created",
        "details": {"suppression_id": "sup-0123456789abcdef", "analyst": "alice"}});
    observer.suppression_created("sup-0123456789abcdef", &created);
    let listed = get(addr, "/suppressions").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&listed.body).unwrap(),
        serde_json::json!([created])
    );
    observer.suppression_expired("sup-0123456789abcdef");
    assert_eq!(
        get(addr, "/suppressions").await.body,
        "[]",
        "a lapsed one is gone"
    );

    observer.input_event(Format::Cloudtrail, Outcome::Denied);
    observer.dead_letter("not_json");
    observer.output("finding");
    observer.decision_latency(0.002);
    observer.lag("cinch.events", 3, 17);
    observer.agents(10, 4096);
    observer.checkpoint(0.05);
    let scrape = get(addr, "/metrics").await;
    assert_eq!(scrape.status, 200);
    let content_type = scrape.header("content-type").expect("a content type");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for name in [
        "cinch_input_events_total",
        "cinch_dead_letters_total",
        "cinch_outputs_total",
        "cinch_decision_latency_seconds",
        "cinch_consumer_lag",
        "cinch_agents_tracked",
        "cinch_state_bytes",
        "cinch_checkpoint_duration_seconds",
        "cinch_restore_duration_seconds",
        "cinch_ready",
    ] {
        assert!(
            scrape.body.contains(&format!("# TYPE {name} ")),
            "{name} missing from:\n{}",
            scrape.body
        );
    }
    assert!(
        scrape
            .body
            .contains("cinch_input_events_total{format=\"cloudtrail\",outcome=\"denied\"} 1"),
        "{}",
        scrape.body
    );
    assert!(scrape.body.contains("cinch_ready 1"));

    assert_eq!(get(addr, "/nope").await.status, 404);
    assert_eq!(get(addr, "/metrics/extra").await.status, 404);
    assert_eq!(request(addr, "POST", "/metrics").await.unwrap().status, 405);

    observer.ready(false);
    assert_eq!(get(addr, "/readyz").await.status, 503);

    stop_tx.send(()).unwrap();
    let result = timeout(Duration::from_secs(10), handle)
        .await
        .expect("the server stops within 10 s")
        .expect("the server task does not panic");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}

#[tokio::test]
async fn shutdown_does_not_wait_for_an_idle_connection() {
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr, handle) = serve("127.0.0.1:0".parse().unwrap(), metrics, async move {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    // A client that connects and never sends a request.
    let _idle = TcpStream::connect(addr).await.unwrap();
    assert_eq!(get(addr, "/healthz").await.status, 200);
    stop_tx.send(()).unwrap();
    let result = timeout(Duration::from_secs(10), handle)
        .await
        .expect("the server stops within the grace period")
        .unwrap();
    assert!(result.is_ok());
}

#[tokio::test]
async fn binding_a_taken_port_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve(addr, Arc::new(Metrics::new()), std::future::pending())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[tokio::test]
async fn shutdown_gives_a_stalled_request_a_bounded_grace() {
    let metrics = Arc::new(Metrics::new());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (addr, handle) = serve("127.0.0.1:0".parse().unwrap(), metrics, async move {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    // A client that starts a request and never finishes its headers.
    let mut stalled = TcpStream::connect(addr).await.unwrap();
    stalled
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    stop_tx.send(()).unwrap();
    let result = timeout(
        cinch::telemetry::server::SHUTDOWN_GRACE + Duration::from_secs(5),
        handle,
    )
    .await
    .expect("the server stops within the grace period")
    .unwrap();
    assert!(result.is_ok());
    assert!(started.elapsed() <= cinch::telemetry::server::SHUTDOWN_GRACE + Duration::from_secs(1));
    drop(stalled);
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_endpoint() {
    let signal = cinch::telemetry::shutdown_signal().expect("signal handlers install");
    let (addr, handle) = serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Metrics::new()),
        signal,
    )
    .await
    .unwrap();
    assert_eq!(get(addr, "/healthz").await.status, 200);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let result = timeout(Duration::from_secs(10), handle)
        .await
        .expect("the server stops on SIGTERM")
        .unwrap();
    assert!(result.is_ok());
}

#[tokio::test]
async fn slow_and_idle_connections_do_not_stop_healthz() {
    let (tx, rx) = oneshot::channel::<()>();
    let metrics = Arc::new(Metrics::new());
    let (addr, handle) = serve("127.0.0.1:0".parse().unwrap(), metrics, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    // A thousand clients connect and send half a request line, or nothing.
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            s.write_all(b"GET /metr").await.unwrap();
        }
        held.push(s);
    }
    let r = timeout(Duration::from_secs(3), get(addr, "/healthz"))
        .await
        .expect("/healthz answers beside a thousand slow connections");
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    // The slow ones are dropped once their headers are overdue.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut closed = 0;
    for s in &mut held {
        let mut buf = [0u8; 256];
        match timeout(Duration::from_millis(50), s.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, held.len(), "every slow connection was closed");
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}
