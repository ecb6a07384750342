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

# The exit status of a run that skipped (a requirement is missing and not required),
# as automake's test drivers use it: tests/vm.rs tells it from a pass (0) and a failure.
SKIP_EXIT=77

# Whether CAIRN_REQUIRE names the vm tier: a comma or space list, any case, as the Rust
# tests read it (cairn_backends::testing::declared, which also trims tabs and newlines).
# tests/vm.rs passes CAIRN_REQUIRE through as it is: this is the harness's one parser.
vm_required() {
  local req=",${CAIRN_REQUIRE:-},"
  req=${req//[[:space:]]/,}
  [[ ${req,,} == *,vm,* ]]
}

# A requirement of the vm tier is missing: $1 says what, $2 how to fix it. With `vm` in
# CAIRN_REQUIRE (CI) that is a failure (exit 1); otherwise the run is skipped (exit
# SKIP_EXIT, with a SKIP line on stdout).
missing() {
  local what=$1 remedy=$2
  if vm_required; then
    log "required (CAIRN_REQUIRE contains vm) but missing: $what; to fix: $remedy"
    exit 1
  fi
  echo "SKIP vm-tests: missing $what; to fix: $remedy"
  exit "$SKIP_EXIT"
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
