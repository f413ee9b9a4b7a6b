#!/usr/bin/env bash
# What cluster-wide rate limits add on the request path: the same vigie (release build,
# 1 thread) twice, one deciding limits with its own limiter, one with [cluster] deciding them
# in a redis-server on loopback (one EVALSHA per request). Both answer a fixed response on a
# route under a zone whose limit is never reached; wrk sends each request with one of 100,000
# client addresses in X-Forwarded-For (the peer, 127.0.0.1, is a trusted proxy).
# Two measurements, interleaved rounds, medians:
# - latency: one connection, one request at a time (wrk -c1), p50 and p99: the round trip to
#   Redis is all that differs;
# - CPU: 32 connections, requests/s and CPU per request of vigie (and of redis-server) from
#   /proc/PID/stat over the run.
# Usage: benches/limiter-cluster.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
command -v wrk >/dev/null || { sudo=$([ "$(id -u)" = 0 ] || echo sudo); $sudo apt-get install -y -qq wrk >/dev/null; }
. benches/cluster-pair.sh
cargo build -q --release -p vigie
cluster_pair_setup

# config NAME PORT ADMIN [cluster]
config() {
  cat <<TOML
[server]
http = ["127.0.0.1:$2"]
admin = "127.0.0.1:$3"
state_dir = "$dir/state-$1"
threads = 1
[log]
access = "off"
level = "warn"
[client_ip]
trusted_proxies = ["127.0.0.1/32"]
[limits.bench]
rate = "1000000/s"
burst = 1000000
nodelay = true
max_clients = 160000
[[sites]]
names = ["bench.test"]
  [[sites.routes]]
  path = "/limited"
  respond = { body = "ok\n" }
  limit = "bench"
TOML
  if [ "${4:-}" = cluster ]; then cluster_table; fi
}
lport=$(free_port); ladmin=$(free_port); cport=$(free_port); cadmin=$(free_port)
config local "$lport" "$ladmin" >"$dir/local.toml"
config cluster "$cport" "$cadmin" cluster >"$dir/cluster.toml"
cluster_pair_start local "$ladmin"; lpid=$started
cluster_pair_start cluster "$cadmin"; cpid=$started
cat > "$dir/xff.lua" <<'LUA'
local n = 0
request = function()
  n = (n + 7919) % 100000
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", wrk.path, { ["Host"] = "bench.test", ["X-Forwarded-For"] = ip })
end
LUA
to_us() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/,"",v); print v } else if (v ~ /ms$/) { sub(/ms$/,"",v); print v*1000 } else { sub(/s$/,"",v); print v*1000000 } }'; }
# latency PORT -> "p50_us p99_us"
latency() {
  local out; out=$(wrk -t1 -c1 -d"${secs}s" --latency -s "$dir/xff.lua" "http://127.0.0.1:$1/limited")
  echo "$(to_us "$(awk '$1=="50%" {print $2}' <<<"$out")") $(to_us "$(awk '$1=="99%" {print $2}' <<<"$out")")"
}
# load PORT PID -> "req/s vigie_cpu_us_per_req redis_cpu_us_per_req"
load() {
  local v0 r0 out v1 r1 n
  v0=$(ticks "$2"); r0=$(ticks "$rpid")
  out=$(wrk -t1 -c32 -d"${secs}s" -s "$dir/xff.lua" "http://127.0.0.1:$1/limited")
  v1=$(ticks "$2"); r1=$(ticks "$rpid")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")" -v n="$n" -v v=$((v1 - v0)) -v r=$((r1 - r0)) -v hz="$hz" \
    'BEGIN { printf "%s %.1f %.1f\n", rps, v * 1e6 / hz / n, r * 1e6 / hz / n }'
}
latency "$lport" >/dev/null; latency "$cport" >/dev/null  # warm-up: 100k clients in each
declare -a lp50 lp99 cp50 cp99 lrps lcpu crps ccpu credis
for i in $(seq "$rounds"); do
  first=$lport; [ $((i % 2)) = 0 ] && first=$cport
  for port in "$first" $([ "$first" = "$lport" ] && echo "$cport" || echo "$lport"); do
    read -r p50 p99 < <(latency "$port")
    if [ "$port" = "$lport" ]; then
      lp50+=("$p50"); lp99+=("$p99")
      read -r rps cpu _ < <(load "$lport" "$lpid"); lrps+=("$rps"); lcpu+=("$cpu")
    else
      cp50+=("$p50"); cp99+=("$p99")
      read -r rps cpu rcpu < <(load "$cport" "$cpid"); crps+=("$rps"); ccpu+=("$cpu"); credis+=("$rcpu")
    fi
  done
done
keys=$(redis-cli -p "$rport" dbsize)
fallback=$(curl -s "http://127.0.0.1:$cadmin/metrics" | awk '/^vigie_cluster_limiter_fallback_total\{action="local"\}/ {print $2}')
echo "| limiter | p50 µs (c=1) | p99 µs (c=1) | req/s (c=32) | vigie CPU µs/req | redis-server CPU µs/req |"
echo "|---|---|---|---|---|---|"
echo "| local | $(median "${lp50[@]}") | $(median "${lp99[@]}") | $(median "${lrps[@]}") | $(median "${lcpu[@]}") | - |"
echo "| cluster (Redis on loopback) | $(median "${cp50[@]}") | $(median "${cp99[@]}") | $(median "${crps[@]}") | $(median "${ccpu[@]}") | $(median "${credis[@]}") |"
echo
echo "rounds: local p50 ${lp50[*]}, p99 ${lp99[*]}, req/s ${lrps[*]}, CPU ${lcpu[*]}"
echo "rounds: cluster p50 ${cp50[*]}, p99 ${cp99[*]}, req/s ${crps[*]}, CPU ${ccpu[*]}, redis CPU ${credis[*]}"
echo "keys in Redis: $keys; decisions made without Redis: ${fallback:-0}"
