#!/usr/bin/env bash
# vigie against nginx (and the origin directly), side by side, on loopback.
#
#   benches/load.sh [seconds-per-run] [rounds] [scenarios]
#
# Builds vigie and the origin (benches/origin.rs) in release mode, writes equivalent configs
# for vigie and Debian's nginx (2 workers/threads, no access log, upstream keep-alive,
# proxy_buffering on, proxy_cache only on /cache/), and runs each scenario for each target, interleaved, `rounds`
# times (median reported): requests/s, p50/p99 latency, server CPU µs per request (utime+stime
# of every process of the server, from /proc), and peak RSS. Results go to stdout and to
# benches/RESULTS.md, and machine-readably to benches/results/<stamp>.tsv (one row per
# scenario x server; the format is in benches/plot/results.rs), copied to
# benches/results/latest.tsv; from it benches/plot.rs draws SVG charts (vigie against nginx and
# bare pingora per scenario: requests/s, CPU per request, p99) into benches/charts/<stamp>/,
# which the section appended to RESULTS.md embeds. BENCH_OUT=DIR puts RESULTS.md, results/
# and charts/ under DIR instead of benches/ (a trial run that must not touch the published
# results: `BENCH_OUT=$(mktemp -d) benches/load.sh 1 1 s1`).
#
# Scenarios (default all): s1 s2 s2r s3 s3h2 s6, and s4 / s4l (cache hits of
# 1 KiB / 100 KiB objects, vigie's cache vs nginx's proxy_cache, with the origin requests
# each run caused after warm-up in the last column), json, gz, s5, s7.
#
# s2: a full TLS 1.3 handshake per request (no resumption: the server signs each one with
# its ECDSA P-256 key; benches/clients.rs `handshakes`, 16 clients, one request per
# connection); s2r: the same with wrk, which resumes each connection's previous session with
# a ticket. Both servers choose AES-128-GCM (vigie's order; nginx is told the same).
#
# s6: 1 MiB downloads, 16 connections; s6u: 1 MiB uploads (wrk POSTs a Content-Length body
# the origin drains), 16 connections. The last column, RSS growth, is the server's resident
# memory at its highest during the run minus before it: divided by the 16 connections, the
# memory a stream in flight holds.
#
# s1, s6 and s6u also run a bare pingora proxy (benches/bare.rs, target `pingora`): nothing of
# vigie's, the same allocator and threads, so the table separates what pingora itself costs
# from what vigie adds. nginx sets the same forwarding headers vigie sets by default
# (X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id, echoed).
#
# s5: the rate limiter on a route whose limit is never reached against the same route without
# it, each connection from one of 100,000 distinct source addresses across 127.0.0.0/8
# (benches/clients.rs binds them; the limiter keys on the peer), after a pass that made the
# zone track all of them; plus the memory the 100k keys take. s7: 4,000 idle keep-alive
# connections (one request each, then idle), plain and TLS: resident memory per connection.
#
# json and gz: the origin's 100 KB JSON (`GET /json`, benches/json_body.rs) over HTTP/1.1
# keep-alive, 16 connections; gz asks for it with `Accept-Encoding: gzip`, and both proxies
# compress it at level GZ_LEVEL (default 6): nginx `gzip on; gzip_comp_level N;
# gzip_types application/json`, vigie `compress = { level = N }`. gz minus json is the CPU
# compression costs each proxy per response.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
rounds=${2:-3}
scenarios=${3:-"s1 s2 s2r s3 s3h2 s4 s4l s6 s6u json gz"}
gz_level=${GZ_LEVEL:-6}
out=${BENCH_OUT:-benches}
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
for tool in wrk:wrk h2load:nghttp2-client nginx:nginx openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || $sudo apt-get install -y -qq "${tool#*:}" >/dev/null
done
load=$(cut -d' ' -f1 /proc/loadavg)
busy=$(awk -v l="$load" 'BEGIN { print (l > 0.5) ? "yes" : "no" }')
cargo build -q --release -p vigie --bin vigie --example bench-origin --example bench-bare \
  --example bench-clients --example bench-plot
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
o_port=$(free_port); v_http=$(free_port); v_https=$(free_port); v_admin=$(free_port)
n_http=$(free_port); n_https=$(free_port); p_http=$(free_port)

# ECDSA P-256 certificate for bench.test, shared by both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

./target/release/examples/bench-origin "$o_port" & pids+=($!)

# s6u: each request uploads 1 MiB (Content-Length), which the origin reads and drops.
cat > "$dir/upload.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA

cat > "$dir/vigie.toml" <<TOML
[server]
http = ["127.0.0.1:$v_http"]
https = ["127.0.0.1:$v_https"]
admin = "127.0.0.1:$v_admin"
state_dir = "$dir/vigie-state"
threads = 2
[log]
access = "off"
level = "warn"
[upstreams.origin]
servers = ["127.0.0.1:$o_port"]
[[sites]]
names = ["bench.test"]
tls = { cert = "$dir/cert.pem", key = "$dir/key.pem" }
  [[sites.routes]]
  path = "/"
  upstream = "origin"
  compress = false
[[sites]]
names = ["plain.test"]
  [[sites.routes]]
  path = "/cache/"
  upstream = "origin"
  compress = false
  cache = { zone = "bench", valid = { "200" = "10m" }, status_header = false }
  [[sites.routes]]
  path = "/"
  upstream = "origin"
  compress = false
[[sites]]
names = ["limit.test"]
  [[sites.routes]]
  path = "/limited"
  upstream = "origin"
  compress = false
  limit = "never"
  [[sites.routes]]
  path = "/"
  upstream = "origin"
  compress = false
# Never reached, and slow to refill: a key stays tracked (housekeeping drops only clients
# back to a full burst), so the zone really holds 100k clients while s5 runs.
[limits.never]
rate = "1/h"
burst = 100000
nodelay = true
max_clients = 160000
[[sites]]
names = ["gz.test"]
  [[sites.routes]]
  path = "/"
  upstream = "origin"
  compress = { level = $gz_level, min_size = "256B", types = ["application/json"] }
[cache.bench]
memory = "64MiB"
TOML
./target/release/vigie check -c "$dir/vigie.toml" >/dev/null
./target/release/vigie -c "$dir/vigie.toml" 2>"$dir/vigie.log" & vigie_pid=$!; pids+=($vigie_pid)
./target/release/examples/bench-bare "$p_http" "$o_port" 2 2>"$dir/bare.log" & bare_pid=$!; pids+=($bare_pid)

mkdir -p "$dir/nginx"
# nginx's workers run as an unprivileged user: let them create the cache and temp directories.
chmod 755 "$dir"; chmod 777 "$dir/nginx"
cat > "$dir/nginx.conf" <<NGINX
worker_processes 2;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body; proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fcgi; uwsgi_temp_path $dir/nginx/uwsgi; scgi_temp_path $dir/nginx/scgi;
  upstream origin { server 127.0.0.1:$o_port; keepalive 64; }
  proxy_cache_path $dir/nginx/cache keys_zone=bench:10m max_size=64m;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
  proxy_set_header X-Real-IP \$remote_addr;
  proxy_set_header X-Forwarded-Proto \$scheme;
  proxy_set_header X-Forwarded-Host \$host;
  proxy_set_header X-Request-Id \$request_id;
  add_header X-Request-Id \$request_id always;
  proxy_buffering on;
  # nginx's default: a request body is read whole (to a temporary file past
  # client_body_buffer_size) before it is sent upstream. vigie streams it.
  proxy_request_buffering on;
  client_max_body_size 0;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$n_http;
    server_name plain.test;
    location / { proxy_pass http://origin; }
    location /cache/ { proxy_pass http://origin; proxy_cache bench; proxy_cache_valid 200 10m; }
  }
  server {
    listen 127.0.0.1:$n_http;
    server_name gz.test;
    gzip on; gzip_comp_level $gz_level; gzip_types application/json; gzip_min_length 256;
    gzip_proxied any; gzip_vary on;
    location / { proxy_pass http://origin; }
  }
  server {
    listen 127.0.0.1:$n_https ssl http2;
    server_name bench.test;
    ssl_certificate $dir/cert.pem; ssl_certificate_key $dir/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    # The suite vigie picks (Mozilla's order, server preference), so both do the same work.
    ssl_prefer_server_ciphers on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256;
    ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305;
    location / { proxy_pass http://origin; }
  }
}
NGINX
nginx -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/nginx.stderr" & nginx_pid=$!; pids+=($nginx_pid)

for port in $o_port $v_http $v_https $n_http $n_https $p_http; do
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

# The gz scenario must really compress, with gzip, on both proxies: check once, and keep the
# sizes for the results.
gz_note=""
for t in vigie nginx; do
  port=$([[ $t == vigie ]] && echo "$v_http" || echo "$n_http")
  got=$(curl -s -o /dev/null -D - -w 'size=%{size_download}' -H "Host: gz.test" -H "Accept-Encoding: gzip" "http://127.0.0.1:$port/json")
  grep -qi '^content-encoding: gzip' <<<"$got" || { echo "$t does not gzip /json" >&2; exit 1; }
  gz_note="$gz_note $t ${got##*size=} bytes;"
done
plain_size=$(curl -s -o /dev/null -w '%{size_download}' -H "Host: gz.test" "http://127.0.0.1:$v_http/json")

# All processes of a server: the pid and its children (nginx workers).
procs() { echo "$1"; pgrep -P "$1" || true; }
cpu_ticks() { local t=0; for p in $(procs "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
rss_kb() { local t=0; for p in $(procs "$1"); do t=$((t + $(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
cur_rss_kb() { local t=0; for p in $(procs "$1"); do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
hz=$(getconf CLK_TCK)

# A latency as wrk and h2load print it ("850.00us", "5.30ms", "1.09s", "1.02m") in ms; "-"
# for anything else.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v !~ /^[0-9.]+(us|ms|s|m)$/) { print "-"; exit }
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    printf "%.3f\n", n * ((u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : 60000) }'
}

# run TARGET_PID CMD... -> "rps p50_ms p99_ms cpu_us_per_req rss_growth_kib"
# The last field: the server's resident memory at its highest while CMD ran (sampled every
# 100 ms), minus before (KiB): what the requests in flight held.
measure() {
  local pid=$1; shift
  local before after out rps p50 p99 n rss0 sampler
  rss0=$(cur_rss_kb "$pid")
  local plist
  plist=$(procs "$pid" | sed 's|.*|/proc/&/status|' | xargs)
  # shellcheck disable=SC2086
  (while :; do awk '/VmRSS/ {t += $2} END {print t}' $plist; sleep 0.1; done) >"$dir/rss.samples" 2>/dev/null &
  sampler=$!
  before=$(cpu_ticks "$pid")
  out=$("$@" 2>&1)
  after=$(cpu_ticks "$pid")
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  local grown
  grown=$(sort -n "$dir/rss.samples" | tail -1)
  grown=$(( ${grown:-$rss0} - rss0 ))
  if [[ "$1" == *bench-clients ]]; then
    # "requests errors seconds req/s"; no latency figures.
    read -r n errs _ rps <<<"$out"
    p50=-; p99=-
    if [[ ${errs:-1} != 0 ]]; then rps="ERR"; fi
  elif [[ "$1" == h2load ]]; then
    rps=$(awk '/finished in/ {print $4}' <<<"$out")
    n=$(awk '/^requests:/ {print $8; exit}' <<<"$out")   # succeeded
    # h2load reports min/max/mean, not percentiles: mean in the p50 column, max in p99.
    p50=$(awk '/time for request:/ {print $6}' <<<"$out"); p99=$(awk '/time for request:/ {print $5}' <<<"$out")
    if [[ $(awk '/^status codes:/ {print $3}' <<<"$out") != "${n:-x}" ]]; then rps="ERR"; fi
  else
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out"); p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    if grep -q "Non-2xx" <<<"$out"; then rps="ERR"; fi
  fi
  p50=$(to_ms "${p50:--}"); p99=$(to_ms "${p99:--}")
  local cpu_us
  cpu_us=$(awk -v a="$after" -v b="$before" -v n="${n:-1}" -v hz="$hz" 'BEGIN { if (n < 1) n = 1; printf "%.1f", (a - b) * 1e6 / hz / n }')
  echo "${rps:-0} ${p50:--} ${p99:--} $cpu_us $grown"
}

# scenario_cmd SCENARIO TARGET: sets the array CMD to the load generator's command line.
scenario_cmd() {
  local s=$1 t=$2 port scheme host
  case $t in
    vigie) port=$(plain "$s" && echo "$v_http" || echo "$v_https") ;;
    nginx) port=$(plain "$s" && echo "$n_http" || echo "$n_https") ;;
    origin) port=$o_port ;;
    pingora) port=$p_http ;;
  esac
  scheme=$( (plain "$s" || [[ $t == origin || $t == pingora ]]) && echo http || echo https)
  host=$([[ \$scheme == https ]] && echo "bench.test" || echo "plain.test")
  [[ $s == gz || $s == json ]] && host=gz.test
  local url="$scheme://127.0.0.1:$port"
  case $s in
    s1 | s3) CMD=(wrk --latency -t2 -c64 -d"${secs}s" -H "Host: $host" "$url/") ;;
    s2) CMD=(./target/release/examples/bench-clients handshakes "127.0.0.1:$port" "$host" "$secs" 16) ;;
    s2r) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" -H "Connection: close" "$url/") ;;
    s3h2) CMD=(h2load -c64 -m10 -D"$secs" -H ":authority: bench.test" "$url/") ;;
    s6) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" "$url/1m") ;;
    s6u) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -s "$dir/upload.lua" -H "Host: $host" "$url/upload") ;;
    s4) CMD=(wrk --latency -t2 -c64 -d"${secs}s" -H "Host: $host" "$url/cache/1k") ;;
    s4l) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" "$url/cache/100k") ;;
    json) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" "$url/json") ;;
    gz) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" -H "Accept-Encoding: gzip" "$url/json") ;;
  esac
}
# Scenarios on plain HTTP.
plain() { [[ $1 == s1 || $1 == s6* || $1 == s4* || $1 == json || $1 == gz ]]; }
pid_of() { case $1 in vigie) echo $vigie_pid ;; nginx) echo $nginx_pid ;; origin) echo "${pids[0]}" ;; pingora) echo $bare_pid ;; esac; }
targets_of() { case $1 in s1 | s6 | s6u) echo "vigie nginx pingora origin" ;; *) echo "vigie nginx" ;; esac; }

origin_served() { curl -s "http://127.0.0.1:$o_port/count"; }
declare -A results
declare -A origin_reqs
for s in $scenarios; do
  [[ $s == s5 || $s == s7 ]] && continue
  targets=$(targets_of "$s")
  if [[ $s == s4* ]]; then  # warm both caches
    for t in vigie nginx; do scenario_cmd "$s" "$t"; curl -s -o /dev/null -H "Host: plain.test" "${CMD[-1]}"; done
  fi
  for r in $(seq "$rounds"); do
    for t in $targets; do
      scenario_cmd "$s" "$t"
      before=$(origin_served)
      results[$s,$t,$r]=$(measure "$(pid_of "$t")" "${CMD[@]}")
      origin_reqs[$s,$t]=$(( ${origin_reqs[$s,$t]:-0} + $(origin_served) - before ))
    done
  done
done

# Peak RSS of each server over the throughput scenarios, before s5 and s7 add connections.
declare -A peak_kb
for t in vigie nginx pingora origin; do peak_kb[$t]=$(rss_kb "$(pid_of "$t")"); done
median() { sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
clients=./target/release/examples/bench-clients

# s5: limiter on (/limited) against off (/), 100k distinct source addresses.
s5_report=""
if [[ " $scenarios " == *" s5 "* ]]; then
  src() { "$clients" sources "127.0.0.1:$v_http" limit.test "$1" "$2" 32 100000 "$3"; }
  # One pass over the 100k addresses on each route, one request per connection: the first
  # brings the connection-related memory to its level, the second fills the zone.
  src /free 0 1 >/dev/null
  rss0=$(cur_rss_kb "$vigie_pid")
  src /limited 0 1 >/dev/null
  rss1=$(cur_rss_kb "$vigie_pid")
  tracked=$(curl -s "http://127.0.0.1:$v_admin/metrics" | awk '/^vigie_limit_tracked_clients/ {n += $2} END {print n + 0}')
  declare -A s5
  # At least 5 rounds, the order alternating, so that a drift of the machine during the runs
  # does not favour one route; each round's on/off pair runs back to back.
  s5_rounds=$(( rounds > 5 ? rounds : 5 ))
  for r in $(seq "$s5_rounds"); do
    order="/free /limited"; (( r % 2 == 0 )) && order="/limited /free"
    for route in $order; do
      before=$(cpu_ticks "$vigie_pid")
      read -r n errs _ rps < <(src "$route" "$secs" 10)
      after=$(cpu_ticks "$vigie_pid")
      s5[$route,rps,$r]=$rps
      s5[$route,cpu,$r]=$(awk -v a="$after" -v b="$before" -v n="$n" -v hz="$hz" 'BEGIN { if (n < 1) n = 1; printf "%.1f", (a - b) * 1e6 / hz / n }')
      s5[$route,errs]=$(( ${s5[$route,errs]:-0} + errs ))
    done
  done
  med5() { for r in $(seq "$s5_rounds"); do echo "${s5[$1,$2,$r]}"; done | median; }
  off_rps=$(med5 /free rps); on_rps=$(med5 /limited rps)
  pair_ratio=$(for r in $(seq "$s5_rounds"); do awk -v a="${s5[/limited,rps,$r]}" -v b="${s5[/free,rps,$r]}" 'BEGIN { if (b > 0) printf "%.3f\n", a / b }'; done | median)
  s5_report=$(
    echo "### S5: rate limiter on against off, 100,000 distinct client addresses"
    echo
    echo "Each connection bound to one of 100,000 source addresses in 127.1.0.0/16–127.2.134.159, 10 keep-alive requests each, 32 at once (benches/clients.rs); limit never reached."
    echo
    echo "| limiter | req/s (median) | CPU µs/req | errors |"
    echo "|---|---|---|---|"
    echo "| off | $off_rps | $(med5 /free cpu) | ${s5[/free,errs]} |"
    echo "| on, $tracked clients tracked | $on_rps | $(med5 /limited cpu) | ${s5[/limited,errs]} |"
    echo
    awk -v on="$on_rps" -v off="$off_rps" -v a="$rss0" -v b="$rss1" -v k="$tracked" -v n="$s5_rounds" -v pr="$pair_ratio" 'BEGIN {
      printf "on/off: %.3f (ratio of the medians over %d rounds), %.3f (median of the rounds'"'"' on/off pairs). Resident memory taken by filling the zone: %.1f MiB, %.0f bytes per tracked client.\n",
        (off > 0) ? on / off : 0, n, pr, (b - a) / 1024, (k > 0) ? (b - a) * 1024 / k : 0 }'
    echo
  )
fi

# s7: resident memory per idle keep-alive connection.
s7_report=""
if [[ " $scenarios " == *" s7 "* ]]; then
  idle_n=4000
  rows=""
  for t in vigie nginx pingora; do
    for mode in plain tls; do
      [[ $t == pingora && $mode == tls ]] && continue
      case $t,$mode in
        vigie,plain) port=$v_http host=plain.test ;; vigie,tls) port=$v_https host=bench.test ;;
        nginx,plain) port=$n_http host=plain.test ;; nginx,tls) port=$n_https host=bench.test ;;
        pingora,plain) port=$p_http host=plain.test ;;
      esac
      pid=$(pid_of "$t")
      # Two batches of idle_n: memory the allocator kept from earlier scenarios serves the
      # first; the second's growth is what a connection really costs.
      r0=$(cur_rss_kb "$pid"); rs=(); cpids=(); ok=1
      for b in 1 2; do
        rm -f "$dir/hold$b" "$dir/idle$b.out"; mkfifo "$dir/hold$b"
        "$clients" idle "127.0.0.1:$port" "$host" "$idle_n" $([[ $mode == tls ]] && echo tls) <"$dir/hold$b" >"$dir/idle$b.out" 2>&1 &
        cpids+=($!)
        eval "exec $((6 + b))>\"\$dir/hold$b\""
        for _ in $(seq 900); do grep -q '^ready' "$dir/idle$b.out" && break; kill -0 "${cpids[-1]}" 2>/dev/null || break; sleep 0.1; done
        grep -q '^ready' "$dir/idle$b.out" || ok=0
        rs+=("$(cur_rss_kb "$pid")")
      done
      exec 7>&- 8>&-
      for c in "${cpids[@]}"; do wait "$c" || true; done
      per=$([[ $ok == 1 ]] && awk -v a="${rs[0]}" -v b="${rs[1]}" -v n="$idle_n" 'BEGIN { printf "%.1f", (b - a) / n }' || echo "failed")
      rows="$rows| $t | $mode | $((r0 / 1024)) | $((rs[0] / 1024)) | $((rs[1] / 1024)) | $per |"$'\n'
    done
  done
  s7_report=$(
    echo "### S7: $idle_n idle keep-alive connections"
    echo
    echo "One request on each, then idle (benches/clients.rs), in two batches. Resident memory (VmRSS, every process of the server) before, with the first batch open, with both; per connection: the second batch's growth divided by $idle_n (the first reuses memory the allocator kept from earlier scenarios)."
    echo
    echo "| server | connections | RSS before MiB | with $idle_n MiB | with $((2 * idle_n)) MiB | KiB per connection |"
    echo "|---|---|---|---|---|---|"
    printf '%s' "$rows"
    echo
  )
fi

col() { local s=$1 t=$2 i=$3; for r in $(seq "$rounds"); do echo "${results[$s,$t,$r]}" | awk -v i="$i" '{print $i}'; done | median; }
# A median as a TSV value: the number, or "-" when none was measured (ERR, no latency).
num() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]] && echo "$1" || echo -; }
fmt_ms() { [[ $1 == - ]] && echo - || awk -v v="$1" 'BEGIN { if (v >= 1000) printf "%.2fs", v / 1000; else printf "%.2fms", v }'; }

# The run's medians, machine-readable, and its charts.
now=$(date -u +%s)
run_at=$(date -u -d "@$now" +%Y-%m-%dT%H:%MZ)
stamp=$(date -u -d "@$now" +%Y%m%dT%H%MZ)
throughput=$(for s in $scenarios; do [[ $s == s5 || $s == s7 ]] || echo "$s"; done | xargs)
mkdir -p "$out/results"
dup=1; base=$stamp
while [[ -e $out/results/$stamp.tsv ]]; do dup=$((dup + 1)); stamp=$base-$dup; done
tsv=$out/results/$stamp.tsv
machine="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
# (wrk -v prints its version, then exits 1.)
versions="vigie $(./target/release/vigie --version | cut -d' ' -f2), $(nginx -v 2>&1 | cut -d' ' -f3), $( (wrk -v 2>&1 || true) | head -1 | cut -d' ' -f1-2)"
charts=""
if [[ -n $throughput ]]; then
  {
    echo "# stamp: $stamp"
    echo "# run: $run_at (benches/load.sh $secs $rounds \"$scenarios\"; latencies in ms)"
    echo "# machine: $machine"
    echo "# load: load before $load (busy: $busy)"
    echo "# versions: $versions"
    echo "# settings: ${secs}s x $rounds rounds, medians${gz_note:+; gz: GZ_LEVEL=$gz_level}"
    echo "# note: s2 (benches/clients.rs) measures no latency; s3h2 (h2load) reports no percentiles, so its p50 is the mean and its p99 the maximum"
    printf 'scenario\tserver\trps\tp50_ms\tp99_ms\tcpu_us_per_req\torigin_requests\trss_growth_kib\tpeak_rss_mib\n'
    for s in $throughput; do
      for t in $(targets_of "$s"); do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$t" "$(num "$(col "$s" "$t" 1)")" \
          "$(num "$(col "$s" "$t" 2)")" "$(num "$(col "$s" "$t" 3)")" "$(num "$(col "$s" "$t" 4)")" \
          "${origin_reqs[$s,$t]:-0}" "$(num "$(col "$s" "$t" 5)")" \
          "$(awk -v k="${peak_kb[$t]}" 'BEGIN { printf "%.1f", k / 1024 }')"
      done
    done
  } >"$tsv"
  cp "$tsv" "$out/results/latest.tsv"
  # A plotting failure loses no measurement: the table and the TSV are written regardless.
  charts=$(./target/release/examples/bench-plot "$tsv" "$out/charts/$stamp" "charts/$stamp") ||
    { echo "bench-plot failed: no charts for this run" >&2; charts=""; }
fi

{
  echo "## Run of $run_at"
  echo
  echo "Machine: $machine; load before: $load (busy: $busy)."
  echo "$versions, ${secs}s x $rounds rounds, medians."
  echo
  if [[ " $scenarios " == *" gz "* ]]; then
    echo "gz: GZ_LEVEL=$gz_level; the $plain_size byte JSON gzipped to:$gz_note"
    echo
  fi
  echo "| scenario | target | req/s | p50 | p99 | CPU µs/req | vs nginx req/s | vs nginx CPU | origin requests | RSS growth KiB |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for s in $scenarios; do
    [[ $s == s5 || $s == s7 ]] && continue
    n_rps=$(col "$s" nginx 1); n_cpu=$(col "$s" nginx 4)
    targets=$(targets_of "$s")
    for t in $targets; do
      rps=$(col "$s" "$t" 1); cpu=$(col "$s" "$t" 4); grown=$(col "$s" "$t" 5)
      p50=$(fmt_ms "$(col "$s" "$t" 2)"); p99=$(fmt_ms "$(col "$s" "$t" 3)")
      ratio=$(awk -v a="$rps" -v b="$n_rps" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
      cratio=$(awk -v a="$cpu" -v b="$n_cpu" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
      echo "| $s | $t | $rps | $p50 | $p99 | $cpu | $ratio | $cratio | ${origin_reqs[$s,$t]:-0} | $grown |"
    done
  done
  echo
  echo "Peak RSS over these scenarios (MiB):$(for t in vigie nginx pingora origin; do awk -v t="$t" -v k="${peak_kb[$t]}" 'BEGIN { printf " %s %.1f;", t, k / 1024 }'; done)"
  echo
  if [[ -n $throughput ]]; then
    echo "Medians as TSV: [results/$stamp.tsv](results/$stamp.tsv)."
    echo
  fi
  if [[ -n $charts ]]; then
    echo "Charts: each bar is the figure divided by nginx's in the same scenario, labelled with the ratio and the figure (the origin, without a proxy, is left out)."
    echo
    while IFS= read -r line; do echo "$line"; echo; done <<<"$charts"
  fi
  if [[ -n $s5_report ]]; then echo "$s5_report"; echo; fi
  if [[ -n $s7_report ]]; then echo "$s7_report"; echo; fi
} | tee -a "$out/RESULTS.md"
