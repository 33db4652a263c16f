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

# Waits for the vmm ($pid, run under `timeout`) and checks how it ended: the guest powered off
# or reset (0), an emulation failure where the host lacks hardware virtualization (2), or still
# running at the deadline (124); anything else fails. Sets exit_line; the caller defines
# elapsed_ms (milliseconds since the boot began).
check_vm_exit() {
  local status=0
  wait "$pid" || status=$?
  pid=
  exit_line=$(grep 'vmm: exit:' "$tmp/vmm.err" | tail -n 1 || true)
  echo "vmm exited $status after $(elapsed_ms) ms: ${exit_line:-<no exit line>}"
  case "$status" in
  0) ;; # the guest powered off or reset: further than this host lets a kernel go
  2)
    grep -qiE 'emulat|hardware virtualization' <<<"$exit_line" ||
      fail "the vmm reported a guest failure other than an emulation failure"
    ;;
  124) echo "the kernel was still running at the ${TIMEOUT}s deadline" ;;
  *) fail "the vmm exited $status" ;;
  esac
}
