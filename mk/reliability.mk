# Reliability: fault injection over the test suite, fuzzing, soak, coverage.
#   make inject     every test again with its Nth allocation failing, then with its main task and then
#                   each task cancelled at its k-th suspension; ASan+UBSan+LeakSanitizer, census at the
#                   end (test/inject/inject.c). INJECT_MAX=n faults per test (default 120).
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (default 60) from its seed corpus (fuzz/);
#                   FUZZ_RUN_TARGETS="sim_ws sim_sched" runs some of them
#   make soak       10 million tasks in waves with RSS measured; 100,000 sleepers cancelled at random
#                   (test/test_soak.c at full size; `make test` runs the same tests small)
#   make coverage   the test suite built with gcov; gcovr's line and branch figures for async.h and src/
#   make check-reliability   the bounded ones `make check` runs: census, the three injections with a
#                   small INJECT_MAX, and FUZZ_CHECK_SECONDS (default 10) per fuzz target of FUZZ_CHECK_TARGETS
# Needs clang and libclang-rt-14-dev (libFuzzer), gcovr, binutils (addr2line).

INJECT_BUILD ?= build-san
INJECT_WRAP  := -Wl,--wrap=async_loop_init,--wrap=async_loop_free,--wrap=async_run,--wrap=async_spawn \
                -Wl,--wrap=async_loop_set_debug,--wrap=async_loop_trace_start,--wrap=exit
# The library's own calls of malloc, calloc and realloc (not the tests', not libc's or libev's) go to the
# injector: a copy of libasync.a with those symbols renamed.
INJECT_SYMS  := --redefine-sym malloc=__wrap_malloc --redefine-sym calloc=__wrap_calloc \
                --redefine-sym realloc=__wrap_realloc
INJECT_MAX   ?= 120
INJECT_CHECK_MAX ?= 12

.PHONY: inject inject-build inject-alloc inject-cancel inject-census check-reliability check-inject

# The driver links the test objects that mk/test.mk compiles (the suites, util.o, the generated list),
# with inject.o in the runner's place. (Listed here from test/ itself: test.mk is read after this file.)
INJECT_TEST_OBJ := $(patsubst test/%.c,$(BUILD)/test/%.o,$(sort $(wildcard test/test_*.c))) $(BUILD)/test/util.o \
                   $(BUILD)/test/list.o
$(BUILD)/inject/inject: $(BUILD)/inject/inject.o $(INJECT_TEST_OBJ) $(BUILD)/inject/libasync-inject.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(BUILD)/inject/inject.o $(INJECT_TEST_OBJ) -o $@ $(ALL_LDFLAGS) $(INJECT_WRAP) \
	    $(BUILD)/inject/libasync-inject.a $(LIBS) $(HTTP_LIBS)

$(BUILD)/inject/inject.o: test/inject/inject.c $(HEADERS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(TEST_CFLAGS) -c $< -o $@

-include $(wildcard $(BUILD)/inject/*.d)

$(BUILD)/inject/libasync-inject.a: $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	$(Q)objcopy $(INJECT_SYMS) $< $@

inject-build: $(BUILD)/inject/inject samples

# The drivers run in a sanitizer build of their own.
inject:
	$(Q)$(MAKE) --no-print-directory inject-build SANITIZE=1 BUILD=$(INJECT_BUILD)
	$(Q)INJECT_MAX=$(INJECT_MAX) $(INJECT_BUILD)/inject/inject census $(T)
	$(Q)INJECT_MAX=$(INJECT_MAX) $(INJECT_BUILD)/inject/inject alloc $(T)
	$(Q)INJECT_MAX=$(INJECT_MAX) $(INJECT_BUILD)/inject/inject cancel-main $(T)
	$(Q)INJECT_MAX=$(INJECT_MAX) $(INJECT_BUILD)/inject/inject cancel-each $(T)

# Left out of the bounded run, by the tags the tests carry (test/test.h says why): "waits" (a test that
# waits, by design, for a thread's work that a fault can prevent, and would sit out its time limit) and
# "slow" (the soak tests: every fault point would be another run of hundreds of thousands of tasks).
INJECT_CHECK_SKIP_TAGS ?= waits,slow
check-inject:
	$(Q)INJECT_SKIP_TAGS=$(INJECT_CHECK_SKIP_TAGS) INJECT_TIMEOUT=10 $(MAKE) --no-print-directory inject \
	    INJECT_MAX=$(INJECT_CHECK_MAX)
# One mode of the bounded run, for make check's parallel stages (the driver is built by check-build-san).
INJECT_MODES := census alloc cancel-main cancel-each
.PHONY: $(INJECT_MODES:%=check-inject-%)
$(INJECT_MODES:%=check-inject-%): check-inject-%:
	$(Q)INJECT_SKIP_TAGS=$(INJECT_CHECK_SKIP_TAGS) INJECT_TIMEOUT=10 INJECT_MAX=$(INJECT_CHECK_MAX) \
	    $(INJECT_BUILD)/inject/inject $*

# ---- fuzzing (clang's libFuzzer; the library built with clang, ASan+UBSan and fuzzer coverage) ----
FUZZ_BUILD   ?= $(BUILD)-fuzz
# The sim_ targets run their inputs over connections of the simulated world (async/sim.h, fuzz/fuzz_sim.h):
# a fresh world per input, its options and seed taken from the input, so that a crash replays from the
# input alone. The others (but sched, which is the core alone) use real sockets on 127.0.0.1.
FUZZ_TARGETS := sched readline http_request http_response sim_http_request sim_http_response sim_readline \
                sim_ws sim_sched
# What `make check` fuzzes (FUZZ_CHECK_SECONDS each): the core's scheduler and the simulated-world targets,
# which cover the real-socket targets' parsers and more (chunking and faults drawn from the input) at a
# deterministic replay; the real-socket ones stay in `make fuzz`.
FUZZ_CHECK_TARGETS ?= sched sim_http_request sim_http_response sim_readline sim_ws sim_sched
FUZZ_RUN_TARGETS ?= $(FUZZ_TARGETS)
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 10
FUZZ_CC      ?= clang
# FUZZ_FAST=1: coverage only, no ASan or UBSan (in build-fuzz-fast/): several times the executions per
# second, for long runs that go for numbers (a crash it finds is then replayed in the sanitizer build:
# `make fuzz-build && build-fuzz/fuzz/fuzz_NAME CRASH_FILE`). The default, and `make check`, sanitize.
ifeq ($(FUZZ_FAST),1)
  FUZZ_BUILD := $(BUILD)-fuzz-fast
  FUZZ_FLAGS := -g -O2 -fno-omit-frame-pointer
  # the library without compare and indirect-call tracing (they took 40% of the time): the parsers are
  # libhttp-parser's, which is not instrumented either way; edge coverage stays
  FUZZ_LIB_COV := -fsanitize=fuzzer-no-link -fno-sanitize-coverage=trace-cmp,indirect-calls
else
  FUZZ_FLAGS := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  FUZZ_LIB_COV := -fsanitize=fuzzer-no-link
endif
.PHONY: fuzz fuzz-build check-fuzz

$(FUZZ_BUILD)/fuzz/fuzz_sched: fuzz/fuzz_sched.c $(HEADERS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(FUZZ_CC) $(WARN) -Iinclude $(FUZZ_FLAGS) -fsanitize=fuzzer $< -o $@

$(FUZZ_BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_net.h fuzz/fuzz_sim.h $(HEADERS) $(FUZZ_BUILD)/libasync.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(FUZZ_CC) $(WARN) -Iinclude $(FUZZ_FLAGS) -fsanitize=fuzzer $< -o $@ $(FUZZ_BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

$(FUZZ_BUILD)/libasync.a: $(LIB_SRC) $(HEADERS) $(wildcard src/*.h) fuzz/sim-ignore.txt
	$(Q)$(MAKE) --no-print-directory lib CC=$(FUZZ_CC) BUILD=$(FUZZ_BUILD) SANFLAGS= \
	    CFLAGS="$(FUZZ_FLAGS) $(FUZZ_LIB_COV) -fsanitize-coverage-ignorelist=$(CURDIR)/fuzz/sim-ignore.txt"

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/fuzz_%)

# Each target for FUZZ_SECONDS from the seed corpus in fuzz/corpus/NAME; what it learns stays in
# $(FUZZ_BUILD)/corpus/NAME, crashes are written to $(FUZZ_BUILD)/crashes/.
fuzz: fuzz-build
	$(Q)mkdir -p $(FUZZ_BUILD)/crashes
	$(Q)for t in $(FUZZ_RUN_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	    echo "  FUZZ    $$t ($(FUZZ_SECONDS) s)"; \
	    $(FUZZ_BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=2048 -timeout=20 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/crashes/$$t- $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t 2>$(FUZZ_BUILD)/fuzz_$$t.log; \
	    rc=$$?; grep -E '^stat::number_of_executed_units|^stat::peak_rss|^#[0-9]+ +DONE' $(FUZZ_BUILD)/fuzz_$$t.log | tr '\n' ' '; echo; \
	    if [ $$rc -ne 0 ]; then grep -E 'invariant|ERROR|SUMMARY' $(FUZZ_BUILD)/fuzz_$$t.log | head -5; \
	        echo "  FAIL    fuzz_$$t: see $(FUZZ_BUILD)/fuzz_$$t.log"; exit 1; fi; \
	done

check-fuzz:
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) FUZZ_RUN_TARGETS="$(FUZZ_CHECK_TARGETS)"

# ---- soak: test/test_soak.c's tests at full size (`make test` runs them small) ----
.PHONY: soak
soak: $(BUILD)/test/runner
	$(Q)ASYNC_SOAK=full $(BUILD)/test/runner soak_

# ---- coverage: the test suite, the injection drivers and the fuzz corpus built with gcov, then gcovr ----
# The figure counts what three kinds of runs reach: the test suite; the allocation-failure and cancellation
# injection drivers (the out-of-memory and cancelled-at-every-await paths no single test takes), with at
# most COV_INJECT_MAX faults per test; and every input in fuzz/corpus replayed through its target
# (fuzz/replay.c instead of libFuzzer, so gcc's gcov sees it). COV_INJECT=0 leaves the drivers out (~30 s
# instead of ~5 min). The report: $(COV_BUILD)/coverage.html, a line per file with what was not reached.
COV_BUILD      ?= $(BUILD)-cov
COV_FLAGS      := -O0 -g --coverage -fprofile-update=atomic
COV_INJECT     ?= 1
COV_INJECT_MAX ?= 40
COV_GCOVR      := gcovr -r . $(COV_BUILD) --object-directory $(COV_BUILD) -f 'async\.h' -f 'src/' --exclude-unreachable-branches \
                  --exclude-throw-branches
.PHONY: coverage coverage-report

$(BUILD)/fuzz/replay_sched: fuzz/fuzz_sched.c fuzz/replay.c $(HEADERS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) fuzz/fuzz_sched.c fuzz/replay.c -o $@ $(ALL_LDFLAGS)

$(BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz_net.h fuzz/fuzz_sim.h $(HEADERS) $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $< fuzz/replay.c -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

coverage:
	$(Q)rm -rf $(COV_BUILD) && $(MAKE) --no-print-directory $(COV_BUILD)/test/runner samples \
	    $(FUZZ_TARGETS:%=$(COV_BUILD)/fuzz/replay_%) $(if $(filter 1,$(COV_INJECT)),$(COV_BUILD)/inject/inject) \
	    BUILD=$(COV_BUILD) CFLAGS="$(COV_FLAGS)" LDFLAGS="--coverage"
	$(Q)$(COV_BUILD)/test/runner >$(COV_BUILD)/test.log 2>&1 || { tail -5 $(COV_BUILD)/test.log; exit 1; }
	$(Q)tail -1 $(COV_BUILD)/test.log
	$(Q)for t in $(FUZZ_TARGETS); do $(COV_BUILD)/fuzz/replay_$$t fuzz/corpus/$$t >>$(COV_BUILD)/fuzz.log 2>&1 || \
	    { tail -5 $(COV_BUILD)/fuzz.log; exit 1; }; done; sed 's|^.*/||' $(COV_BUILD)/fuzz.log | tr '\n' ' '; echo
ifeq ($(COV_INJECT),1)
	$(Q)for m in alloc cancel-main cancel-each; do \
	    INJECT_MAX=$(COV_INJECT_MAX) INJECT_SKIP_TAGS=$(INJECT_CHECK_SKIP_TAGS) INJECT_TIMEOUT=10 \
	        $(COV_BUILD)/inject/inject $$m >$(COV_BUILD)/inject-$$m.log 2>&1 || { tail -5 $(COV_BUILD)/inject-$$m.log; exit 1; }; \
	    grep -E '^inject ' $(COV_BUILD)/inject-$$m.log; done
endif
	$(Q)$(MAKE) --no-print-directory coverage-report

coverage-report:
	$(Q)$(COV_GCOVR) --html-details -o $(COV_BUILD)/coverage.html -s | tail -3
	$(Q)$(COV_GCOVR) | grep -E '^(async\.h|src/)' | sort -k4 -n | cut -c1-100

check-reliability: check-inject check-fuzz
