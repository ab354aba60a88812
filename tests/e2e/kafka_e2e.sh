#!/usr/bin/env bash
# End-to-end test of `cinch run` against a real, separate broker process (tansu), with SIGKILL
# restarts; traffic goes in and out through confluent-kafka. Run by .ci/run. Four stages on one
# broker: `kill` (kafka_e2e.py: a fleet, real CloudTrail and bad records, with SIGKILL restarts),
# `fleet` (the same with fleet knowledge shared through a fleet topic, kafka.fleet_topic),
# `otlp` (otlp_e2e.py: OpenTelemetry GenAI traces as OTLP protobuf, as the Collector's Kafka
# exporter writes them) and `unkeyed` (unkeyed_e2e.py: the same traces spread by trace id over
# three partitions, re-keyed by agent through a repartition topic cinch creates).
#
#   bash tests/e2e/kafka_e2e.sh            # uses $CARGO_TARGET_DIR/debug/cinch, builds it if needed
#   E2E_STAGES=otlp bash tests/e2e/kafka_e2e.sh   # one stage only
#   CINCH=target/release/cinch E2E_STAGES=scale bash tests/e2e/kafka_e2e.sh   # fleet_scale.py:
#       three instances on a 120-agent, 14-day fleet against replay --partitions 12 and one
#       engine (several minutes; not a default stage; E2E_SCALE_ARGS="--agents 30 --days 6")
#
# Needs: tansu 0.6.0 (`cargo install tansu --version 0.6.0 --features dynostore,libsql`; found
# on PATH, at $TANSU, or in /var/tmp/cinch-tools/bin) and the Python packages confluent-kafka and
# opentelemetry-proto (installed when missing).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
cinch="${CINCH:-$target/debug/cinch}"
tansu="${TANSU:-$(command -v tansu || echo /var/tmp/cinch-tools/bin/tansu)}"
data="${CINCH_DATA:-$repo/fixtures}"
port="${E2E_PORT:-19192}"
stages="${E2E_STAGES:-kill fleet otlp unkeyed}"

[ -x "$tansu" ] || { echo "tansu not found (set TANSU)"; exit 2; }
[ -d "$data/cloudtrail" ] || { echo "real logs not found at $data (set CINCH_DATA)"; exit 2; }
[ -x "$cinch" ] || (cd "$repo" && cargo build --bin cinch)
python3 -c "import confluent_kafka" 2>/dev/null || python3 -m pip install -q "confluent-kafka==2.12.1"
python3 -c "import opentelemetry.proto" 2>/dev/null || python3 -m pip install -q "opentelemetry-proto==1.45.2"

work="$(mktemp -d)"
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
broker=$!
cleanup() {
  kill "$broker" 2>/dev/null || true
  pkill -KILL -f "cinch run --config $work" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
  grep -q "ready in" "$work/tansu.log" 2>/dev/null && break
  sleep 0.1
done
echo "== end to end: tansu $("$tansu" --version 2>/dev/null || echo 0.6) on 127.0.0.1:$port, work dir $work"
for stage in $stages; do
  case "$stage" in
    kill) python3 "$here/kafka_e2e.py" --broker "127.0.0.1:$port" --tansu "$tansu" --cinch "$cinch" \
            --data "$data" --work "$work" "$@" ;;
    fleet) E2E_FLEET=1 python3 "$here/kafka_e2e.py" --broker "127.0.0.1:$port" --tansu "$tansu" \
            --cinch "$cinch" --data "$data" --work "$work" "$@" ;;
    otlp) python3 "$here/otlp_e2e.py" --broker "127.0.0.1:$port" --tansu "$tansu" --cinch "$cinch" \
            --work "$work" ;;
    unkeyed) python3 "$here/unkeyed_e2e.py" --broker "127.0.0.1:$port" --tansu "$tansu" --cinch "$cinch" \
            --work "$work" ;;
    scale) python3 "$here/fleet_scale.py" --broker "127.0.0.1:$port" --tansu "$tansu" --cinch "$cinch" \
            --work "$work" ${E2E_SCALE_ARGS:-} ;;
    *) echo "unknown stage $stage (kill, fleet, otlp, unkeyed, scale)"; exit 2 ;;
  esac
done
