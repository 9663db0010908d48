#!/usr/bin/env bash
# Startup latency of the OCI runtimes on the same bundle, side by side:
# `hafen runtime run`, `runc run` and `crun run` of `true` in a read-only
# busybox root filesystem (create + start + wait + delete), then `create`
# and `start` on their own.
#
# Usage (root): bench/runtime.sh [RUNS] [ROUNDS]  (default RUNS=100, ROUNDS=3)
# Each phase is measured ROUNDS times (one hyperfine run with the three
# runtimes side by side per round) and the medians pool all rounds, so that
# a drift of the machine during one round does not favour one runtime.
# A last measurement interleaves the three runtimes run by run.
# Env: HAFEN (default /usr/local/bin/hafen, as scripts/install.sh installs
#      it), WORK (default /var/tmp/hafen-bench), OUT (default $WORK/results).
# Needs: runc, crun, hyperfine, busybox-static, python3 (Debian packages;
# ../shared/peers/00-setup.sh installs them). On a cgroup v1 host whose
# cgroup2 hierarchy owns hugetlb, crun needs a v1 hugetlb mount (00-setup.sh
# makes it).
set -euo pipefail
RUNS=${1:-100}
ROUNDS=${2:-3}
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

hf() { # name, hyperfine args...: one json per round
  local name=$1; shift
  for round in $(seq 1 "$ROUNDS"); do
    hyperfine -N --warmup 5 --runs "$RUNS" --export-json "$OUT/$name.$round.json" "$@" >/dev/null 2>&1
  done
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

# Interleaved: hafen, crun, runc, hafen, crun, runc, ... (no runtime runs
# twice in a row, so none profits from what the kernel kept from its own
# previous run).
python3 - "$OUT/interleaved.json" "$RUNS" "$HAFEN" "$B" <<'PY'
import json, subprocess, sys, time
out, runs, hafen, bundle = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
cmds = {"hafen": [hafen, "runtime", "run", "-b", bundle, "bench-hafen"],
        "crun": ["crun", "run", "-b", bundle, "bench-crun"],
        "runc": ["runc", "run", "-b", bundle, "bench-runc"]}
times = {k: [] for k in cmds}
for _ in range(runs):
    for name, cmd in cmds.items():
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        times[name].append(time.perf_counter() - t)
json.dump(times, open(out, "w"))
PY

python3 - "$OUT" "$RUNS" "$ROUNDS" "$("$HAFEN" --version)" "$(runc --version | head -1)" "$(crun --version | head -1)" <<'PY'
import glob, json, os, statistics, sys
out, runs, rounds, *versions = sys.argv[1:]
print(f"{rounds} rounds x {runs} runs per command; {'; '.join(versions)}\n")
def pooled(phase):
    times = {}
    for f in sorted(glob.glob(os.path.join(out, f"{phase}.*.json"))):
        for r in json.load(open(f))["results"]:
            times.setdefault(r["command"], []).extend(r["times"])
    return times
print("| phase | hafen median | crun median | runc median | hafen/crun | hafen/runc |")
print("|---|---|---|---|---|---|")
rows = [(p, pooled(p)) for p in ["run", "create", "start"]]
rows.append(("run, interleaved", json.load(open(os.path.join(out, "interleaved.json")))))
for phase, times in rows:
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"| {phase} | {med['hafen']:.1f} ms | {med['crun']:.1f} ms | {med['runc']:.1f} ms "
          f"| {med['hafen'] / med['crun']:.2f} | {med['hafen'] / med['runc']:.2f} |")
print()
print("| phase | runtime | mean ± σ | min | max |")
print("|---|---|---|---|---|")
for phase, times in rows:
    for k, v in times.items():
        ms = [x * 1e3 for x in v]
        print(f"| {phase} | {k} | {statistics.mean(ms):.1f} ± {statistics.stdev(ms):.1f} ms | {min(ms):.1f} ms | {max(ms):.1f} ms |")
PY
