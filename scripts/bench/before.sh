#!/usr/bin/env bash
# Builds the binaries and the probe image of a commit before the performance work of #17,
# once, outside the checkout, so that scripts/bench.sh can measure before and after in one
# run. Usage: scripts/bench/before.sh [COMMIT]   (default: the commit #17 started from)
# Prints the directory holding bin/ (agent, vmm, ec2, agent-bench) and images/probe/.
set -euo pipefail
cd "$(dirname "$0")/../.."
commit=${1:-441de10}
root=/var/cache/kec2/bench-before/$commit
if [[ -x $root/bin/agent && -x $root/bin/vmm && -f $root/images/probe/probe.elf ]]; then
  echo "$root"
  exit 0
fi
src=$root/src
mkdir -p "$root"
if [[ ! -d $src ]]; then
  git worktree prune
  git worktree add --detach "$src" "$commit" >&2
fi
(cd "$src" && CARGO_TARGET_DIR=$root/target cargo build --release --workspace --locked >&2)
mkdir -p "$root/bin"
for b in agent vmm ec2 agent-bench vmm-ctl; do
  cp "$root/target/release/$b" "$root/bin/"
done
(cd "$src" && images/build.sh probe >&2)
mkdir -p "$root/images"
rm -rf "$root/images/probe"
cp -a "$src/images/out/probe" "$root/images/probe"
echo "$root"
