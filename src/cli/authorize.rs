//! `cinch authorize`: a policy decision point that enforces cinch's signed commands at execution
//! time.
//!
//! Loads the entitlements (a Cedar permit per grant) and the commands file (a Cedar forbid per
//! verified command), then answers `POST /v1/authorize` on `--listen` until SIGTERM or Ctrl-C,
//! or, with `--requests`, decides the requests of a file and exits. Every decision, and every
//! command applied or rejected, is an audit record (JSON lines, to `--audit`, default stdout);
//! human messages go to stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::authorize::{self, CommandIntake, Mode, PolicyStore, UnknownAgents};
use crate::drive::authorize::{self as driver, AuditSink, CommandsFile, Pdp};

/// Arguments of `cinch authorize`.
#[derive(Clone, Debug, clap::Args)]
pub struct AuthorizeArgs {
    /// Commands to enforce: JSON lines (optionally gzip), such as `cinch replay --out`; records
    /// of other kinds are ignored and counted.
    #[arg(long)]
    pub commands: PathBuf,
    /// The signer's public key (SPKI PEM), e.g. `cinch-signing.pub` from `cinch keygen`.
    #[arg(long)]
    pub public_key: PathBuf,
    /// Entitlements (JSON or YAML, as for `cinch replay`): each grant becomes a Cedar permit.
    #[arg(long)]
    pub entitlements: Option<PathBuf>,
    /// `log_only` answers allow and says what would have been decided; `enforce` answers it.
    #[arg(long, value_enum, default_value = "log_only")]
    pub mode: Mode,
    /// Address to serve the HTTP API on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8181")]
    pub listen: SocketAddr,
    /// Audit records (JSON lines, appended); `-` or absent: stdout.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Write the policy set to this directory (`policies.cedar`, `policies.json`), again
    /// whenever it changes.
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Judge expiries at this time (RFC 3339) instead of the wall clock, for the commands file
    /// and for requests without `context.time`.
    #[arg(long)]
    pub at: Option<String>,
    /// What to decide for an agent without entitlements.
    #[arg(long, value_enum, default_value = "deny")]
    pub unknown_agents: UnknownAgents,
    /// Keep reading commands appended to the file (checked every second).
    #[arg(long)]
    pub follow: bool,
    /// Decide the requests in this file (JSON lines, `-` for stdin) and exit, instead of
    /// serving: the audit records are the answers.
    #[arg(long)]
    pub requests: Option<PathBuf>,
    /// Most connections served at once; more wait to be accepted.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Worker threads of the HTTP server.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// Runs the decision point.
pub fn run(args: AuthorizeArgs) -> anyhow::Result<ExitCode> {
    let at_ms = args
        .at
        .as_deref()
        .map(|s| {
            crate::event::time::parse_rfc3339_ms(s)
                .with_context(|| format!("--at {s:?} is not an RFC 3339 time"))
        })
        .transpose()?;
    let verifier = crate::drive::files::verifier(&args.public_key)?;
    let entitlements = args
        .entitlements
        .as_deref()
        .map(|p| {
            let e = crate::drive::files::entitlements(p)?;
            eprintln!(
                "cinch authorize: entitlements of {} agents ({} grants) from {}",
                e.agents(),
                e.grants(),
                p.display()
            );
            anyhow::Ok(e)
        })
        .transpose()?;
    if entitlements.is_none() {
        eprintln!(
            "cinch authorize: no --entitlements: every agent is without entitlements ({})",
            match args.unknown_agents {
                UnknownAgents::Deny => "denied: --unknown-agents deny",
                UnknownAgents::Allow => "allowed but for what commands forbid",
            }
        );
    }
    let mut store = PolicyStore::new(entitlements.as_ref(), args.unknown_agents)?;
    let sink = AuditSink::open(args.audit.as_deref())
        .with_context(|| format!("cannot open the audit output {:?}", args.audit))?;
    let audit = sink.sender();

    let now_ms = || at_ms.unwrap_or_else(driver::wall_ms);
    let mut intake = CommandIntake::new(verifier);
    let mut file = CommandsFile::new(&args.commands);
    let name = args.commands.display().to_string();
    file.load(
        &mut intake,
        &mut store,
        entitlements.as_ref(),
        now_ms(),
        |r| audit.blocking_send(r),
    )
    .with_context(|| format!("cannot read commands {name}"))?;
    if !args.follow {
        file.finish(
            &mut intake,
            &mut store,
            entitlements.as_ref(),
            now_ms(),
            |r| audit.blocking_send(r),
        )
        .with_context(|| format!("cannot read commands {name}"))?;
    }
    eprintln!(
        "cinch authorize: {name}: {}",
        authorize::intake_summary(intake.counts())
    );
    let counts = store.counts();
    eprintln!(
        "cinch authorize: {} policies for {} agents: {} permits from grants, {} forbids from commands, {} dry-run forbids (logged only); unknown agents: {}",
        counts.permits + counts.forbids + counts.dry_run_forbids,
        counts.agents,
        counts.permits,
        counts.forbids,
        counts.dry_run_forbids,
        match args.unknown_agents {
            UnknownAgents::Deny => "deny",
            UnknownAgents::Allow => "allow",
        }
    );
    if let Some(dir) = &args.export {
        driver::export(dir, &store)
            .with_context(|| format!("cannot export the policies to {}", dir.display()))?;
        eprintln!(
            "cinch authorize: policies written to {}/policies.cedar and policies.json",
            dir.display()
        );
    }

    let pdp = Arc::new(Pdp::new(store, args.mode, at_ms, audit.clone()));
    let result = match &args.requests {
        Some(path) => offline(&pdp, path),
        None => serve(&args, &pdp, file, intake, entitlements, at_ms),
    };
    let decisions = pdp.counts.summary();
    drop(audit);
    drop(pdp);
    let closed = sink.close();
    match &closed {
        Ok(()) => eprintln!("cinch authorize: {decisions}"),
        Err(e) => eprintln!(
            "cinch authorize: {decisions}; {} audit records not written",
            e.lost
        ),
    }
    closed.context("cannot write the audit output")?;
    result.map(|()| ExitCode::SUCCESS)
}

/// Decides each line of `path`; the audit records are the answers.
fn offline(pdp: &Pdp, path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    let reader: Box<dyn std::io::BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot open requests {}", path.display()))?,
        ))
    };
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read requests {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match pdp.decide_body(line.as_bytes()) {
            Ok((_, record)) => {
                pdp.audit.blocking_send_line(record);
            }
            Err(reason) => {
                eprintln!(
                    "cinch authorize: {}: line {}: {reason}",
                    path.display(),
                    i + 1
                );
                pdp.audit.blocking_send(&serde_json::json!({
                    "kind": "authorization",
                    "event": "bad_request",
                    "time": crate::output::time::rfc3339_ms(driver::wall_ms()),
                    "line": i + 1,
                    "error": reason,
                }));
            }
        }
    }
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C, following the commands file when asked.
fn serve(
    args: &AuthorizeArgs,
    pdp: &Arc<Pdp>,
    mut file: CommandsFile,
    mut intake: CommandIntake,
    entitlements: Option<crate::grants::Entitlements>,
    at_ms: Option<i64>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .thread_name("cinch-authorize")
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(async {
        let shutdown = crate::telemetry::server::shutdown_signal()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let (addr, server) = driver::serve(
            args.listen,
            Arc::clone(pdp),
            args.max_connections,
            {
                let mut rx = stop_rx.clone();
                async move {
                    // An error means the sender is gone: nobody can say stop any more, so stop.
                    let _ = rx.wait_for(|s| *s).await;
                }
            },
        )
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
        eprintln!(
            "cinch authorize: listening on http://{addr} (mode {}): POST /v1/authorize, GET /v1/policies, GET /healthz",
            args.mode.as_str()
        );
        let follower = args.follow.then(|| {
            let pdp = Arc::clone(pdp);
            let export = args.export.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = rx.wait_for(|s| *s) => break,
                    }
                    match file.grown() {
                        Ok(true) => {}
                        Ok(false) => continue,
                        Err(e) => {
                            eprintln!("cinch authorize: following commands: {e}");
                            continue;
                        }
                    }
                    let mut store = PolicyStore::clone(&pdp.store.load());
                    let mut records = Vec::new();
                    let now = at_ms.unwrap_or_else(driver::wall_ms);
                    match file.poll(&mut intake, &mut store, entitlements.as_ref(), now, |r| {
                        records.push(driver::audit_line(r));
                    }) {
                        Ok(0) => continue,
                        Ok(n) => {
                            for r in records {
                                pdp.audit.send_line(r).await;
                            }
                            pdp.store.store(Arc::new(store));
                            eprintln!(
                                "cinch authorize: {n} more lines read: {}",
                                authorize::intake_summary(intake.counts())
                            );
                            if let Some(dir) = &export
                                && let Err(e) = driver::export(dir, &pdp.store.load())
                            {
                                eprintln!("cinch authorize: cannot export the policies to {}: {e}", dir.display());
                            }
                        }
                        Err(e) => eprintln!("cinch authorize: following commands: {e}"),
                    }
                }
            })
        });
        shutdown.await;
        eprintln!("cinch authorize: stopping");
        // `stop_rx` is still held here: the send cannot fail.
        let _ = stop_tx.send(true);
        let followed = match follower {
            Some(f) => f
                .await
                .map_err(|e| anyhow::anyhow!("following the commands failed: {e}")),
            None => Ok(()),
        };
        let served = match tokio::time::timeout(crate::telemetry::server::SHUTDOWN_GRACE, server)
            .await
        {
            Ok(Ok(r)) => r.context("the server failed"),
            Ok(Err(e)) => Err(anyhow::anyhow!("the server task failed: {e}")),
            Err(_) => Ok(()),
        };
        served.and(followed)
    })
}
