#!/usr/bin/env bash
# Runs our implementation of each workload and every peer of ../shared/bench in one session, interleaved
# (ours, then each peer, RUNS times), and prints a table of medians with ratios against asyncio and raw
# libev, then one line for each peer or workload that gave no figure, and why. Everything it writes goes
# to $BENCH_DIR (default $BUILD/bench): the raw lines (results.txt), the table (report.txt), the medians
# (results.csv) and, when gnuplot is installed, a bar chart (results.svg). BENCH_UPDATE=1 then copies the
# CSV and the chart over bench/results.csv and bench/results.svg, the copies the README shows (never from
# a quick run).
#   bench/run.sh                 W1..W5, default sizes, 3 runs
#   bench/run.sh W1 W3           some workloads
#   BENCH_QUICK=1 bench/run.sh   small sizes, one run: a quick look
#   BENCH_REPORT=FILE bench/run.sh   no runs: the report from the lines of an earlier run
# Sizes: BENCH_N (tasks/messages/calls), BENCH_W4_SECONDS; RUNS. PEERS: the peers' folder (default: the
# shared checkout beside this one). BENCH_PORT: the port of the peers' W4 servers (ours picks a free one).
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
out=${BENCH_DIR:-$build/bench}
peers=${PEERS:-$here/../../shared/bench}
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then n=${BENCH_N:-10000}; secs=${BENCH_W4_SECONDS:-2}; runs=${RUNS:-1}
else n=${BENCH_N:-100000}; secs=${BENCH_W4_SECONDS:-10}; runs=${RUNS:-3}; fi
workloads=("$@"); [ ${#workloads[@]} -eq 0 ] && workloads=(W1 W2 W3 W4 W5)
for w in "${workloads[@]}"; do
    case $w in W1 | W2 | W3 | W4 | W5) ;; *) echo "bench/run.sh: no workload $w (W1..W5)" >&2; exit 2 ;; esac
done
export BENCH_OUT=${BENCH_OUT:-$build/bench-peers}
raw=$out/results.txt
expected=$out/expected.txt # workload, implementation, why it cannot run here (tab-separated)
mkdir -p "$out" "$BENCH_OUT"
: > "$expected"
[ -x "$peers/run-peers.sh" ] && have_peers=1 || have_peers=0
skip_notes=()

# Why a peer of run-peers.sh cannot run on this machine (nothing if it can); it skips them the same way.
peer_missing() {
    case $1 in
    python-asyncio) command -v python3 >/dev/null || echo "no python3 on PATH" ;;
    node) command -v node >/dev/null || echo "no node on PATH (Node.js 20)" ;;
    go) command -v go >/dev/null || echo "no go on PATH (Debian: golang-go)" ;;
    asio-stackless) [ -f /usr/include/boost/asio.hpp ] || echo "no Boost headers (Debian: libboost-dev)" ;;
    cpp20-coro) command -v g++ >/dev/null || echo "no g++ on PATH (C++20 coroutines: g++ 11 or later)" ;;
    c-raw-libev) [ -f /usr/include/ev.h ] || echo "no libev headers (Debian: libev-dev)" ;;
    esac
}
# The implementations each workload should give a figure for: ours, then the peers that have it.
expect() { # workload
    local impls=(async.h) p
    case $1 in W1) impls+=(async.h-calloc) ;; W4) impls+=(async.h-2threads) ;; esac
    for p in "${impls[@]}"; do printf '%s\t%s\t\n' "$1" "$p"; done
    [ "$have_peers" = 1 ] || return 0
    impls=(python-asyncio node go c-raw-libev)
    case $1 in W1 | W3) impls+=(asio-stackless cpp20-coro) ;; W2 | W4) impls+=(asio-stackless) ;; esac
    for p in "${impls[@]}"; do printf '%s\t%s\t%s\n' "$1" "$p" "$(peer_missing "$p")"; done
}

# W4: the hello_server sample under the peers' exact load: wrk -t2 -c100 on CPU 1; the server pinned to
# CPU 0 with one thread, unpinned with two. The server picks a free port and prints it.
w4_ours() { # threads impl-name
    local pin="" load="" log=$out/w4-server.log port="" pid t0 t1 res nreq cpu
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then load="taskset -c 1"; [ "$1" = 1 ] && pin="taskset -c 0"; fi
    $pin "$build/samples/hello_server" --port 0 --threads "$1" --seconds $((secs + 3)) >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
        port=$(sed -n 's|^Serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "# W4 $2: hello_server did not start: $(head -c 300 "$log")" | tee /dev/stderr
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

if [ -n "${BENCH_REPORT:-}" ]; then
    # No runs: what the file holds is all there is; the report says what it lacks, not why.
    grep '^workload=' "$BENCH_REPORT" > "$raw"
    for w in $(sed -n 's/^workload=\([^ ]*\).*/\1/p' "$raw" | sort -u); do expect "$w" | cut -f1,2 >> "$expected"; done
    workloads=()
else
    : > "$raw"
    [ "$have_peers" = 1 ] || skip_notes+=("skipped every peer: no $peers/run-peers.sh (the shared peers, looked for beside this checkout; PEERS=dir names another folder)")
fi

for w in ${workloads[@]+"${workloads[@]}"}; do
    if [ "$w" = W4 ] && ! command -v wrk >/dev/null; then
        skip_notes+=("skipped W4 (ours and the peers'): no wrk on PATH (Debian: wrk)"); continue
    fi
    expect "$w" >> "$expected"
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
        if [ "$have_peers" = 1 ]; then BENCH_PORT=${BENCH_PORT:-18091} "$peers/run-peers.sh" "$w" "$arg" 1 2>&1; fi
    done | tee -a "$raw" | grep -v '^#' >&2
done

# Medians and ratios. The figure of each workload (lower is better): W1 ns per task, W2 bytes per waiting
# task, W3 ns per switch, W4 server CPU us per request (req/s alongside), W5 ns per call. A ratio needs
# both figures: without asyncio's or raw libev's, it is n/a (and empty in the CSV).
BENCH_SKIPPED=$(printf '%s\n' ${skip_notes[@]+"${skip_notes[@]}"}) \
awk -v csv="$out/results.csv" -v raw="$raw" -v expected="$expected" '
BEGIN { fig["W1"] = "ns_per_op"; fig["W2"] = "bytes_per_task"; fig["W3"] = "ns_per_switch";
        fig["W4"] = "server_cpu_us_per_req"; fig["W5"] = "ns_per_op"
        while ((getline l < expected) > 0) { split(l, e, "\t"); nexp++; ew[nexp] = e[1]; ei[nexp] = e[2]; why[e[2]] = e[3] } }
/^workload=/ {
    delete kv; nf = split($0, f, " ")
    for (i = 1; i <= nf; i++) { eq = index(f[i], "="); if (eq) kv[substr(f[i], 1, eq - 1)] = substr(f[i], eq + 1) }
    w = kv["workload"]; impl = kv["impl"]; val = kv[fig[w]]
    if (impl == "") next
    line[w, impl] = 1
    if (val == "" && w == "W5") val = kv["ns_per_call"]
    if (val == "" && w == "W1" && kv["wall_s"] != "") { cnt = kv["n"] != "" ? kv["n"] : kv["N"]; if (cnt > 0) val = kv["wall_s"] * 1e9 / cnt }
    if (val == "" || val == "?") next
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
function base(w, impl) { return ((w SUBSEP impl) in cnt_) ? median(v, w SUBSEP impl, cnt_[w SUBSEP impl]) : 0 }
END {
    print "workload,impl,figure,median,runs,asyncio_over_impl,impl_over_raw_libev,rps_median" > csv
    last = ""
    for (k = 1; k <= norder; k++) {
        split(order[k], p, SUBSEP); w = p[1]; impl = p[2]
        if (w != last) {
            py = base(w, "python-asyncio"); lev = base(w, "c-raw-libev")
            printf "\n%s (%s, lower is better)\n%-18s %12s %5s %12s %12s%s\n", w, fig[w], "impl", "median", "runs",
                   "asyncio/x", "x/raw libev", w == "W4" ? "        req/s" : ""
            last = w
        }
        m = median(v, order[k], cnt_[order[k]])
        r = (w == "W4") ? median(rps, order[k], cnt_[order[k]]) : ""
        a = py && m ? sprintf("%.2f", py / m) : ""; b = lev ? sprintf("%.3f", m / lev) : ""
        printf "%-18s %12.1f %5d %12s %12s%s\n", impl, m, cnt_[order[k]], a != "" ? sprintf("%.1fx", a) : "n/a",
               b != "" ? sprintf("%.2fx", b) : "n/a", w == "W4" ? sprintf(" %12.0f", r) : ""
        printf "%s,%s,%s,%.2f,%d,%s,%s,%s\n", w, impl, fig[w], m, cnt_[order[k]], a, b, r >> csv
    }
    # One line for each implementation that was expected and gave no figure: why it could not run, or
    # which workloads lacked its figure.
    for (k = 1; k <= nexp; k++) {
        w = ew[k]; impl = ei[k]
        if ((w SUBSEP impl) in cnt_ || (impl in said)) continue
        if (why[impl] != "") { said[impl] = 1; out[++nout] = impl; note[impl] = "skipped " impl ": " why[impl]; continue }
        if (!(impl in note)) out[++nout] = impl
        note[impl] = note[impl] (note[impl] == "" ? impl ": no figure for " : ", ") w \
            (((w SUBSEP impl) in line) ? " (its line has no " fig[w] ")" : " (no result line; see " raw ")")
    }
    skipped = ENVIRON["BENCH_SKIPPED"]
    if (nout || skipped != "") print ""
    if (skipped != "") print skipped
    for (k = 1; k <= nout; k++) print note[out[k]]
}' "$raw" | tee "$out/report.txt"

# The chart: one panel per workload, the figure of every implementation on a log scale.
if ! command -v gnuplot >/dev/null; then
    echo "chart: none, no gnuplot on PATH (Debian: gnuplot-nox)"
elif [ "$(wc -l < "$out/results.csv")" -gt 1 ]; then
    ws=$(awk -F, 'NR > 1 && !seen[$1]++ {printf "%s ", $1}' "$out/results.csv")
    npanels=$(wc -w <<<"$ws")
    dat=$out/chart; mkdir -p "$dat"
    {
        echo "set terminal svg size 1100,$((250 * npanels)) font 'sans,10' background '#ffffff'"
        echo "set output '$out/results.svg'"
        echo "set multiplot layout $npanels,1"
        echo "set style fill solid 0.8 border -1; set boxwidth 0.6; set logscale y; set grid ytics"
        echo "set xtics nomirror noenhanced; set key off; set offsets 0.5, 0.5, 0, 0"
        for w in $ws; do
            awk -F, -v w="$w" 'NR > 1 && $1 == w {print $2, $4}' "$out/results.csv" > "$dat/$w.dat"
            label=$(awk -F, -v w="$w" 'NR > 1 && $1 == w {print $3; exit}' "$out/results.csv")
            echo "set title '$w: ${label//_/ } (median, log scale, lower is better)' noenhanced"
            echo "plot '$dat/$w.dat' using 0:2:xtic(1) with boxes lc rgb '#4477aa', '' using 0:2:(sprintf('%.1f', \$2)) with labels offset 0,0.7"
        done
        echo "unset multiplot"
    } | gnuplot 2>"$dat/gnuplot.log" && echo "chart: $out/results.svg" || echo "chart: gnuplot failed, see $dat/gnuplot.log"
fi
echo "raw lines: $raw; medians: $out/results.csv"

# The copies the README shows change only when asked, and never from a quick look.
if [ "${BENCH_UPDATE:-0}" = 1 ]; then
    if [ "$quick" = 1 ]; then
        echo "BENCH_UPDATE: bench/results.* left as they are: a quick run (BENCH_QUICK=1) is not one to show" >&2
    else
        cp "$out/results.csv" "$here/results.csv" && echo "updated bench/results.csv"
        [ -s "$out/results.svg" ] && cp "$out/results.svg" "$here/results.svg" && echo "updated bench/results.svg"
    fi
fi
true
