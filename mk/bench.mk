# Benchmarks: the core's primitives alone (ns, then instructions counted by callgrind), then W1..W7 and W4S
# (W4 over https) beside the peers of ../shared/bench in one session by bench/run.sh (interleaved, medians
# of 3). What it prints is also written under $(BUILD)/bench: micro.txt, callgrind.txt, and run.sh's raw
# lines, report, CSV and SVG chart. Tracked files change only on request: BENCH_UPDATE=1 copies the CSV
# and the chart over bench/results.csv and bench/results.svg, which the README shows.
# BENCH_QUICK=1: small sizes and one run. BENCH_WORKLOADS="W1 W3": some workloads. PEERS=dir: the peers'
# folder. These and run.sh's other knobs (BENCH_N, RUNS, ...) reach it from make's command line.
BENCH_WORKLOADS ?=
BENCH_PROGS := $(BUILD)/bench/micro $(foreach w,w1 w2 w3 w5 w7,$(BUILD)/bench/$(w)) $(BUILD)/samples/hello_server \
               $(BUILD)/bench/w6/w6
.PHONY: bench bench-callgrind bench-w4 bench-w4s bench-w6 bench-w7
bench: SHELL := /bin/bash
bench: $(BENCH_PROGS)
	$(Q)set -o pipefail; $(BUILD)/bench/micro $(if $(filter 1,$(BENCH_QUICK)),small) | tee $(BUILD)/bench/micro.txt
	$(Q)set -o pipefail; $(MAKE) --no-print-directory bench-callgrind | tee $(BUILD)/bench/callgrind.txt
	$(Q)BUILD=$(abspath $(BUILD)) bench/run.sh $(BENCH_WORKLOADS)

# Instructions per operation of each core primitive (setup included), steady on a noisy machine.
bench-callgrind: $(BUILD)/bench/micro
	$(Q)for f in bench_resume bench_spawn bench_future bench_timers_in_order bench_timers; do \
	    valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=$(BUILD)/bench/cg.$$f \
	        $(BUILD)/bench/micro small $$f >$(BUILD)/bench/cg.$$f.txt 2>&1; \
	    awk -v f=$$f -F'ops=' '/ops=/ {ops = $$2} /Collected/ {split($$0, c, " "); ir = c[4]} \
	        END {printf "callgrind=%-22s instructions_per_op=%8.1f\n", f, ir / ops}' $(BUILD)/bench/cg.$$f.txt; \
	done

$(BUILD)/bench/micro: bench/micro.c bench/bench.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WARN) -O2 -Iinclude $(CFLAGS) $(if $(wildcard /usr/include/valgrind/callgrind.h),-DASYNC_BENCH_CALLGRIND) $< -o $@

$(BUILD)/bench/%: bench/%.c bench/bench.h $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS)

# W6's server, an HTTP one (its peers, bench/w6/*_w6.*, are built by run.sh, which skips those it cannot).
$(BUILD)/bench/w6/w6: bench/w6/w6.c $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

# W4 alone, ours (the hello_server sample, on libev and, when the build has it, on io_uring: the rows
# async.h and async.h-io_uring) and the peers', by the same runner as make bench, with its results under
# $(BUILD)/bench-w4.  make bench-w4 [W4_SECONDS=10] [RUNS=1]
W4_SECONDS ?= 10
bench-w4: $(BUILD)/samples/hello_server
	$(Q)BUILD=$(abspath $(BUILD)) BENCH_DIR=$(abspath $(BUILD))/bench-w4 BENCH_W4_SECONDS=$(W4_SECONDS) \
	    RUNS=$(or $(RUNS),1) bench/run.sh W4

# W4 and W4S in one session: the plain and the https rows (hello_server --tls; Go's and Node's TLS
# servers, bench/w4tls, built by run.sh), with their results under $(BUILD)/bench-w4s.
#   make bench-w4s [W4_SECONDS=10] [RUNS=1]
bench-w4s: $(BUILD)/samples/hello_server
	$(Q)BUILD=$(abspath $(BUILD)) BENCH_DIR=$(abspath $(BUILD))/bench-w4s BENCH_W4_SECONDS=$(W4_SECONDS) \
	    RUNS=$(or $(RUNS),1) bench/run.sh W4 W4S

# W6 alone (a 10 ms backend wait per request under wrk -c500), ours and its peers, with its results under
# $(BUILD)/bench-w6.  make bench-w6 [W6_SECONDS=10] [RUNS=1]
W6_SECONDS ?= 10
bench-w6: $(BUILD)/bench/w6/w6
	$(Q)BUILD=$(abspath $(BUILD)) BENCH_DIR=$(abspath $(BUILD))/bench-w6 BENCH_W6_SECONDS=$(W6_SECONDS) \
	    RUNS=$(or $(RUNS),1) bench/run.sh W6

# W7 alone (many concurrent 4 KB reads of a cached file), ours on libev and io_uring and its peers
# (bench/w7), with its results under $(BUILD)/bench-w7.  make bench-w7 [W7_N=200000] [W7_CONC=64] [RUNS=1]
# (BENCH_QUICK=1: 20000 reads unless W7_N says otherwise)
bench-w7: $(BUILD)/bench/w7
	$(Q)BUILD=$(abspath $(BUILD)) BENCH_DIR=$(abspath $(BUILD))/bench-w7 $(if $(W7_N),BENCH_W7_N=$(W7_N)) \
	    $(if $(W7_CONC),BENCH_W7_CONC=$(W7_CONC)) RUNS=$(or $(RUNS),1) bench/run.sh W7
