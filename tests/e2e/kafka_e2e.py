#!/usr/bin/env python3
"""End to end: `cinch run` against a real, separate Kafka-compatible broker.

The same input (simulated fleet traffic, the real CloudTrail files and some bad records) goes
to two input topics of 12 partitions through an independent client (confluent-kafka). One
`cinch run` reads the first without interruption; three instances in one consumer group share
the second, and one of them, drawn at random, is killed with SIGKILL and restarted, three
times. Their outputs are read back and compared:

- every input record was scored or dead-lettered exactly as in the uninterrupted run;
- no finding or command id of the uninterrupted run is missing, and none is extra;
- a record produced more than once (a replay after a kill) is identical each time;
- the committed input offsets reach the end of the input.

With E2E_FLEET=1 (the `fleet` stage of kafka_e2e.sh) every run also shares fleet knowledge
through a fleet topic (`kafka.fleet_topic`): the simulated agents are dealt over all twelve
partitions, every partition ends with a closing event a day after the rest, and no partition is
advanced for being idle, so that the outputs depend on the input alone.

"Caught up" is decided from the records read, never from the broker's watermarks.
"""

import argparse
import glob
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import zlib

from confluent_kafka import Consumer, Producer, TopicPartition

PARTITIONS = 12
# With E2E_FLEET=1 every run shares one fleet through a fleet topic (kafka.fleet_topic).
FLEET = os.environ.get("E2E_FLEET") == "1"
# The runs' topic prefixes (and consumer groups), apart for each mode so both run on one broker.
REF, KILL = ("fleet-ref", "fleet-kill") if FLEET else ("ref", "kill")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KINDS = ["events", "findings", "recommendations", "commands", "dead-letters", "audit", "state", "scores"]
BAD = [b"not json at all", b'{"event_id":"x1","agent_id":"a"}', b"\xff\xfe\x00garbage", b"",
       b'{"event_id":"x2","time":"1900-01-01T00:00:00Z","agent_id":"a","action":"s3:GetObject","resource":""}']


def log(msg):
    print(f"[e2e] {msg}", flush=True)


def conclude(stage, failures, passed):
    """Logs each failure and exits 1, or logs that the stage passed."""
    label = f"{stage}: " if stage else ""
    if failures:
        for f in failures:
            log(f"FAIL: {label}{f}")
        sys.exit(1)
    log(f"PASS: {label}{passed}")


def parser():
    """The arguments every stage takes: the broker, the tansu and cinch binaries, a work dir."""
    ap = argparse.ArgumentParser()
    for name in ["--broker", "--tansu", "--cinch", "--work"]:
        ap.add_argument(name, required=True)
    return ap


def topic(prefix, kind):
    return f"{prefix}.{kind}"


def create_topics(tansu, broker, prefix):
    for kind in KINDS:
        parts = PARTITIONS if kind == "events" else 2
        cmd = [tansu, "topic", "create", "--broker", f"tcp://{broker}", "--partitions", str(parts)]
        if kind == "state":
            cmd += ["--config", "cleanup.policy=compact"]
        r = subprocess.run(cmd + [topic(prefix, kind)], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"cannot create {topic(prefix, kind)}: {r.stderr.strip()}")


def count_records(text):
    """CloudTrail records in a document: `{"Records":[...]}` objects, arrays or single
    records, one after another (JSON lines)."""
    dec, i, n = json.JSONDecoder(), 0, 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return n
        doc, i = dec.raw_decode(text, i)
        if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
            n += len(doc["Records"])
        elif isinstance(doc, list):
            n += len(doc)
        else:
            n += 1


def inputs(cinch, data, work):
    """The input messages, as (partition, key, value), and the number of valid events in them."""
    sim = os.path.join(work, "sim")
    subprocess.run([cinch, "simulate", "--agents", "30", "--days", "6", "--seed", "21", "--out", sim],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    msgs, valid = [], 0
    with open(os.path.join(sim, "events.jsonl"), "rb") as f:
        lines = [(json.loads(line), line.rstrip(b"\n")) for line in f]
    place = lambda agent: zlib.crc32(agent) % PARTITIONS
    if FLEET:
        # Every partition carries live traffic (agents dealt round the partitions), as a fleet
        # topic needs: the fleet moves at the pace of its slowest partition.
        agents = sorted({ev["agent_id"] for ev, _ in lines})
        dealt = {a.encode(): i % PARTITIONS for i, a in enumerate(agents)}
        place = dealt.__getitem__
    for ev, line in lines:
        agent = ev["agent_id"].encode()
        msgs.append((place(agent), agent, line))
        valid += 1
    # Real CloudTrail: each delivery object is one message, its JSON document as a log shipper
    # forwards it, all on partition 0 in file order.
    files = sorted(glob.glob(os.path.join(data, "cloudtrail", "**", "*.json*"), recursive=True))
    for path in files:
        raw = open(path, "rb").read()
        text = gzip.decompress(raw) if path.endswith(".gz") else raw
        valid += count_records(text.decode())
        msgs.append((0, os.path.basename(path).encode(), text))
    for i, bad in enumerate(BAD):
        msgs.insert(1 + i * 997, (i % PARTITIONS, b"bad", bad))
    if FLEET:
        # Every partition ends with an event a day after the rest, so that the fleet passes
        # every tick of the input with no partition advanced for being idle.
        end = max(ev["time"] for ev, _ in lines)[:10]
        closing = f"{end}T23:59:59Z"
        for p in range(PARTITIONS):
            ev = {"event_id": f"e2e-closing-{p}", "time": closing, "agent_id": f"e2e-closing-{p}",
                  "action": "s3:GetObject", "resource": "s3://e2e/closing", "outcome": "success"}
            msgs.append((p, ev["agent_id"].encode(), json.dumps(ev).encode()))
            valid += 1
    log(f"input: {len(msgs)} messages ({len(files)} CloudTrail files), {valid} valid events, {len(BAD)} bad records")
    return msgs, valid


def produce(broker, name, msgs):
    """Produces one record per request batch (tansu 0.6 answers a fetch from inside a batch with
    the next batch), returning the end offset of each partition from the delivery reports."""
    ends = {}

    def report(err, m):
        if err is not None:
            sys.exit(f"produce to {name} failed: {err}")
        ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)

    p = Producer({"bootstrap.servers": broker, "linger.ms": 0, "batch.num.messages": 1,
                  "message.max.bytes": 10_000_000})
    for part, key, value in msgs:
        while True:
            try:
                p.produce(name, value, key=key, partition=part, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    if p.flush(60) != 0:
        sys.exit(f"produce to {name}: not every record was acknowledged")
    return ends


class Outputs:
    """Reads a run's output topics from the start, keeping every record."""

    def __init__(self, broker, prefix):
        self.prefix = prefix
        self.c = Consumer({"bootstrap.servers": broker, "group.id": f"e2e-reader-{prefix}",
                           "enable.auto.commit": False, "isolation.level": "read_committed"})
        tps = []
        for kind in ["findings", "commands", "dead-letters", "scores", "recommendations"]:
            md = self.c.list_topics(topic(prefix, kind), timeout=10).topics[topic(prefix, kind)]
            tps += [TopicPartition(topic(prefix, kind), p, 0) for p in md.partitions]
        self.c.assign(tps)
        self.records = {k: [] for k in ["findings", "commands", "dead-letters", "scores", "recommendations"]}

    def poll(self, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            for m in self.c.consume(1000, 0.1):
                if m.error():
                    continue
                kind = m.topic()[len(self.prefix) + 1:]
                self.records[kind].append(json.loads(m.value()))

    def scored(self):
        return {r["event_id"] for r in self.records["scores"]}

    def caught_up(self, valid):
        return len(self.scored()) >= valid and len(self.records["dead-letters"]) >= len(BAD)


def run(cinch, broker, prefix, work, valid, kills, msgs, instances=1, limit=900):
    """Runs `instances` of cinch in one group on `prefix` until they have scored and
    dead-lettered everything and committed the input's end. With kills, the input is fed in
    eight steps a second apart, and a step waits (up to 30 s) for the kills due more than a step
    before it, so that the kills fall mid-stream however fast cinch catches up after a restart;
    each kill takes one instance drawn at random, which is started again."""
    fed = {}
    steps = 8 if kills else 1
    size = (len(msgs) + steps - 1) // steps
    kill_marks = sorted(random.uniform(0.1, 0.8) for _ in range(kills))
    progress = {"killed": 0}

    def feed():
        for i in range(steps):
            due = sum(1 for m in kill_marks if m < (i - 1) / steps)
            waited = time.time()
            while progress["killed"] < due and time.time() - waited < 30:
                time.sleep(0.1)
            for part, end in produce(broker, topic(prefix, "events"), msgs[i * size:(i + 1) * size]).items():
                fed[part] = max(fed.get(part, 0), end)
            if i + 1 < steps:
                time.sleep(1.0)
        fed["done"] = True

    feeder = threading.Thread(target=feed)
    feeder.start()
    cfg = os.path.join(work, f"{prefix}.toml")
    with open(cfg, "w") as f:
        f.write("[kafka]\n")
        f.write(f'brokers = "{broker}"\ngroup_id = "{prefix}"\ninput_topics = ["{topic(prefix, "events")}"]\n')
        for kind in ["findings", "recommendations", "commands", "audit", "state", "scores"]:
            f.write(f'{kind}_topic = "{topic(prefix, kind)}"\n')
        f.write(f'dead_letters_topic = "{topic(prefix, "dead-letters")}"\n')
        if FLEET:
            # Every partition shares one fleet through a topic cinch creates. No partition is advanced for being idle (an idle partition's later events would
            # be judged against a fleet that moved on, as timing had it): the input's closing
            # events carry every partition to the end.
            f.write(f'fleet_topic = "{topic(prefix, "fleet")}"\nfleet_idle_secs = 600\n')
        f.write('[kafka.properties]\n"session.timeout.ms" = "6000"\n"heartbeat.interval.ms" = "500"\n')
        # The fleet's entitlements (6 days of history: recommendations from 3 days on) and the
        # fixture key, so that every run signs its commands alike.
        f.write(f'[grants]\nentitlements_path = "{os.path.join(work, "sim", "entitlements.json")}"\n')
        f.write('min_history_days = 3.0\n')
        f.write(f'[commands]\nsigning_key = "{os.path.join(REPO, "fixtures", "keys", "cinch-signing.key")}"\n')
    out = Outputs(broker, prefix)
    logf = open(os.path.join(work, f"{prefix}.log"), "ab")

    def start():
        return subprocess.Popen([cinch, "run", "--config", cfg, "--metrics-addr", "127.0.0.1:0"],
                                stdout=logf, stderr=logf)

    procs = [start() for _ in range(instances)]
    marks = list(kill_marks)
    killed, last_kill = 0, 0
    started = time.time()

    def done():
        if not (fed.get("done") and out.caught_up(valid)):
            return False
        ends = {p: e for p, e in fed.items() if p != "done"}
        return committed(broker, prefix, topic(prefix, "events")) == ends

    while not done():
        if time.time() - started > limit:
            for proc in procs:
                proc.kill()
            ends = {p: e for p, e in fed.items() if p != "done"}
            with open(os.path.join(work, f"{prefix}.scored.json"), "w") as f:
                json.dump(sorted(out.scored()), f)
            sys.exit(f"{prefix}: not caught up after {limit} s: {len(out.scored())}/{valid} scored, "
                     f"{len(out.records['dead-letters'])}/{len(BAD)} dead-lettered, committed "
                     f"{committed(broker, prefix, topic(prefix, 'events'))} of {ends}; scored ids in "
                     f"{work}/{prefix}.scored.json")
        out.poll(0.2)
        for proc in procs:
            if proc.poll() is not None:
                sys.exit(f"{prefix}: cinch run exited with {proc.returncode}; see {logf.name}")
        # Each kill waits for the group to score something after the last (new, or again).
        if marks and len(out.scored()) >= marks[0] * valid and len(out.records["scores"]) > last_kill:
            victim = random.randrange(instances)
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait()
            killed += 1
            progress["killed"] = killed
            last_kill = len(out.records["scores"])
            log(f"{prefix}: SIGKILL {killed} of instance {victim + 1} of {instances} at "
                f"{len(out.scored())}/{valid} events scored")
            marks.pop(0)
            procs[victim] = start()
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    rcs = [proc.wait(timeout=120) for proc in procs]
    out.poll(2)
    elapsed = time.time() - started
    log(f"{prefix}: caught up in {elapsed:.1f} s, {instances} instances, {killed} kills, exit codes {rcs}")
    if any(rcs):
        sys.exit(f"{prefix}: cinch run exited with {rcs} on SIGTERM")
    feeder.join()
    return out, killed, {p: e for p, e in fed.items() if p != "done"}


def by_id(records, field, normalise=lambda r: r):
    """Records by id; a repeated id must carry an identical record."""
    seen, repeats = {}, 0
    for r in records:
        r = normalise(r)
        k = r[field]
        if k in seen:
            repeats += 1
            if seen[k] != r:
                sys.exit(f"FAIL: {field} {k} was produced twice with different content")
        seen[k] = r
    return seen, repeats


def committed(broker, group, name):
    c = Consumer({"bootstrap.servers": broker, "group.id": group})
    got = c.committed([TopicPartition(name, p) for p in range(PARTITIONS)], timeout=10)
    c.close()
    # A partition no message went to has nothing committed (a negative offset).
    return {tp.partition: tp.offset for tp in got if tp.offset >= 0}


def fleet_records(broker, name, group):
    """The input partitions that published to the fleet topic `name`, and how many records it
    holds (read until three seconds bring nothing)."""
    c = Consumer({"bootstrap.servers": broker, "group.id": group, "enable.auto.commit": False})
    c.assign([TopicPartition(name, 0, 0)])
    members, count, idle = set(), 0, 0
    while idle < 3:
        got = [m for m in c.consume(1000, 1.0) if not m.error() and m.value() is not None]
        count += len(got)
        members.update(json.loads(m.value())["member"] for m in got)
        idle = 0 if got else idle + 1
    c.close()
    return members, count


def main():
    ap = parser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    random.seed(seed)
    log(f"kill points drawn with seed {seed}")

    msgs, valid = inputs(a.cinch, a.data, a.work)
    for prefix in [REF, KILL]:
        create_topics(a.tansu, a.broker, prefix)
    ref, _, _ = run(a.cinch, a.broker, REF, a.work, valid, 0, msgs)
    with open(os.path.join(a.work, f"{REF}.scored.json"), "w") as f:
        json.dump(sorted(ref.scored()), f)
    got, killed, ends = run(a.cinch, a.broker, KILL, a.work, valid, a.kills, msgs, a.instances)

    failures = []
    # Scores: one line per valid event, identical to the uninterrupted run.
    ref_scores, _ = by_id(ref.records["scores"], "event_id")
    got_scores, score_repeats = by_id(got.records["scores"], "event_id")
    if len(ref_scores) != valid:
        failures.append(f"the uninterrupted run scored {len(ref_scores)} of {valid} events")
    differ = [k for k in ref_scores if got_scores.get(k) != ref_scores[k]]
    missing = [k for k in ref_scores if k not in got_scores]
    if missing:
        failures.append(f"{len(missing)} events not scored by the instances with kills, e.g. {missing[:3]}")
    if differ:
        with open(os.path.join(a.work, f"{KILL}.differ.json"), "w") as f:
            json.dump({k: [ref_scores[k], got_scores.get(k)] for k in differ}, f)
        failures.append(f"{len(differ)} scores differ from the uninterrupted run, e.g. {differ[:3]} "
                        f"(all in {a.work}/{KILL}.differ.json)")
    # Dead letters: the same records, by input position.
    strip = lambda r: {**r, "source": r["source"].split("/", 1)[1]}
    ref_dead, _ = by_id(ref.records["dead-letters"], "source", strip)
    got_dead, dead_repeats = by_id(got.records["dead-letters"], "source", strip)
    if len(ref_dead) != len(BAD):
        failures.append(f"the uninterrupted run dead-lettered {len(ref_dead)} of {len(BAD)} bad records")
    if ref_dead != got_dead:
        failures.append("the dead letters differ from the uninterrupted run")
    # Findings and commands: no id missing, none extra, repeats identical.
    report = {}
    for kind, field in [("findings", "finding_id"), ("commands", "command_id"),
                        ("recommendations", "recommendation_id")]:
        r, _ = by_id(ref.records[kind], field)
        g, rep = by_id(got.records[kind], field)
        report[kind] = (len(r), len(g), rep)
        if set(r) != set(g):
            failures.append(f"{kind}: {len(set(r) - set(g))} missing, {len(set(g) - set(r))} extra")
        elif any(r[k] != g[k] for k in r):
            failures.append(f"{kind}: some differ from the uninterrupted run")
    if not ref.records["commands"] or not ref.records["recommendations"]:
        failures.append("the uninterrupted run issued no command or no recommendation")
    # Every command of the killed run carries a valid signature, as `cinch verify` checks it:
    # each judged as of its issue (the events are from the past), once (a consumer drops a
    # repeated command_id: `verify` fails it as replayed).
    signed = os.path.join(a.work, "commands.jsonl")
    with open(signed, "w") as f:
        for r in by_id(got.records["commands"], "command_id")[0].values():
            f.write(json.dumps(r) + "\n")
    verify = subprocess.run([a.cinch, "verify", "--at", "issued", "--public-key",
                             os.path.join(REPO, "fixtures", "keys", "cinch-signing.pub"), "--input", signed],
                            capture_output=True, text=True)
    log(f"cinch verify: {verify.stdout.strip()}")
    if verify.returncode != 0:
        failures.append(f"cinch verify failed: {verify.stderr.strip()}")
    # Committed offsets reach the end of the input (ends from the producer's delivery reports).
    offsets = committed(a.broker, KILL, topic(KILL, "events"))
    if offsets != ends:
        failures.append(f"committed offsets {offsets} do not reach the input's end {ends}")

    records = len(msgs) - len(BAD)
    log(f"input records: {valid} valid events in {records} messages, {len(BAD)} bad records")
    log(f"scored: {len(ref_scores)} by one uninterrupted instance, {len(got_scores)} by {a.instances} "
        f"instances with {killed} SIGKILLs "
        f"({score_repeats} score lines produced again after a kill, all identical)")
    log(f"dead letters: {len(ref_dead)} uninterrupted, {len(got_dead)} with kills ({dead_repeats} repeated)")
    for kind, (r, g, rep) in report.items():
        log(f"{kind}: {r} uninterrupted, {g} with kills ({rep} repeated, identical)")
    log(f"committed offsets: {offsets}, input ends: {ends}")
    if killed != a.kills:
        failures.append(f"only {killed} of {a.kills} kills happened")
    if FLEET:
        # Fleet knowledge was shared: every input partition published its ticks to the fleet topic.
        members, count = fleet_records(a.broker, topic(KILL, "fleet"), f"e2e-reader-{KILL}-fleet")
        log(f"fleet topic: {count} records from {len(members)} input partitions")
        if len(members) != PARTITIONS:
            failures.append(f"the fleet topic holds records of {len(members)} of {PARTITIONS} partitions")
    conclude("fleet" if FLEET else "", failures,
             "every record processed or dead-lettered as in the uninterrupted run"
             + (", with fleet knowledge merged through a fleet topic" if FLEET else ""))


if __name__ == "__main__":
    main()
