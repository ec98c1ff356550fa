#!/usr/bin/env bash
# Builds the fuzz targets (fuzz_targets/) for libFuzzer on the stable toolchain and runs each for
# SECONDS (default 20); exits non-zero, printing the input, when one panics, times out or
# leaks past its memory limit. `host/fuzz/run.sh 600 jws` runs one target for ten minutes.
#
# How, without nightly: libfuzzer-sys brings libFuzzer's C++ and its `main`, and LLVM's
# SanitizerCoverage pass gives it its feedback. `-Cpasses=sancov-module` and its
# `-Cllvm-args=-sanitizer-coverage-*` options are stable rustc flags (`-Zsanitizer`, which
# needs nightly, is only for ASan and friends: safe Rust needs none to report a panic). The
# flags are cargo-fuzz's for `--sanitizer none`. `--target` keeps them off build scripts and
# proc macros, which run in the compiler without libFuzzer to link against.
#
# Inputs that found new coverage go to $CARGO_TARGET_DIR/fuzz/corpus/<target>, outside the
# clone, so each run starts where the last one stopped; corpus/<target> holds the seeds.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-20}"
shift || true
dir="${CARGO_TARGET_DIR:-/var/tmp/acmegate-target}/fuzz"
host="$(rustc -vV | sed -n 's/^host: //p')"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --release --locked --target "$host" --target-dir "$dir" "${bins[@]}"

failed=()
for t in "${targets[@]}"; do
  corpus="$dir/corpus/$t"
  artifacts="$dir/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  log="$dir/$t.log"
  # -timeout: one input running 10 s is a hang; -rss_limit_mb: libFuzzer's default, explicit.
  if "$dir/$host/release/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "corpus/$t" >"$log" 2>&1; then
    # The last status line (executions, coverage, corpus) and the run's speed.
    printf '%-12s %s | %s\n' "$t" "$(grep -E '^#[0-9]+' "$log" | tail -n 1)" \
      "$(grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' "$log" | tr -s ' ' | paste -sd ' ')"
  else
    failed+=("$t")
    echo "== fuzz target $t failed; the end of its log ($log):"
    tail -n 60 "$log"
    for crash in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
      echo "== input $crash (base64; reproduce with: $dir/$host/release/$t $crash):"
      base64 "$crash"
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]}"
  exit 1
fi
