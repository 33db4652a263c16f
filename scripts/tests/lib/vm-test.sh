# Shared by the boot tests in scripts/tests: sourced, not run. The caller sets NAME, tmp
# (holding console.log and vmm.err) and pid (the vmm's, or empty).

# Prints FAIL with the reason and the tails of the console and the vmm's stderr, then exits 1.
fail() {
  echo "FAIL $NAME: $*"
  if [[ -s $tmp/console.log ]]; then
    echo "--- console (last 30 lines) ---"
    tail -n 30 "$tmp/console.log" | tr -d '\r'
  fi
  if [[ -s $tmp/vmm.err ]]; then
    echo "--- vmm stderr (last 10 lines) ---"
    tail -n 10 "$tmp/vmm.err"
  fi
  exit 1
}

# Stops the vmm if it still runs.
stop_vm() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
