# The simulated world's scenarios (sim/): each runs over many seeds in a simulated loop (async/sim.h),
# and the runner checks what every run must leave behind; a failing seed is printed with the command
# that replays it.
#   make sim [SIM_SEEDS=n] [SIM_FIRST=s] [SIM=scenario]   n seeds per scenario (default 1000) from s
#   build/sim/sim SCENARIO --seed S                           one seed again
# `make check` runs `make sim` with the default seeds (its stage check-sim).
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
