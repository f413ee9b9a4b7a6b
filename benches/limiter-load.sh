#!/usr/bin/env bash
# End-to-end cost of the rate limiter on the request path (issue: under 3% throughput loss).
# vigie (release build) answers a fixed response on two routes, one under a zone whose limit is
# never reached; wrk sends each request with one of 100,000 distinct client addresses in
# X-Forwarded-For (the peer, 127.0.0.1, is a trusted proxy), so the zone tracks 100k clients.
# Runs interleaved rounds and prints requests/s for each route and the ratio.
# Usage: benches/limiter-load.sh [seconds-per-run] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
command -v wrk >/dev/null || { sudo=$([ "$(id -u)" = 0 ] || echo sudo); $sudo apt-get install -y -qq wrk >/dev/null; }
cargo build -q --release -p vigie
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/vigie.toml" <<TOML
[server]
http = ["127.0.0.1:$port"]
admin = "127.0.0.1:$admin"
state_dir = "$dir/state"
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
  [[sites.routes]]
  path = "/free"
  respond = { body = "ok\n" }
TOML
cat > "$dir/xff.lua" <<'LUA'
local n = 0
request = function()
  n = (n + 7919) % 100000
  local ip = string.format("10.%d.%d.%d", math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format("GET", wrk.path, { ["Host"] = "bench.test", ["X-Forwarded-For"] = ip })
end
LUA
./target/release/vigie -c "$dir/vigie.toml" 2>"$dir/vigie.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null && break; sleep 0.1; done
run() { wrk -t1 -c32 -d"${secs}s" -s "$dir/xff.lua" "http://127.0.0.1:$port$1" | awk '/Requests\/sec/ {print $2}'; }
run /limited >/dev/null  # warm-up: fills the zone with 100k clients
free=(); limited=()
for _ in $(seq "$rounds"); do
  free+=("$(run /free)"); limited+=("$(run /limited)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
f=$(median "${free[@]}"); l=$(median "${limited[@]}")
tracked=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '/^vigie_limit_tracked_clients/ {print $2}')
echo "route /free    req/s: ${free[*]} (median $f)"
echo "route /limited req/s: ${limited[*]} (median $l), clients tracked: $tracked"
awk -v f="$f" -v l="$l" 'BEGIN { printf "limited/free: %.3f (%.1f%% loss)\n", l/f, (1-l/f)*100 }'
