#!/usr/bin/env python3
"""Scale-out at fleet size: three `cinch run` instances on a 12-partition topic against a real
broker, one killed mid-stream, sharing fleet knowledge through a fleet topic, compared with
`cinch replay --partitions 12` of the same input and with one engine over the whole fleet.

A simulated fleet (default 120 agents, 14 days) is produced to the topic keyed by agent id and
placed as a Kafka producer's default partitioner places it (murmur2 of the key), which is also how
`cinch replay --partitions 12` spreads agents. Every partition ends with a closing event a day
after the rest (an agent id chosen to land there), so the fleet passes every tick of the input
without any partition advanced for being idle. The script checks:

- the instances scored every event and dead-lettered every bad record, and their committed
  offsets reach the input's end;
- their findings, commands and recommendations have the same ids and contents as those of
  `cinch replay --partitions 12` over the same events (less the recommendations of the
  replay's review at the end of its input, which a stream never reaches), and every score line
  is the same;
- detection quality (`cinch eval`) of their outputs is that of one engine over the whole fleet
  (`cinch eval --dataset`) within 10% in benign findings per agent-day, with the same attacks
  caught. The closing events are left out of the quality figures.

Run by `E2E_STAGES=scale bash tests/e2e/kafka_e2e.sh` (not part of CI's default stages: it
takes several minutes).
"""

import json
import os
import random
import subprocess
import sys

os.environ["E2E_FLEET"] = "1"
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kafka_e2e as e2e  # noqa: E402

PREFIX = "scale"
KEY = os.path.join(e2e.REPO, "fixtures", "keys", "cinch-signing.key")


def murmur2(data):
    """Kafka's murmur2 (the Java client's and librdkafka's `murmur2` partitioner)."""
    m, length = 0x5BD1E995, len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[length & ~3:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key):
    return (murmur2(key) & 0x7FFFFFFF) % e2e.PARTITIONS


def inputs(cinch, work, agents, days, seed):
    """The input messages as (partition, key, value), the number of valid events, and the
    valid events as JSON lines in input order (for replay)."""
    sim = os.path.join(work, "sim")
    subprocess.run([cinch, "simulate", "--agents", str(agents), "--days", str(days), "--seed", str(seed),
                    "--out", sim], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    msgs, lines, end = [], [], ""
    with open(os.path.join(sim, "events.jsonl"), "rb") as f:
        for line in f:
            ev = json.loads(line)
            agent = ev["agent_id"].encode()
            msgs.append((partition_of(agent), agent, line.rstrip(b"\n")))
            lines.append(line.rstrip(b"\n"))
            end = max(end, ev["time"])
    # A closing event on every partition, a day after the rest.
    closing_time = f"{end[:10]}T23:59:59"
    closing, n = {}, 0
    while len(closing) < e2e.PARTITIONS:
        agent = f"e2e-closing-{n}"
        closing.setdefault(partition_of(agent.encode()), agent)
        n += 1
    for p, agent in sorted(closing.items()):
        ev = {"event_id": f"{agent}-event", "time": f"{closing_time}Z", "agent_id": agent,
              "action": "s3:GetObject", "resource": "s3://e2e/closing", "outcome": "success"}
        value = json.dumps(ev).encode()
        msgs.append((p, agent.encode(), value))
        lines.append(value)
    valid = len(lines)
    for i, bad in enumerate(e2e.BAD):
        msgs.insert(1 + i * 997, (i % e2e.PARTITIONS, b"bad", bad))
    e2e.log(f"input: {agents} agents x {days} days (seed {seed}): {valid} valid events "
            f"({len(closing)} closing), {len(e2e.BAD)} bad records")
    return msgs, valid, lines, set(closing.values()), closing_time


def write_jsonl(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")


def evaluate(cinch, cfg, extra):
    r = subprocess.run([cinch, "eval", "--config", cfg, "--json"] + extra, capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"cinch eval {' '.join(extra)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


def quality(report):
    """(benign findings per agent-day, attacks caught, attacks, PR-AUC) of a `cinch eval --json`
    report."""
    # Over a dataset, eval prints a list of variants (the first is every detector); over
    # score and finding files, one report.
    d = report[0]["report"] if isinstance(report, list) else report
    return (d["benign_findings_per_agent_day"], d["detected"], d["attacks"], d["pr_auc"])


def main():
    ap = e2e.parser()
    ap.add_argument("--agents", type=int, default=120)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--sim-seed", type=int, default=5)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    e2e.log(f"kill point drawn with seed {seed}")

    msgs, valid, lines, closers, closing_time = inputs(a.cinch, a.work, a.agents, a.days, a.sim_seed)
    e2e.create_topics(a.tansu, a.broker, PREFIX)
    # A fleet topic moves the instances one event-time hour (a fleet tick) at a time, each
    # tick a round trip through the broker: allow a second and a half an hour and then some.
    hours = a.days * 24
    got, killed, ends = e2e.run(a.cinch, a.broker, PREFIX, a.work, valid, 1, msgs, instances=3,
                                limit=900 + 4 * hours)

    # The same events through `cinch replay --partitions 12`, with the run's grants settings.
    sim = os.path.join(a.work, "sim")
    cfg = os.path.join(a.work, "scale-replay.toml")
    with open(cfg, "w") as f:
        f.write(f'[grants]\nentitlements_path = "{os.path.join(sim, "entitlements.json")}"\n')
        f.write("min_history_days = 3.0\n")
    inp = os.path.join(a.work, "scale-input.jsonl")
    with open(inp, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    decisions = os.path.join(a.work, "scale-replay.out.jsonl")
    scores = os.path.join(a.work, "scale-replay.scores.jsonl")
    subprocess.run([a.cinch, "replay", "--input", inp, "--partitions", str(e2e.PARTITIONS), "--config", cfg,
                    "--signing-key", KEY, "--out", decisions, "--scores-out", scores],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def read(path):
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    # `--out` holds every decision record; each has its kind. A replay also reviews grants at
    # the end of its input, which a stream never reaches: what that review recommends (stamped
    # with the closing time) is left out of the comparison.
    replayed = {"scores": read(scores), "findings": [], "commands": [], "recommendations": []}
    at_end = 0
    for r in read(decisions):
        if r.get("kind") == "recommendation" and r["time"].startswith(closing_time):
            at_end += 1
        elif r.get("kind") in ("finding", "command", "recommendation"):
            replayed[r["kind"] + "s"].append(r)
    e2e.log(f"replay --partitions {e2e.PARTITIONS}: {at_end} recommendations of its end-of-input review "
            f"left out (a stream has no end)")

    failures, got_by_id = [], {}
    for kind, field in [("scores", "event_id"), ("findings", "finding_id"), ("commands", "command_id"),
                        ("recommendations", "recommendation_id")]:
        r, _ = e2e.by_id(replayed[kind], field)
        g, rep = e2e.by_id(got.records[kind], field)
        got_by_id[kind] = g
        same = set(r) == set(g) and all(r[k] == g[k] for k in r)
        e2e.log(f"{kind}: {len(g)} from 3 instances ({rep} produced again after the kill, identical), "
                f"{len(r)} from replay --partitions 12: {'the same' if same else 'DIFFERENT'}")
        if not same:
            failures.append(f"{kind}: {len(set(r) - set(g))} only in replay, {len(set(g) - set(r))} "
                            f"only in the instances, {sum(1 for k in set(r) & set(g) if r[k] != g[k])} differ")
    offsets = e2e.committed(a.broker, PREFIX, e2e.topic(PREFIX, "events"))
    if offsets != ends:
        failures.append(f"committed offsets {offsets} do not reach the input's end {ends}")
    if killed != 1:
        failures.append(f"{killed} kills happened, not 1")

    # Quality, closing events left out: the instances' outputs against one engine over the
    # dataset.
    kept_scores = [s for s in got_by_id["scores"].values() if s["agent_id"] not in closers]
    kept_findings = [f for f in got_by_id["findings"].values() if f["agent_id"] not in closers]
    write_jsonl(os.path.join(a.work, "scale-run.scores.jsonl"), kept_scores)
    write_jsonl(os.path.join(a.work, "scale-run.findings.jsonl"), kept_findings)
    rows = [
        ("one engine, the whole fleet (cinch eval --dataset)", evaluate(a.cinch, cfg, ["--dataset", sim])),
        (f"3 cinch run instances, {e2e.PARTITIONS} partitions, 1 SIGKILL, fleet topic (= replay --partitions {e2e.PARTITIONS})",
         evaluate(a.cinch, cfg, ["--scores", os.path.join(a.work, "scale-run.scores.jsonl"),
                                      "--findings", os.path.join(a.work, "scale-run.findings.jsonl"),
                                      "--labels", os.path.join(sim, "labels.csv"),
                                      "--attacks", os.path.join(sim, "attacks.csv")])),
    ]
    base = quality(rows[0][1])
    for name, report in rows:
        bpad, caught, attacks, pr = quality(report)
        change = (bpad / base[0] - 1) * 100 if base[0] else 0.0
        e2e.log(f"quality, {name}: {bpad:.3f} benign findings per agent-day ({change:+.1f}%), "
                f"{caught}/{attacks} attacks caught, PR-AUC {pr:.3f}")
    bpad, caught, _, _ = quality(rows[1][1])
    if base[0] and abs(bpad / base[0] - 1) > 0.10:
        failures.append(f"benign findings per agent-day {bpad:.3f} against one engine's {base[0]:.3f}: "
                        f"more than 10% apart")
    if caught != base[1]:
        failures.append(f"{caught} attacks caught against one engine's {base[1]}")
    e2e.conclude("scale", failures, f"3 instances over {e2e.PARTITIONS} partitions with a SIGKILL give the outputs of "
                 f"replay --partitions {e2e.PARTITIONS}, and one engine's quality within 10%")


if __name__ == "__main__":
    main()
