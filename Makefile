# async.h — build, test, install.  `make V=1` shows the commands.
CC      ?= cc
AR      ?= ar
PREFIX  ?= /usr/local
DESTDIR ?=
CFLAGS  ?= -O2 -g
ARM_CC  ?= arm-none-eabi-gcc

# Warnings the project is held to. -Wjump-misses-init and -Wuninitialized catch automatic locals that
# would not survive an await (see async.h); -Wjump-misses-init exists in gcc only.
WARN := -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wundef \
        -Wwrite-strings -Wuninitialized -Werror
WARN += $(shell $(CC) -Wjump-misses-init -Werror -x c -c /dev/null -o /dev/null 2>/dev/null && echo -Wjump-misses-init)

ifeq ($(SANITIZE),1)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  BUILD    ?= build-san
endif
ifeq ($(SANITIZE),thread)
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
  BUILD    ?= build-tsan
endif
BUILD ?= build

ALL_CFLAGS  = $(WARN) -I. -Isrc $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
LIBS        = -lev -lpthread
# Areas with build rules of their own (firmware, network, ...) keep them in mk/*.mk; they may add to
# LIBS, CHECK_EXTRA (targets `make check` runs before the test suites) and .PHONY.
CHECK_EXTRA :=

ifeq ($(V),1)
  Q :=
else
  Q := @
endif

LIB_SRC  := $(wildcard src/*.c)
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/src/%.o)
SAMPLES  := $(basename $(notdir $(wildcard samples/*.c)))
SAMPLE_BIN := $(SAMPLES:%=$(BUILD)/samples/%)
TEST_SRC := $(wildcard test/test_*.c)

.DEFAULT_GOAL := all
-include $(wildcard mk/*.mk)

.PHONY: all lib samples test check check-portable check-install valgrind install clean bench bench-callgrind run

all: lib samples

lib: $(BUILD)/libasync.a

$(BUILD)/src/%.o: src/%.c async.h $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libasync.a: $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

samples: $(SAMPLE_BIN)

$(BUILD)/samples/%: samples/%.c $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS)

# Every test/test_NAME.c is one suite whose table is NAME_tests.
TEST_NAMES := $(TEST_SRC:test/test_%.c=%)

# Rewritten only when the list of suites changes (a file added with an old date still counts).
$(BUILD)/test/suites.h: FORCE
	@mkdir -p $(dir $@)
	$(Q){ $(foreach n,$(TEST_NAMES),echo '#include "test_$(n).c"';) \
	      printf 'static const test_case *const suites[] = {'; \
	      $(foreach n,$(TEST_NAMES),printf '$(n)_tests, ';) echo '};'; } > $@.tmp
	$(Q)cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

FORCE:

$(BUILD)/test/runner: test/runner.c $(wildcard test/*.h) $(TEST_SRC) $(BUILD)/test/suites.h $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Itest -I$(BUILD)/test -DSAMPLES_DIR='"$(BUILD)/samples"' -DCOMPILE_FAIL_CC='"$(CC)"' \
	    test/runner.c -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS)

# The test runner; `make test T=gather` runs the tests whose names contain "gather".
test: $(BUILD)/test/runner samples
	$(Q)$(BUILD)/test/runner $(T)

# Builds and runs the showcase sample: seed 001's gather of three tasks (3, 2 and 1 s) in 3 s.
run: $(BUILD)/samples/gather
	$(BUILD)/samples/gather

# Everything CI runs: clang and gcc, ASan+UBSan, valgrind, the portable core, an install; the plain
# gcc run last, so the final line is its "N passed, N failed".
check: check-portable check-install $(CHECK_EXTRA)
	$(Q)$(MAKE) --no-print-directory test CC=clang BUILD=build-clang
	$(Q)$(MAKE) --no-print-directory test SANITIZE=1
	$(Q)$(MAKE) --no-print-directory valgrind
	$(Q)$(MAKE) --no-print-directory test

# Installs into a scratch directory and builds a sample against it with pkg-config, as a user would.
check-install: $(BUILD)/libasync.a
	@echo "  CHECK   make install + pkg-config"
	$(Q)rm -rf $(BUILD)/stage && $(MAKE) --no-print-directory install DESTDIR=$(abspath $(BUILD))/stage PREFIX=/usr >/dev/null
	$(Q)PKG_CONFIG_SYSROOT_DIR=$(abspath $(BUILD))/stage PKG_CONFIG_LIBDIR=$(abspath $(BUILD))/stage/usr/lib/pkgconfig \
	    sh -c '$(CC) -std=c99 samples/hello_world.c $$(pkg-config --cflags async) -o $(BUILD)/stage/hello $$(pkg-config --libs async)'
	$(Q)ASYNC_CLOCK=virtual $(BUILD)/stage/hello >/dev/null 2>&1

# The portable core alone: strict C99 with gcc and clang, and freestanding Cortex-M3 with the compiler's
# own headers only (-nostdinc: no C library).
check-portable:
	@echo "  CHECK   async.h core: gcc, clang, $(ARM_CC)"
	$(Q)mkdir -p $(BUILD) && printf '#define ASYNC_IMPLEMENTATION\n#include "async.h"\n' > $(BUILD)/core_check.c
	$(Q)gcc   -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror -I. -c $(BUILD)/core_check.c -o /dev/null
	$(Q)clang -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror -I. -c $(BUILD)/core_check.c -o /dev/null
	$(Q)$(ARM_CC) -mcpu=cortex-m3 -mthumb -Os -std=c99 -ffreestanding -Wall -Wextra -Wpedantic -Werror \
	    -nostdinc -isystem $$($(ARM_CC) -print-file-name=include) -I. -c $(BUILD)/core_check.c -o $(BUILD)/core_m3.o
	$(Q)arm-none-eabi-size $(BUILD)/core_m3.o

valgrind: $(BUILD)/test/runner samples
	$(Q)ASYNC_TEST_VALGRIND=1 valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no \
	    $(BUILD)/test/runner $(T)

# Benchmarks: the core's primitives alone (ns, then instructions counted by callgrind), then W1..W5 beside
# the peers of ../shared/bench in one session, interleaved, medians of 3, with a CSV and an SVG chart.
# BENCH_QUICK=1: small sizes and one run. Pick workloads with BENCH_WORKLOADS="W1 W3".
BENCH_WORKLOADS ?=
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

$(BUILD)/bench/micro: bench/micro.c async.h
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WARN) -O2 -I. $(CFLAGS) $(if $(wildcard /usr/include/valgrind/callgrind.h),-DASYNC_BENCH_CALLGRIND) $< -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS)

install: $(BUILD)/libasync.a
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 async.h $(DESTDIR)$(PREFIX)/include/async.h
	install -m 644 $(BUILD)/libasync.a $(DESTDIR)$(PREFIX)/lib/libasync.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(LIBS)|' async.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/async.pc

clean:
	rm -rf build build-*
