#!/usr/bin/env bash
# Builds and installs hafen on a Debian 12 machine and runs a first
# container, without any image registry: the container's root filesystem
# is made from Debian's busybox-static package; then imports it as the
# image busybox:latest (the daemon starts on demand and keeps running).
#
# Usage (as root): scripts/install.sh [PREFIX]     (PREFIX default: /usr/local)
# Installs PREFIX/bin/hafen, the PREFIX/bin/hafen-runc link and
# PREFIX/bin/hafen-shim (the per-container supervisor).
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${1:-/usr/local}
DEMO=${HAFEN_DEMO_DIR:-/var/lib/hafen/demo}

if [ "$(id -u)" != 0 ]; then
  echo "scripts/install.sh: run as root (it installs packages and starts a container)" >&2
  exit 1
fi

echo "== Debian packages"
missing=""
for pkg in busybox-static build-essential nftables iproute2; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

echo "== Rust toolchain"
if ! command -v cargo >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q cargo rustc || true
fi
need=85
have=$(rustc --version 2>/dev/null | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
if [ -z "$have" ] || [ "$have" -lt "$need" ]; then
  echo "scripts/install.sh: hafen needs Rust 1.$need or newer (found: $(rustc --version 2>/dev/null || echo none));" >&2
  echo "  Debian 12's rustc is older: install a current toolchain with rustup (https://rustup.rs) and run this again." >&2
  exit 1
fi

echo "== build (release, statically linked)"
host=$(rustc -vV | sed -n 's/^host: //p')
# Static (no dynamic loader at start-up) and with packed relative
# relocations (a static-pie relocates itself; RELR makes that cheap).
RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
  cargo build --release --locked -p hafen --target "$host"
# The per-container shim: static and not position-independent, so that
# its pages need no relocation and a thousand shims share them.
RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static" \
  cargo build --release --locked -p hafen-shim --target "$host" --target-dir target/shim
install -D -m 0755 "target/$host/release/hafen" "$PREFIX/bin/hafen"
install -D -m 0755 "target/shim/$host/release/hafen-shim" "$PREFIX/bin/hafen-shim"
# A hard link, not a symlink: tools that resolve symlinks (readlink -f)
# would otherwise call "hafen" and lose the runtime command line.
ln -f "$PREFIX/bin/hafen" "$PREFIX/bin/hafen-runc"
echo "installed $PREFIX/bin/hafen, $PREFIX/bin/hafen-runc and $PREFIX/bin/hafen-shim"

echo "== a first container (busybox from busybox-static, no registry)"
rm -rf "$DEMO"
mkdir -p "$DEMO/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$DEMO/rootfs/bin/busybox"
for applet in $("$DEMO/rootfs/bin/busybox" --list | grep -vx busybox); do
  ln -sf busybox "$DEMO/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$DEMO/rootfs/etc/passwd"
echo 'root:x:0:' > "$DEMO/rootfs/etc/group"
chmod 1777 "$DEMO/rootfs/tmp"
(cd "$DEMO" && "$PREFIX/bin/hafen" runtime spec)
# The default config runs an interactive shell; run a command instead.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from a hafen container: $(hostname), pid $$, $(id)"/' "$DEMO/config.json"
"$PREFIX/bin/hafen" runtime run --bundle "$DEMO" "hafen-demo-$$"
echo "== a first image (the same root filesystem, imported through the daemon, which starts on demand)"
# A daemon of an earlier install would answer with its old code.
"$PREFIX/bin/hafen" daemon stop >/dev/null 2>&1 || true
tar -C "$DEMO/rootfs" --numeric-owner -cf - . | "$PREFIX/bin/hafen" import -c 'CMD ["sh"]' - busybox:latest
"$PREFIX/bin/hafen" images busybox
echo "== a first container from it, through the daemon"
"$PREFIX/bin/hafen" run --rm busybox sh -c 'echo hello from a hafen container: $(hostname), pid $$'
echo "== done: try 'hafen run -it busybox sh', 'hafen ps -a', 'hafen images' or see README.md"
