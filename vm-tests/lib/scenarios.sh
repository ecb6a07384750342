# Scenario list parsing, per-scenario share preparation, running and reporting.
# Sourced, not run. Uses RUN_DIR, PAYLOAD_DIR, GUEST_IMAGE and boot.sh.

SCENARIO_LIST=${CAIRN_VM_SCENARIOS:-$VM_TESTS_DIR/scenarios.list}
# Where the parsers' tests read captured tool output (backends/tests/fixtures/).
FIXTURES_DIR="$WORKSPACE_DIR/backends/tests/fixtures"

# Prints the scenario lines (comments and blanks dropped); with filters, only lines
# whose "<driver> <test>" contains one of them.
scenario_lines() {
  local line key filter
  while read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    if (($# == 0)); then
      printf '%s\n' "$line"
      continue
    fi
    key=$(awk '{ print $1 " " $2 }' <<<"$line")
    for filter in "$@"; do
      [[ $key == *"$filter"* ]] && { printf '%s\n' "$line"; break; }
    done
  done <"$SCENARIO_LIST"
}

# Writes $1/share/{scenario.sh,env} for scenario kind $2 with its arguments. A cargo
# scenario's test binary was built by build_cargo_targets; a build failure is the
# scenario's failure.
prepare_share() {
  local vmdir=$1 kind=$2
  shift 2
  rm -rf "$vmdir"
  mkdir -p "$vmdir/share"
  {
    printf 'export CAIRN_SRC=%q\n' "$WORKSPACE_DIR"
    [[ -n $GUEST_IMAGE ]] && printf 'export CAIRN_TEST_IMAGE=%q\n' "$GUEST_IMAGE"
    printf 'export CAIRN_VM=1\n'
    [[ -n ${CAIRN_LOG:-} ]] && printf 'export CAIRN_LOG=%q\n' "$CAIRN_LOG"
  } >"$vmdir/share/env"
  case $kind in
    script)
      [[ -f $VM_TESTS_DIR/scenarios/$1 ]] || { echo "no scenario script $1" >"$vmdir/report"; return 1; }
      printf 'exec sh /payload/scenarios/%q\n' "$1" >"$vmdir/share/scenario.sh"
      ;;
    cargo) prepare_cargo_share "$vmdir" "$@" ;;
    *) echo "unknown scenario kind '$kind'" >"$vmdir/report"; return 1 ;;
  esac
}

# The test binaries built for this run, by "<package> <target>": "<name> <package dir>",
# or empty when the build failed (its log is BUILD_LOG[key]).
declare -A BUILT=() BUILD_LOG=()

# Builds every distinct (package, target) of the cargo scenarios among lines $@ once,
# before any VM boots: a build competes with running guests for the CPU, and two
# scenarios of one target (lvm and zfs conformance) share its binary.
build_cargo_targets() {
  local line kind package target key built t0
  t0=$(now)
  mkdir -p "$RUN_DIR/builds"
  for line in "$@"; do
    read -r _ _ _ kind package target _ <<<"$line"
    [[ $kind == cargo ]] || continue
    key="$package $target"
    [[ -v BUILT[$key] ]] && continue
    BUILD_LOG[$key]="$RUN_DIR/builds/$package-${target//:/-}.log"
    log "building $package $target"
    built=$(payload_cargo_test "$PAYLOAD_DIR" "$package" "$target" "${BUILD_LOG[$key]}") || built=
    BUILT[$key]=$built
  done
  log "test binaries built in $(elapsed_since "$t0") s"
}

prepare_cargo_share() {
  local vmdir=$1 package=$2 target=$3
  shift 3
  local key="$package $target" name pkgdir
  if [[ -z ${BUILT[$key]:-} ]]; then
    {
      echo "cargo $([[ $target == bench:* ]] && echo bench || echo test) --no-run failed for $package $target:"
      tail -n 40 "${BUILD_LOG[$key]:-/dev/null}"
    } >"$vmdir/report"
    return 1
  fi
  read -r name pkgdir <<<"${BUILT[$key]}"
  if [[ $target == bench:* ]]; then
    # A bench gets the argv `cargo bench` gives it: `--bench` first (a libtest bench runs
    # its benchmarks only with it; a harness = false one is free to ignore it). It prints
    # no libtest summary.
    set -- --bench "$@"
  else
    # A libtest binary must report at least one passed test (see run_vm).
    touch "$vmdir/expect-tests"
  fi
  # The binary and its libraries run from the guest's disk-backed /tmp, not over 9p:
  # a process killed while it pages its binary in over 9p can hang in the 9p client.
  # Only this scenario's binary is copied, and lib/ (what every shipped binary links).
  {
    echo 'set -e'
    echo 'mkdir -p /tmp/cairn-run/bin'
    printf 'cp /payload/bin/%q /tmp/cairn-run/bin/\n' "$name"
    echo 'cp -r /payload/lib /tmp/cairn-run/'
    echo 'export LD_LIBRARY_PATH=/tmp/cairn-run/lib CAIRN_REQUIRE=vm'
    printf 'export CARGO_MANIFEST_DIR=%q\n' "$pkgdir"
    printf 'cd %q\n' "$pkgdir"
    printf 'exec /tmp/cairn-run/bin/%q' "$name"
    (($# > 0)) && printf ' %q' "$@"
    echo
  } >"$vmdir/share/scenario.sh"
}

# Boots scenario dir $1 with timeout $2 and writes $1/result (passed|failed) and, on
# failure, $1/report with the guest's output or console log.
run_vm() {
  local vmdir=$1 timeout_s=$2 rc=0 t0
  t0=$(now)
  boot_vm "$vmdir" "$timeout_s" || rc=$?
  elapsed_since "$t0" >"$vmdir/seconds"
  local code
  code=$(cat "$vmdir/share/exit-code" 2>/dev/null || true)
  # libtest exits 0 on "running 0 tests": a filter that matches nothing is no pass.
  if [[ $code == 0 && -f $vmdir/expect-tests ]] &&
    ! grep -Eq 'test result: ok\. [1-9][0-9]* passed' "$vmdir/share/output.log"; then
    echo failed >"$vmdir/result"
    {
      echo "the test binary exited 0 but ran no test (no 'test result: ok. N passed' with N >= 1:"
      echo "does the scenario's name filter match a test?); its output (last 30 lines):"
      tail -n 30 "$vmdir/share/output.log"
    } >"$vmdir/report"
    return 0
  fi
  if [[ $code == 0 ]]; then
    echo passed >"$vmdir/result"
    return 0
  fi
  echo failed >"$vmdir/result"
  {
    if [[ -n $code ]]; then
      echo "scenario exited with $code; its output (last 60 lines):"
      tail -n 60 "$vmdir/share/output.log"
      echo "kernel messages (last 20 lines of dmesg):"
      tail -n 20 "$vmdir/share/dmesg.log" 2>/dev/null || true
    else
      ((rc == 124)) && echo "timed out after ${timeout_s}s"
      echo "no exit code written (qemu status $rc); guest console log:"
      tail -n 200 "$vmdir/console.log"
    fi
  } >"$vmdir/report"
}

# Copies fixtures a scenario captured into backends/tests/fixtures/ (where the parsers'
# tests read them) when absent there (or always with CAIRN_VM_UPDATE_FIXTURES=1), so
# committed fixtures do not churn.
save_fixtures() {
  local vmdir=$1 f
  [[ -d $vmdir/share/fixtures ]] || return 0
  mkdir -p "$FIXTURES_DIR"
  for f in "$vmdir"/share/fixtures/*; do
    if [[ ! -e $FIXTURES_DIR/${f##*/} || ${CAIRN_VM_UPDATE_FIXTURES:-} == 1 ]]; then
      cp "$f" "$FIXTURES_DIR/"
      log "fixture saved: ${FIXTURES_DIR#"$WORKSPACE_DIR"/}/${f##*/}"
    fi
  done
}

# Prints "<driver> <test> passed|failed" for scenario dir $1, the failure report
# indented on stderr, and returns 1 if it failed.
report_result() {
  local vmdir=$1 name=$2 result
  result=$(cat "$vmdir/result" 2>/dev/null || echo failed)
  echo "$name $result"
  [[ -f $vmdir/seconds ]] && log "$name: $(cat "$vmdir/seconds") s in the VM"
  [[ $result == passed ]] && { save_fixtures "$vmdir"; return 0; }
  sed 's/^/    | /' "$vmdir/report" >&2 2>/dev/null || true
  return 1
}
