//! `cinch run`: the engine on Kafka, until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::config::Settings;
use std::sync::Arc;

use crate::drive::kafka;
use crate::telemetry::{self, Metrics};

/// Arguments of `cinch run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Settings file (TOML; see configs/cinch.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Bootstrap brokers, `host:port[,host:port...]`; overrides `kafka.brokers`.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Consumer group id; overrides `kafka.group_id`.
    #[arg(long)]
    pub group: Option<String>,
    /// Input topics, comma-separated; overrides `kafka.input_topics`.
    #[arg(long, value_delimiter = ',')]
    pub input_topics: Option<Vec<String>>,
    /// Address of the metrics and health endpoint (`/metrics`, `/healthz`, `/readyz`).
    #[arg(long, default_value_t = crate::telemetry::DEFAULT_ADDR)]
    pub metrics_addr: std::net::SocketAddr,
    /// Most connections the endpoint serves at once; more wait in the listen queue.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub metrics_max_connections: u32,
    /// Seconds a client has to send its request's headers before it is dropped.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub metrics_header_timeout_secs: u64,
    /// Seconds a connection stays open at most, its request included.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub metrics_connection_timeout_secs: u64,
}

/// The settings of a run: the file, then the flags.
pub fn settings(args: &RunArgs) -> anyhow::Result<Settings> {
    let mut s = super::load_settings(Some(&args.config))?;
    if let Some(b) = &args.brokers {
        s.kafka.brokers = b.clone();
    }
    if let Some(g) = &args.group {
        s.kafka.group_id = g.clone();
    }
    if let Some(t) = &args.input_topics {
        s.kafka.input_topics = t.clone();
    }
    s.validate()
        .context("checking the settings with the flags applied")?;
    Ok(s)
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    match telemetry::shutdown_signal() {
        Ok(signal) => signal.await,
        Err(e) => {
            eprintln!("cinch run: {e}; listening for Ctrl-C only");
            if let Err(e) = tokio::signal::ctrl_c().await {
                eprintln!("cinch run: cannot listen for Ctrl-C either: {e}; stopping");
            }
        }
    }
}

/// Runs the subcommand.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut settings = settings(&args)?;
    let response = super::Response::load(&settings, None, None, None, "cinch run", true)?;
    let model = super::load_model(&mut settings, None, "cinch run")?;
    eprintln!(
        "cinch run: consuming {} from {} as group {}; {} workers",
        settings.kafka.input_topics.join(","),
        settings.kafka.brokers,
        settings.kafka.group_id,
        settings.kafka.workers
    );
    for t in &settings.kafka.unkeyed_topics {
        eprintln!(
            "cinch run: {t} is not keyed by agent: its events are re-keyed through {} (held {} s of event time for order)",
            settings.kafka.repartition_topic(t),
            settings.kafka.repartition_order_secs
        );
    }
    if let Some(t) = &settings.kafka.fleet_topic {
        eprintln!(
            "cinch run: fleet knowledge shared by every input partition through {t}, merged every {} s of event time (a partition idle {} s is advanced)",
            settings.detect.fleet_tick_secs, settings.kafka.fleet_idle_secs
        );
    }
    let deadline = settings.kafka.shutdown_deadline_secs;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let metrics = Arc::new(Metrics::new());
    let summary = rt.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut stopped_rx = stopped.clone();
        let limits = telemetry::Limits {
            max_connections: args.metrics_max_connections as usize,
            header_read_timeout: std::time::Duration::from_secs(args.metrics_header_timeout_secs),
            connection_timeout: std::time::Duration::from_secs(
                args.metrics_connection_timeout_secs,
            ),
        };
        let router = telemetry::router(metrics.clone());
        let (addr, server) =
            telemetry::serve_router(args.metrics_addr, router, limits, async move {
                // An error means the sender is gone: nobody can say stop any more, so stop.
                let _ = stopped_rx.changed().await;
            })
            .await
            .context("starting the metrics endpoint")?;
        eprintln!("cinch run: metrics and health on http://{addr}/metrics, /healthz, /readyz");
        let options = kafka::RunOptions {
            observer: metrics.clone(),
            close_findings_at_exit: false,
            entitlements: response.entitlements.map(crate::grants::shared),
            signer: Some(response.signer),
            feedback: response.feedback,
            model: model.map(|m| crate::ml::shared(Some(m))),
        };
        let result = kafka::run_with(settings, options, async move {
            shutdown_signal().await;
            eprintln!("cinch run: stopping: draining in-flight work (at most {deadline} s)");
        })
        .await;
        // `stopped` is still held: the send cannot fail.
        let _ = stop.send(true);
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("cinch run: the metrics endpoint failed: {e}"),
            Err(e) => eprintln!("cinch run: the metrics endpoint failed: {e}"),
        }
        drop(stopped);
        anyhow::Ok(result?)
    })?;
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_override_the_config() {
        let dir = std::env::temp_dir().join(format!("cinch-run-args-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = dir.join("cinch.toml");
        std::fs::write(
            &cfg,
            "[kafka]\nbrokers = \"file:9092\"\ngroup_id = \"from-file\"\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "cinch",
            "--config",
            cfg.to_str().unwrap(),
            "--brokers",
            "a:9092,b:9092",
            "--input-topics",
            "t1,t2",
        ]);
        let s = settings(&cli.run).unwrap();
        assert_eq!(s.kafka.brokers, "a:9092,b:9092");
        assert_eq!(s.kafka.group_id, "from-file");
        assert_eq!(s.kafka.input_topics, vec!["t1", "t2"]);

        let cli = Cli::parse_from([
            "cinch",
            "--config",
            cfg.to_str().unwrap(),
            "--input-topics",
            "cinch.findings",
        ]);
        let err = format!("{:#}", settings(&cli.run).unwrap_err());
        assert!(err.contains("must not also be an input topic"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
