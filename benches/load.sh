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
# benches/RESULTS.md. Scenarios (default all): s1 s2 s3 s3h2 s6, and s4 / s4l (cache hits of
# 1 KiB / 100 KiB objects, vigie's cache vs nginx's proxy_cache, with the origin requests
# each run caused after warm-up in the last column), json, gz.
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
scenarios=${3:-"s1 s2 s3 s3h2 s4 s4l s6 json gz"}
gz_level=${GZ_LEVEL:-6}
sudo=$([ "$(id -u)" = 0 ] || echo sudo)
for tool in wrk:wrk h2load:nghttp2-client nginx:nginx openssl:openssl; do
  command -v "${tool%%:*}" >/dev/null || $sudo apt-get install -y -qq "${tool#*:}" >/dev/null
done
load=$(cut -d' ' -f1 /proc/loadavg)
busy=$(awk -v l="$load" 'BEGIN { print (l > 0.5) ? "yes" : "no" }')
cargo build -q --release -p vigie --bin vigie --example bench-origin
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
o_port=$(free_port); v_http=$(free_port); v_https=$(free_port); v_admin=$(free_port)
n_http=$(free_port); n_https=$(free_port)

# ECDSA P-256 certificate for bench.test, shared by both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench.test \
  -addext subjectAltName=DNS:bench.test -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null

./target/release/examples/bench-origin "$o_port" & pids+=($!)

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
  proxy_buffering on;
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
    location / { proxy_pass http://origin; }
  }
}
NGINX
nginx -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/nginx.stderr" & nginx_pid=$!; pids+=($nginx_pid)

for port in $o_port $v_http $v_https $n_http $n_https; do
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
hz=$(getconf CLK_TCK)

# run TARGET_PID CMD... -> "rps p50_ms p99_ms cpu_us_per_req"
measure() {
  local pid=$1; shift
  local before after out rps p50 p99 n
  before=$(cpu_ticks "$pid")
  out=$("$@" 2>&1)
  after=$(cpu_ticks "$pid")
  if [[ "$1" == h2load ]]; then
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
  local cpu_us
  cpu_us=$(awk -v a="$after" -v b="$before" -v n="${n:-1}" -v hz="$hz" 'BEGIN { if (n < 1) n = 1; printf "%.1f", (a - b) * 1e6 / hz / n }')
  echo "${rps:-0} ${p50:--} ${p99:--} $cpu_us"
}

# scenario_cmd SCENARIO TARGET: sets the array CMD to the load generator's command line.
scenario_cmd() {
  local s=$1 t=$2 port scheme host
  case $t in
    vigie) port=$(plain "$s" && echo "$v_http" || echo "$v_https") ;;
    nginx) port=$(plain "$s" && echo "$n_http" || echo "$n_https") ;;
    origin) port=$o_port ;;
  esac
  scheme=$( (plain "$s" || [[ $t == origin ]]) && echo http || echo https)
  host=$([[ $scheme == https ]] && echo "bench.test" || echo "plain.test")
  [[ $s == gz || $s == json ]] && host=gz.test
  local url="$scheme://127.0.0.1:$port"
  case $s in
    s1 | s3) CMD=(wrk --latency -t2 -c64 -d"${secs}s" -H "Host: $host" "$url/") ;;
    s2) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" -H "Connection: close" "$url/") ;;
    s3h2) CMD=(h2load -c64 -m10 -D"$secs" -H ":authority: bench.test" "$url/") ;;
    s6) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" "$url/1m") ;;
    s4) CMD=(wrk --latency -t2 -c64 -d"${secs}s" -H "Host: $host" "$url/cache/1k") ;;
    s4l) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" "$url/cache/100k") ;;
    json) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" "$url/json") ;;
    gz) CMD=(wrk --latency -t2 -c16 -d"${secs}s" -H "Host: $host" -H "Accept-Encoding: gzip" "$url/json") ;;
  esac
}
# Scenarios on plain HTTP.
plain() { [[ $1 == s1 || $1 == s6 || $1 == s4* || $1 == json || $1 == gz ]]; }
pid_of() { case $1 in vigie) echo $vigie_pid ;; nginx) echo $nginx_pid ;; origin) echo "${pids[0]}" ;; esac; }

origin_served() { curl -s "http://127.0.0.1:$o_port/count"; }
declare -A results
declare -A origin_reqs
for s in $scenarios; do
  targets="vigie nginx"; [[ $s == s1 || $s == s6 ]] && targets="vigie nginx origin"
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

median() { sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
col() { local s=$1 t=$2 i=$3; for r in $(seq "$rounds"); do echo "${results[$s,$t,$r]}" | awk -v i="$i" '{print $i}'; done | median; }
{
  echo "## Run of $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; load before: $load (busy: $busy)."
  echo "vigie $(./target/release/vigie --version | cut -d' ' -f2), $(nginx -v 2>&1 | cut -d' ' -f3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), ${secs}s x $rounds rounds, medians."
  echo
  if [[ " $scenarios " == *" gz "* ]]; then
    echo "gz: GZ_LEVEL=$gz_level; the $plain_size byte JSON gzipped to:$gz_note"
    echo
  fi
  echo "| scenario | target | req/s | p50 | p99 | CPU µs/req | peak RSS MiB | vs nginx req/s | origin requests |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for s in $scenarios; do
    n_rps=$(col "$s" nginx 1)
    targets="vigie nginx"; [[ $s == s1 || $s == s6 ]] && targets="vigie nginx origin"
    for t in $targets; do
      rps=$(col "$s" "$t" 1); cpu=$(col "$s" "$t" 4)
      p50=$(for r in $(seq "$rounds"); do echo "${results[$s,$t,$r]}" | awk '{print $2}'; done | sort | sed -n "$(( (rounds + 1) / 2 ))p")
      p99=$(for r in $(seq "$rounds"); do echo "${results[$s,$t,$r]}" | awk '{print $3}'; done | sort | sed -n "$(( (rounds + 1) / 2 ))p")
      rss=$(awk -v k="$(rss_kb "$(pid_of "$t")")" 'BEGIN { printf "%.1f", k / 1024 }')
      ratio=$(awk -v a="$rps" -v b="$n_rps" 'BEGIN { printf "%.2f", (b > 0) ? a / b : 0 }')
      echo "| $s | $t | $rps | $p50 | $p99 | $cpu | $rss | $ratio | ${origin_reqs[$s,$t]:-0} |"
    done
  done
  echo
} | tee -a benches/RESULTS.md
