#!/usr/bin/env bash
# Image handling, side by side: `load`, `save` and `import` with hafen,
# docker (Debian's dockerd 20.10, private) and podman 4.3, on the same
# inputs and the same filesystem, in one run.
#
# Usage (root): bench/images.sh [RUNS]   (default RUNS=5)
# Env: HAFEN (default /usr/local/bin/hafen, as scripts/install.sh installs
#      it), WORK (default /var/tmp/hafen-bench), OUT (default $WORK/results).
# Needs: docker.io, podman, hyperfine, debootstrap, zstd, python3 (Debian
# packages; ../shared/peers/00-setup.sh installs the peers).
#
# Inputs, made once under $WORK/images: a Debian 12 root filesystem
# (debootstrap from the machine's apt mirror, ~300 MB, ~10 000 files) as a
# tar, and one-layer image archives of it with the layer plain, gzip and
# zstd; a "big files" layer (two 310 MB files); the busybox test image.
#
# Where the engines keep their images: a fresh ext4 (with a journal) on a
# loop device whose backing file is in RAM, for all three. This machine's
# own root filesystem is an ext4 without a journal, whose inode allocator
# scans recently deleted inodes (some 0.2-0.7 ms per new file after a
# delete) and whose disk is slow and noisy; both would drown what the
# engines themselves do.
set -euo pipefail
RUNS=${1:-5}
HAFEN=${HAFEN:-/usr/local/bin/hafen}
WORK=${WORK:-/var/tmp/hafen-bench}
OUT=${OUT:-$WORK/results}
HERE=$(cd "$(dirname "$0")" && pwd)
DATA=$HERE/../crates/image/tests/data
for tool in dockerd docker podman hyperfine debootstrap zstd python3 "$HAFEN"; do
  command -v "$tool" >/dev/null || { echo "bench/images.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$WORK/images" "$OUT"
IMG=$WORK/images

# --- inputs (cached)
if [ ! -f "$IMG/rootfs.tar" ]; then
  rm -rf "$IMG/debian"
  debootstrap --arch=amd64 bookworm "$IMG/debian" > "$IMG/debootstrap.log" 2>&1
  tar -C "$IMG/debian" --numeric-owner --xattrs --sort=name -cf "$IMG/rootfs.tar.part" .
  mv "$IMG/rootfs.tar.part" "$IMG/rootfs.tar"
fi
[ -f "$IMG/rootfs.tar.gz" ] || gzip -6 -c "$IMG/rootfs.tar" > "$IMG/rootfs.tar.gz"
[ -f "$IMG/rootfs.tar.zst" ] || zstd -q -3 -T0 "$IMG/rootfs.tar" -o "$IMG/rootfs.tar.zst"
if [ ! -f "$IMG/bigfiles.tar" ]; then
  mkdir -p "$IMG/big" && cp "$IMG/rootfs.tar" "$IMG/big/a" && cp "$IMG/rootfs.tar" "$IMG/big/b"
  tar -C "$IMG/big" --numeric-owner --sort=name -cf "$IMG/bigfiles.tar" a b && rm -rf "$IMG/big"
fi
[ -f "$IMG/bigfiles.tar.zst" ] || zstd -q -3 -T0 "$IMG/bigfiles.tar" -o "$IMG/bigfiles.tar.zst"
mk() { [ -f "$IMG/$4" ] || python3 "$HERE/make-image-archive.py" "$IMG/$1" "$IMG/$2" "$3" "$IMG/$4"; }
mk rootfs.tar rootfs.tar debian-none:bench debian-none.tar
mk rootfs.tar rootfs.tar.gz debian-gzip:bench debian-gzip.tar
mk rootfs.tar rootfs.tar.zst debian-zstd:bench debian-zstd.tar
mk bigfiles.tar bigfiles.tar big-none:bench big-none.tar
mk bigfiles.tar bigfiles.tar.zst big-zstd:bench big-zstd.tar

# --- the filesystem the engines use, and their daemons
NAME=images
. "$HERE/engines.sh"
mkdir -p "$RAM/src" "$RAM/out"
cp "$IMG"/debian-{none,gzip,zstd}.tar "$IMG"/big-{none,zstd}.tar "$IMG/rootfs.tar" "$RAM/src/"
cp "$DATA/docker-save.tar" "$RAM/src/busyimg.tar"
S=$RAM/src

hf() { # name, then hyperfine arguments
  local name=$1; shift
  echo "=== $name"
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/img-$name.json" "$@" 2>&1 | tee "$OUT/img-$name.txt"
}
ALL="busyimg:latest debian-none:bench debian-gzip:bench debian-zstd:bench big-none:bench big-zstd:bench imp:bench"
# Removes every image of this benchmark from every engine: each run starts
# from an empty store (no layer to reuse).
rm_all() {
  echo "sh -c '$H rmi -f $ALL >/dev/null 2>&1; $D rmi -f $ALL >/dev/null 2>&1; $P rmi -f $ALL >/dev/null 2>&1; true'"
}

# load: each engine loads the archive into an empty store (the image is
# removed before each run; the timed part is the load alone).
for a in busyimg debian-none debian-gzip debian-zstd big-none big-zstd; do
  cmds=(-n hafen "$H load -q -i $S/$a.tar" -n docker "$D load -q -i $S/$a.tar" -n podman "$P load -q -i $S/$a.tar")
  # dockerd 20.10 cannot read zstd layers.
  case $a in *zstd) cmds=(-n hafen "$H load -q -i $S/$a.tar" -n podman "$P load -q -i $S/$a.tar");; esac
  hf "load-$a" --prepare "$(rm_all)" "${cmds[@]}"
done

# save: the same image (loaded once) to an archive in RAM.
for a in busyimg debian-none; do
  ref=$a:bench; [ "$a" = busyimg ] && ref=busyimg:latest
  $H load -q -i "$S/$a.tar" >/dev/null; $D load -q -i "$S/$a.tar" >/dev/null; $P load -q -i "$S/$a.tar" >/dev/null
  hf "save-$a" --prepare "rm -f $RAM/out/x.tar" \
    -n hafen "$H save -o $RAM/out/x.tar $ref" \
    -n docker "$D save -o $RAM/out/x.tar $ref" \
    -n podman "$P save -o $RAM/out/x.tar localhost/$ref"
done
rm -f "$RAM/out/x.tar"

# import: the Debian root filesystem tarball as a one-layer image.
hf import-debian --prepare "$(rm_all)" \
  -n hafen "$H import $S/rootfs.tar imp:bench" \
  -n docker "$D import $S/rootfs.tar imp:bench" \
  -n podman "$P import -q $S/rootfs.tar imp:bench"

# Layer unpack alone: a layer file decompressed, hashed and applied into a
# new directory by hafen's unpack (the `unpack` example of the snapshot
# crate, the code the image store runs), against GNU tar extracting the
# same layer (through gzip -dc / zstd -dc), on the same filesystem.
cargo build --quiet --release --manifest-path "$HERE/../Cargo.toml" -p hafen-snapshot --example unpack
UNPACK=$HERE/../target/release/examples/unpack
cp "$IMG"/rootfs.tar.{gz,zst} "$IMG"/bigfiles.tar "$IMG"/bigfiles.tar.zst "$S/"
for l in rootfs.tar rootfs.tar.gz rootfs.tar.zst bigfiles.tar bigfiles.tar.zst; do
  case $l in
    *.gz) cat=gzip;; *.zst) cat=zstd;; *) cat=cat;;
  esac
  [ "$cat" = cat ] && untar="tar -C $FS/u --numeric-owner -xf $S/$l" \
    || untar="sh -c '$cat -dc $S/$l | tar -C $FS/u --numeric-owner -xf -'"
  hyperfine -N --warmup 1 --runs "$RUNS" --export-json "$OUT/unpack-$l.json" \
    --prepare "sh -c 'rm -rf $FS/u; sync'" \
    -n hafen "$UNPACK $S/$l $FS/u" \
    -n "GNU tar" --prepare "sh -c 'rm -rf $FS/u; mkdir $FS/u; sync'" "$untar" 2>&1 | tee "$OUT/unpack-$l.txt"
done
rm -rf "$FS/u"

python3 - "$OUT" "$(stat -c %s "$IMG/rootfs.tar")" "$(stat -c %s "$IMG/bigfiles.tar")" <<'PY'
import json, glob, os, sys
out, debian, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = []
for f in sorted(glob.glob(os.path.join(out, "unpack-*.json"))):
    name = os.path.basename(f)[7:-5]
    size = big if name.startswith("big") else debian
    res = {r["command"]: r for r in json.load(open(f))["results"]}
    med = {k: sorted(r["times"])[len(r["times"]) // 2] for k, r in res.items()}
    cell = lambda k: f"{med[k]*1000:.0f} ms ({size/1e6/med[k]:.0f} MB/s)"
    rows.append(f"| {name} | {cell('hafen')} | {cell('GNU tar')} | {med['hafen']/med['GNU tar']:.2f} |")
table = "\n".join(["| layer | hafen unpack | GNU tar | hafen / tar |", "|---|---|---|---|"] + rows)
open(os.path.join(out, "unpack.md"), "w").write(table + "\n")
print(table)
PY

python3 - "$OUT" "$(stat -c %s "$IMG/rootfs.tar")" "$(stat -c %s "$IMG/bigfiles.tar")" <<'PY'
import json, glob, os, sys
out, debian, big = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = {"debian": debian, "big": big}
rows = []
for f in sorted(glob.glob(os.path.join(out, "img-*.json"))):
    name = os.path.basename(f)[4:-5]
    res = {r["command"]: r for r in json.load(open(f))["results"]}
    med = {k: sorted(r["times"])[len(r["times"]) // 2] for k, r in res.items()}
    best_peer = min((v for k, v in med.items() if k != "hafen"), default=None)
    layer = next((v for k, v in size.items() if k in name), None)
    def cell(k):
        if k not in med:
            return "n/a"
        s = f"{med[k]*1000:.0f} ms"
        if layer and (name.startswith("load") or name.startswith("import")):
            s += f" ({layer/1e6/med[k]:.0f} MB/s)"
        return s
    ratio = f"{med['hafen']/best_peer:.2f}" if best_peer else "n/a"
    rows.append(f"| {name} | {cell('hafen')} | {cell('docker')} | {cell('podman')} | {ratio} |")
table = "\n".join(["| operation | hafen | docker 20.10 | podman 4.3 | hafen / best peer |",
                   "|---|---|---|---|---|"] + rows)
open(os.path.join(out, "images.md"), "w").write(table + "\n")
print(table)
PY
