#!/usr/bin/env bash
# What a cluster member's ClientHello peek adds to each TLS handshake: an instance with
# [cluster] reads every ClientHello before the handshake (rustls's Acceptor on the raw bytes,
# then the bytes are put back for pingora's handshake) to see whether it offers acme-tls/1,
# whose answer may live in Redis. The same vigie (release build, 1 thread) twice, one plain,
# one with [cluster] and a redis-server on loopback; both serve a fixed response on a site
# with an ECDSA P-256 certificate. benches/clients.rs makes full TLS 1.3 handshakes (no
# resumption), one `GET /` each, then closes. Interleaved rounds, medians:
# - time per connection at 1 client (1 / connections per second): handshake plus request;
# - CPU per connection of vigie at 16 clients, from /proc/PID/stat over the run.
# - instructions per connection (user space, callgrind; with INSTRUCTIONS=1): each instance
#   again under valgrind, 200 connections of warm-up, then the counters zeroed, 16 clients for
#   `seconds-per-run` x 4, the counters dumped and divided by the connections made. Unlike
#   wall-clock CPU this does not move with what else the machine does, so a few µs show.
# No handshake offers acme-tls/1, so Redis is never asked: what differs is the peek alone
# (and the cluster instance's background work: its Redis subscription and certificate poll).
# Usage: [INSTRUCTIONS=1] benches/tls-peek.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
. benches/cluster-pair.sh
if [ "${INSTRUCTIONS:-}" = 1 ] && ! command -v valgrind >/dev/null; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo); $sudo apt-get install -y -qq valgrind >/dev/null
fi
cargo build -q --release -p vigie --bin vigie --example bench-clients
cluster_pair_setup
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

# config NAME HTTPS ADMIN [cluster]
config() {
  cat <<TOML
[server]
https = ["127.0.0.1:$2"]
admin = "127.0.0.1:$3"
state_dir = "$dir/state-$1"
threads = 1
[log]
access = "off"
level = "warn"
[[sites]]
names = ["bench.test"]
tls = { cert = "$dir/cert.pem", key = "$dir/key.pem" }
  [[sites.routes]]
  path = "/"
  respond = { body = "ok\n" }
TOML
  if [ "${4:-}" = cluster ]; then cluster_table; fi
}
pport=$(free_port); padmin=$(free_port); cport=$(free_port); cadmin=$(free_port)
config plain "$pport" "$padmin" >"$dir/plain.toml"
config cluster "$cport" "$cadmin" cluster >"$dir/cluster.toml"
cluster_pair_start plain "$padmin"; ppid=$started
cluster_pair_start cluster "$cadmin"; cpid=$started
clients=./target/release/examples/bench-clients
# serial PORT -> µs per connection at one client
serial() {
  "$clients" handshakes "127.0.0.1:$1" bench.test "$secs" 1 |
    awk '{ if ($2 > 0) { print "errors " $2 > "/dev/stderr" } printf "%.1f\n", 1e6 / $4 }'
}
# load PORT PID -> "connections/s vigie_cpu_us_per_connection"
load() {
  local t0 t1 out
  t0=$(ticks "$2")
  out=$("$clients" handshakes "127.0.0.1:$1" bench.test "$secs" 16)
  t1=$(ticks "$2")
  awk -v t=$((t1 - t0)) -v hz="$hz" '{ if ($2 > 0) { print "errors " $2 > "/dev/stderr" }
    printf "%s %.1f\n", $4, t * 1e6 / hz / $1 }' <<<"$out"
}
serial "$pport" >/dev/null; serial "$cport" >/dev/null # warm-up
declare -a pser cser prate crate pcpu ccpu
for i in $(seq "$rounds"); do
  order="$pport $cport"; [ $((i % 2)) = 0 ] && order="$cport $pport"
  for port in $order; do
    if [ "$port" = "$pport" ]; then
      pser+=("$(serial "$pport")")
      read -r rate cpu < <(load "$pport" "$ppid"); prate+=("$rate"); pcpu+=("$cpu")
    else
      cser+=("$(serial "$cport")")
      read -r rate cpu < <(load "$cport" "$cpid"); crate+=("$rate"); ccpu+=("$cpu")
    fi
  done
done
echo "| vigie | µs per connection (1 client) | connections/s (16 clients) | vigie CPU µs/connection |"
echo "|---|---|---|---|"
echo "| plain | $(median "${pser[@]}") | $(median "${prate[@]}") | $(median "${pcpu[@]}") |"
echo "| [cluster] (ClientHello peeked) | $(median "${cser[@]}") | $(median "${crate[@]}") | $(median "${ccpu[@]}") |"
echo
echo "rounds: plain µs ${pser[*]}, conn/s ${prate[*]}, CPU ${pcpu[*]}"
echo "rounds: cluster µs ${cser[*]}, conn/s ${crate[*]}, CPU ${ccpu[*]}"

[ "${INSTRUCTIONS:-}" = 1 ] || exit 0
kill "$ppid" "$cpid"; wait "$ppid" "$cpid" 2>/dev/null || true
# instructions NAME PORT ADMIN -> instructions per connection under callgrind
instructions() {
  valgrind --tool=callgrind --callgrind-out-file="$dir/$1.out" \
    ./target/release/vigie -c "$dir/$1.toml" 2>"$dir/$1.vg.log" &
  local pid=$! out total
  pids+=("$pid")
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$3/healthz" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/$1.vg.log" >&2; return 1; }
    sleep 0.2
  done
  "$clients" handshakes "127.0.0.1:$2" bench.test 2 4 >/dev/null
  rm -f "$dir/$1.out".*
  callgrind_control -z "$pid" >/dev/null 2>&1
  out=$("$clients" handshakes "127.0.0.1:$2" bench.test $((secs * 4)) 16)
  callgrind_control -d "$pid" >/dev/null 2>&1
  total=$(grep -h '^summary:' "$dir/$1.out".* | head -1 | awk '{print $2}')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v t="$total" '{ if ($2 > 0) { print "errors " $2 > "/dev/stderr" } printf "%.0f %d\n", t / $1, $1 }' <<<"$out"
}
read -r pins pn < <(instructions plain "$pport" "$padmin")
read -r cins cn < <(instructions cluster "$cport" "$cadmin")
echo
echo "instructions per connection (callgrind, user space): plain $pins ($pn connections), [cluster] $cins ($cn connections): +$((cins - pins)) ($(awk -v a="$cins" -v b="$pins" 'BEGIN { printf "%.2f", (a - b) * 100 / b }') %)"
