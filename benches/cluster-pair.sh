# Sourced by the benches that set one vigie against the same vigie with [cluster]
# (limiter-cluster.sh, tls-peek.sh): a temporary directory, a redis-server on loopback, the
# [cluster] table, both instances started and waited for, and the measuring helpers.
# Not run on its own.
#
# After `cluster_pair_setup`: $dir (removed on exit), $rport/$rpid (Redis), $hz, the array
# pids (killed on exit). `cluster_pair_start NAME ADMIN` starts ./target/release/vigie on
# $dir/NAME.toml, sets $started to its pid and waits for /healthz (and, when NAME is
# `cluster`, for vigie_cluster_redis_up 1).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cluster_pair_setup() {
  command -v redis-server >/dev/null || { echo "redis-server is needed (make deps)" >&2; exit 1; }
  dir=$(mktemp -d)
  pids=()
  trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$dir"' EXIT
  hz=$(getconf CLK_TCK)
  rport=$(free_port)
  redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >"$dir/redis.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  head -c 32 /dev/urandom >"$dir/cluster.key"
}

# The [cluster] table for this pair's Redis and key.
cluster_table() {
  printf '[cluster]\nredis = "redis://127.0.0.1:%s/"\nnode_id = "bench"\nencryption_key_file = "%s"\n' \
    "$rport" "$dir/cluster.key"
}

cluster_pair_start() {
  ./target/release/vigie -c "$dir/$1.toml" 2>"$dir/$1.log" &
  started=$!
  pids+=("$started")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/healthz" >/dev/null && break; sleep 0.1; done
  if [ "$1" = cluster ]; then
    for _ in $(seq 100); do
      curl -s "http://127.0.0.1:$2/metrics" | grep -q '^vigie_cluster_redis_up 1' && break; sleep 0.1
    done
  fi
}
