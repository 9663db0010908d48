#!/usr/bin/env bash
# Startup latency of the OCI runtimes on the same bundle, side by side:
# `hafen runtime run`, `runc run` and `crun run` of `true` in a read-only
# busybox root filesystem (create + start + wait + delete), then `create`
# and `start` on their own.
#
# Usage (root): bench/runtime.sh [RUNS]          (default RUNS=100)
# Env: HAFEN (default /usr/local/bin/hafen, as scripts/install.sh installs
#      it), WORK (default /var/tmp/hafen-bench), OUT (default $WORK/results).
# Needs: runc, crun, hyperfine, busybox-static, python3 (Debian packages;
# ../shared/peers/00-setup.sh installs them). On a cgroup v1 host whose
# cgroup2 hierarchy owns hugetlb, crun needs a v1 hugetlb mount (00-setup.sh
# makes it).
set -euo pipefail
RUNS=${1:-100}
HAFEN=${HAFEN:-/usr/local/bin/hafen}
WORK=${WORK:-/var/tmp/hafen-bench}
OUT=${OUT:-$WORK/results}
for tool in runc crun hyperfine python3 "$HAFEN"; do
  command -v "$tool" >/dev/null || { echo "bench/runtime.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$WORK" "$OUT"
B=$WORK/bundle
if [ ! -f "$B/config.json" ]; then
  rm -rf "$B"; mkdir -p "$B/rootfs"/{bin,etc,proc,sys,dev,tmp,root}
  cp /bin/busybox "$B/rootfs/bin/busybox"
  for a in sh true; do ln -s busybox "$B/rootfs/bin/$a"; done
  (cd "$B" && runc spec)
  python3 - "$B/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["true"]
c["root"]["readonly"] = True
json.dump(c, open(p, "w"), indent=1)
PY
fi
for rt in "$HAFEN runtime" runc crun; do $rt delete -f bench-x >/dev/null 2>&1 || true; done

hf() { # name, hyperfine args...
  local name=$1; shift
  hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$OUT/$name.json" "$@" >/dev/null
}
hf run \
  -n hafen "$HAFEN runtime run -b $B bench-hafen" \
  -n crun "crun run -b $B bench-crun" \
  -n runc "runc run -b $B bench-runc"
hf create \
  -n hafen --prepare "$HAFEN runtime delete -f bench-hafen" "$HAFEN runtime create -b $B bench-hafen" \
  -n crun --prepare "crun delete -f bench-crun" "crun create -b $B bench-crun" \
  -n runc --prepare "runc delete -f bench-runc" "runc create -b $B bench-runc"
hf start \
  -n hafen --prepare "sh -c '$HAFEN runtime delete -f bench-hafen; $HAFEN runtime create -b $B bench-hafen'" "$HAFEN runtime start bench-hafen" \
  -n crun --prepare "sh -c 'crun delete -f bench-crun; crun create -b $B bench-crun'" "crun start bench-crun" \
  -n runc --prepare "sh -c 'runc delete -f bench-runc; runc create -b $B bench-runc'" "runc start bench-runc"
"$HAFEN" runtime delete -f bench-hafen; crun delete -f bench-crun; runc delete -f bench-runc

python3 - "$OUT" "$RUNS" "$("$HAFEN" --version)" "$(runc --version | head -1)" "$(crun --version | head -1)" <<'PY'
import json, sys, os
out, runs, *versions = sys.argv[1:]
print(f"runs per command: {runs}; {'; '.join(versions)}\n")
print("| phase | hafen median | crun median | runc median | hafen/crun | hafen/runc |")
print("|---|---|---|---|---|---|")
for phase in ["run", "create", "start"]:
    res = {r["command"]: r for r in json.load(open(os.path.join(out, phase + ".json")))["results"]}
    med = {k: v["median"] * 1e3 for k, v in res.items()}
    print(f"| {phase} | {med['hafen']:.1f} ms | {med['crun']:.1f} ms | {med['runc']:.1f} ms "
          f"| {med['hafen'] / med['crun']:.2f} | {med['hafen'] / med['runc']:.2f} |")
print()
print("| phase | command | mean ± σ | min | max |")
print("|---|---|---|---|---|")
for phase in ["run", "create", "start"]:
    for r in json.load(open(os.path.join(out, phase + ".json")))["results"]:
        print(f"| {phase} | {r['command']} | {r['mean']*1e3:.1f} ± {r['stddev']*1e3:.1f} ms | {r['min']*1e3:.1f} ms | {r['max']*1e3:.1f} ms |")
PY
