#!/usr/bin/env bash
# Runs our implementation of a workload and every peer of ../shared/bench in one go, interleaved, RUNS
# times each, and prints the median of each figure with ratios against asyncio and raw libev.
#   bench/run.sh W1 100000 3
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
peers=${PEERS:-$here/../../shared/bench}
w=${1:-W1}; n=${2:-100000}; runs=${3:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for ((r = 0; r < runs; r++)); do
    case $w in
    W1) "$build/bench/w1" "$n"; BENCH_CALLOC=1 "$build/bench/w1" "$n" ;;
    W2) "$build/bench/w2" "$n" ;;
    W3) "$build/bench/w3" "$n" ;;
    W5) "$build/bench/w5" "$n" ;;
    esac
    if [ -x "$peers/run-peers.sh" ]; then "$peers/run-peers.sh" "$w" "$n" 1 2>&1 | grep -v '^#' ; fi
done | tee "$out"

# the figure is the field before checksum (ns_per_op, bytes_per_task, ...)
awk '
/^workload=/ {
    impl = ""; fig = ""; val = ""; wall = ""; count = ""
    for (i = 1; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "impl") impl = kv[2]
        if (kv[1] == "wall_s") wall = kv[2]
        if (kv[1] == "n" || kv[1] == "N") count = kv[2]
        if (kv[1] ~ /^(ns_per_op|ns_per_switch|bytes_per_task)$/) { fig = kv[1]; val = kv[2] }
    }
    if (val == "" && wall != "" && count > 0 && $1 == "workload=W1") val = wall * 1e9 / count  # Asio prints N and wall only
    if (impl != "" && val != "") { v[impl, ++cnt[impl]] = val; figname = fig }
}
function median(impl,   k, m, a, i, j, t) {
    m = cnt[impl]; for (i = 1; i <= m; i++) a[i] = v[impl, i]
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
    py = ("python-asyncio" in cnt) ? median("python-asyncio") : 0
    raw = ("c-raw-libev" in cnt) ? median("c-raw-libev") : 0
    printf "\n%-16s %14s %6s %14s %14s\n", "impl", "median " figname, "runs", "vs asyncio", "vs raw libev"
    for (impl in cnt) {
        m = median(impl)
        printf "%-16s %14.1f %6d %13.1fx %13.2fx\n", impl, m, cnt[impl], (py && m) ? py / m : 0, (raw) ? m / raw : 0
    }
}' "$out"
