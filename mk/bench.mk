# Benchmarks: the core's primitives alone (ns, then instructions counted by callgrind), then W1..W5 beside
# the peers of ../shared/bench in one session, interleaved, medians of 3, with a CSV and an SVG chart.
# BENCH_QUICK=1: small sizes and one run. Pick workloads with BENCH_WORKLOADS="W1 W3".
BENCH_WORKLOADS ?=
.PHONY: bench bench-callgrind
bench: $(BUILD)/bench/micro $(foreach w,w1 w2 w3 w4 w5,$(BUILD)/bench/$(w))
	$(Q)$(BUILD)/bench/micro $(if $(filter 1,$(BENCH_QUICK)),small)
	$(Q)$(MAKE) --no-print-directory bench-callgrind
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
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

# W4 beside the peers of ../shared/bench, in one session, with the peers' exact wrk command: our server
# pinned to CPU 0 (1 thread) or unpinned (2 threads), wrk -t2 -c100 on CPU 1.  make bench-w4 [W4_SECONDS=10]
W4_SECONDS ?= 10
W4_PORT ?= 18090
PEERS_DIR ?= ../shared/bench
.PHONY: bench-w4
bench-w4: SHELL := /bin/bash
bench-w4: $(BUILD)/bench/w4
	$(Q)for th in 1 2; do \
	    if [ $$th = 1 ]; then pin="taskset -c 0"; else pin=""; fi; \
	    $$pin $(BUILD)/bench/w4 W4 $(W4_PORT) $$(($(W4_SECONDS) + 3)) $$th >/dev/null & pid=$$!; \
	    for i in $$(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$(W4_PORT)) 2>/dev/null && break; sleep 0.1; done; \
	    t0=$$(awk '{print $$14 + $$15}' /proc/$$pid/stat); \
	    res=$$(taskset -c 1 wrk -t2 -c100 -d$(W4_SECONDS)s --latency http://127.0.0.1:$(W4_PORT)/ 2>&1); \
	    t1=$$(awk '{print $$14 + $$15}' /proc/$$pid/stat); \
	    nreq=$$(echo "$$res" | awk '/requests in/ {print $$1}'); \
	    cpu=$$(awk -v a=$$t0 -v b=$$t1 -v n=$${nreq:-0} -v hz=$$(getconf CLK_TCK) 'BEGIN { if (n > 0) printf "%.2f", (b - a) / hz * 1e6 / n; else print "?" }'); \
	    echo "workload=W4 impl=async.h-$${th}t rps=$$(echo "$$res" | awk '/Requests\/sec/ {print $$2}') server_cpu_us_per_req=$$cpu p50=$$(echo "$$res" | awk '$$1=="50%" {print $$2}') p99=$$(echo "$$res" | awk '$$1=="99%" {print $$2}')"; \
	    kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; \
	done; true
	$(Q)BENCH_OUT=$(abspath $(BUILD))/bench-peers BENCH_PORT=$$(($(W4_PORT) + 1)) $(PEERS_DIR)/run-peers.sh W4 $(W4_SECONDS) 1 2>&1 | grep -v "^#"
