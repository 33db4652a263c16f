#!/usr/bin/env bash
# Builds an image (AMI) into images/out/<name>/: the kernel or program and its manifest.json.
#
#   images/build.sh probe    the probe test image (images/probe, see images/probe/README.md)
#   images/build.sh linux    a Linux AMI from Debian's packages: kernel, ext4 root volume
#                            (see images/linux/README.md)
#
# Works from any current directory. More images (e.g. `linux`) are added as a build_<name>
# function plus an entry in IMAGES.
set -euo pipefail

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="$IMAGES_DIR/out"
IMAGES=(probe linux)

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
    write_manifest "$out" probe user probe.elf "probe.net=dhcp probe.imds=v2 probe.http=imds"
    echo "built $out/probe.elf and $out/manifest.json"
}

# The Linux image: kernel from Debian's linux-source (images/linux/build-kernel.sh, cached
# outside the checkout), root volume from busybox-static, dropbear and images/linux/rootfs.
LINUX_BOOT_ARGS="console=ttyS0 earlyprintk=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd i8042.nopnp root=/dev/vda rootfstype=ext4 rw init=/sbin/init"
LINUX_ROOT_MIB=128
LINUX_PACKAGES=(busybox-static dropbear-bin e2fsprogs)

# ensure_packages PKG...: installs the Debian packages that are missing (as root).
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || { echo "build.sh: missing Debian packages: ${missing[*]} (run as root)" >&2; return 1; }
    echo "build.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
}

# copy_with_libs ROOT BINARY...: copies each host BINARY to the same path under ROOT, with the
# shared libraries and the dynamic loader it needs (from ldd).
copy_with_libs() {
    local root="$1" bin lib
    shift
    for bin in "$@"; do
        install -D -m 0755 "$bin" "$root$bin"
        for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
            [[ -e $root$lib ]] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
        done
    done
}

# linux_rootfs STAGING: the root file system's tree, owned and moded as it will be in the image.
linux_rootfs() {
    local st="$1" path
    mkdir -p "$st"/{bin,sbin,lib,lib64,etc,dev,proc,sys,run,tmp,root,home/ec2-user,mnt}
    mkdir -p "$st"/usr/{bin,sbin,lib} "$st"/var/{log,lib/kec2,tmp,www/html}
    install -m 0755 /bin/busybox "$st/bin/busybox"
    while read -r path; do
        [[ $path == */* ]] || continue # linuxrc: for initrds only
        [[ -e $st/$path || -L $st/$path ]] || ln -s /bin/busybox "$st/$path"
    done < <(/bin/busybox --list-full)
    copy_with_libs "$st" /usr/sbin/dropbear /usr/bin/dropbearkey /usr/bin/dbclient
    cp -R "$IMAGES_DIR/linux/rootfs/." "$st/"
    # Modes as the image needs them, whatever the checkout's umask: programs 0755, files 0644.
    while IFS= read -r -d '' path; do
        if [[ -d $IMAGES_DIR/linux/rootfs/$path ]]; then
            chmod 0755 "$st/$path"
        elif [[ -x $IMAGES_DIR/linux/rootfs/$path ]]; then
            chmod 0755 "$st/$path"
        else
            chmod 0644 "$st/$path"
        fi
    done < <(cd "$IMAGES_DIR/linux/rootfs" && find . -mindepth 1 -print0)
    ln -s ../run "$st/var/run"
    mknod -m 0600 "$st/dev/console" c 5 1
    mknod -m 0666 "$st/dev/null" c 1 3
    ldconfig -r "$st"
    chown -R 0:0 "$st"
    chmod 0755 "$st"
    chmod 0700 "$st/root" "$st/home/ec2-user" "$st/var/lib/kec2"
    chmod 1777 "$st/tmp" "$st/var/tmp"
    chmod 0644 "$st/etc/passwd" "$st/etc/group"
    chmod 0600 "$st/etc/shadow"
    chown -R 1000:1000 "$st/home/ec2-user" "$st/var/www/html"
    # The programs run in the tree before it becomes an image: busybox, dropbear and its
    # libraries as they will be found there, and the scripts' syntax.
    chroot "$st" /bin/sh -c 'acpid --help 2>&1 | grep -q ACPI' ||
        { echo "build.sh: busybox in the image's tree has no acpid applet" >&2; return 1; }
    chroot "$st" /bin/sh -c 'dropbear -V 2>&1 | grep -q Dropbear' ||
        { echo "build.sh: dropbear does not run in the image's tree" >&2; return 1; }
    for path in /usr/sbin/kec2-bootstrap /usr/share/kec2/udhcpc.script /etc/init.d/rcS /etc/init.d/rcK \
        /etc/acpi/power-button; do
        chroot "$st" /bin/sh -n "$path" || { echo "build.sh: $path: syntax error" >&2; return 1; }
    done
}

# sha256_of FILE, size_of FILE
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
size_of() { stat -c %s "$1"; }

build_linux() {
    local out="$OUT_DIR/linux" entry release staging
    [[ $(id -u) -eq 0 ]] || { echo "build.sh: the linux image needs root (file owners, device nodes, chroot)" >&2; return 1; }
    ensure_packages "${LINUX_PACKAGES[@]}"
    entry=$("$IMAGES_DIR/linux/build-kernel.sh")
    release=$(awk '{print $3}' "$entry/SOURCE")
    mkdir -p "$out"
    staging=$(mktemp -d "$out/.staging.XXXXXX")
    trap 'rm -rf "$staging"' EXIT
    mkdir "$staging/root"
    linux_rootfs "$staging/root"
    rm -f "$staging/rootfs.ext4"
    truncate -s "${LINUX_ROOT_MIB}M" "$staging/rootfs.ext4"
    mkfs.ext4 -q -F -L kec2-root -b 4096 -E root_owner=0:0 -d "$staging/root" "$staging/rootfs.ext4"
    e2fsck -fn "$staging/rootfs.ext4" >/dev/null 2>&1 || { echo "build.sh: e2fsck finds the new root volume unclean" >&2; return 1; }
    cp "$entry/vmlinux" "$staging/vmlinux"
    cp "$entry/config" "$staging/config"
    mv "$staging/vmlinux" "$out/vmlinux"
    mv "$staging/config" "$out/config"
    mv "$staging/rootfs.ext4" "$out/rootfs.ext4"
    cat >"$out/manifest.json.tmp" <<JSON
{
  "name": "linux",
  "description": "Linux $release (Debian linux-source) with busybox, dropbear and httpd",
  "entry": "kernel",
  "architecture": "x86_64",
  "kernel": "vmlinux",
  "root_volume": "rootfs.ext4",
  "root_device": "/dev/vda",
  "boot_args": "$LINUX_BOOT_ARGS",
  "kernel_release": "$release",
  "sizes": {
    "kernel": $(size_of "$out/vmlinux"),
    "root_volume": $(size_of "$out/rootfs.ext4")
  },
  "sha256": {
    "kernel": "$(sha256_of "$out/vmlinux")",
    "root_volume": "$(sha256_of "$out/rootfs.ext4")"
  }
}
JSON
    mv "$out/manifest.json.tmp" "$out/manifest.json"
    rm -rf "$staging"
    trap - EXIT
    echo "built $out/{vmlinux,rootfs.ext4,config} and $out/manifest.json (Linux $release)"
}

if [[ $# -ne 1 ]]; then
    usage
    exit 2
fi

case "$1" in
    probe) build_probe ;;
    linux) build_linux ;;
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
