# Checks an image test shares (sourced by scripts/tests/linux-image.sh and debian-image.sh after
# lib/vm-test.sh, which gives `fail`). The caller sets `repo`, `out` (images/out/<name>) and
# `tmp`.

# vmm_argument VMM WHY: `vmm` becomes VMM's absolute path; checks /dev/kvm and root (WHY says
# what needs root).
vmm_argument() {
  vmm="${1:-}"
  [[ -n $vmm ]] || fail "usage: $0 VMM"
  vmm=$(realpath "$vmm" 2>/dev/null) || fail "vmm binary '$1' does not exist"
  [[ -x $vmm ]] || fail "vmm binary '$vmm' is not executable"
  [[ -e /dev/kvm ]] || fail "/dev/kvm is missing"
  [[ $(id -u) -eq 0 ]] || fail "needs root ($2)"
}

# build_image NAME: images/build.sh NAME, its log's tail on failure, and how long it took.
build_image() {
  local start
  start=$(date +%s)
  "$repo/images/build.sh" "$1" >"$tmp/build.log" 2>&1 || {
    tail -n 30 "$tmp/build.log"
    fail "images/build.sh $1 failed"
  }
  echo "images/build.sh $1 took $(($(date +%s) - start)) s"
}

# check_kernel_config CONFIG: every option of REQUIRED is =y, none of FORBIDDEN is on, and
# the kernel next to it (vmlinux) is an ELF file.
check_kernel_config() {
  local opt missing=()
  for opt in "${REQUIRED[@]}"; do
    grep -qx "CONFIG_$opt=y" "$1" || missing+=("$opt")
  done
  ((${#missing[@]} == 0)) || fail "the kernel's .config lacks: ${missing[*]}"
  for opt in "${FORBIDDEN[@]}"; do
    grep -qE "^CONFIG_$opt=[ym]" "$1" && fail "the kernel's .config has CONFIG_$opt on"
  done
  [[ $(od -An -t x1 -N 4 "$(dirname "$1")/vmlinux" | tr -d ' \n') == 7f454c46 ]] ||
    fail "vmlinux is not an ELF file"
  echo "kernel config: ${#REQUIRED[@]} options on, ${FORBIDDEN[*]} off"
}

# check_power_boot_args ARGS: the boot args let the kernel read the vmm's ACPI tables (no
# acpi=off, so the power button, S5 and the DSDT's devices reach it; no i8042.nopnp, so the
# i8042 is found as the DSDT's PNP0303) and reboot through the i8042's reset line (reboot=k).
check_power_boot_args() {
  local arg
  [[ " $1 " == *" reboot=k "* ]] || fail "the boot args '$1' lack reboot=k"
  for arg in acpi=off i8042.nopnp; do
    [[ " $1 " != *" $arg "* ]] || fail "the boot args '$1' hold $arg: the guest would not read the vmm's ACPI tables"
  done
}

# m KEY: the manifest's value at KEY (a.b for nested objects); fails when it is missing.
m() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$out/manifest.json" "$1" 2>/dev/null
}

# check_manifest NAME KEY...: the manifest has every KEY, names NAME, boots a kernel on x86_64,
# and its files have the sizes and sha256 it gives; sets kernel, rootfs, boot_args, release.
check_manifest() {
  local name=$1 key role file
  shift
  for key in "$@"; do
    m "$key" >/dev/null || fail "manifest.json has no '$key'"
  done
  [[ $(m name) == "$name" ]] || fail "the manifest's name is '$(m name)', not '$name'"
  [[ $(m entry) == kernel ]] || fail "the manifest's entry is '$(m entry)', not 'kernel'"
  [[ $(m architecture) == x86_64 ]] || fail "the manifest's architecture is '$(m architecture)', not x86_64"
  kernel="$out/$(m kernel)"
  rootfs="$out/$(m root_volume)"
  boot_args=$(m boot_args)
  release=$(m kernel_release)
  for role in kernel root_volume; do
    file="$out/$(m "$role")"
    [[ -f $file ]] || fail "the manifest's $role '$file' does not exist"
    [[ $(stat -c %s "$file") == "$(m "sizes.$role")" ]] || fail "the manifest's size of $role is wrong"
    [[ $(sha256sum "$file" | cut -d' ' -f1) == "$(m "sha256.$role")" ]] ||
      fail "the manifest's sha256 of $role does not match the file"
  done
}
