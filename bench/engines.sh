# Sourced by the benchmarks: a fresh ext4 (with a journal) on a loop device
# whose backing file is in RAM, where all engines keep their state, and the
# engines' daemons on it: hafen, a private dockerd 20.10 (no bridge, no
# iptables) and podman (no daemon).
#
# This machine's own root filesystem is an ext4 without a journal, whose
# inode allocator scans recently deleted inodes (some 0.2-0.7 ms per new
# file after a delete) and whose disk is slow and noisy; both would drown
# what the engines themselves do.
#
# Needs: WORK, OUT, HAFEN, NAME (a word for the log files). Defines RAM,
# FS, H, D, P and an EXIT trap that stops everything and unmounts.
RAM=$WORK/ram; FS=$WORK/fs
DSOCK=/run/hafen-bench-docker.sock; DPID=/run/hafen-bench-docker.pid
HRUN=/run/hafen-bench
DOCKER=/usr/bin/docker
engines_cleanup() {
  set +e
  HAFEN_ROOT=$FS/hafen HAFEN_RUN_ROOT=$HRUN "$HAFEN" rm -f $(HAFEN_ROOT=$FS/hafen HAFEN_RUN_ROOT=$HRUN "$HAFEN" ps -aq 2>/dev/null) >/dev/null 2>&1
  HAFEN_ROOT=$FS/hafen HAFEN_RUN_ROOT=$HRUN "$HAFEN" daemon stop 2>/dev/null
  if [ -f "$DPID" ]; then
    DOCKER_HOST=unix://$DSOCK $DOCKER rm -f $(DOCKER_HOST=unix://$DSOCK $DOCKER ps -aq) >/dev/null 2>&1
    pid=$(cat "$DPID"); kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  podman --root "$FS/podman" --runroot /run/hafen-bench-podman rm -f -t 0 -a >/dev/null 2>&1
  podman --root "$FS/podman" --runroot /run/hafen-bench-podman system reset -f >/dev/null 2>&1
  grep -o " $FS[^ ]*\| $HRUN[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null
  mountpoint -q "$FS" && umount -l "$FS"
  mountpoint -q "$RAM" && umount -l "$RAM"
}
trap engines_cleanup EXIT
engines_cleanup
mkdir -p "$RAM" "$FS"
mount -t tmpfs -o size=16g tmpfs "$RAM"
truncate -s 12G "$RAM/fs.img"
mkfs.ext4 -q -F "$RAM/fs.img"
# discard: what the engines delete goes back to RAM.
mount -o loop,discard "$RAM/fs.img" "$FS"

export HAFEN_ROOT=$FS/hafen HAFEN_RUN_ROOT=$HRUN
"$HAFEN" daemon > "$OUT/$NAME-hafend.log" 2>&1 &
setsid dockerd --host "unix://$DSOCK" --pidfile "$DPID" --data-root "$FS/docker" \
  --exec-root /run/hafen-bench-docker --bridge=none --iptables=false --ip6tables=false \
  --ip-masq=false --ip-forward=false --userland-proxy=false --storage-driver overlay2 \
  --exec-opt native.cgroupdriver=cgroupfs > "$OUT/$NAME-dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 100); do
  DOCKER_HOST=unix://$DSOCK $DOCKER version >/dev/null 2>&1 && "$HAFEN" version >/dev/null 2>&1 && break
  sleep 0.2
done
H="$HAFEN"
D="env DOCKER_HOST=unix://$DSOCK $DOCKER"
P="podman --root $FS/podman --runroot /run/hafen-bench-podman --storage-driver overlay --events-backend none"
