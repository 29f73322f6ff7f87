# The simulated world's scenarios (sim/): each runs over many seeds in a simulated loop (async/sim.h),
# and the runner checks what every run must leave behind; a failing seed is printed with the command
# that replays it.
#   make sim [SIM_SEEDS=n] [SIM_FIRST=s] [SIM=scenario]   n seeds per scenario (default 1000) from s
#   build/sim/sim SCENARIO --seed S                           one seed again
# `make check` runs `make sim` and `make sim-planted` with the default seeds (its stage check-sim).
SIM_SEEDS ?= 1000
SIM_FIRST ?= 1
SIM       ?=
SIM_OBJ   := $(patsubst sim/%.c,$(BUILD)/sim/%.o,$(sort $(wildcard sim/*.c)))

.PHONY: sim check-sim

$(BUILD)/sim/%.o: sim/%.c sim/sim.h $(HEADERS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -Isim $(SIM_CFLAGS) -c $< -o $@

$(BUILD)/sim/sim: $(SIM_OBJ) $(BUILD)/libasync.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SIM_OBJ) -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

sim: $(BUILD)/sim/sim
	$(Q)$(BUILD)/sim/sim $(SIM) --seeds $(SIM_SEEDS) --first $(SIM_FIRST)

check-sim:
	$(Q)$(MAKE) --no-print-directory sim
	$(Q)$(MAKE) --no-print-directory sim-planted

# The planted race (sim/http.c built with -DSIM_PLANTED_RACE=1, in a build of its own): the runner must
# find a failing seed within SIM_SEEDS and its replay must fail again with the same hash.
PLANTED_BUILD ?= $(BUILD)-planted
.PHONY: sim-planted
sim-planted:
	$(Q)$(MAKE) --no-print-directory BUILD=$(PLANTED_BUILD) SIM_CFLAGS=-DSIM_PLANTED_RACE=1 $(PLANTED_BUILD)/sim/sim
	$(Q)out=$$($(PLANTED_BUILD)/sim/sim http --seeds $(SIM_SEEDS) 2>&1); echo "$$out"; \
	seed=$$(echo "$$out" | sed -n 's/.*seed \([0-9]*\) FAILED.*/\1/p' | head -n 1); \
	if [ -z "$$seed" ]; then echo "  FAIL    the planted race was not found in $(SIM_SEEDS) seeds"; exit 1; fi; \
	echo "  found   the planted race at seed $$seed; replaying it twice:"; \
	a=$$($(PLANTED_BUILD)/sim/sim http --seed $$seed 2>&1 | grep -E 'FAILED|hash'); \
	b=$$($(PLANTED_BUILD)/sim/sim http --seed $$seed 2>&1 | grep -E 'FAILED|hash'); \
	echo "$$a"; \
	echo "$$a" | grep -q FAILED && [ "$$a" = "$$b" ] || { echo "  FAIL    the replay did not fail the same way"; exit 1; }; \
	echo "  PASS    the replay fails the same way, with the same hash"

# The world's speed with many connections at once (sim/bench/conns.c): events per second for 100, 1000
# and 3000 connections, or SIM_BENCH="n ...".
SIM_BENCH ?=
.PHONY: sim-bench
$(BUILD)/sim/bench/conns: sim/bench/conns.c $(BUILD)/libasync.a $(HEADERS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

sim-bench: $(BUILD)/sim/bench/conns
	$(Q)$(BUILD)/sim/bench/conns $(SIM_BENCH)
