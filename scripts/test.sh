#!/usr/bin/env bash
# The whole test suite: README's test command, and what .ci/run calls.
#
# 1. testenv/up starts the real test peers on 127.0.0.1 (kube-apiserver +
#    etcd + controller-manager, OpenBao, BIND, PowerDNS), installing and
#    building what is missing (first run on a fresh machine: ~10-20 min, most
#    of it `go build` of kube-apiserver; later runs: seconds).
# 2. target/testenv/env.sh is sourced so the tests find the peers.
# 3. cargo test --workspace --locked.
# 4. scripts/fuzz.sh runs every fuzz target for a short time
#    (TENANTRY_FUZZ_SECONDS, default 20; 0 skips it), after the inputs that
#    once failed (fuzz/regressions/), so a parser regression fails CI.
# 5. On exit, the peers that this run started are stopped (peers that were
#    already running are left alone). TENANTRY_TESTENV_KEEP=1 keeps them.
#
# TENANTRY_TESTENV_PEERS="kube vault" starts only those (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

started_file="$(mktemp "${TMPDIR:-/tmp}/tenantry-testenv-started.XXXXXX")"
cleanup() {
  local rc=$?
  if [ "${TENANTRY_TESTENV_KEEP:-0}" != "1" ] && [ -s "$started_file" ]; then
    echo "test.sh: stopping the test peers this run started: $(tr '\n' ' ' <"$started_file")" >&2
    # shellcheck disable=SC2046
    testenv/down $(sort -u "$started_file") || echo "test.sh: testenv/down failed" >&2
  fi
  rm -f "$started_file"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "test.sh: starting test peers (testenv/up ${TENANTRY_TESTENV_PEERS:-all})" >&2
# shellcheck disable=SC2086
if ! TENANTRY_TESTENV_STARTED_FILE="$started_file" testenv/up ${TENANTRY_TESTENV_PEERS:-}; then
  echo "test.sh: testenv/up failed; logs are in target/testenv/run/*.log (see docs/TESTING.md)" >&2
  exit 1
fi
# shellcheck source=/dev/null
. target/testenv/env.sh

cargo test --workspace --locked

if [ "${TENANTRY_FUZZ_SECONDS:-20}" != "0" ]; then
  bash scripts/fuzz.sh "${TENANTRY_FUZZ_SECONDS:-20}"
fi
