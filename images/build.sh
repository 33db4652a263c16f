#!/usr/bin/env bash
# Builds an image (AMI) into images/out/<name>/: the kernel or program and its manifest.json.
#
#   images/build.sh probe    the probe test image (images/probe, see images/probe/README.md)
#   images/build.sh linux    a Linux AMI from Debian's packages: kernel, ext4 root volume
#                            (see images/linux/README.md)
#   images/build.sh debian   a Debian 12 (bookworm) AMI: the same kernel, a root volume with
#                            systemd, cloud-init and OpenSSH (see images/debian/README.md)
#
# Works from any current directory. More images (e.g. `linux`) are added as a build_<name>
# function plus an entry in IMAGES.
set -euo pipefail

IMAGES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="$IMAGES_DIR/out"
IMAGES=(probe linux debian)

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
LINUX_BOOT_ARGS="console=ttyS0 earlyprintk=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd root=/dev/vda rootfstype=ext4 rw init=/sbin/init"
LINUX_ROOT_MIB=128
LINUX_PACKAGES=(busybox-static dropbear-bin e2fsprogs)

# write_kernel_manifest DIR NAME DESCRIPTION BOOT_ARGS RELEASE [EXTRA]: DIR/manifest.json of
# an image that boots DIR/vmlinux with the root volume DIR/rootfs.ext4 on /dev/vda; EXTRA (a
# JSON member with its comma) adds a field.
write_kernel_manifest() {
    local dir="$1" name="$2" description="$3" boot_args="$4" release="$5" extra="${6:-}"
    cat >"$dir/manifest.json.tmp" <<JSON
{
  "name": "$name",
  "description": "$description",
  "entry": "kernel",
  "architecture": "x86_64",
  "kernel": "vmlinux",
  "root_volume": "rootfs.ext4",
  "root_device": "/dev/vda",${extra:+
  $extra}
  "boot_args": "$boot_args",
  "kernel_release": "$release",
  "sizes": {
    "kernel": $(size_of "$dir/vmlinux"),
    "root_volume": $(size_of "$dir/rootfs.ext4")
  },
  "sha256": {
    "kernel": "$(sha256_of "$dir/vmlinux")",
    "root_volume": "$(sha256_of "$dir/rootfs.ext4")"
  }
}
JSON
    mv "$dir/manifest.json.tmp" "$dir/manifest.json"
}

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
    write_kernel_manifest "$out" linux "Linux $release (Debian linux-source) with busybox, dropbear and httpd" "$LINUX_BOOT_ARGS" "$release"
    rm -rf "$staging"
    trap - EXIT
    echo "built $out/{vmlinux,rootfs.ext4,config} and $out/manifest.json (Linux $release)"
}

# The Debian AMI: the linux image's kernel, and a root volume made from a debootstrapped
# Debian 12 tree (images/debian/bootstrap-tree.sh, cached outside the checkout), configured as a
# cloud image: images/debian/rootfs/ copied in, no SSH host keys, an empty machine-id.
DEBIAN_BOOT_ARGS="console=ttyS0 reboot=k panic=-1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd root=/dev/vda rootfstype=ext4 rw"
DEBIAN_ROOT_MIB=2048
DEBIAN_HOST_PACKAGES=(debootstrap debian-archive-keyring e2fsprogs)
# The units an instance needs at boot: cloud-init's four stages, sshd, the serial console.
DEBIAN_UNITS=(cloud-init-local.service cloud-init.service cloud-config.service cloud-final.service
    ssh.service serial-getty@ttyS0.service networking.service)

# debian_configure TREE: turns a copy of the debootstrapped tree into the image's root.
debian_configure() {
    local st="$1" path
    cp -R "$IMAGES_DIR/debian/rootfs/." "$st/"
    while IFS= read -r -d '' path; do
        if [[ -d $IMAGES_DIR/debian/rootfs/$path ]]; then
            chmod 0755 "$st/$path"
        else
            chmod 0644 "$st/$path"
        fi
        chown 0:0 "$st/$path"
    done < <(cd "$IMAGES_DIR/debian/rootfs" && find . -mindepth 1 -print0)
    # debootstrap's own sources.list: replaced by sources.list.d/debian.sources.
    rm -f "$st/etc/apt/sources.list"
    # The build host's resolver and names stay out: dhclient writes resolv.conf at boot.
    : >"$st/etc/resolv.conf"
    chmod 0644 "$st/etc/resolv.conf"
    # Every instance is its own machine: systemd makes a machine-id at the first boot, cloud-init
    # (its ssh module, per instance) the SSH host keys, and no seed or lease is shared.
    : >"$st/etc/machine-id"
    chmod 0444 "$st/etc/machine-id"
    if [[ -e $st/var/lib/dbus/machine-id || -L $st/var/lib/dbus/machine-id ]]; then
        rm -f "$st/var/lib/dbus/machine-id"
        ln -s /etc/machine-id "$st/var/lib/dbus/machine-id"
    fi
    rm -f "$st"/etc/ssh/ssh_host_*
    rm -f "$st/var/lib/systemd/random-seed" "$st"/var/lib/dhcp/*.leases
    # The serial console's getty (systemd's getty generator also adds it from console=ttyS0).
    chroot "$st" systemctl --root=/ --quiet enable serial-getty@ttyS0.service
    # No root password (debootstrap leaves root locked with '*'; make sure of it).
    chroot "$st" usermod -p '*' root
    # What the package installation leaves behind: downloaded packages, package lists (stale by
    # the time an instance runs; `apt update` fetches them), logs, temporary files.
    rm -rf "$st"/var/cache/apt/archives/*.deb "$st"/var/cache/apt/*.bin "$st"/var/lib/apt/lists/*_*
    rm -rf "$st"/var/cache/debconf/*-old "$st"/var/lib/dpkg/*-old
    rm -f "$st/var/log/bootstrap.log" "$st"/var/log/*.log "$st"/var/log/apt/*
    find "$st/tmp" "$st/var/tmp" "$st/run" -mindepth 1 -delete
}

# debian_check TREE: what can be checked in a chroot of the tree without booting it.
debian_check() {
    local st="$1" unit state version key
    version=$(chroot "$st" cloud-init --version 2>&1) ||
        { echo "build.sh: cloud-init does not run in the tree: $version" >&2; return 1; }
    echo "build.sh: $version" >&2
    for unit in "${DEBIAN_UNITS[@]}"; do
        state=$(chroot "$st" systemctl --root=/ is-enabled "$unit" 2>&1) || true
        [[ $state == enabled ]] || { echo "build.sh: $unit is '$state' in the tree, not enabled" >&2; return 1; }
    done
    state=$(chroot "$st" systemctl --root=/ is-enabled cloud-init.target 2>&1) || true
    [[ $state == enabled || $state == static || $state == indirect ]] ||
        { echo "build.sh: cloud-init.target is '$state' in the tree" >&2; return 1; }
    # The units and the image's drop-in load without a complaint (man pages are not installed).
    state=$(chroot "$st" systemd-analyze verify --man=no --root=/ "${DEBIAN_UNITS[@]}" 2>&1) ||
        { echo "build.sh: systemd-analyze verify fails: $state" >&2; return 1; }
    [[ -z $state ]] || { echo "build.sh: systemd-analyze verify complains: $state" >&2; return 1; }
    # sshd's configuration parses: with a throwaway host key, since the image has none.
    key=/tmp/kec2-sshd-check-key
    mkdir -p "$st/run/sshd"
    chroot "$st" ssh-keygen -q -t ed25519 -N '' -f "$key" >/dev/null
    if ! chroot "$st" /usr/sbin/sshd -t -f /etc/ssh/sshd_config -h "$key"; then
        echo "build.sh: sshd -t rejects the tree's /etc/ssh/sshd_config" >&2
        return 1
    fi
    rm -f "$st$key" "$st$key.pub"
    rm -rf "$st/run/sshd"
    chroot "$st" visudo -c -q || { echo "build.sh: visudo -c rejects the tree's sudoers" >&2; return 1; }
    chroot "$st" python3 -c 'import yaml, sys
d = yaml.safe_load(open("/etc/cloud/cloud.cfg.d/99_kec2_datasource.cfg"))
sys.exit(d != {"datasource_list": ["Ec2", "None"]})' ||
        { echo "build.sh: cloud.cfg.d/99_kec2_datasource.cfg is not datasource_list: [ Ec2, None ]" >&2; return 1; }
    chroot "$st" python3 -c 'import yaml, sys
sys.exit(yaml.safe_load(open("/etc/cloud/cloud.cfg.d/99_kec2_locale.cfg")) != {"locale": "C.UTF-8"})' ||
        { echo "build.sh: cloud.cfg.d/99_kec2_locale.cfg is not locale: C.UTF-8" >&2; return 1; }
    [[ -f $st/etc/machine-id && ! -s $st/etc/machine-id ]] || { echo "build.sh: /etc/machine-id is not empty" >&2; return 1; }
    ! compgen -G "$st/etc/ssh/ssh_host_*" >/dev/null || { echo "build.sh: SSH host keys left in the tree" >&2; return 1; }
    [[ $(chroot "$st" getent shadow root | cut -d: -f2) == '*' ]] || { echo "build.sh: root has a password" >&2; return 1; }
}

build_debian() {
    local out="$OUT_DIR/debian" entry tree release staging started cloud_init default_user
    [[ $(id -u) -eq 0 ]] || { echo "build.sh: the debian image needs root (debootstrap, file owners, chroot)" >&2; return 1; }
    started=$(date +%s)
    ensure_packages "${DEBIAN_HOST_PACKAGES[@]}"
    entry=$("$IMAGES_DIR/linux/build-kernel.sh")
    release=$(awk '{print $3}' "$entry/SOURCE")
    tree=$("$IMAGES_DIR/debian/bootstrap-tree.sh")
    mkdir -p "$out"
    staging=$(mktemp -d "$out/.staging.XXXXXX")
    trap 'rm -rf --one-file-system "$staging"' EXIT
    echo "build.sh: copying the Debian tree from $tree" >&2
    cp -a "$tree/tree" "$staging/root"
    debian_configure "$staging/root"
    debian_check "$staging/root"
    cloud_init=$(chroot "$staging/root" dpkg-query -W -f='${Version}' cloud-init)
    default_user=$(chroot "$staging/root" python3 -c 'import yaml
print(yaml.safe_load(open("/etc/cloud/cloud.cfg"))["system_info"]["default_user"]["name"])')
    echo "build.sh: making the ${DEBIAN_ROOT_MIB} MiB root volume ($(du -sm "$staging/root" | cut -f1) MiB of files)" >&2
    truncate -s "${DEBIAN_ROOT_MIB}M" "$staging/rootfs.ext4"
    mkfs.ext4 -q -F -L kec2-root -b 4096 -E root_owner=0:0 -d "$staging/root" "$staging/rootfs.ext4"
    e2fsck -fn "$staging/rootfs.ext4" >/dev/null 2>&1 || { echo "build.sh: e2fsck finds the new root volume unclean" >&2; return 1; }
    cp "$entry/vmlinux" "$staging/vmlinux"
    cp "$entry/config" "$staging/config"
    cp "$tree/PACKAGES" "$staging/packages.txt"
    mv "$staging/vmlinux" "$out/vmlinux"
    mv "$staging/config" "$out/config"
    mv "$staging/packages.txt" "$out/packages.txt"
    mv "$staging/rootfs.ext4" "$out/rootfs.ext4"
    write_kernel_manifest "$out" debian "Debian 12 (bookworm) with systemd, cloud-init $cloud_init (default user $default_user) and OpenSSH; Linux $release (Debian linux-source)" "$DEBIAN_BOOT_ARGS" "$release" \
        "\"default_user\": \"$default_user\","
    rm -rf --one-file-system "$staging"
    trap - EXIT
    echo "built $out/{vmlinux,rootfs.ext4,config,packages.txt} and $out/manifest.json (Debian 12, Linux $release) in $(($(date +%s) - started)) s"
}

if [[ $# -ne 1 ]]; then
    usage
    exit 2
fi

case "$1" in
    probe) build_probe ;;
    linux) build_linux ;;
    debian) build_debian ;;
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
