#!/usr/bin/env bash
# Throughput of `cinch run` from an input topic to its outputs, next to a bare rdkafka consumer
# draining the same topic from the same broker in the same run. Not a test: it prints figures.
#
#   bash benches/kafka_throughput.sh [EVENTS]      # default 200000 simulated events
#   ROUNDS=3 WORKERS=2 COMMIT_MS=1000 CHANNEL=16384 (environment, defaults shown)
#
# Starts its own tansu broker on 127.0.0.1 (see tests/e2e/kafka_e2e.sh for what it needs).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
tansu="${TANSU:-$(command -v tansu || echo /var/tmp/cinch-tools/bin/tansu)}"
port="${BENCH_PORT:-19292}"
events="${1:-200000}"
broker="127.0.0.1:$port"

cargo build --release --bin cinch
cargo bench --bench kafka_drain --no-run
python3 -c "import confluent_kafka" 2>/dev/null || python3 -m pip install -q "confluent-kafka==2.12.1"
work="$(mktemp -d)"
"$tansu" broker --listener-url "tcp://$broker" --advertised-listener-url "tcp://$broker" \
  --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; pkill -f "cinch run --config $work" 2>/dev/null || true' EXIT
sleep 1
for t in events:4 findings:2 recommendations:1 commands:1 dead-letters:1 audit:1 state:2; do
  "$tansu" topic create --broker "tcp://$broker" --partitions "${t#*:}" "bench.${t%:*}" >/dev/null
done

# Simulated traffic, produced one record per batch (tansu 0.6 answers a fetch from inside a
# batch with the next batch).
agents=$(( events / 900 + 1 ))
"$target/release/cinch" simulate --agents "$agents" --days 5 --seed 3 --out "$work/sim" >/dev/null 2>&1
python3 - "$broker" "$work/sim/events.jsonl" "$events" <<'PY'
import json, sys, zlib
from confluent_kafka import Producer
broker, path, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
p = Producer({"bootstrap.servers": broker, "linger.ms": 0, "batch.num.messages": 1})
n = 0
with open(path, "rb") as f:
    for line in f:
        if n >= limit:
            break
        agent = json.loads(line)["agent_id"].encode()
        while True:
            try:
                p.produce("bench.events", line.rstrip(b"\n"), key=agent, partition=zlib.crc32(agent) % 4)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
        n += 1
p.flush(120)
print(f"produced {n} events", file=sys.stderr)
open(sys.argv[2] + ".count", "w").write(str(n))
PY
n=$(cat "$work/sim/events.jsonl.count")

# Rounds alternate the two, each cinch round with a fresh group and state topic, because a single
# pair of runs on a 2-core machine (broker included) varies by 10-15%.
rounds="${ROUNDS:-3}"
: >"$work/rates"
for i in $(seq "$rounds"); do
  "$tansu" topic create --broker "tcp://$broker" --partitions 2 "bench.state.$i" >/dev/null
  cat >"$work/bench.toml" <<TOML
[kafka]
brokers = "$broker"
group_id = "bench-$i"
input_topics = ["bench.events"]
findings_topic = "bench.findings"
recommendations_topic = "bench.recommendations"
commands_topic = "bench.commands"
dead_letters_topic = "bench.dead-letters"
audit_topic = "bench.audit"
state_topic = "bench.state.$i"
commit_interval_ms = ${COMMIT_MS:-1000}
channel_capacity = ${CHANNEL:-16384}
workers = ${WORKERS:-2}
TOML

  echo "== round $i: bare consumer"
  cargo bench --bench kafka_drain -- "$broker" bench.events "$n" 2>/dev/null | grep "bare consumer" | tee -a "$work/rates"

  echo "== round $i: cinch run (release, ${WORKERS:-2} workers)"
  "$target/release/cinch" run --config "$work/bench.toml" --metrics-addr 127.0.0.1:19465 2>"$work/cinch.log" &
  cpid=$!
  python3 - "$n" <<'PY' | tee -a "$work/rates"
import sys, time, urllib.request
want = int(sys.argv[1])
def count():
    try:
        text = urllib.request.urlopen("http://127.0.0.1:19465/metrics", timeout=1).read().decode()
    except OSError:
        return 0
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("cinch_input_events_total") or l.startswith("cinch_dead_letters_total"))
first = None
deadline = time.time() + 600
while time.time() < deadline:
    c = count()
    if c > 0 and first is None:
        first, first_count = time.time(), c
    if c >= want:
        break
    time.sleep(0.02)
secs = time.time() - first
print(f"cinch run: {int(c)} events in {secs:.2f} s from the first: {(c - first_count) / secs:.0f} events/s")
PY
  kill -TERM "$cpid"; wait "$cpid" || true
done

python3 - "$work/rates" <<'PY'
import re, statistics, sys
bare, cinch = [], []
for line in open(sys.argv[1]):
    rate = float(re.search(r"([0-9.]+) (?:messages|events)/s", line).group(1))
    (bare if line.startswith("bare") else cinch).append(rate)
ratios = [c / b for b, c in zip(bare, cinch)]
print(f"== cinch / bare consumer per round: {', '.join(f'{r:.0%}' for r in ratios)}; "
      f"median {statistics.median(ratios):.0%} (cinch median {statistics.median(cinch):.0f} events/s, "
      f"bare median {statistics.median(bare):.0f} messages/s)")
PY
