#!/usr/bin/env bash
# Runs our implementation of each workload and every peer of ../shared/bench in one session, interleaved
# (ours, then each peer, RUNS times), and prints a table of medians with ratios against asyncio and raw
# libev. Writes every raw line to $BUILD/bench/results.txt, the medians to bench/results.csv and, when
# gnuplot is installed, a bar chart to bench/results.svg.
#   bench/run.sh                 W1..W5, default sizes, 3 runs
#   bench/run.sh W1 W3           some workloads
#   BENCH_QUICK=1 bench/run.sh   small sizes, one run: a quick look in under a minute or two
# Sizes: BENCH_N (tasks/messages/calls), BENCH_W4_SECONDS; RUNS. BENCH_PORT: the port of the peers' W4
# servers (ours picks a free one).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
peers=${PEERS:-$here/../../shared/bench}
if [ "${BENCH_QUICK:-0}" = 1 ]; then n=${BENCH_N:-10000}; secs=${BENCH_W4_SECONDS:-2}; runs=${RUNS:-1}
else n=${BENCH_N:-100000}; secs=${BENCH_W4_SECONDS:-10}; runs=${RUNS:-3}; fi
workloads=("$@"); [ ${#workloads[@]} -eq 0 ] && workloads=(W1 W2 W3 W4 W5)
export BENCH_OUT=${BENCH_OUT:-$build/bench-peers}
raw=$build/bench/results.txt
mkdir -p "$build/bench" "$BENCH_OUT"
# BENCH_REPORT=FILE: no runs, only the table, CSV and chart from the lines of an earlier run
if [ -n "${BENCH_REPORT:-}" ]; then grep '^workload=' "$BENCH_REPORT" > "$raw"; workloads=(); else : > "$raw"; fi

# W4: the hello_server sample under the peers' exact load: wrk -t2 -c100 on CPU 1; the server pinned to
# CPU 0 with one thread, unpinned with two. The server picks a free port and prints it.
w4_ours() { # threads impl-name
    local pin="" load="" log=$build/bench/w4-server.log port="" pid t0 t1 res nreq cpu
    command -v wrk >/dev/null || { echo "# W4 needs wrk (apt-get install wrk)"; return; }
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then load="taskset -c 1"; [ "$1" = 1 ] && pin="taskset -c 0"; fi
    $pin "$build/samples/hello_server" --port 0 --threads "$1" --seconds $((secs + 3)) >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        port=$(sed -n 's|^Serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "# W4 $2: hello_server did not start: $(head -c 300 "$log")"
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        return
    fi
    t0=$(awk '{print $14 + $15}' /proc/$pid/stat)
    res=$($load wrk -t2 -c100 -d"${secs}s" --latency "http://127.0.0.1:$port/" 2>&1)
    t1=$(awk '{print $14 + $15}' /proc/$pid/stat)
    nreq=$(awk '/requests in/ {print $1}' <<<"$res")
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="${nreq:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.2f", (b - a) / hz * 1e6 / n; else print "?" }')
    echo "workload=W4 impl=$2 rps=$(awk '/Requests\/sec/ {print $2}' <<<"$res") server_cpu_us_per_req=$cpu" \
         "p50=$(awk '$1=="50%" {print $2}' <<<"$res") p99=$(awk '$1=="99%" {print $2}' <<<"$res")"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

for w in ${workloads[@]+"${workloads[@]}"}; do
    arg=$n; [ "$w" = W4 ] && arg=$secs
    echo "# $w: $arg, $runs run(s) each" >&2
    for ((r = 0; r < runs; r++)); do
        case $w in
        W1) "$build/bench/w1" "$n"; BENCH_CALLOC=1 "$build/bench/w1" "$n" ;;
        W2) "$build/bench/w2" "$n" ;;
        W3) "$build/bench/w3" "$n" ;;
        W4) w4_ours 1 async.h; w4_ours 2 async.h-2threads ;;
        W5) "$build/bench/w5" "$n" ;;
        esac
        if [ -x "$peers/run-peers.sh" ]; then BENCH_PORT=${BENCH_PORT:-18091} "$peers/run-peers.sh" "$w" "$arg" 1 2>&1; fi
    done | tee -a "$raw" | grep -v '^#' >&2
done

# Medians and ratios. The figure of each workload (lower is better): W1 ns per task, W2 bytes per waiting
# task, W3 ns per switch, W4 server CPU us per request (req/s alongside), W5 ns per call.
awk -v csv="$here/results.csv" '
BEGIN { fig["W1"] = "ns_per_op"; fig["W2"] = "bytes_per_task"; fig["W3"] = "ns_per_switch";
        fig["W4"] = "server_cpu_us_per_req"; fig["W5"] = "ns_per_op" }
/^workload=/ {
    delete kv; w = ""
    for (i = 1; i <= NF; i++) { split($i, p, "="); kv[p[1]] = p[2] }
    w = kv["workload"]; impl = kv["impl"]; val = kv[fig[w]]
    if (val == "" && w == "W5") val = kv["ns_per_call"]
    if (val == "" && w == "W1" && kv["wall_s"] != "") { cnt = kv["n"] != "" ? kv["n"] : kv["N"]; if (cnt > 0) val = kv["wall_s"] * 1e9 / cnt }
    if (impl == "" || val == "" || val == "?") next
    key = w SUBSEP impl
    if (!(key in cnt_)) order[++norder] = key
    v[key, ++cnt_[key]] = val
    if (w == "W4") rps[key, cnt_[key]] = kv["rps"]
}
function median(arr, key, m,   a, i, j, t) {
    for (i = 1; i <= m; i++) a[i] = arr[key, i] + 0
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
END {
    print "workload,impl,figure,median,runs,asyncio_over_impl,impl_over_raw_libev,rps_median" > csv
    last = ""
    for (k = 1; k <= norder; k++) {
        split(order[k], p, SUBSEP); w = p[1]; impl = p[2]
        if (w != last) {
            py = ((w SUBSEP "python-asyncio") in cnt_) ? median(v, w SUBSEP "python-asyncio", cnt_[w SUBSEP "python-asyncio"]) : 0
            raw = ((w SUBSEP "c-raw-libev") in cnt_) ? median(v, w SUBSEP "c-raw-libev", cnt_[w SUBSEP "c-raw-libev"]) : 0
            printf "\n%s (%s, lower is better)\n%-18s %12s %5s %12s %12s%s\n", w, fig[w], "impl", "median", "runs",
                   "asyncio/x", "x/raw libev", w == "W4" ? "        req/s" : ""
            last = w
        }
        m = median(v, order[k], cnt_[order[k]])
        r = (w == "W4") ? median(rps, order[k], cnt_[order[k]]) : ""
        printf "%-18s %12.1f %5d %11.1fx %11.2fx%s\n", impl, m, cnt_[order[k]], py && m ? py / m : 0, raw ? m / raw : 0,
               w == "W4" ? sprintf(" %12.0f", r) : ""
        printf "%s,%s,%s,%.2f,%d,%.2f,%.3f,%s\n", w, impl, fig[w], m, cnt_[order[k]], py && m ? py / m : 0,
               raw ? m / raw : 0, r >> csv
    }
}' "$raw"

# The chart: one panel per workload, the figure of every implementation on a log scale.
if command -v gnuplot >/dev/null && [ -s "$here/results.csv" ]; then
    ws=$(awk -F, 'NR > 1 && !seen[$1]++ {printf "%s ", $1}' "$here/results.csv")
    npanels=$(wc -w <<<"$ws")
    dat=$build/bench/chart; mkdir -p "$dat"
    {
        echo "set terminal svg size 1100,$((250 * npanels)) font 'sans,10' background '#ffffff'"
        echo "set output '$here/results.svg'"
        echo "set multiplot layout $npanels,1"
        echo "set style fill solid 0.8 border -1; set boxwidth 0.6; set logscale y; set grid ytics"
        echo "set xtics nomirror noenhanced; set key off; set offsets 0.5, 0.5, 0, 0"
        for w in $ws; do
            awk -F, -v w="$w" 'NR > 1 && $1 == w {print $2, $4}' "$here/results.csv" > "$dat/$w.dat"
            label=$(awk -F, -v w="$w" 'NR > 1 && $1 == w {print $3; exit}' "$here/results.csv")
            echo "set title '$w: ${label//_/ } (median, log scale, lower is better)' noenhanced"
            echo "plot '$dat/$w.dat' using 0:2:xtic(1) with boxes lc rgb '#4477aa', '' using 0:2:(sprintf('%.1f', \$2)) with labels offset 0,0.7"
        done
        echo "unset multiplot"
    } | gnuplot && echo "chart: bench/results.svg" >&2
fi
true
