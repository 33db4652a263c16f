#!/usr/bin/env bash
# Builds an image (AMI) into images/out/<name>/: the kernel or program and its manifest.json.
#
#   images/build.sh probe    the probe test image (images/probe, see images/probe/README.md)
#
# Works from any current directory. More images (e.g. `linux`) are added as a build_<name>
# function plus an entry in IMAGES.
set -euo pipefail

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="$IMAGES_DIR/out"
IMAGES=(probe)

usage() {
    echo "usage: $(basename "$0") IMAGE" >&2
    echo "IMAGE is one of: ${IMAGES[*]}" >&2
}

# write_manifest DIR NAME ENTRY KERNEL BOOT_ARGS: DIR/manifest.json (KERNEL is relative to DIR).
write_manifest() {
    local dir="$1" name="$2" entry="$3" kernel="$4" boot_args="$5"
    cat >"$dir/manifest.json.tmp" <<JSON
{
  "name": "$name",
  "entry": "$entry",
  "kernel": "$kernel",
  "boot_args": "$boot_args"
}
JSON
    mv "$dir/manifest.json.tmp" "$dir/manifest.json"
}

build_probe() {
    local crate="$IMAGES_DIR/probe"
    local target=x86_64-unknown-linux-gnu
    local target_dir="${CARGO_TARGET_DIR:-$crate/target}"
    local out="$OUT_DIR/probe"
    cargo build --release --locked --manifest-path "$crate/Cargo.toml" --target "$target" \
        --target-dir "$target_dir"
    mkdir -p "$out"
    cp "$target_dir/$target/release/probe" "$out/probe.elf.tmp"
    mv "$out/probe.elf.tmp" "$out/probe.elf"
    write_manifest "$out" probe user probe.elf "probe.mode=count"
    echo "built $out/probe.elf and $out/manifest.json"
}

if [[ $# -ne 1 ]]; then
    usage
    exit 2
fi

case "$1" in
    probe) build_probe ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "$(basename "$0"): unknown image '$1'" >&2
        usage
        exit 2
        ;;
esac
