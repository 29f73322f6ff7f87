#!/usr/bin/env bash
# Runs our implementation of each workload and every peer of ../shared/bench in one session, interleaved
# (ours, then each peer, RUNS times), and prints a table of medians with ratios against asyncio and raw
# libev, then one line for each peer or workload that gave no figure, and why. Everything it writes goes
# to $BENCH_DIR (default $BUILD/bench): the raw lines (results.txt), the table (report.txt), the medians
# (results.csv) and, when gnuplot is installed, a bar chart (results.svg). BENCH_UPDATE=1 then copies the
# CSV and the chart over bench/results.csv and bench/results.svg, the copies the README shows (never from
# a quick run).
#   bench/run.sh                 W1..W7 and W4S, default sizes, 3 runs
#   bench/run.sh W1 W3           some workloads
#   BENCH_QUICK=1 bench/run.sh   small sizes, one run: a quick look
#   BENCH_REPORT=FILE bench/run.sh   no runs: the report from the lines of an earlier run
# W4 runs ours on each backend the build has: ASYNC_BACKEND=libev (async.h) and ASYNC_BACKEND=io_uring
# (async.h-io_uring). A build that does not read ASYNC_BACKEND (no such string in hello_server) has no
# io_uring row, and says so; a server that says "io_uring unavailable" on stderr (the kernel refused it,
# and it ran on libev) gives a line marked fallback=libev, which the report does not count as io_uring's.
# W7 (many concurrent 4 KB reads of a cached file) is ours (bench/w7.c, on both backends as W4) and its
# peers, bench/w7/*_w7.*, built here: one file of BENCH_W7_MIB MiB (64) of random bytes, made once as
# $BUILD/bench/w7.dat and read whole before each run so that it is cached; BENCH_W7_N reads (200000, quick
# 20000) by BENCH_W7_CONC tasks (64); every program prints the same checksum for the same N and C.
# W4S is W4 over https (TLS 1.3, HTTP/1.1, keep-alive), run as W4 is: ours (hello_server --tls) and the
# TLS servers of Go and Node, with one self-signed certificate made by openssl in $BENCH_DIR for the run.
# Sizes: BENCH_N (tasks/messages/calls), BENCH_W4_SECONDS (W4's and W4S's), BENCH_W6_SECONDS (each
# server's time under wrk; 10 s, quick 3 s), BENCH_W6_WARMUP (s of load before that, not counted: 2, quick 1; a JIT's first
# second would be W6's p99), BENCH_W6_CONNS (W6's connections, 500: its ceiling is CONNS / 10 ms),
# BENCH_W7_N, BENCH_W7_CONC and BENCH_W7_MIB (above); RUNS.
# PEERS: the peers' folder (default: the shared checkout beside this one). BENCH_PORT: the port of the
# peers' W4 servers (ours picks a free one). W6's peers are not in the shared folder: they are
# bench/w6/*_w6.* beside ours, built here, and every W6 server picks a free port; so are W4S's, in
# bench/w4tls, and W7's, in bench/w7.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/../build}
out=${BENCH_DIR:-$build/bench}
peers=${PEERS:-$here/../../shared/bench}
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then n=${BENCH_N:-10000}; secs=${BENCH_W4_SECONDS:-2}; w6_secs=${BENCH_W6_SECONDS:-3}; runs=${RUNS:-1}
else n=${BENCH_N:-100000}; secs=${BENCH_W4_SECONDS:-10}; w6_secs=${BENCH_W6_SECONDS:-10}; runs=${RUNS:-3}; fi
w6_warm=${BENCH_W6_WARMUP:-$((quick == 1 ? 1 : 2))}
w6_conns=${BENCH_W6_CONNS:-500}
w7_n=${BENCH_W7_N:-$((quick == 1 ? 20000 : 200000))} w7_conc=${BENCH_W7_CONC:-64} w7_mib=${BENCH_W7_MIB:-64}
workloads=("$@"); [ ${#workloads[@]} -eq 0 ] && workloads=(W1 W2 W3 W4 W4S W5 W6 W7)
for w in "${workloads[@]}"; do
    case $w in W1 | W2 | W3 | W4 | W4S | W5 | W6 | W7) ;; *) echo "bench/run.sh: no workload $w (W1..W7, W4S)" >&2; exit 2 ;; esac
done
export BENCH_OUT=${BENCH_OUT:-$build/bench-peers}
raw=$out/results.txt
expected=$out/expected.txt # workload, implementation, why it cannot run here (tab-separated)
mkdir -p "$out" "$BENCH_OUT"
: > "$expected"
[ -n "${BENCH_REPORT:-}" ] || : > "$out/io_uring-fallback.txt"
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
# ASYNC_BACKEND picks the backend of a loop when it is made (libev or io_uring); a build from before the
# io_uring backend ignores it, and its "io_uring" numbers would be libev's. Why a program of ours cannot
# run on io_uring (nothing if it can): it does not read the variable, judged by the name in its binary.
uring_missing() { # program
    [ -x "$1" ] || { echo "no $1 (make bench builds it)"; return; }
    grep -aq ASYNC_BACKEND "$1" || echo "this build has no io_uring backend ($(basename "$1") does not read ASYNC_BACKEND)"
}
# " fallback=libev" when a program asked for io_uring said on stderr that it fell back to libev (the
# kernel refused io_uring: too old, or forbidden by seccomp or io_uring_disabled); what it said is kept
# in $out/io_uring-fallback.txt. Nothing otherwise.
uring_fallback() { # log what
    local said
    said=$(grep -m1 'io_uring unavailable' "$1") || return 0
    printf '%s: %s\n' "$2" "$said" >>"$out/io_uring-fallback.txt"
    echo " fallback=libev"
}

# The implementations each workload should give a figure for: ours, then the peers that have it. W6's
# and W4S's peers are ours to build (bench/w6, bench/w4tls), so they do not depend on the shared folder.
expect() { # workload
    local impls=(async.h) p
    case $1 in W1) impls+=(async.h-calloc) ;; W4) impls+=(async.h-2threads) ;; esac
    if [ "$1" = W4 ]; then printf '%s\t%s\t%s\n' W4 async.h-io_uring "$(uring_missing "$build/samples/hello_server")"; fi
    if [ "$1" = W7 ]; then
        for p in async.h async.h-io_uring "${w7_peers[@]}"; do printf '%s\t%s\t%s\n' W7 "${p%%|*}" "$(w7_missing "${p%%|*}")"; done
        return 0
    fi
    if [ "$1" = W6 ]; then
        for p in async.h "${w6_peers[@]}"; do printf '%s\t%s\t%s\n' W6 "${p%%|*}" "$(w6_missing "${p%%|*}")"; done
        return 0
    fi
    if [ "$1" = W4S ]; then
        for p in async.h async.h-2threads "${w4s_peers[@]}"; do
            printf '%s\t%s\t%s\n' W4S "${p%%|*}" "$(w4s_missing "${p%%|*}")"
        done
        return 0
    fi
    for p in "${impls[@]}"; do printf '%s\t%s\t\n' "$1" "$p"; done
    [ "$have_peers" = 1 ] || return 0
    impls=(python-asyncio node go c-raw-libev)
    case $1 in W1 | W3) impls+=(asio-stackless cpp20-coro) ;; W2 | W4) impls+=(asio-stackless) ;; esac
    for p in "${impls[@]}"; do printf '%s\t%s\t%s\n' "$1" "$p" "$(peer_missing "$p")"; done
}

# One HTTP server under wrk, the way W4, W4S (https) and W6 load them: the server on CPU 0 (unless told it runs
# threads of its own), wrk -t2 on CPU 1, so that they do not fight for the two cores. The server prints
# its port (it picks a free one) and may print "pid=N" when a wrapper (an interpreter's shim) could stand
# between $! and the process whose CPU time counts. A warm-up load first, when asked, that nothing counts.
# One result line: req/s, the server's user + system CPU time over the load divided by the requests, p50
# and p99 as wrk prints them and p99_ms, wrk's errors.
load_server() { # workload impl connections seconds warm-up-seconds pin(1|0) log port-sed-script command...
    local w=$1 impl=$2 conns=$3 s=$4 warm=$5 pin="" load="" log=$7 script=$8 port="" pid spid t0 t1 res nreq cpu fb
    local scheme=http; [ "$w" = W4S ] && scheme=https
    if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then load="taskset -c 1"; [ "$6" = 1 ] && pin="taskset -c 0"; fi
    shift 8
    : >"$log" # here, not only in the child: the loop below must not read the last server's port
    $pin "$@" >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do # an interpreter or a JIT may take a few seconds to start on a busy machine
        port=$(sed -n "$script" "$log")
        [ -n "$port" ] && break
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "# $w $impl: the server did not start: $(head -c 300 "$log")" | tee /dev/stderr
        kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
        return
    fi
    spid=$(sed -n 's/.* pid=\([0-9]*\).*/\1/p' "$log"); [ -r "/proc/${spid:-x}/stat" ] || spid=$pid
    [ "$warm" -gt 0 ] && $load wrk -t2 -c"$conns" -d"${warm}s" "$scheme://127.0.0.1:$port/" >/dev/null 2>&1
    t0=$(awk '{print $14 + $15}' "/proc/$spid/stat")
    res=$($load wrk -t2 -c"$conns" -d"${s}s" --latency "$scheme://127.0.0.1:$port/" 2>&1)
    t1=$(awk '{print $14 + $15}' "/proc/$spid/stat" 2>/dev/null || echo "$t0")
    nreq=$(awk '/requests in/ {print $1}' <<<"$res")
    fb=$(uring_fallback "$log" "$w $impl")
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="${nreq:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.2f", (b - a) / hz * 1e6 / n; else print "?" }')
    # wrk prints a latency with its unit (us, ms, s, m); the report compares them in ms. Its errors, when
    # it has any, in one field without spaces: connect/read/write/timeout counts and non-2xx answers, or,
    # when it gave no result, its last words.
    awk -v w="$w" -v impl="$impl" -v cpu="$cpu" -v conns="$conns" -v fb="$fb" '
        function ms(x,   u) { u = x; sub(/^[0-9.]+/, "", u); x += 0
                             return u == "us" ? x / 1000 : u == "s" ? x * 1000 : u == "m" ? x * 60000 : x }
        /Requests\/sec/ { rps = $2 } $1 == "50%" { p50 = $2 } $1 == "99%" { p99 = $2 }
        /Socket errors/ { gsub(/,/, ""); err = "connect:" $4 ",read:" $6 ",write:" $8 ",timeout:" $10 }
        /Non-2xx/ { err = err (err == "" ? "" : ",") "non2xx:" $NF }
        NF { last = $0 }
        END { if (rps == "") { gsub(/[ \t]+/, "_", last); err = err (err == "" ? "" : ",") "no_result:" last }
              line = "workload=" w " impl=" impl " conns=" conns " rps=" rps " server_cpu_us_per_req=" cpu " p50=" p50 " p99=" p99
              if (p99 != "") line = line sprintf(" p99_ms=%.2f", ms(p99))
              # W6: each connection has one request in flight for 10 ms at the least
              if (w == "W6" && rps != "") line = line sprintf(" ceiling_pct=%.1f", rps / (conns * 100) * 100)
              print line (err != "" ? " errors=" err : "") fb }' <<<"$res"
    kill "$pid" "$spid" 2>/dev/null; wait "$pid" 2>/dev/null
}

# W4: the hello_server sample under the peers' exact load (wrk -t2 -c100): pinned with one thread,
# unpinned with two; on libev unless told io_uring. W4S: the same over https (--tls, with W4S's
# certificate).
w4_ours() { # threads impl-name [W4|W4S [backend]]
    local w=${3:-W4} tls=()
    [ "$w" = W4S ] && tls=(--tls "$w4s_cert" "$w4s_key")
    load_server "$w" "$2" 100 "$secs" 0 "$(($1 == 1))" "$out/w4-server.log" \
        's|^Serving on https\{0,1\}://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' \
        env ASYNC_BACKEND="${4:-libev}" "$build/samples/hello_server" --port 0 --threads "$1" --seconds $((secs + 3)) \
        ${tls[@]+"${tls[@]}"}
}

# W4S: W4 over https, the load and the measure W4's (wrk -t2 -c100 on CPU 1, the server on CPU 0, its
# CPU time per request), TLS 1.3 and HTTP/1.1 (wrk's) on kept connections: what TLS adds per request
# once the 100 handshakes are done. The peers, bench/w4tls/*_w4tls.*, each run as `PROGRAM PORT SECONDS
# CERT KEY`, serve a free port for port 0 and print "impl=NAME port=N". Their certificate (EC P-256,
# self-signed for localhost and 127.0.0.1; wrk does not verify it) is made once per run, in $BENCH_DIR.
w4s_out=$BENCH_OUT/w4tls w4s_cert=$out/w4s-cert.pem w4s_key=$out/w4s-key.pem
w4s_peers=("go|$w4s_out/go_w4tls" "node|node $here/w4tls/node_w4tls.js") # NAME|command, in the order they run
# Makes the certificate (a failure is why W4S cannot run, in w4s_why) and builds the Go peer once (a
# build that fails says why, in w4s_missing).
w4s_build() {
    mkdir -p "$w4s_out"
    rm -f "$w4s_out/go_w4tls" "$w4s_cert" "$w4s_key"
    if ! command -v openssl >/dev/null; then w4s_why="no openssl on PATH, to make its certificate"; return 1; fi
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$w4s_key" -out "$w4s_cert" \
        >"$out/w4s-openssl.log" 2>&1; then
        w4s_why="openssl could not make its certificate: $(head -c 200 "$out/w4s-openssl.log")"; return 1
    fi
    if command -v go >/dev/null; then
        (cd "$here/w4tls" && go build -o "$w4s_out/go_w4tls" go_w4tls.go) >"$w4s_out/go.log" 2>&1
    fi
    return 0
}
# Why a W4S implementation cannot run on this machine (nothing if it can).
w4s_missing() {
    case $1 in
    async.h*) [ -x "$build/samples/hello_server" ] || echo "no $build/samples/hello_server (make bench builds it)" ;;
    node) command -v node >/dev/null || echo "no node on PATH (Node.js 20)" ;;
    go) if ! command -v go >/dev/null; then echo "no go on PATH (Debian: golang-go)"
        elif [ ! -x "$w4s_out/go_w4tls" ]; then echo "go build failed: $(head -c 200 "$w4s_out/go.log")"; fi ;;
    esac
}
w4s_run() { # one run of every W4S implementation that can run here
    local e
    if [ -z "$(w4s_missing async.h)" ]; then w4_ours 1 async.h W4S; w4_ours 2 async.h-2threads W4S; fi
    for e in "${w4s_peers[@]}"; do
        [ -z "$(w4s_missing "${e%%|*}")" ] || continue
        # shellcheck disable=SC2086 # the command's words
        load_server W4S "${e%%|*}" 100 "$secs" 0 1 "$out/w4s-server.log" 's|^impl=[^ ]* port=\([0-9]*\).*|\1|p' \
            ${e#*|} 0 $((secs + 3)) "$w4s_cert" "$w4s_key"
    done
}

# W6: every request's handler awaits 10 ms (a stand-in for a backend) under wrk -t2 -c$w6_conns: the
# ceiling is w6_conns / 10 ms, 50,000 req/s for 500. Ours is bench/w6/w6.c; the peers, bench/w6/*_w6.*,
# each run as `PROGRAM PORT SECONDS`, serve a free port for port 0 and print "impl=NAME port=N".
w6_out=$BENCH_OUT/w6
w6_python=python-asyncio
command -v python3 >/dev/null && python3 -c 'import aiohttp' 2>/dev/null && w6_python=python-aiohttp
# NAME|command, in the order they run
w6_peers=("$w6_python|python3 $here/w6/asyncio_w6.py" "node|node $here/w6/node_w6.js" "go|$w6_out/go_w6"
          "c-raw-libev|$w6_out/libev_w6")
# Builds the compiled peers once (a build that fails says why, in w6_missing, instead of a run).
w6_build() {
    mkdir -p "$w6_out"
    rm -f "$w6_out/go_w6" "$w6_out/libev_w6"
    if command -v go >/dev/null; then
        (cd "$here/w6" && go build -o "$w6_out/go_w6" go_w6.go) >"$w6_out/go.log" 2>&1
    fi
    if [ -f /usr/include/ev.h ]; then
        cc -O2 -Wall -o "$w6_out/libev_w6" "$here/w6/libev_w6.c" -lev >"$w6_out/libev.log" 2>&1
    fi
}
# Why a W6 implementation cannot run on this machine (nothing if it can).
w6_missing() {
    case $1 in
    async.h) [ -x "$build/bench/w6/w6" ] || echo "no $build/bench/w6/w6 (make bench builds it)" ;;
    python-*) command -v python3 >/dev/null || echo "no python3 on PATH" ;;
    node) command -v node >/dev/null || echo "no node on PATH (Node.js 20)" ;;
    go) if ! command -v go >/dev/null; then echo "no go on PATH (Debian: golang-go)"
        elif [ ! -x "$w6_out/go_w6" ]; then echo "go build failed: $(head -c 200 "$w6_out/go.log")"; fi ;;
    c-raw-libev) if [ ! -f /usr/include/ev.h ]; then echo "no libev headers (Debian: libev-dev)"
                 elif [ ! -x "$w6_out/libev_w6" ]; then echo "cc failed: $(head -c 200 "$w6_out/libev.log")"; fi ;;
    esac
}
w6_run() { # one run of every W6 implementation that can run here
    local e
    for e in "async.h|$build/bench/w6/w6" "${w6_peers[@]}"; do
        [ -z "$(w6_missing "${e%%|*}")" ] || continue
        # shellcheck disable=SC2086 # the command's words
        load_server W6 "${e%%|*}" "$w6_conns" "$w6_secs" "$w6_warm" 1 "$out/w6-server.log" \
            's|^impl=[^ ]* port=\([0-9]*\).*|\1|p' ${e#*|} 0 $((w6_warm + w6_secs + 3))
    done
}
# 500 connections take 500 descriptors in wrk and 500 in the server: raise the soft limit (inherited by
# both) to what they need if it is lower, within the hard one; else w6_why says why W6 cannot run. Called
# in this shell, not in $(...), so that the limit stays raised.
w6_raise_fds() {
    local need=$((w6_conns + 64)) cur
    cur=$(ulimit -n)
    [ "$cur" = unlimited ] || [ "$cur" -ge "$need" ] || ulimit -n "$need" 2>/dev/null && return 0
    w6_why="the open-file limit ($cur, hard $(ulimit -Hn)) is below the $need that wrk -c$w6_conns needs"
    return 1
}

# W7: N reads of 4 KB at the LCG's offsets of one cached file, by C tasks (bench/w7.c says how). Ours
# on libev (the pool) and on io_uring; the peers, bench/w7/*_w7.*, each run as `PROGRAM FILE N C` and
# print one line in the peers' format: Go (goroutines, ReadAt), Node (FileHandle.read, libuv's pool),
# asyncio (run_in_executor over os.pread, as aiofiles), and one thread's pread loop, the floor.
w7_out=$BENCH_OUT/w7 w7_file=$build/bench/w7.dat
w7_peers=("go|$w7_out/go_w7" "node|node $here/w7/node_w7.js" "python-asyncio|python3 $here/w7/asyncio_w7.py"
          "c-pread|$w7_out/pread_w7") # NAME|command, in the order they run
# Makes the file once (W7 cannot run without it: w7_why) and builds the compiled peers (a build that
# fails says why, in w7_missing).
w7_build() {
    local size=$((w7_mib * 1048576))
    mkdir -p "$w7_out" "$(dirname "$w7_file")"
    if [ "$(stat -c %s "$w7_file" 2>/dev/null)" != "$size" ]; then
        if ! head -c "$size" /dev/urandom >"$w7_file.tmp" || [ "$(stat -c %s "$w7_file.tmp")" != "$size" ]; then
            rm -f "$w7_file.tmp"; w7_why="could not write $w7_mib MiB to $w7_file.tmp"; return 1
        fi
        mv "$w7_file.tmp" "$w7_file"
    fi
    rm -f "$w7_out/go_w7" "$w7_out/pread_w7"
    if command -v go >/dev/null; then
        (cd "$here/w7" && go build -o "$w7_out/go_w7" go_w7.go) >"$w7_out/go.log" 2>&1
    fi
    cc -O2 -Wall -o "$w7_out/pread_w7" "$here/w7/pread_w7.c" >"$w7_out/cc.log" 2>&1
    return 0
}
# Why a W7 implementation cannot run on this machine (nothing if it can).
w7_missing() {
    case $1 in
    async.h) [ -x "$build/bench/w7" ] || echo "no $build/bench/w7 (make bench builds it)" ;;
    async.h-io_uring) uring_missing "$build/bench/w7" ;;
    python-*) command -v python3 >/dev/null || echo "no python3 on PATH" ;;
    node) command -v node >/dev/null || echo "no node on PATH (Node.js 20)" ;;
    go) if ! command -v go >/dev/null; then echo "no go on PATH (Debian: golang-go)"
        elif [ ! -x "$w7_out/go_w7" ]; then echo "go build failed: $(head -c 200 "$w7_out/go.log")"; fi ;;
    c-pread) [ -x "$w7_out/pread_w7" ] || echo "cc failed: $(head -c 200 "$w7_out/cc.log")" ;;
    esac
}
w7_run() { # one run of every W7 implementation that can run here, each after the file is read whole
    local e name line fb
    for e in "async.h|env ASYNC_BACKEND=libev $build/bench/w7" "async.h-io_uring|env ASYNC_BACKEND=io_uring $build/bench/w7" \
             "${w7_peers[@]}"; do
        name=${e%%|*}
        [ -z "$(w7_missing "$name")" ] || continue
        cat "$w7_file" >/dev/null
        # shellcheck disable=SC2086 # the command's words
        line=$(${e#*|} "$w7_file" "$w7_n" "$w7_conc" 2>"$out/w7-stderr.log" | grep '^workload=W7 ')
        if [ -z "$line" ]; then
            echo "# W7 $name: no result line: $(head -c 300 "$out/w7-stderr.log")"; continue
        fi
        fb=$(uring_fallback "$out/w7-stderr.log" "W7 $name")
        echo "${line/ impl=async.h / impl=$name }$fb"
    done
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
    if { [ "$w" = W4 ] || [ "$w" = W4S ] || [ "$w" = W6 ]; } && ! command -v wrk >/dev/null; then
        skip_notes+=("skipped $w (ours and the peers'): no wrk on PATH (Debian: wrk)"); continue
    fi
    if [ "$w" = W6 ]; then
        w6_raise_fds || { skip_notes+=("skipped W6 (ours and the peers'): $w6_why"); continue; }
        w6_build
    fi
    if [ "$w" = W4S ]; then w4s_build || { skip_notes+=("skipped W4S (ours and the peers'): $w4s_why"); continue; }; fi
    if [ "$w" = W7 ]; then w7_build || { skip_notes+=("skipped W7 (ours and the peers'): $w7_why"); continue; }; fi
    expect "$w" >> "$expected"
    arg=$n; [ "$w" = W4 ] && arg=$secs
    [ "$w" = W4S ] && arg="$secs s over https"
    [ "$w" = W6 ] && arg="${w6_secs} s after ${w6_warm} s of warm-up, wrk -c$w6_conns"
    [ "$w" = W7 ] && arg="$w7_n reads of 4 KB by $w7_conc tasks, a $w7_mib MiB file"
    echo "# $w: $arg, $runs run(s) each" >&2
    for ((r = 0; r < runs; r++)); do
        case $w in
        W1) "$build/bench/w1" "$n"; BENCH_CALLOC=1 "$build/bench/w1" "$n" ;;
        W2) "$build/bench/w2" "$n" ;;
        W3) "$build/bench/w3" "$n" ;;
        W4) w4_ours 1 async.h
            [ -z "$(uring_missing "$build/samples/hello_server")" ] && w4_ours 1 async.h-io_uring W4 io_uring
            w4_ours 2 async.h-2threads ;;
        W5) "$build/bench/w5" "$n" ;;
        W4S) w4s_run; continue ;; # its peers are in w4s_run
        W6) w6_run; continue ;; # its peers are in w6_run
        W7) w7_run; continue ;; # its peers are in w7_run
        esac
        if [ "$have_peers" = 1 ]; then BENCH_PORT=${BENCH_PORT:-18091} "$peers/run-peers.sh" "$w" "$arg" 1 2>&1; fi
    done | tee -a "$raw" | grep -v '^#' >&2
done

# Medians and ratios. The figure of each workload (lower is better): W1 ns per task, W2 bytes per waiting
# task, W3 ns per switch, W4 and W4S server CPU us per request (req/s alongside), W5 ns per call, W6 server CPU us
# per request (req/s, its share of the ceiling and p99 in ms alongside: W6's goal is in those), W7 ns per
# read (reads/s alongside, in the CSV's rps_median). A ratio needs both figures: without asyncio's or raw
# libev's, it is n/a (and empty in the CSV). W7 has no raw libev; its floor is one thread's pread loop
# (c-pread), the ratio to which is its own column ("x/C pread"; impl_over_c_pread in the CSV), and the
# report says when W7's programs disagree on the checksum. A line marked fallback= (asked for io_uring,
# ran on libev) gives no figure: the report says why instead.
BENCH_SKIPPED=$(printf '%s\n' ${skip_notes[@]+"${skip_notes[@]}"}) \
awk -v csv="$out/results.csv" -v raw="$raw" -v expected="$expected" '
BEGIN { fig["W1"] = "ns_per_op"; fig["W2"] = "bytes_per_task"; fig["W3"] = "ns_per_switch";
        fig["W4"] = "server_cpu_us_per_req"; fig["W4S"] = "server_cpu_us_per_req"; fig["W5"] = "ns_per_op"; fig["W6"] = "server_cpu_us_per_req"; fig["W7"] = "ns_per_read"
        while ((getline l < expected) > 0) { split(l, e, "\t"); nexp++; ew[nexp] = e[1]; ei[nexp] = e[2]; why[e[2]] = e[3] } }
/^workload=/ {
    delete kv; nf = split($0, f, " ")
    for (i = 1; i <= nf; i++) { eq = index(f[i], "="); if (eq) kv[substr(f[i], 1, eq - 1)] = substr(f[i], eq + 1) }
    w = kv["workload"]; impl = kv["impl"]; val = kv[fig[w]]
    if (impl == "") next
    line[w, impl] = 1
    if (kv["fallback"] != "") { fell[w, impl]++; next }
    if (w == "W7" && kv["checksum"] != "" && !((kv["n"], kv["conc"], kv["checksum"]) in sums)) {
        sums[kv["n"], kv["conc"], kv["checksum"]] = 1
        if ((kv["n"], kv["conc"]) in sum1) sumdiff = sumdiff ", " impl " " kv["checksum"]
        else { sum1[kv["n"], kv["conc"]] = impl " " kv["checksum"] }
        if (sumdiff != "" && sumfirst == "") sumfirst = sum1[kv["n"], kv["conc"]]
    }
    if (val == "" && w == "W5") val = kv["ns_per_call"]
    if (val == "" && w == "W1" && kv["wall_s"] != "") { cnt = kv["n"] != "" ? kv["n"] : kv["N"]; if (cnt > 0) val = kv["wall_s"] * 1e9 / cnt }
    if (val == "" || val == "?") next
    key = w SUBSEP impl
    if (!(key in cnt_)) order[++norder] = key
    v[key, ++cnt_[key]] = val
    if (w == "W4" || w == "W4S" || w == "W6") rps[key, cnt_[key]] = kv["rps"]
    if (w == "W7") rps[key, cnt_[key]] = kv["reads_per_s"]
    if (w == "W6") { p99[key, cnt_[key]] = kv["p99_ms"]; pct[key, cnt_[key]] = kv["ceiling_pct"] }
}
function median(arr, key, m,   a, i, j, t) {
    for (i = 1; i <= m; i++) a[i] = arr[key, i] + 0
    for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
function base(w, impl) { return ((w SUBSEP impl) in cnt_) ? median(v, w SUBSEP impl, cnt_[w SUBSEP impl]) : 0 }
END {
    print "workload,impl,figure,median,runs,asyncio_over_impl,impl_over_raw_libev,rps_median,p99_ms_median,ceiling_pct_median,impl_over_c_pread" > csv
    last = ""
    for (k = 1; k <= norder; k++) {
        split(order[k], p, SUBSEP); w = p[1]; impl = p[2]
        if (w != last) {
            py = base(w, "python-asyncio"); lev = base(w, "c-raw-libev"); flo = w == "W7" ? base(w, "c-pread") : 0
            if (!py) py = base(w, "python-aiohttp") # W6 runs aiohttp where it is installed
            printf "\n%s (%s, lower is better)\n%-18s %12s %5s %12s %12s%s%s\n", w, fig[w], "impl", "median", "runs",
                   "asyncio/x", w == "W7" ? "x/C pread" : "x/raw libev",
                   w == "W4" || w == "W4S" || w == "W6" ? "        req/s" : w == "W7" ? "      reads/s" : "",
                   w == "W6" ? "  % of ceiling   p99 ms" : ""
            last = w
        }
        m = median(v, order[k], cnt_[order[k]])
        r = (w == "W4" || w == "W4S" || w == "W6" || w == "W7") ? median(rps, order[k], cnt_[order[k]]) : ""
        q = (w == "W6") ? sprintf("%.2f", median(p99, order[k], cnt_[order[k]])) : ""
        c = (w == "W6") ? sprintf("%.1f", median(pct, order[k], cnt_[order[k]])) : ""
        a = py && m ? sprintf("%.2f", py / m) : ""; b = lev ? sprintf("%.3f", m / lev) : ""
        fl = flo ? sprintf("%.3f", m / flo) : ""
        printf "%-18s %12.1f %5d %12s %12s%s%s\n", impl, m, cnt_[order[k]], a != "" ? sprintf("%.1fx", a) : "n/a",
               w == "W7" ? (fl != "" ? sprintf("%.2fx", fl) : "n/a") : b != "" ? sprintf("%.2fx", b) : "n/a",
               r != "" ? sprintf(" %12.0f", r) : "", w == "W6" ? sprintf(" %13s%% %8s", c, q) : ""
        printf "%s,%s,%s,%.2f,%d,%s,%s,%s,%s,%s,%s\n", w, impl, fig[w], m, cnt_[order[k]], a, b, r, q, c, fl >> csv
    }
    # One line for each implementation that was expected and gave no figure: why it could not run, or
    # which workloads lacked its figure.
    for (k = 1; k <= nexp; k++) {
        w = ew[k]; impl = ei[k]
        if ((w SUBSEP impl) in fell) {
            out[++nout] = impl " " w
            note[impl " " w] = impl ": io_uring was refused on this machine: " fell[w, impl] " run(s) of " w \
                " said \"io_uring unavailable\" and ran on libev, so they are not shown as io_uring figures" \
                " (what the program said: io_uring-fallback.txt beside " raw ")"
        }
        if ((w SUBSEP impl) in cnt_ || (impl in said) || (w SUBSEP impl) in fell) continue
        if (why[impl] != "") { said[impl] = 1; out[++nout] = impl; note[impl] = "skipped " impl ": " why[impl]; continue }
        if (!(impl in note)) out[++nout] = impl
        note[impl] = note[impl] (note[impl] == "" ? impl ": no figure for " : ", ") w \
            (((w SUBSEP impl) in line) ? " (its line has no " fig[w] ")" : " (no result line; see " raw ")")
    }
    skipped = ENVIRON["BENCH_SKIPPED"]
    if (nout || skipped != "" || sumdiff != "") print ""
    if (skipped != "") print skipped
    for (k = 1; k <= nout; k++) print note[out[k]]
    if (sumdiff != "") print "W7: the checksums differ, so not every program read the same blocks: " sumfirst sumdiff
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
