# Helpers for guest scenario scripts (busybox sh). Sourced by each scenario.
# shellcheck disable=SC3040 # busybox ash has pipefail
set -eu
set -o pipefail

step() { echo "== $*"; }

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# sha256 of a file.
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

# Saves stdin as fixture $1; the host copies /share/fixtures/ back.
fixture() {
  mkdir -p /share/fixtures
  cat >"/share/fixtures/$1"
  [ -s "/share/fixtures/$1" ] || fail "fixture $1 is empty"
}

# Fails unless file $1 contains the fixed string $2.
expect_in() {
  grep -qF -- "$2" "$1" || fail "$1 does not contain '$2'"
}
