//! `cinch plan`: instances, memory, partitions and state-topic size for a fleet, from figures
//! measured by the benches (each printed with the command that measures it).

use anyhow::bail;

/// Arguments of `cinch plan`.
#[derive(Clone, Debug, clap::Args)]
pub struct PlanArgs {
    /// Agents (identities) in the fleet.
    #[arg(long)]
    pub agents: u64,
    /// Events per second at peak, all agents together.
    #[arg(long)]
    pub events_per_sec: f64,
    /// Partitions of the input topic, if already chosen (else one is proposed).
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Cores of one instance (one engine worker per core).
    #[arg(long, default_value_t = 2)]
    pub cores_per_instance: u32,
    /// Memory of one instance, in GiB.
    #[arg(long, default_value_t = 8.0)]
    pub memory_per_instance_gib: f64,
    /// Share of each core the peak may use: the rest is room to catch up after an outage (at
    /// 0.5 a backlog drains as fast as it built up).
    #[arg(long, default_value_t = 0.5)]
    pub utilisation: f64,
}

/// A figure measured on this project's benches, with where it comes from.
pub struct Figure {
    /// The value.
    pub value: f64,
    /// What it is.
    pub what: &'static str,
    /// The command that measures it.
    pub command: &'static str,
}

/// Events per second one core scores: a whole `cinch replay` process on one core (input read
/// and decoded, every event scored with the built-in model, findings written) over 1,026,541
/// events of a simulated 250-agent, 24-day fleet.
pub const EVENTS_PER_CORE: Figure = Figure {
    value: 384_000.0,
    what: "events/s on one core (whole `cinch replay` process, 1 M events, built-in model)",
    command: "cinch simulate --agents 250 --days 24 --seed 7 --out /tmp/f1m && time taskset -c 0 cinch replay --input /tmp/f1m/events.jsonl --out /tmp/o.jsonl",
};

/// Heap bytes a mature agent costs (24 simulated days, about 4,100 varied events), fleet-wide
/// statistics and open findings included, the engine's fixed resource cache not.
pub const MATURE_AGENT_BYTES: Figure = Figure {
    value: 11_261.0,
    what: "heap bytes per mature agent (24 simulated days)",
    command: "cargo bench --bench agents",
};

/// Heap bytes a new or quiet agent costs (three events), at a million agents.
pub const NEW_AGENT_BYTES: Figure = Figure {
    value: 1_585.0,
    what: "heap bytes per new or quiet agent (three events, 1 M agents)",
    command: "cargo bench --bench agents",
};

/// Resident bytes per heap byte of agent state (resident and heap bytes of 1 M new agents).
pub const RESIDENT_PER_HEAP: Figure = Figure {
    value: 1_781.0 / 1_585.0,
    what: "resident bytes per heap byte of agent state (1 M new agents)",
    command: "cargo bench --bench agents",
};

/// Resident bytes of an instance before any agent: the process, its model, buffers and the
/// input read ahead (a replay of 1 M events of 250 agents).
pub const BASE_BYTES: Figure = Figure {
    value: 81.0 * 1024.0 * 1024.0,
    what: "resident bytes of a process with 250 agents (1 M events replayed)",
    command: "/usr/bin/time -v cinch replay --input /tmp/f1m/events.jsonl --out /tmp/o.jsonl",
};

/// Serialised bytes of a mature agent's checkpoint (the state topic's value holds it in
/// base64, with its key and a few members around it).
pub const CHECKPOINT_BYTES: Figure = Figure {
    value: 8_673.0,
    what: "bytes of a mature agent's serialised checkpoint",
    command: "cargo bench --bench agents",
};

/// What a state-topic record adds to its checkpoint: the JSON members around the base64 state
/// and the key.
const RECORD_OVERHEAD_BYTES: f64 = 200.0;

/// A deployment sized for a fleet.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// Cores the peak needs at the chosen utilisation.
    pub cores: f64,
    /// Resident memory of the whole fleet's state with every agent mature, in bytes.
    pub memory_mature: f64,
    /// The same with every agent new or quiet, in bytes.
    pub memory_new: f64,
    /// Instances: enough cores and enough memory for mature agents.
    pub instances: u32,
    /// Input partitions: the given count, or one proposed.
    pub partitions: u32,
    /// Whether the given partitions are too few to use the cores the peak needs.
    pub too_few_partitions: Option<u32>,
    /// Bytes of the compacted state topic: one checkpoint per agent.
    pub state_topic_bytes: f64,
    /// Resident bytes per instance.
    pub memory_per_instance: f64,
}

/// Sizes a deployment.
pub fn plan(args: &PlanArgs) -> anyhow::Result<Plan> {
    let mut errors = Vec::new();
    if args.agents == 0 {
        errors.push("--agents must be at least 1".to_string());
    }
    if !(args.events_per_sec.is_finite() && args.events_per_sec > 0.0) {
        errors.push("--events-per-sec must be a positive number".to_string());
    }
    if !(args.utilisation > 0.0 && args.utilisation <= 1.0) {
        errors.push("--utilisation must be in (0, 1]".to_string());
    }
    if args.cores_per_instance == 0 {
        errors.push("--cores-per-instance must be at least 1".to_string());
    }
    let per_instance = args.memory_per_instance_gib * 1024.0 * 1024.0 * 1024.0;
    if !(per_instance.is_finite() && per_instance > BASE_BYTES.value) {
        errors.push(format!(
            "--memory-per-instance-gib must be more than an idle instance's {:.2} GiB",
            BASE_BYTES.value / (1u64 << 30) as f64
        ));
    }
    if args.partitions == Some(0) {
        errors.push("--partitions must be at least 1".to_string());
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    let agents = args.agents as f64;
    let cores = args.events_per_sec / (EVENTS_PER_CORE.value * args.utilisation);
    let resident = |bytes: f64| agents * bytes * RESIDENT_PER_HEAP.value;
    let memory_mature = resident(MATURE_AGENT_BYTES.value);
    let memory_new = resident(NEW_AGENT_BYTES.value);
    let by_cores = (cores / f64::from(args.cores_per_instance)).ceil();
    let by_memory = (memory_mature / (per_instance - BASE_BYTES.value)).ceil();
    let instances = by_cores.max(by_memory).max(1.0) as u32;
    let workers = instances * args.cores_per_instance;
    // Twice the workers, so that instances can double without re-partitioning (Kafka cannot
    // shrink a topic, and growing one moves agents between partitions).
    let proposed = (2 * workers).max(6);
    let needed = cores.ceil().max(1.0) as u32;
    let partitions = args.partitions.unwrap_or(proposed);
    let too_few_partitions = (partitions < needed).then_some(needed);
    let record = (CHECKPOINT_BYTES.value * 4.0 / 3.0).ceil() + RECORD_OVERHEAD_BYTES;
    Ok(Plan {
        cores,
        memory_mature,
        memory_new,
        instances,
        partitions,
        too_few_partitions,
        state_topic_bytes: agents * record,
        memory_per_instance: BASE_BYTES.value + memory_mature / f64::from(instances),
    })
}

fn human(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// Runs the subcommand: prints the plan and the figures it rests on.
pub fn run(args: PlanArgs) -> anyhow::Result<std::process::ExitCode> {
    let p = plan(&args)?;
    println!(
        "cinch plan: {} agents, {} events/s at peak, {:.0}% of each core at peak",
        args.agents,
        args.events_per_sec,
        args.utilisation * 100.0
    );
    println!(
        "  cores:        {:.2} at peak ({:.2} busy)",
        p.cores,
        p.cores * args.utilisation
    );
    println!(
        "  instances:    {} of {} cores and {} GiB",
        p.instances, args.cores_per_instance, args.memory_per_instance_gib
    );
    println!(
        "  memory:       {} per instance; the fleet's state {} with every agent mature, {} with every agent new or quiet",
        human(p.memory_per_instance),
        human(p.memory_mature),
        human(p.memory_new)
    );
    match (args.partitions, p.too_few_partitions) {
        (Some(n), Some(needed)) => println!(
            "  partitions:   {n} are too few: a partition is read by one worker, so the peak needs at least {needed}"
        ),
        (Some(n), None) => println!("  partitions:   {n} (enough for the peak)"),
        (None, _) => println!(
            "  partitions:   {} (twice the workers, so that instances can double without re-partitioning)",
            p.partitions
        ),
    }
    println!(
        "  state topic:  {} (compacted: one checkpoint of each agent)",
        human(p.state_topic_bytes)
    );
    println!("figures (measured on this project's benches; re-measure on your hardware):");
    for f in [
        &EVENTS_PER_CORE,
        &MATURE_AGENT_BYTES,
        &NEW_AGENT_BYTES,
        &RESIDENT_PER_HEAP,
        &BASE_BYTES,
        &CHECKPOINT_BYTES,
    ] {
        let value = if f.value < 10.0 {
            format!("{:.2}", f.value)
        } else {
            format!("{:.0}", f.value)
        };
        println!("  {value:>10}  {}\n              `{}`", f.what, f.command);
    }
    Ok(if p.too_few_partitions.is_some() {
        std::process::ExitCode::from(1)
    } else {
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(agents: u64, rate: f64) -> PlanArgs {
        PlanArgs {
            agents,
            events_per_sec: rate,
            partitions: None,
            cores_per_instance: 2,
            memory_per_instance_gib: 8.0,
            utilisation: 0.5,
        }
    }

    #[test]
    fn cores_follow_the_rate_and_memory_the_agents() {
        let small = plan(&args(1_000, 10_000.0)).unwrap();
        assert_eq!(small.instances, 1);
        let busy = plan(&args(1_000, 10.0 * EVENTS_PER_CORE.value)).unwrap();
        assert!((busy.cores - 20.0).abs() < 1e-9, "{}", busy.cores);
        assert_eq!(busy.instances, 10, "20 cores at 2 a piece");
        assert_eq!(busy.partitions, 40);
        let many = plan(&args(3_000_000, 1_000.0)).unwrap();
        let gib = 1024.0 * 1024.0 * 1024.0;
        // Every agent's state, mature, as resident bytes.
        let mature = 3_000_000.0 * MATURE_AGENT_BYTES.value * RESIDENT_PER_HEAP.value;
        assert!(
            (many.memory_mature - mature).abs() < 1.0,
            "{}",
            many.memory_mature
        );
        // More than three instances of 8 GiB hold: memory, not the rate, decides.
        assert!(
            many.memory_mature > 3.0 * 8.0 * gib,
            "{}",
            many.memory_mature
        );
        assert!(many.instances >= 4, "memory decides: {}", many.instances);
        assert!(many.memory_per_instance <= 8.0 * gib);
        assert!(many.state_topic_bytes > 3_000_000.0 * CHECKPOINT_BYTES.value);
    }

    #[test]
    fn too_few_partitions_are_named() {
        let mut a = args(1_000, 10.0 * EVENTS_PER_CORE.value);
        a.partitions = Some(4);
        assert_eq!(plan(&a).unwrap().too_few_partitions, Some(20));
    }

    #[test]
    fn every_bad_argument_is_reported_at_once() {
        let mut a = args(0, -1.0);
        a.utilisation = 2.0;
        let err = plan(&a).unwrap_err().to_string();
        for flag in ["--agents", "--events-per-sec", "--utilisation"] {
            assert!(err.contains(flag), "{err}");
        }
    }
}
