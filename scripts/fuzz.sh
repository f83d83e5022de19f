#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz + libFuzzer) of every parser that
# reads text someone else wrote: the roster, import's JSON and workstation
# YAML, TLS/PEM, the TSIG key file, tenantry.toml, DNS listings, canonical
# content. Targets are in fuzz/fuzz_targets/, seeds in fuzz/corpus/<target>/,
# inputs that once failed in fuzz/regressions/<target>/ (run first, always).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   default: 20 s each, every target
#
# Needs the nightly toolchain (installed with rustup when missing) and
# cargo-fuzz (installed from crates.io when missing). New inputs the fuzzer
# finds go to target/fuzz/corpus/<target>/ (kept between runs, never
# committed). A failure prints the input's path and how to reproduce it;
# keep it as a regression by copying it into fuzz/regressions/<target>/ once
# fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

seconds="${1:-${TENANTRY_FUZZ_SECONDS:-20}}"
shift || true
case "$seconds" in
  ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a number, got \`$seconds\`" >&2; exit 2 ;;
esac

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing the nightly toolchain (rustup)" >&2
  rustup toolchain install nightly --profile minimal >&2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install --locked cargo-fuzz --version 0.13.2 >&2
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

# Safe Rust (unsafe is forbidden in the workspace): libFuzzer's coverage
# without AddressSanitizer finds the panics, and builds far faster.
common=(--fuzz-dir fuzz --target-dir target/fuzz --sanitizer none --debug-assertions)
echo "fuzz.sh: building ${#targets[@]} fuzz targets" >&2
cargo +nightly fuzz build "${common[@]}" >&2

failed=()
for target in "${targets[@]}"; do
  corpus="target/fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/regressions/$target"
  artifacts="target/fuzz/artifacts/$target/"
  mkdir -p "$artifacts"
  echo "fuzz.sh: $target for ${seconds} s" >&2
  if ! cargo +nightly fuzz run "${common[@]}" "$target" "$corpus" "fuzz/regressions/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$artifacts" -print_final_stats=1 >"target/fuzz/$target.log" 2>&1; then
    failed+=("$target")
    tail -n 40 "target/fuzz/$target.log" >&2
    echo "fuzz.sh: $target FAILED; the input is in $artifacts (reproduce: cargo +nightly fuzz run --fuzz-dir fuzz $target <file>)" >&2
  else
    grep -E "^stat::(number_of_executed_units|new_units_added)" "target/fuzz/$target.log" | tr '\n' ' ' >&2 || true
    echo >&2
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: failing targets: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each: no failure" >&2
