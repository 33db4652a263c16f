#!/usr/bin/env bash
# Installs the Debian packages the build, the images and the tests need. Idempotent: it only
# runs apt-get when something is missing. Must run as root on Debian.
set -euo pipefail

packages=(
  ca-certificates   # crates.io over TLS
  gcc libc6-dev     # linking the vmm and the probe
  binutils          # readelf/objdump for image checks
  iproute2          # ip netns, tap devices (networking tests)
  iptables          # security groups: iptables and ebtables (nft), networking tests
  ipset             # security groups with groups as sources
  dnsmasq-base      # the probe's DHCP client test (vmm tests)
  e2fsprogs         # mkfs.ext4, debugfs (volumes and Linux images)
  xz-utils zstd lz4 # unpacking Debian packages and kernels
  python3 python3-venv  # benchmarks, and boto3 in a virtualenv for API tests
  iputils-ping      # networking tests ping the probe
  fio               # benchmarks: the host's own disk figures
  wrk               # benchmarks: HTTP through a load balancer and straight to a probe
  gdb               # jail tests: a forbidden system call injected into a running vmm
  # cloud-init-imds test: Debian's cloud-init runs unpacked (never installed) with Debian's
  # python3 and the libraries it imports
  python3-yaml python3-requests python3-jinja2 python3-jsonschema python3-configobj
  python3-jsonpatch python3-oauthlib python3-netifaces
  openssh-client    # cloud-init-imds: ssh-keygen for its key pair
  openssl           # SNS tests: a self-signed certificate for an https subscriber
  acpica-tools      # iasl: vmm unit tests disassemble the ACPI tables the vmm builds
  debootstrap       # the nested test host's L1 root (Debian bookworm)
  haproxy           # Elastic Load Balancing: one HAProxy per load balancer (its data plane)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages ${missing[*]}; run as root to install them" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The nested test host's QEMU (an L1 guest with AMD SVM in software emulation) must be 10 or
# newer: QEMU 7.2's multi-threaded TCG panics the L1 kernel about one run in four (a stale int3
# of its live code patching; scripts/tests/nested/README.md). Debian 12 has it in
# bookworm-backports, which this adds at apt's default backports priority, so that nothing
# else is taken from there.
qemu_major() {
  local major
  major=$(dpkg-query -W -f='${Version}' qemu-system-x86 2>/dev/null |
    sed -n 's/^\([0-9]*:\)\{0,1\}\([0-9]*\)\..*/\2/p')
  echo "${major:-0}"
}
if (($(qemu_major) < 10)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: qemu-system-x86 10 or newer is missing; run as root to install it" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  suite=()
  # shellcheck source=/dev/null
  if [[ $(. /etc/os-release && echo "${VERSION_CODENAME:-}") == bookworm ]]; then
    list=/etc/apt/sources.list.d/kec2-bookworm-backports.sources
    if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      echo "install-deps: adding bookworm-backports ($list) for QEMU 10" >&2
      printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
        'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' >"$list"
    fi
    suite=(-t bookworm-backports)
  fi
  echo "install-deps: installing qemu-system-x86 ${suite[*]}" >&2
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${suite[@]}" qemu-system-x86 >/dev/null
  (($(qemu_major) >= 10)) || { echo "install-deps: qemu-system-x86 is still older than 10" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  for dir in "$HOME/.cargo/bin" /usr/local/cargo/bin; do
    [[ -x $dir/cargo ]] && export PATH="$dir:$PATH"
  done
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: no Rust toolchain found (cargo); install Rust 1.85 or newer with rustup" >&2
  exit 1
fi

if [[ ! -e /dev/kvm ]]; then
  echo "install-deps: /dev/kvm is missing: this host has no KVM (load kvm_intel or kvm_amd)" >&2
  exit 1
fi
