#!/usr/bin/env bash
# Builds the libFuzzer targets (#22), one per parser, and runs each for FUZZ_SECONDS
# (default 30) from a copy of its committed seed corpus. Fails on any crash, hang
# (an input taking over 10 s) or out-of-memory (over 2 GB); the input that did it is
# kept as .build-fuzz/findings/<target>/crash-… (or timeout-…, oom-…).
#   FUZZ_SECONDS=600 Fuzz/run.sh npy      # one target, ten minutes
#   FUZZ_SEED=1 (CI) fixes libFuzzer's random seed; 0 (default) draws one.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-30}
targets=${*:-npy npz vti tiff safetensors experiment hdf5 recipe}
for t in $targets; do
  BRAGG_FUZZ=1 swift build -c release --sanitize=fuzzer --build-path .build-fuzz --product "fuzz-$t" 2>&1 | tail -1
done
bin=$(BRAGG_FUZZ=1 swift build -c release --sanitize=fuzzer --build-path .build-fuzz --show-bin-path)
status=0
for t in $targets; do
  work=.build-fuzz/corpus/$t findings=.build-fuzz/findings/$t
  mkdir -p "$work" "$findings"
  log=.build-fuzz/fuzz-$t.log
  # Swift's crash backtracer would take the signal before libFuzzer writes the input that
  # caused it (a toml++ abort was lost so): libFuzzer alone handles crashes here.
  if SWIFT_BACKTRACE=enable=no "$bin/fuzz-$t" -max_total_time="$secs" -seed="${FUZZ_SEED:-0}" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
       -artifact_prefix="$findings/" "$work" "Fuzz/$t/corpus" >"$log" 2>&1; then
    echo "fuzz-$t: $(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}') executions in ${secs} s, no finding"
  else
    echo "fuzz-$t: FINDING (see $log and $findings/)"; tail -30 "$log"; status=1
  fi
done
exit $status
