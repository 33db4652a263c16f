#!/usr/bin/env bash
# The nested test host (scripts/tests/nested/, see its README.md) as one of scripts/test.sh's
# end-to-end tests: real Linux instances booted by our vmm inside a QEMU guest, reached over
# SSH through the agent's API, DHCP, IMDS and security groups.
#
#   scripts/tests/nested.sh [VMM]     VMM (from scripts/test.sh): the vmm binary; agent, ec2 and
#                                     vmm-ctl are taken from the same directory
#
# Builds images/out/linux first if it is missing (images/build.sh linux). Exit 0 = every step
# of the journey passed; 77 = skipped.
#
# Not run unless KEC2_TEST_NESTED=1, for now: ACPI does not reach the guests yet (they boot with
# acpi=off, so guest poweroff only halts), the busybox image's first start after a volume attach
# has failed in some runs, and QEMU 7.2's multi-threaded TCG panics L1 about one run in four
# (scripts/tests/nested/README.md). Once those are fixed it runs on every host without VT-x/AMD-V.
set -euo pipefail
if [[ ${KEC2_TEST_NESTED:-0} != 1 ]]; then
  echo "SKIP nested: set KEC2_TEST_NESTED=1 to run it (scripts/tests/nested/README.md says why it is off)"
  exit 77
fi
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
vmm=${1:-$repo/target/release/vmm}
[[ -x $vmm ]] || { echo "FAIL nested: $vmm is not an executable"; exit 1; }
bin_dir="$(cd "$(dirname "$vmm")" && pwd)"
if [[ ! -f $repo/images/out/linux/manifest.json ]]; then
  "$repo/images/build.sh" linux || { echo "FAIL nested: images/build.sh linux failed"; exit 1; }
fi
exec "$repo/scripts/tests/nested/run.sh" --bin-dir "$bin_dir" --images-dir "$repo/images/out"
