#!/usr/bin/env bash
# Containers, side by side: `run --rm --network none IMG true` end to end
# with hafen, docker (a private dockerd 20.10) and podman 4.3, and crun's raw
# `run` of the same root filesystem as an OCI bundle; then density: N
# detached `sleep` containers started one after another with hafen (and
# with docker and podman, fewer of them), the per-container supervisors'
# memory (PSS, summed), the daemon's CPU while they idle, and the time to
# remove them all.
#
# Usage (root): bench/containers.sh [RUNS] [N] [PEER_N]
#   (default RUNS=30, N=1000 hafen containers, PEER_N=100 docker/podman ones)
# Env: HAFEN (default /usr/local/bin/hafen), HAFEN_SHIM (default: hafen-shim
#      next to HAFEN), WORK (default /var/tmp/hafen-bench), OUT (default
#      $WORK/results).
# Needs: docker.io, podman, crun, hyperfine, busybox-static, python3
# (../shared/peers/00-setup.sh installs the peers and mounts the v1 hugetlb
# hierarchy crun needs on this host; podman uses
# ../shared/peers/containers.conf).
set -euo pipefail
RUNS=${1:-30}
N=${2:-1000}
PEER_N=${3:-100}
HAFEN=${HAFEN:-/usr/local/bin/hafen}
WORK=${WORK:-/var/tmp/hafen-bench}
OUT=${OUT:-$WORK/results}
HERE=$(cd "$(dirname "$0")" && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$HERE/../../shared/peers/containers.conf}
for tool in dockerd docker podman crun hyperfine python3 "$HAFEN"; do
  command -v "$tool" >/dev/null || { echo "bench/containers.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$OUT"

NAME=containers
. "$HERE/engines.sh"

# The image: Debian's busybox-static with its applets, as a one-layer
# image in every engine, and as an OCI bundle for crun.
B=$RAM/bundle
mkdir -p "$B/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
cp /bin/busybox "$B/rootfs/bin/busybox"
for a in $("$B/rootfs/bin/busybox" --list | grep -vx busybox); do ln -sf busybox "$B/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$B/rootfs/etc/passwd"
echo 'root:x:0:' > "$B/rootfs/etc/group"
tar -C "$B/rootfs" -cf "$RAM/busy.tar" .
$H import -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
$D import -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
$P import -q -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
(cd "$B" && crun spec && python3 - <<'PY'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
json.dump(c, open("config.json", "w"))
PY
)

echo "=== run --rm true"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/ctr-run.json" \
  -n hafen "$H run --rm --network none busyimg true" \
  -n docker "$D run --rm --network none busyimg true" \
  -n podman "$P run --rm --network none busyimg true" \
  -n "crun run" "crun run -b $B bench-crun-$$" 2>&1 | tee "$OUT/ctr-run.txt"

# Density.
now() { date +%s.%N; }
pss_of() { # pids... -> summed PSS in kB
  local t=0 p v
  for p in "$@"; do
    v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo $t
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
density() { # engine-name cli count "pgrep arguments for the supervisors" daemon-pid
  local name=$1 cli=$2 n=$3 re=$4 dpid=$5 t0 t1 t2 t3 pids c0 c1
  echo "=== density: $name, $n containers"
  sync
  t0=$(now)
  for i in $(seq 1 "$n"); do
    $cli run -d --network none --name "dens-$i" busyimg sleep 100000 >/dev/null
  done
  t1=$(now)
  sleep 5
  # shellcheck disable=SC2086
  pids=$(pgrep $re || true)
  local count; count=$(echo "$pids" | grep -c . || true)
  local pss; pss=$(pss_of $pids)
  c0=0; c1=0
  if [ -n "$dpid" ]; then c0=$(cpu_ticks "$dpid"); sleep 10; c1=$(cpu_ticks "$dpid"); fi
  t2=$(now)
  # shellcheck disable=SC2046
  $cli rm -f $RM_OPTS $(seq -f "dens-%g" 1 "$n") >/dev/null
  t3=$(now)
  python3 - "$name" "$n" "$t0" "$t1" "$t2" "$t3" "$count" "$pss" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY' | tee -a "$OUT/density.tsv"
import sys
name, n, t0, t1, t2, t3, count, pss, c0, c1, hz = sys.argv[1:]
n, count, pss = int(n), int(count), int(pss)
start, rm = float(t1) - float(t0), float(t3) - float(t2)
cpu = (int(c1) - int(c0)) / int(hz) / 10 * 100
print(f"{name}\t{n}\t{start:.1f}\t{rm:.1f}\t{count}\t{pss}\t{pss / max(count, 1):.0f}\t{cpu:.2f}")
PY
}
printf "engine\tcontainers\tstart_s\trm_s\tsupervisors\tpss_kB\tpss_per_kB\tdaemon_cpu_pct\n" > "$OUT/density.tsv"
hpid=$(pgrep -f "^$HAFEN daemon" | head -1)
RM_OPTS="" density hafen "$H" "$N" '-x hafen-shim' "$hpid"
RM_OPTS="" density docker "$D" "$PEER_N" '-f containerd-shim-runc-v2' "$(cat "$DPID")"
# podman waits 10 s for `sleep` to take SIGTERM unless told not to.
RM_OPTS="-t 0" density podman "$P" "$PEER_N" '-f ^/usr/bin/conmon ' ""
column -t "$OUT/density.tsv"

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
res = {r["command"]: r for r in json.load(open(os.path.join(out, "ctr-run.json")))["results"]}
med = {k: sorted(r["times"])[len(r["times"]) // 2] * 1000 for k, r in res.items()}
h = med["hafen"]
rows = ["| engine | median | hafen / engine |", "|---|---|---|"]
for k in ["hafen", "docker", "podman", "crun run"]:
    rows.append(f"| {k} | {med[k]:.1f} ms | {h / med[k]:.3f} |")
table = "\n".join(rows)
open(os.path.join(out, "run.md"), "w").write(table + "\n")
print(table)
PY
