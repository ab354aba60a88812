//! The driver of `cinch authorize`: reads the commands file (and follows it), writes the audit
//! stream and the Cedar export, and serves the decisions over HTTP.
//!
//! - `POST /v1/authorize`: `{"principal", "action", "resource", "context": {"session_id",
//!   "time", "grant"}}` answers `{"decision", "reasons", "enforced", "would_be", "mode", "now",
//!   "decision_id"}`; a body that is not such a request gets a 400 with `{"error": "..."}`, one
//!   over [`MAX_BODY`] bytes a 413.
//! - `GET /v1/policies`: the policy set as Cedar text (`?format=json`: `[{"id", "content"}]`, the
//!   enforced policies only, as cedar-agent loads them).
//! - `GET /healthz`: `ok`.
//!
//! At most `max_connections` connections are served at once (more wait in the listen queue), and
//! a connection that sends nothing for [`IDLE_TIMEOUT`] is closed.

use std::future::{Future, IntoFuture};
use std::io::{self, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::authorize::request::{self, MAX_BODY};
use crate::authorize::{
    self, CommandAudit, CommandIntake, Decision, DecisionAudit, Intake, Mode, PolicyStore,
};
use crate::grants::Entitlements;

/// A connection that sends nothing for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The wall clock, epoch milliseconds.
pub(crate) fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// How long the audit writer lets records gather after writing a batch: records reach the
/// output at most about this much later than they would one at a time.
pub(crate) const AUDIT_BATCH: std::time::Duration = std::time::Duration::from_millis(1);

/// Where audit records go: a writer thread fed by a bounded channel, so that decisions never
/// wait on the disk but never outrun it without bound either. The writer takes what has gathered,
/// writes it as one batch and waits [`AUDIT_BATCH`] before taking more.
///
/// When the output fails, the writer says so on stderr at once and stops; every record not
/// written from then on is counted, and [`close`](AuditSink::close) returns the failure with
/// that count.
pub struct AuditSink {
    tx: mpsc::Sender<String>,
    lost: Arc<AtomicU64>,
    writer: Option<std::thread::JoinHandle<io::Result<()>>>,
}

/// The audit output failed: `lost` records were not written.
#[derive(Debug, thiserror::Error)]
#[error("{lost} audit records were not written: {source}")]
pub struct AuditError {
    /// Records sent but not written (those taken since the last successful flush included).
    pub lost: u64,
    /// Why.
    pub source: io::Error,
}

impl AuditSink {
    /// Audit records to `path` (appended), or to stdout when `None` or `-`.
    pub fn open(path: Option<&Path>) -> io::Result<AuditSink> {
        let out: Box<dyn io::Write + Send> = match path.filter(|p| p.as_os_str() != "-") {
            Some(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => Box::new(io::stdout()),
        };
        let (tx, mut rx) = mpsc::channel::<String>(8192);
        let lost = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&lost);
        let writer = std::thread::Builder::new()
            .name("cinch-audit".into())
            .spawn(move || -> io::Result<()> {
                let mut out = io::BufWriter::with_capacity(1 << 16, out);
                // Records taken since the last successful flush.
                let mut unflushed = 0u64;
                let mut write = || -> io::Result<()> {
                    while let Some(line) = rx.blocking_recv() {
                        unflushed += 1;
                        out.write_all(line.as_bytes())?;
                        while let Ok(line) = rx.try_recv() {
                            unflushed += 1;
                            out.write_all(line.as_bytes())?;
                        }
                        out.flush()?;
                        unflushed = 0;
                        // Under load, let records gather for a moment instead of being woken
                        // for each one: the request path then hands a record over without
                        // waking this thread, and the output is written in batches. When idle,
                        // the next receive parks until a record arrives.
                        std::thread::sleep(AUDIT_BATCH);
                    }
                    out.flush()
                };
                let written = write();
                if let Err(e) = &written {
                    eprintln!(
                        "cinch authorize: cannot write the audit output: {e}; the audit records that follow are not written (counted)"
                    );
                    rx.close();
                    while rx.try_recv().is_ok() {
                        unflushed += 1;
                    }
                    counted.fetch_add(unflushed, Ordering::Relaxed);
                }
                written
            })?;
        Ok(AuditSink {
            tx,
            lost,
            writer: Some(writer),
        })
    }

    /// A handle that sends records.
    pub fn sender(&self) -> AuditTx {
        AuditTx {
            tx: self.tx.clone(),
            lost: Arc::clone(&self.lost),
        }
    }

    /// Waits for every record sent to be written. Every [`AuditTx`] must be dropped first.
    pub fn close(mut self) -> Result<(), AuditError> {
        drop(self.tx);
        let result = match self.writer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the audit writer panicked")),
            None => Ok(()),
        };
        let lost = self.lost.load(Ordering::Relaxed);
        match result {
            Ok(()) if lost == 0 => Ok(()),
            Ok(()) => Err(AuditError {
                lost,
                source: io::Error::other("the audit writer stopped"),
            }),
            Err(source) => Err(AuditError { lost, source }),
        }
    }
}

/// Sends audit records. A record the writer can no longer take (its output failed) is counted
/// as lost.
#[derive(Clone)]
pub struct AuditTx {
    tx: mpsc::Sender<String>,
    lost: Arc<AtomicU64>,
}

/// One audit record as a line of JSON (a record that cannot be encoded becomes an `error`
/// record that says why).
pub(crate) fn audit_line(record: &impl Serialize) -> String {
    let mut s = serde_json::to_string(record).unwrap_or_else(|e| {
        serde_json::json!({"kind": "authorization", "event": "error", "message": e.to_string()})
            .to_string()
    });
    s.push('\n');
    s
}

impl AuditTx {
    /// Sends from async code, waiting while the writer is behind.
    pub async fn send(&self, record: &impl Serialize) {
        self.send_line(audit_line(record)).await;
    }

    /// Sends from a thread outside the runtime.
    pub fn blocking_send(&self, record: &impl Serialize) {
        self.blocking_send_line(audit_line(record));
    }

    /// Sends a record already encoded as a line, from async code.
    pub async fn send_line(&self, line: String) {
        if self.tx.send(line).await.is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sends a record already encoded as a line, from a thread outside the runtime.
    pub fn blocking_send_line(&self, line: String) {
        if self.tx.blocking_send(line).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records not written so far because the audit output failed.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// The commands file and what has been read of it.
pub(crate) struct CommandsFile {
    path: PathBuf,
    source: String,
    /// Bytes consumed: complete lines only.
    offset: u64,
    /// Lines consumed.
    lines: u64,
    /// Whether the file is gzip (read whole, never followed).
    gzip: bool,
}

impl CommandsFile {
    /// The file at `path`, not read yet.
    pub fn new(path: &Path) -> CommandsFile {
        CommandsFile {
            path: path.to_owned(),
            source: path.display().to_string(),
            offset: 0,
            lines: 0,
            gzip: false,
        }
    }

    /// Reads the whole file (optionally gzip) and applies its commands to `store`, sending an
    /// audit record for each command applied or rejected. Returns the number of lines read.
    pub fn load(
        &mut self,
        intake: &mut CommandIntake,
        store: &mut PolicyStore,
        entitlements: Option<&Entitlements>,
        now_ms: i64,
        mut audit: impl FnMut(&CommandAudit),
    ) -> io::Result<u64> {
        let mut raw = Vec::new();
        std::fs::File::open(&self.path)?.read_to_end(&mut raw)?;
        let gzip = raw.starts_with(&[0x1f, 0x8b]);
        let text = if gzip {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
            out
        } else {
            raw
        };
        // A plain file is read up to the end of its last complete line (`finish` takes a last
        // line without its newline, `poll` what is appended later); a gzip file is read whole.
        self.gzip = gzip;
        let taken = if gzip {
            text.len()
        } else {
            text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
        };
        let n = self.apply(
            &text[..taken],
            intake,
            store,
            entitlements,
            now_ms,
            &mut audit,
        )?;
        self.offset = taken as u64;
        Ok(n)
    }

    /// Applies the final line of the file when it has no newline (at the end of a load without
    /// following: a file written without a final newline).
    pub fn finish(
        &mut self,
        intake: &mut CommandIntake,
        store: &mut PolicyStore,
        entitlements: Option<&Entitlements>,
        now_ms: i64,
        mut audit: impl FnMut(&CommandAudit),
    ) -> io::Result<u64> {
        if self.gzip {
            return Ok(0);
        }
        let tail = self.read_from_offset()?;
        if tail.iter().all(u8::is_ascii_whitespace) {
            return Ok(0);
        }
        let n = self.apply(&tail, intake, store, entitlements, now_ms, &mut audit)?;
        self.offset += tail.len() as u64;
        Ok(n)
    }

    fn read_from_offset(&self) -> io::Result<Vec<u8>> {
        use std::io::Seek as _;
        let mut f = std::fs::File::open(&self.path)?;
        let len = f.metadata()?.len();
        if len < self.offset {
            return Err(io::Error::other(format!(
                "{} shrank from {} to {len} bytes (truncated or replaced); commands already applied stay applied",
                self.source, self.offset
            )));
        }
        f.seek(io::SeekFrom::Start(self.offset))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)?;
        Ok(out)
    }

    /// Whether the file has grown since the last read (a shrunk file counts, so that `poll`
    /// reports it).
    pub fn grown(&self) -> io::Result<bool> {
        Ok(!self.gzip && std::fs::metadata(&self.path)?.len() != self.offset)
    }

    /// Reads complete lines appended since the last read and applies them. Returns the number
    /// of lines read.
    pub fn poll(
        &mut self,
        intake: &mut CommandIntake,
        store: &mut PolicyStore,
        entitlements: Option<&Entitlements>,
        now_ms: i64,
        mut audit: impl FnMut(&CommandAudit),
    ) -> io::Result<u64> {
        if self.gzip {
            return Ok(0);
        }
        let new = self.read_from_offset()?;
        let complete = new.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        if complete == 0 {
            return Ok(0);
        }
        let n = self.apply(
            &new[..complete],
            intake,
            store,
            entitlements,
            now_ms,
            &mut audit,
        )?;
        self.offset += complete as u64;
        Ok(n)
    }

    fn apply(
        &mut self,
        bytes: &[u8],
        intake: &mut CommandIntake,
        store: &mut PolicyStore,
        entitlements: Option<&Entitlements>,
        now_ms: i64,
        audit: &mut impl FnMut(&CommandAudit),
    ) -> io::Result<u64> {
        let mut n = 0;
        for raw in bytes.split_inclusive(|b| *b == b'\n') {
            self.lines += 1;
            n += 1;
            let mut line = raw;
            if self.lines == 1 {
                line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
            }
            let wall = wall_ms();
            match intake.take(self.lines, line, now_ms) {
                Intake::Applied(c) => match store.apply(&c, entitlements) {
                    Ok(_) => audit(&CommandAudit::applied(&c, &self.source, wall)),
                    Err(e) => return Err(io::Error::other(e.to_string())),
                },
                Intake::Rejected(r) => {
                    audit(&CommandAudit::rejected(&r, self.lines, &self.source, wall));
                }
                Intake::Blank | Intake::Ignored { .. } => {}
            }
        }
        Ok(n)
    }
}

/// Counts of decisions.
#[derive(Debug, Default)]
pub struct DecisionCounts {
    /// Requests decided.
    pub decided: AtomicU64,
    /// Would-be allows.
    pub allow: AtomicU64,
    /// Would-be denies.
    pub deny: AtomicU64,
    /// Would-be approval requirements.
    pub requires_approval: AtomicU64,
    /// Requests refused with a 4xx.
    pub bad_requests: AtomicU64,
}

impl DecisionCounts {
    /// One line.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} decisions (would be: {} allow, {} deny, {} requires_approval), {} bad requests",
            g(&self.decided),
            g(&self.allow),
            g(&self.deny),
            g(&self.requires_approval),
            g(&self.bad_requests)
        )
    }
}

/// The decision point: the current policies and how to answer.
pub struct Pdp {
    /// The current policies; replaced whole when commands arrive.
    pub store: ArcSwap<PolicyStore>,
    /// Enforce or only log.
    pub mode: Mode,
    /// A fixed "now" (`--at`), else the wall clock.
    pub at_ms: Option<i64>,
    /// Where decisions are audited.
    pub audit: AuditTx,
    /// Counts.
    pub counts: DecisionCounts,
    seq: AtomicU64,
}

impl Pdp {
    /// A decision point over `store`.
    pub fn new(store: PolicyStore, mode: Mode, at_ms: Option<i64>, audit: AuditTx) -> Pdp {
        Pdp {
            store: ArcSwap::from_pointee(store),
            mode,
            at_ms,
            audit,
            counts: DecisionCounts::default(),
            seq: AtomicU64::new(0),
        }
    }

    /// "Now" when a request does not say.
    pub fn now_ms(&self) -> i64 {
        self.at_ms.unwrap_or_else(wall_ms)
    }

    /// Decides a request body: the answer and its audit record, or why the body is refused.
    pub fn decide_body(&self, body: &[u8]) -> Result<(authorize::Answer, String), String> {
        let req = request::parse(body).inspect_err(|_| {
            self.counts.bad_requests.fetch_add(1, Ordering::Relaxed);
        })?;
        let wall = wall_ms();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let store = self.store.load();
        let (answer, errors) = authorize::answer(
            &store,
            self.mode,
            &req,
            self.at_ms.unwrap_or(wall),
            (seq, wall),
        );
        self.counts.decided.fetch_add(1, Ordering::Relaxed);
        let counter = match answer.would_be {
            Decision::Allow => &self.counts.allow,
            Decision::Deny => &self.counts.deny,
            Decision::RequiresApproval => &self.counts.requires_approval,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let audit = audit_line(&DecisionAudit::new(&req, &answer, &errors, wall));
        Ok((answer, audit))
    }
}

/// Writes the policy set to `dir`: `policies.cedar` (every policy, dry-run forbids commented
/// out) and `policies.json` (`[{"id", "content"}]`, the enforced policies, as cedar-agent loads
/// them). Creates `dir` if missing.
pub fn export(dir: &Path, store: &PolicyStore) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let write = |name: &str, bytes: &[u8]| -> io::Result<()> {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join(name))
    };
    write("policies.cedar", store.render().as_bytes())?;
    let json: Vec<serde_json::Value> = store
        .enforced_policies()
        .into_iter()
        .map(|(id, content)| serde_json::json!({"id": id, "content": content}))
        .collect();
    let mut text = serde_json::to_string_pretty(&json).map_err(io::Error::other)?;
    text.push('\n');
    write("policies.json", text.as_bytes())
}

/// The routes, for embedding or testing without a socket.
pub fn router(pdp: Arc<Pdp>) -> Router {
    Router::new()
        .route("/v1/authorize", post(authorize_handler))
        .route("/v1/policies", get(policies_handler))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not found".to_owned()) })
        .with_state(pdp)
}

fn error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn authorize_handler(State(pdp): State<Arc<Pdp>>, req: Request) -> Response {
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            pdp.counts.bad_requests.fetch_add(1, Ordering::Relaxed);
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit"))
                || e.to_string().contains("length limit");
            return if too_big {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body is larger than {MAX_BODY} bytes"),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                )
            };
        }
    };
    match pdp.decide_body(&body) {
        Ok((answer, audit)) => {
            pdp.audit.send_line(audit).await;
            match serde_json::to_string(&answer) {
                Ok(body) => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response(),
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot encode the answer: {e}"),
                ),
            }
        }
        Err(reason) => error(StatusCode::BAD_REQUEST, reason),
    }
}

async fn policies_handler(State(pdp): State<Arc<Pdp>>, req: Request) -> Response {
    let store = pdp.store.load();
    let json = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "format=json"));
    if json {
        let list: Vec<serde_json::Value> = store
            .enforced_policies()
            .into_iter()
            .map(|(id, content)| serde_json::json!({"id": id, "content": content}))
            .collect();
        (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::Value::Array(list).to_string(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            store.render(),
        )
            .into_response()
    }
}

/// A listener that serves at most a fixed number of connections at once: it accepts the next
/// only when a slot is free.
pub(crate) struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

impl CappedListener {
    /// Caps `inner` at `max` connections.
    pub fn new(inner: TcpListener, max: usize) -> CappedListener {
        CappedListener {
            inner,
            slots: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

impl axum::serve::Listener for CappedListener {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CappedStream, SocketAddr) {
        let permit = match Arc::clone(&self.slots).acquire_owned().await {
            Ok(p) => p,
            Err(_) => std::future::pending().await,
        };
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    // Without it small answers may wait for the peer's acknowledgement: only
                    // slower.
                    let _ = stream.set_nodelay(true);
                    return (
                        CappedStream {
                            stream,
                            _permit: permit,
                            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
                        },
                        addr,
                    );
                }
                // Too many open files and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection holding one of the listener's slots until it closes, closed when idle.
pub(crate) struct CappedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                let deadline = tokio::time::Instant::now() + IDLE_TIMEOUT;
                this.idle.as_mut().reset(deadline);
                Poll::Ready(r)
            }
            Poll::Pending => match this.idle.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Binds `addr` and serves `pdp` until `shutdown` resolves, with at most `max_connections`
/// connections at once. Returns the bound address and the server's task.
pub async fn serve(
    addr: SocketAddr,
    pdp: Arc<Pdp>,
    max_connections: usize,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<(SocketAddr, tokio::task::JoinHandle<io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let server = axum::serve(CappedListener::new(listener, max_connections), router(pdp))
        .with_graceful_shutdown(shutdown)
        .into_future();
    Ok((bound, tokio::spawn(server)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_an_audit_output_could_not_take_are_counted() {
        // Every write to /dev/full fails with "no space left on device".
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        let sink = AuditSink::open(Some(full)).unwrap();
        let tx = sink.sender();
        for n in 0..10 {
            tx.blocking_send(&serde_json::json!({ "n": n }));
        }
        drop(tx);
        let e = sink.close().unwrap_err();
        assert_eq!(e.lost, 10);
        assert!(
            e.to_string()
                .starts_with("10 audit records were not written: ")
        );
    }

    #[test]
    fn an_audit_output_that_takes_everything_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("cinch-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("audit.jsonl");
        let sink = AuditSink::open(Some(&path)).unwrap();
        let tx = sink.sender();
        for n in 0..10 {
            tx.blocking_send(&serde_json::json!({ "n": n }));
        }
        assert_eq!(tx.lost(), 0);
        drop(tx);
        sink.close().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 10);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
