#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 45), seeded from fixtures/;
# fails on the first crash, hang, leak or failed check (libFuzzer writes the input that caused it
# to tests/fuzz/artifacts/<target>/).
#
#   tests/fuzz/run.sh [SECONDS]                all targets, SECONDS each
#   TARGETS="native gzip" tests/fuzz/run.sh 3600  some targets, an hour each
#
# The build goes to $CINCH_FUZZ_TARGET_DIR (default /var/tmp/cinch-fuzz-target), outside the
# clone, and is reused. cargo-fuzz is installed into /var/tmp/cinch-tools when it is missing. With
# a nightly toolchain installed, `cargo +nightly fuzz` builds; with only stable, RUSTC_BOOTSTRAP=1
# lets stable do it (FUZZ_TOOLCHAIN=stable or nightly chooses). Either way without a sanitizer
# (the code under test is safe Rust): panics, overflow checks and debug assertions are what
# fail.
set -euo pipefail
seconds="${1:-45}"
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$fuzz_dir/../.." && pwd)"
cd "$root"

export CARGO_TARGET_DIR="${CINCH_FUZZ_TARGET_DIR:-/var/tmp/cinch-fuzz-target}"
mkdir -p "$CARGO_TARGET_DIR"
export CARGO_TERM_COLOR=never
tools=/var/tmp/cinch-tools
export PATH="$tools/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz 0.13.2 into $tools"
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$tools" \
    --target-dir /var/tmp/cargo-fuzz-build
  rm -rf /var/tmp/cargo-fuzz-build
fi

toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then toolchain=nightly; else toolchain=stable; fi
fi
if [ "$toolchain" = nightly ]; then
  fuzz=(cargo +nightly fuzz)
else
  fuzz=(cargo fuzz)
  export RUSTC_BOOTSTRAP=1
fi
opts=(--fuzz-dir tests/fuzz --sanitizer none --debug-assertions)

targets="${TARGETS:-$("${fuzz[@]}" list --fuzz-dir tests/fuzz)}"

# Seeds: records, files and configs from fixtures/, one record a file and whole files, plus
# the small committed seeds under tests/fuzz/seeds/<target>/.
seed_lines() { # DIR NAME FILE: each line of FILE as a file, and FILE whole.
  local dir=$1 name=$2 file=$3 i=0 line
  cp "$file" "$dir/$name-all"
  while IFS= read -r line || [ -n "$line" ]; do
    i=$((i + 1))
    printf '%s\n' "$line" >"$dir/$name-$i"
  done <"$file"
}
small_deliveries() { # compressed CloudTrail deliveries of under 1.5 KB
  find fixtures/cloudtrail/invictus-stratus -name '*.json.gz' -size -1500c | sort
}
seed() {
  local target=$1 dir="tests/fuzz/corpus/$1" f
  mkdir -p "$dir"
  if [ -d "tests/fuzz/seeds/$target" ]; then
    cp tests/fuzz/seeds/"$target"/* "$dir/"
  fi
  case "$target" in
    native)
      seed_lines "$dir" native fixtures/formats/native.jsonl
      head -n 40 fixtures/replay/fleet.jsonl >"$dir/fleet-head" ;;
    ocsf) seed_lines "$dir" ocsf fixtures/formats/ocsf.jsonl ;;
    k8s_audit) seed_lines "$dir" k8s fixtures/formats/k8s_audit.jsonl ;;
    mcp_audit) seed_lines "$dir" mcp fixtures/mcp_audit/toolhive_audit.jsonl ;;
    otlp_json) seed_lines "$dir" otlp fixtures/otlp/banking_agent.jsonl ;;
    cloudtrail)
      seed_lines "$dir" cloudtrail fixtures/formats/cloudtrail.jsonl
      for f in fixtures/cloudtrail/stratus-detonations/aws.defense-evasion.cloudtrail-*.json; do
        cp "$f" "$dir/$(basename "$f")"
      done ;;
    gzip) # the first byte chooses members and damage (see cinch_fuzz::gzip)
      local p=0
      for f in fixtures/formats/*.jsonl fixtures/mcp_audit/toolhive_audit.jsonl; do
        { printf "\\x$(printf %02x $p)"; cat "$f"; } >"$dir/$(basename "$f")"
        p=$(((p + 0x45) % 256))
      done
      for f in $(small_deliveries); do
        { printf "\\x$(printf %02x $p)"; gzip -dc "$f"; } >"$dir/$(basename "$f" .gz)"
        p=$(((p + 0x45) % 256))
      done ;;
    framing)
      for f in fixtures/formats/*.jsonl fixtures/mcp_audit/toolhive_audit.jsonl \
        fixtures/otlp/banking_agent.jsonl \
        fixtures/cloudtrail/stratus-detonations/aws.defense-evasion.cloudtrail-stop.json; do
        cp "$f" "$dir/$(basename "$f")"
      done
      head -n 40 fixtures/replay/fleet.jsonl >"$dir/fleet-head"
      for f in $(small_deliveries); do
        cp "$f" "$dir/$(basename "$f")"
        gzip -dc "$f" >"$dir/$(basename "$f" .gz)"
      done ;;
    config)
      cp configs/cinch.toml "$dir/cinch.toml"
      for f in configs/deploy/*.toml; do cp "$f" "$dir/$(basename "$f")"; done ;;
    verify) grep '"kind":"command"' fixtures/replay/expected/findings.jsonl >"$dir/replay-commands" ;;
    otlp_proto) ;;
    *) echo "no seeds for target $target" >&2 ;;
  esac
}

echo "== cargo fuzz build (${fuzz[*]}, target dir $CARGO_TARGET_DIR)"
"${fuzz[@]}" build "${opts[@]}"

for target in $targets; do
  seed "$target"
  echo "== fuzz $target for ${seconds}s ($(find "tests/fuzz/corpus/$target" -type f | wc -l) inputs in its corpus)"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a leak or a blow-up.
  log="$CARGO_TARGET_DIR/fuzz-$target.log"
  if ! "${fuzz[@]}" run "${opts[@]}" "$target" "tests/fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 80 "$log" >&2
    echo "fuzz target $target failed: the input is in tests/fuzz/artifacts/$target/" >&2
    # The failed check and the input itself, last, so that the end of a log shows them.
    echo "== what failed:" >&2
    grep -m1 -A6 -E 'panicked at|ERROR: libFuzzer' "$log" >&2 || true
    for a in tests/fuzz/artifacts/"$target"/*; do
      [ -f "$a" ] || continue
      echo "== $a, base64 (decode with: base64 -d > input):" >&2
      base64 -w 0 "$a" | head -c 8192 >&2
      echo >&2
    done
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
done
echo "== all fuzz targets ran ${seconds}s each without a finding"
