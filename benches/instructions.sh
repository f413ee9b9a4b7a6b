#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: vigie, a bare pingora proxy
# (benches/bare.rs) and nginx, each in front of the benchmark origin, plain HTTP/1.1
# keep-alive, 13-byte response. Unlike wall-clock CPU, the count does not move with what else
# the machine is doing, so small changes show (the same binary gives the same count to within
# a fraction of a percent). Only user-space instructions: the kernel's share (system calls,
# loopback) is not counted. `rep movsb` copies count one instruction per byte, so large
# memcpy calls weigh more here than they cost.
#
#   benches/instructions.sh [requests] [servers]      servers: any of "vigie pingora nginx"
#   PROFILE_OUT=DIR benches/instructions.sh ...        also keeps each server's callgrind
#     output of the `bare` pass in DIR/NAME.callgrind and writes DIR/NAME.functions (the
#     functions with the most instructions of their own) and DIR/NAME.crates (the same
#     instructions summed per crate), per request.
#
# Each server runs under valgrind (one worker for nginx, threads = 2 for vigie and pingora),
# gets 2,000 warm-up requests, then two measured passes of `requests` (default 10,000) each,
# by h2load over 8 connections, counters zeroed before and dumped after each: `bare`, a
# request with only a Host header (as wrk sends), and `browser`, the headers a browser sends
# for a page (about 750 bytes: user agent, accept, client hints, cookies). Prints one line per
# server.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
servers=${2:-vigie pingora nginx}
profile_out=${PROFILE_OUT:-}
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
for tool in valgrind:valgrind h2load:nghttp2-client nginx:nginx; do
  command -v "${tool%%:*}" >/dev/null || $sudo apt-get install -y -qq "${tool#*:}" >/dev/null
done
cargo build -q --release -p vigie --bin vigie --example bench-origin --example bench-bare
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
o_port=$(free_port)
./target/release/examples/bench-origin "$o_port" & pids+=($!)

browser=(-H "user-agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
  -H "accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
  -H "accept-language: fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7" -H 'sec-ch-ua: "Chromium";v="131", "Not_A Brand";v="24"'
  -H "sec-ch-ua-mobile: ?0" -H 'sec-ch-ua-platform: "Linux"' -H "sec-fetch-dest: document" -H "sec-fetch-mode: navigate"
  -H "sec-fetch-site: none" -H "sec-fetch-user: ?1" -H "upgrade-insecure-requests: 1"
  -H "cookie: grafana_session=4f1c2e9a8b7d6c5e4f3a2b1c0d9e8f7a; grafana_session_expiry=1764590000; _ga=GA1.1.123456789.1764500000; theme=dark")

# count NAME PORT CMD...: run CMD under callgrind, print instructions per request for both
# passes.
count() {
  local name=$1 port=$2; shift 2
  valgrind --tool=callgrind --callgrind-out-file="$dir/$name.out" "$@" 2>"$dir/$name.log" &
  local pid=$!
  for _ in $(seq 600); do
    curl -s -o /dev/null -H "Host: plain.test" "http://127.0.0.1:$port/" && break
    kill -0 $pid 2>/dev/null || { cat "$dir/$name.log" >&2; return 1; }
    sleep 0.2
  done
  h2load --h1 -n 2000 -c 8 -H ":authority: plain.test" "http://127.0.0.1:$port/" >/dev/null
  local line="$name"
  for pass in bare browser; do
    local extra=()
    [[ $pass == browser ]] && extra=("${browser[@]}")
    rm -f "$dir/$name.out".*
    callgrind_control -z $pid >/dev/null
    local out
    out=$(h2load --h1 -n "$n" -c 8 -H ":authority: plain.test" "${extra[@]}" "http://127.0.0.1:$port/")
    grep -q "$n succeeded" <<<"$out" || { echo "$name: not all requests succeeded" >&2; return 1; }
    callgrind_control -d $pid >/dev/null
    local total
    total=$(grep -h '^summary:' "$dir/$name.out".* | head -1 | awk '{print $2}')
    line="$line $pass $((total / n))"
    if [[ -n $profile_out && $pass == bare ]]; then
      mkdir -p "$profile_out"
      cat "$dir/$name.out".* >"$profile_out/$name.callgrind"
      profile "$profile_out" "$name" "$n"
    fi
  done
  kill $pid; wait $pid 2>/dev/null || true
  printf '%-8s %-8s %8s  %-8s %8s  instructions per request\n' $line
}

# profile DIR NAME N: self instructions per request of the top functions and per crate,
# from DIR/NAME.callgrind (one dump, all threads).
profile() {
  local out=$1 name=$2 reqs=$3
  callgrind_annotate --inclusive=no --threshold=100 "$out/$name.callgrind" 2>/dev/null |
    awk -v n="$reqs" '
      /^ *[0-9,]+ +\(/ {
        c = $1; gsub(",", "", c)
        f = $0; sub(/^ *[0-9,]+ +\([^)]*\) +/, "", f); sub(/ \[[^]]*\]$/, "", f)
        sub(/^[^:]*:/, "", f)
        printf "%10.0f  %s\n", c / n, f
      }' >"$out/$name.functions"
  # A function still on a thread's stack when the counters are dumped (the thread's entry,
  # tokio's worker loop) is charged inclusively: those lines, and the total, are left out of
  # the per-crate sums.
  awk 'NR == 1 { total = $1; next }
    $1 > total / 2 { next }
    {
      f = $0; sub(/^ *[0-9]+  /, "", f); sub(/^<+/, "", f)
      k = f; sub(/::.*/, "", k); sub(/[<( ].*/, "", k)
      if (k == "" || k == f) k = "(C: libc, memcpy, valgrind-visible others)"
      sum[k] += $1; all += $1
    } END { for (k in sum) printf "%10.0f  %5.1f%%  %s\n", sum[k], 100 * sum[k] / all, k }' \
    "$out/$name.functions" | sort -rn >"$out/$name.crates"
}

v_port=$(free_port); v_admin=$(free_port)
cat > "$dir/vigie.toml" <<TOML
[server]
http = ["127.0.0.1:$v_port"]
admin = "127.0.0.1:$v_admin"
state_dir = "$dir/state"
threads = 2
[log]
access = "off"
level = "warn"
[upstreams.origin]
servers = ["127.0.0.1:$o_port"]
[[sites]]
names = ["plain.test"]
  [[sites.routes]]
  path = "/"
  upstream = "origin"
  compress = false
TOML
if [[ " $servers " == *" vigie "* ]]; then count vigie "$v_port" ./target/release/vigie -c "$dir/vigie.toml"; fi

p_port=$(free_port)
if [[ " $servers " == *" pingora "* ]]; then count pingora "$p_port" ./target/release/examples/bench-bare "$p_port" "$o_port" 2; fi

n_port=$(free_port)
mkdir -p "$dir/nginx"; chmod 777 "$dir/nginx"; chmod 755 "$dir"
cat > "$dir/nginx.conf" <<NGINX
worker_processes 1;
master_process off;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body; proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fcgi; uwsgi_temp_path $dir/nginx/uwsgi; scgi_temp_path $dir/nginx/scgi;
  upstream origin { server 127.0.0.1:$o_port; keepalive 64; }
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Real-IP \$remote_addr;
  proxy_set_header X-Forwarded-Proto \$scheme;
  proxy_set_header X-Forwarded-Host \$host;
  proxy_set_header X-Request-Id \$request_id;
  add_header X-Request-Id \$request_id always;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$n_port; location / { proxy_pass http://origin; } }
}
NGINX
if [[ " $servers " == *" nginx "* ]]; then count nginx "$n_port" nginx -c "$dir/nginx.conf"; fi
