# The read-only payload every guest mounts at /payload: scenario scripts, host-built
# test binaries with the libraries they need, and the Debian test image. Sourced, not run.

DEFAULT_TEST_IMAGE=../shared/images/debian-bookworm-minbase-amd64.tar.zst

# Hard-links $1 to $2 when on one filesystem, copies otherwise.
link_or_copy() {
  mkdir -p "$(dirname "$2")"
  ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"
}

payload_init() {
  local dir=$1
  rm -rf "$dir"
  mkdir -p "$dir"/{bin,lib,image}
  cp -r "$VM_TESTS_DIR/scenarios" "$dir/scenarios"
}

# Ships the test image (CAIRN_TEST_IMAGE, or the shared one beside the checkout) if it
# exists; prints its path in the guest, or nothing.
payload_image() {
  local dir=$1
  local image=${CAIRN_TEST_IMAGE:-$WORKSPACE_DIR/$DEFAULT_TEST_IMAGE}
  [[ -f $image ]] || { log "no test image at $image: not shipped"; return 0; }
  link_or_copy "$image" "$dir/image/$(basename "$image")"
  printf '/payload/image/%s\n' "$(basename "$image")"
}

# Builds the test binary of package $2, target $3 (lib | test:NAME | bench:NAME) with
# `cargo test --locked --profile vm --no-run`, or `cargo bench ...` for a bench
# (optimized: TCG is slow), ships it and its libraries into payload $1, and prints
# "<binary name in payload> <package directory>". Build output goes to log $4, cargo's
# JSON messages to $4.json.
payload_cargo_test() {
  local dir=$1 package=$2 target=$3 logfile=$4
  local command=test select jqsel
  case $target in
    lib)
      select=(--lib)
      jqsel='.target.kind | index("lib") or index("rlib")'
      ;;
    test:*)
      select=(--test "${target#test:}")
      jqsel=".target.kind == [\"test\"] and .target.name == \"${target#test:}\""
      ;;
    bench:*)
      # A bench's record: "target":{"kind":["bench"],...}, "profile":{"test":true,...}.
      command=bench
      select=(--bench "${target#bench:}")
      jqsel=".target.kind == [\"bench\"] and .target.name == \"${target#bench:}\""
      ;;
    *) log "unknown cargo target '$target' (use lib, test:NAME or bench:NAME)"; return 1 ;;
  esac
  local json="$logfile.json" artifact
  (cd "$WORKSPACE_DIR" &&
    cargo "$command" --locked --profile vm -p "$package" "${select[@]}" --no-run \
      --message-format=json >"$json" 2>"$logfile") || true
  artifact=$(jq -c "select(.reason == \"compiler-artifact\" and .profile.test
    and .executable != null and ($jqsel))" "$json" | tail -n1) || true
  [[ -n $artifact ]] || { log "cargo built no $command binary for $package $target"; return 1; }
  local exe manifest name bin
  exe=$(jq -r .executable <<<"$artifact")
  manifest=$(jq -r .manifest_path <<<"$artifact")
  name="$package-${target#test:}"
  name=${name//:/-} # bench:NAME -> <package>-bench-NAME
  link_or_copy "$exe" "$dir/bin/$name"
  payload_libs "$dir" "$exe"
  # The package's own binaries, built for its tests (`cairn` for the CLI's): a test runs
  # one at its compile-time path (CARGO_BIN_EXE_<name>, under target/vm/), which the
  # guest reads from the checkout mounted over 9p, so only its libraries are shipped.
  while read -r bin; do
    payload_libs "$dir" "$bin"
  done < <(jq -r --arg manifest "$manifest" 'select(.reason == "compiler-artifact"
    and .target.kind == ["bin"] and .manifest_path == $manifest and .executable != null)
    | .executable' "$json")
  printf '%s %s\n' "$name" "$(dirname "$manifest")"
}

# The shared libraries binary $2 needs (not the loader, which the image has).
payload_libs() {
  local dir=$1 exe=$2 lib
  for lib in $(ldd "$exe" | awk '/=> \// { print $3 }'); do
    [[ -e $dir/lib/$(basename "$lib") ]] || cp -L "$lib" "$dir/lib/"
  done
}
