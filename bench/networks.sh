#!/usr/bin/env bash
# Networks, side by side, all inside a network namespace made for the run
# (nothing reaches beyond this machine; no masquerading anywhere):
#  1. network setup cost: `run --rm IMG true` on the default bridge vs
#     `--network none`, for hafen, docker (a private dockerd 20.10 with its
#     bridge and iptables, in the namespace) and podman 4.3 (netavark);
#  2. request rate to a busybox httpd in a container: through a published
#     port on 127.0.0.1 (wrk in the namespace) and container to container
#     (wrk in another container's network namespace, across the bridge);
#  3. N containers on one hafen network: the time to start them, and that
#     the last one reaches every other.
#
# Usage (root): bench/networks.sh [RUNS] [N]   (default RUNS=30, N=1100)
# Env: HAFEN (default /usr/local/bin/hafen), WORK (default
#      /var/tmp/hafen-bench), OUT (default $WORK/results).
# Needs: docker.io, podman, hyperfine, wrk, busybox-static, iproute2.
set -euo pipefail
RUNS=${1:-30}
N=${2:-1100}
HAFEN=${HAFEN:-/usr/local/bin/hafen}
WORK=${WORK:-/var/tmp/hafen-bench}
OUT=${OUT:-$WORK/results}
HERE=$(cd "$(dirname "$0")" && pwd)
# The peers' containers.conf, without its `netns = "none"`: here podman's
# containers get its default bridge network.
PEER_CONF=${CONTAINERS_CONF:-$HERE/../../shared/peers/containers.conf}
for tool in dockerd docker podman hyperfine wrk busybox ip nsenter "$HAFEN"; do
  command -v "$tool" >/dev/null || { echo "bench/networks.sh: $tool is missing" >&2; exit 1; }
done
mkdir -p "$OUT" "$WORK"
export CONTAINERS_CONF=$WORK/containers-net.conf
grep -v '^netns' "$PEER_CONF" > "$CONTAINERS_CONF"
NS=hafenbench$$
NSP=/run/netns/$NS
IN="nsenter --net=$NSP --"
RAM=$WORK/ram; FS=$WORK/fs
DSOCK=/run/hafen-bench-docker.sock; DPID=/run/hafen-bench-docker.pid
HRUN=/run/hafen-bench
export HAFEN_ROOT=$FS/hafen HAFEN_RUN_ROOT=$HRUN HAFEN_CONFIG=$WORK/hafen-bench.json
H="$IN $HAFEN"
D="env DOCKER_HOST=unix://$DSOCK docker"
P="$IN podman --root $FS/podman --runroot /run/hafen-bench-podman --storage-driver overlay --events-backend none"

cleanup() {
  set +e
  $H rm -f $($H ps -aq 2>/dev/null) >/dev/null 2>&1
  $H network prune -f >/dev/null 2>&1
  $H daemon stop >/dev/null 2>&1
  if [ -f "$DPID" ]; then
    $D rm -f $($D ps -aq) >/dev/null 2>&1
    pid=$(cat "$DPID"); kill "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  $P rm -f -t 0 -a >/dev/null 2>&1
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

$IN "$HAFEN" daemon > "$OUT/networks-hafend.log" 2>&1 &
# dockerd in the namespace: its docker0 and iptables rules live there.
$IN setsid dockerd --host "unix://$DSOCK" --pidfile "$DPID" --data-root "$FS/docker" \
  --exec-root /run/hafen-bench-docker --ip-masq=false --ip-forward=false \
  --userland-proxy=false --storage-driver overlay2 \
  --exec-opt native.cgroupdriver=cgroupfs > "$OUT/networks-dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 150); do
  $D version >/dev/null 2>&1 && $HAFEN version >/dev/null 2>&1 && break
  sleep 0.2
done

# The image: Debian's busybox-static with its applets.
R=$RAM/rootfs
mkdir -p "$R"/{bin,etc,proc,sys,dev,tmp,root,www}
cp /bin/busybox "$R/bin/busybox"
for a in $("$R/bin/busybox" --list | grep -vx busybox); do ln -sf busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"
echo 'root:x:0:' > "$R/etc/group"
head -c 612 /dev/zero | tr '\0' x > "$R/www/index.html"
tar -C "$R" -cf "$RAM/busy.tar" .
$H import -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
$D import -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null
$P import -q -c 'CMD ["sh"]' "$RAM/busy.tar" busyimg:latest >/dev/null

echo "=== 1. run --rm true: bridge vs none"
hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$OUT/net-run.json" \
  -n "hafen none" "$H run --rm --network none busyimg true" \
  -n "hafen bridge" "$H run --rm busyimg true" \
  -n "docker none" "$D run --rm --network none busyimg true" \
  -n "docker bridge" "$D run --rm busyimg true" \
  -n "podman none" "$P run --rm --network none busyimg true" \
  -n "podman bridge" "$P run --rm busyimg true" 2>&1 | tee "$OUT/net-run.txt"

echo "=== 2. request rate"
HTTPD='httpd -f -p 80 -h /www'
$H run -d --name web -p 18080:80 busyimg $HTTPD >/dev/null
$D run -d --name web -p 18081:80 busyimg $HTTPD >/dev/null
$P run -d --name web -p 18082:80 busyimg $HTTPD >/dev/null
$H run -d --name client busyimg sleep 3600 >/dev/null
$D run -d --name client busyimg sleep 3600 >/dev/null
$P run -d --name client busyimg sleep 3600 >/dev/null
sleep 1
rate() { # label, netns-prefix, url
  local r
  r=$($2 wrk -t 2 -c 32 -d 10s "$3" 2>&1 | awk '/Requests\/sec/{print $2}') || true
  echo "$1 ${r:-refused}" | tee -a "$OUT/net-rate.txt"
}
: > "$OUT/net-rate.txt"
hpid=$($H inspect -f '{{.State.Pid}}' client); dpid=$($D inspect -f '{{.State.Pid}}' client); ppid=$($P inspect -f '{{.State.Pid}}' client)
hip=$($H inspect -f '{{.NetworkSettings.IPAddress}}' web); dip=$($D inspect -f '{{.NetworkSettings.IPAddress}}' web)
pip=$($P inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' web)
# wrk opens a connection per request here (busybox httpd closes each):
# without these, the clients' ephemeral ports and the conntrack table fill
# with TIME_WAIT entries within seconds and the rates fall from round to
# round. Per namespace: the benchmark's and the client containers'.
tune() {
  nsenter "$1" -- sh -c 'echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse; echo "1024 65000" > /proc/sys/net/ipv4/ip_local_port_range; echo 1 > /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait 2>/dev/null; true'
}
tune "--net=$NSP"
for p in $hpid $dpid $ppid; do tune "--net=/proc/$p/ns/net"; done
# Each engine's bridge address is a host address too (DNAT there needs no
# route_localnet).
hgw=$($H network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' bridge)
dgw=$($D network inspect -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}' bridge)
pgw=$($P network inspect -f '{{range .Subnets}}{{.Gateway}}{{end}}' podman)
for round in 1 2 3; do
  rate "published-127-hafen" "$IN" "http://127.0.0.1:18080/"
  rate "published-127-docker" "$IN" "http://127.0.0.1:18081/"
  rate "published-127-podman" "$IN" "http://127.0.0.1:18082/"
  rate "published-gw-hafen" "$IN" "http://$hgw:18080/"
  rate "published-gw-docker" "$IN" "http://$dgw:18081/"
  rate "published-gw-podman" "$IN" "http://$pgw:18082/"
  rate "c2c-hafen" "nsenter --net=/proc/$hpid/ns/net --" "http://$hip/"
  rate "c2c-docker" "nsenter --net=/proc/$dpid/ns/net --" "http://$dip/"
  rate "c2c-podman" "nsenter --net=/proc/$ppid/ns/net --" "http://$pip/"
done
$H rm -f web client >/dev/null; $D rm -f web client >/dev/null; $P rm -f -t 0 web client >/dev/null

echo "=== 3. $N containers on one hafen network"
# The neighbour table is one for all namespaces: $N containers talking to one
# need more than its default 1024 entries (the same with Docker). Put back
# when the script ends.
neigh=/proc/sys/net/ipv4/neigh/default
old_thresh="$(cat $neigh/gc_thresh1) $(cat $neigh/gc_thresh2) $(cat $neigh/gc_thresh3)"
trap 'set -- $old_thresh; echo $3 > $neigh/gc_thresh3; echo $2 > $neigh/gc_thresh2; echo $1 > $neigh/gc_thresh1; cleanup' EXIT
echo 16384 > $neigh/gc_thresh3; echo 8192 > $neigh/gc_thresh2; echo 4096 > $neigh/gc_thresh1
$H network create --subnet 10.210.0.0/20 big >/dev/null
t0=$(date +%s.%N)
for i in $(seq 1 "$N"); do $H run -d --network big busyimg sleep 3600 >/dev/null; done
t1=$(date +%s.%N)
addrs=$($H network inspect -f '{{range .Containers}}{{.IPv4Address}} {{end}}' big | sed 's#/20##g')
last=$($H ps -lq)
# An ARP broadcast reaches every port: more copies than the receive
# backlog (1000) holds, so a ping may be tried three times.
reached=$($H exec "$last" sh -c "n=0; for a in $addrs; do for t in 1 2 3; do ping -c 1 -W 2 \$a >/dev/null 2>&1 && { n=\$((n+1)); break; }; done; done; echo \$n")
bridges=$(ip -n "$NS" -o link show type bridge | grep -c ': br-\|: hb')
echo "start $N: $(echo "$t1 - $t0" | bc) s; reached from the last: $reached; bridges: $bridges" | tee "$OUT/net-many.txt"
