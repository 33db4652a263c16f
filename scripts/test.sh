#!/usr/bin/env bash
# Runs every test: installs what is needed, builds, makes the images the tests use, then runs
# the unit and integration tests, lints, and the end-to-end scripts. Ends with one summary
# line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0
failed=0
skipped=0
failures=()

# Each step's wall time, printed at the end (CI has 90 minutes on two cores).
timings=()
step_name=
step_started=$SECONDS
finish_step() {
  [[ -n $step_name ]] && timings+=("$(printf '%6d s  %s' $((SECONDS - step_started)) "$step_name")")
  step_name=
}
step() {
  finish_step
  step_name="$*"
  step_started=$SECONDS
  echo
  echo "== $*"
}

step "build"
cargo build --release --workspace --locked
images/build.sh probe

step "lint"
if cargo fmt --all --check &&
  cargo clippy --release --workspace --all-targets --locked -- -D warnings &&
  (cd images/probe && cargo fmt --check &&
    cargo clippy --release --locked --target x86_64-unknown-linux-gnu --target-dir target \
      -- -D warnings); then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); failures+=("lint (cargo fmt / clippy)")
fi

step "unit and integration tests"
set +e
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log"
cargo_status=${PIPESTATUS[0]}
(cd images/probe && cargo test --release --locked --lib --target x86_64-unknown-linux-gnu \
  --target-dir target) 2>&1 | tee -a "$log"
probe_status=${PIPESTATUS[0]}
((cargo_status == 0)) && cargo_status=$probe_status
set -e
cargo_passed=$(awk '/^test result:/ {s += $4} END {print s + 0}' "$log")
cargo_failed=$(awk '/^test result:/ {s += $6} END {print s + 0}' "$log")
# A test that cannot run here (the Ansible test without PyPI) passes, printing "SKIPPED: why".
cargo_skipped=$(grep -c '^SKIPPED: ' "$log" || true)
passed=$((passed + cargo_passed - cargo_skipped))
skipped=$((skipped + cargo_skipped))
failed=$((failed + cargo_failed))
if [[ $cargo_status -ne 0 && $cargo_failed -eq 0 ]]; then
  failed=$((failed + 1)); failures+=("cargo test exited $cargo_status")
elif [[ $cargo_failed -ne 0 ]]; then
  failures+=("$cargo_failed cargo tests")
fi

# The proptest suites (tests named fuzz_*) with many more cases than the ordinary run's 64:
# hostile frames, DHCP messages, metadata requests, forms, SigV4 headers and filter patterns.
step "fuzz"
# Built first, so that the time bound covers the cases, not the compiler.
if cargo test --release --locked -p host -p api -p control --lib --no-run &&
  PROPTEST_CASES=10000 timeout 180 cargo test --release --locked -p host -p api -p control --lib fuzz_; then
  passed=$((passed + 1))
else
  failed=$((failed + 1)); failures+=("fuzz (cargo test -p host -p api -p control --lib fuzz_ with PROPTEST_CASES=10000)")
fi

for t in scripts/tests/*.sh; do
  [[ -e $t ]] || continue
  step "$t"
  status=0
  bash "$t" target/release/vmm || status=$?
  if ((status == 0)); then
    passed=$((passed + 1))
  elif ((status == 77)); then
    skipped=$((skipped + 1))
  else
    failed=$((failed + 1)); failures+=("$t")
  fi
done

finish_step
echo
echo "== timings"
printf '%s\n' "${timings[@]}"
printf '%6d s  in all\n' "$SECONDS"
echo
if ((failed)); then
  printf 'failed: %s\n' "${failures[@]}"
fi
((skipped)) && echo "$skipped skipped (each said why above: exit 77, or a SKIPPED: line)"
echo "$passed passed, $failed failed"
((failed == 0))
