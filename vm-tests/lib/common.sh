# Shared helpers for vm-tests: paths, logging, requirement gating. Sourced, not run.

# shellcheck disable=SC2034 # the variables are used by the files that source this one
VM_TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKSPACE_DIR=$(cd "$VM_TESTS_DIR/.." && pwd)
CACHE_DIR=${CAIRN_VM_CACHE:-/var/cache/cairn-vm}

# Progress goes to stderr so stdout holds only scenario lines and the summary.
log() { printf 'vm-tests: %s\n' "$*" >&2; }

die() {
  log "error: $*"
  exit 1
}

# Seconds since the epoch with two decimals, for timings.
now() { date +%s.%N | cut -c1-13; }

elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# A requirement of the vm tier is missing: $1 says what, $2 how to fix it. With `vm` in
# CAIRN_REQUIRE (CI) that is a failure; otherwise the whole run is skipped.
missing() {
  local what=$1 remedy=$2
  if [[ ",${CAIRN_REQUIRE:-}," == *,vm,* ]]; then
    log "required (CAIRN_REQUIRE contains vm) but missing: $what; to fix: $remedy"
    exit 1
  fi
  echo "SKIP vm-tests: missing $what; to fix: $remedy"
  exit 0
}

# Runs a long step, its output in a log file; on failure shows the log's tail.
run_logged() {
  local logfile=$1
  shift
  if ! "$@" >"$logfile" 2>&1; then
    log "failed: $* (last lines of $logfile follow)"
    tail -n 40 "$logfile" >&2
    return 1
  fi
}
