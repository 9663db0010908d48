#!/usr/bin/env bash
# Builds, side by side: hafen, `podman build` (buildah, --layers) and
# `docker build` with BuildKit (DOCKER_BUILDKIT=1 against a private
# dockerd 20.10), of one multi-stage Dockerfile of 18 steps over a context
# of about 3000 files:
#  1. the first build (no cache: every engine's build cache is emptied
#     before each run);
#  2. a rebuild after no change;
#  3. a rebuild after changing one source file (the COPY of the sources
#     and the steps after it run again).
# Everything runs inside a network namespace made for the run, on an ext4
# file system in RAM; the RUN steps use no network.
#
# Usage (root): bench/build.sh [RUNS]   (default RUNS=10)
# Env: HAFEN (default /usr/local/bin/hafen), WORK (default
#      /var/tmp/hafen-bench), OUT (default $WORK/results).
# Needs: docker.io, podman, hyperfine, busybox-static, iproute2.
set -euo pipefail
RUNS=${1:-10}
HAFEN=${HAFEN:-/usr/local/bin/hafen}
WORK=${WORK:-/var/tmp/hafen-bench}
OUT=${OUT:-$WORK/results}
HERE=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/../../shared/peers/containers.conf}
for tool in dockerd docker podman hyperfine busybox ip nsenter "$HAFEN"; do
  command -v "$tool" >/dev/null || { echo "bench/build.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$OUT" "$WORK"
NS=hafenbuild$$
NSP=/run/netns/$NS
IN="nsenter --net=$NSP --"
RAM=$WORK/ram; FS=$WORK/fs
DSOCK=/run/hafen-bench-docker.sock; DPID=/run/hafen-bench-docker.pid
HRUN=/run/hafen-bench
export HAFEN_ROOT=$FS/hafen HAFEN_RUN_ROOT=$HRUN HAFEN_CONFIG=$WORK/hafen-bench.json
H="$IN $HAFEN"
D="env DOCKER_HOST=unix://$DSOCK DOCKER_BUILDKIT=1 /usr/bin/docker"
P="$IN podman --root $FS/podman --runroot /run/hafen-bench-podman --storage-driver overlay --events-backend none"

cleanup() {
  set +e
  $H rm -f $($H ps -aq 2>/dev/null) >/dev/null 2>&1
  $H daemon stop >/dev/null 2>&1
  if [ -f "$DPID" ]; then
    pid=$(cat "$DPID"); kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  $P system reset -f >/dev/null 2>&1
  grep -o " $FS[^ ]*\| $HRUN[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  mountpoint -q "$FS" && umount -l "$FS"
  mountpoint -q "$RAM" && umount -l "$RAM"
  ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT
mkdir -p "$RAM" "$FS"
mountpoint -q "$RAM" || mount -t tmpfs -o size=16g tmpfs "$RAM"
truncate -s 12G "$RAM/fs.img"
mkfs.ext4 -q -F "$RAM/fs.img"
mount -o loop,discard "$RAM/fs.img" "$FS"
ip netns add "$NS"
ip -n "$NS" link set lo up
echo '{"ip-masq": false, "ip-forward": false}' > "$HAFEN_CONFIG"

$IN "$HAFEN" daemon > "$OUT/build-hafend.log" 2>&1 &
$IN setsid dockerd --host "unix://$DSOCK" --pidfile "$DPID" --data-root "$FS/docker" \
  --exec-root /run/hafen-bench-docker --ip-masq=false --ip-forward=false \
  --storage-driver overlay2 --exec-opt native.cgroupdriver=cgroupfs \
  > "$OUT/build-dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 150); do
  $D version >/dev/null 2>&1 && $HAFEN version >/dev/null 2>&1 && break
  sleep 0.2
done

# The base image: Debian's busybox-static.
R=$RAM/rootfs
mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list | grep -vx busybox); do ln -sf busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
tar -C "$R" -cf "$RAM/busy.tar" .
$H import -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
$D import -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
$P import -q -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null

# The context: 30 packages of 100 small sources, a config folder, and
# files .dockerignore leaves out.
C=$FS/ctx
mkdir -p "$C"
for p in $(seq -w 1 30); do
  mkdir -p "$C/src/pkg$p"
  for f in $(seq -w 1 100); do
    printf 'package pkg%s\n// file %s\nfunc F%s() int { return %s }\n' "$p" "$f" "$f" "$f" > "$C/src/pkg$p/f$f.go"
  done
done
mkdir -p "$C/config" "$C/logs"
for f in $(seq 1 20); do echo "key$f=value$f" > "$C/config/c$f.conf"; done
for f in $(seq 1 50); do echo "log $f" > "$C/logs/l$f.log"; done
printf 'logs\n*.tmp\n' > "$C/.dockerignore"
cat > "$C/Dockerfile" <<'EOF'
FROM busyimg AS deps
RUN mkdir -p /deps && for i in $(seq 1 50); do echo "dep $i" > /deps/d$i; done
RUN cat /deps/* | wc -l > /deps/count

FROM busyimg AS build
ARG MODE=release
WORKDIR /src
COPY --from=deps /deps /deps
COPY src/ ./src/
RUN find src -type f | wc -l > /build-files
RUN cat src/*/f001.go | md5sum > /bundle && echo "$MODE" >> /bundle
ENV BUILT=yes

FROM busyimg
LABEL app=bench
ENV APP=/app
WORKDIR /app
COPY --from=build /bundle /build-files ./
COPY config/ ./config/
EXPOSE 8080
USER 1000
CMD ["cat", "/app/bundle"]
EOF

HB="$H build -q -t app-h $C"
DB="$D build -q --network none -t app-d $C"
PB="$P build -q --layers --network none -t app-p $C"
# What runs before each measured first build: the engine's image and
# build cache go.
cat > "$WORK/fresh-hafen.sh" <<EOS
$H rmi -f app-h; $H builder prune -f
EOS
cat > "$WORK/fresh-docker.sh" <<EOS
$D rmi -f app-d; $D builder prune -af
EOS
cat > "$WORK/fresh-podman.sh" <<EOS
$P rmi -a -f; $P import -q -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest
EOS
# One source file changes (its content; before each measured rebuild).
cat > "$WORK/change-src.sh" <<EOS
echo "// \$(date +%s%N)" >> "$C/src/pkg07/f042.go"
EOS

echo "=== 1. first build (empty cache)"
hyperfine -N --runs "$RUNS" --export-json "$OUT/build-first.json" \
  --prepare "sh $WORK/fresh-hafen.sh" -n "hafen" "$HB" \
  --prepare "sh $WORK/fresh-docker.sh" -n "docker" "$DB" \
  --prepare "sh $WORK/fresh-podman.sh" -n "podman" "$PB" \
  2>&1 | tee "$OUT/build-first.txt"

echo "=== 2. rebuild, no change"
$HB >/dev/null; $DB >/dev/null; $PB >/dev/null
hyperfine -N --warmup 2 --runs "$((RUNS * 3))" --export-json "$OUT/build-nochange.json" \
  -n "hafen" "$HB" -n "docker" "$DB" -n "podman" "$PB" 2>&1 | tee "$OUT/build-nochange.txt"

echo "=== 3. rebuild after changing one source file"
hyperfine -N --runs "$RUNS" --export-json "$OUT/build-onechange.json" \
  --prepare "sh $WORK/change-src.sh" -n "hafen" "$HB" \
  --prepare "sh $WORK/change-src.sh" -n "docker" "$DB" \
  --prepare "sh $WORK/change-src.sh" -n "podman" "$PB" \
  2>&1 | tee "$OUT/build-onechange.txt"

echo "=== results in $OUT/build-*.txt"
