# Firmware: every hosted sample that needs only the core, compiled for a Cortex-M3 (QEMU mps2-an385) and an
# RV32 (QEMU virt), plus an ISR test: no OS, no malloc, picolibc as the C library. countdown, gather and
# cancel are also built with the minimal core (ASYNC_CONFIG_MINIMAL), with a test of its own.
#   make firmware        builds the images and prints their sizes and the bytes the core adds, default
#                        and minimal
#   make test-firmware   runs them in QEMU and compares their output with the hosted samples' under the
#                        virtual clock (and requires a deliberately failing and a hung image to fail, and
#                        the minimal Cortex-M3 countdown and gather to keep the core within 2 KB and 2.5 KB)
#   make check-firmware  the core alone for RV32, then both of the above (part of `make check`)
# Needs gcc-arm-none-eabi, gcc-riscv64-unknown-elf, picolibc-arm-none-eabi, picolibc-riscv64-unknown-elf,
# qemu-system-arm and qemu-system-misc.

RV_CC      ?= riscv64-unknown-elf-gcc
QEMU_ARM   ?= qemu-system-arm
QEMU_RV32  ?= qemu-system-riscv32
FW_CFLAGS  ?= -Os -g
FW_TIMEOUT ?= 20

# The board support lives in ports/ (a folder per board, the port glue, the C library shim, the size
# probe); the QEMU check and the images it must fail live in test/firmware/.
FW_PORTS   := ports
FW_TEST    := test/firmware
FW_BUILD   := $(BUILD)/firmware
FW_BOARDS  := mps2-an385 virt-rv32
# The samples the size table shows, and the other samples that need only the core (no sockets, files,
# threads, nor the hosted loop's debug mode): every one runs on both boards.
FW_SAMPLES := countdown gather cancel
FW_TOOLKIT := hello_world say_hello greet_value tasks_sequential create_task gather_tasks gather_list \
              gather_first async_range async_with try_except risky_task faulty_coroutine return_exceptions \
              retry_backoff fetch_data send_email producer_consumer task_queue
FW_RUN     := $(FW_SAMPLES) $(FW_TOOLKIT)
FW_IMAGES  := $(FW_SAMPLES) baseline isr fail hang

# Per board: its folder, compiler, target flags, binutils prefix, QEMU command line, extra startup objects.
FW_PATH_mps2-an385  = $(FW_PORTS)/arm/mps2-an385
FW_CC_mps2-an385    = $(ARM_CC)
FW_ARCH_mps2-an385  = -mcpu=cortex-m3 -mthumb
FW_TOOLS_mps2-an385 = arm-none-eabi-
FW_QEMU_mps2-an385  = $(QEMU_ARM) -M mps2-an385 -semihosting-config enable=on,target=native
FW_START_mps2-an385 =
# -misa-spec=2.2: csrr/csrw assemble (Zicsr is part of I there) and the rv32imac/ilp32 libgcc is kept
FW_PATH_virt-rv32   = $(FW_PORTS)/riscv/virt-rv32
FW_CC_virt-rv32     = $(RV_CC)
FW_ARCH_virt-rv32   = -march=rv32imac -mabi=ilp32 -misa-spec=2.2
FW_TOOLS_virt-rv32  = riscv64-unknown-elf-
FW_QEMU_virt-rv32   = $(QEMU_RV32) -M virt -bios none
FW_START_virt-rv32  = start.o

# -icount: the board's time follows the instructions run, so every run prints the same
FW_QEMU_RUN = -nographic -monitor none -serial stdio -icount shift=0,sleep=off -kernel

# The C library is picolibc (Debian's picolibc-arm-none-eabi and picolibc-riscv64-unknown-elf): its
# headers through its specs file, its libc.a at the link, with the board's own reset code and link.ld
# rather than picolibc's crt0 and picolibc.ld.
FW_LIBC    = --specs=picolibc.specs
# The project's warnings, freestanding; port.h declares async_main for the hosted samples.
FW_ALL_CFLAGS = $(WARN) -ffreestanding -ffunction-sections -fdata-sections $(FW_LIBC) \
                -I$(FW_PORTS)/common -Iinclude -include $(FW_PORTS)/common/port.h $(FW_CFLAGS)
FW_COMMON  := core port board
FW_HEADERS := $(HEADERS) $(wildcard $(FW_PORTS)/common/*.h)
# Where an image's objects come from: the port glue, the size probe and its baseline, the check's own
# images, the hosted samples; and the board's folder (board.c).
FW_SRC_DIRS = $(FW_PORTS)/common $(FW_PORTS)/sizes $(FW_TEST) samples $(FW_PATH_$(1))

# picolibc's printf comes in three builds; an image links the integer-only one (no %f: the smallest)
# unless it prints floating point, then the one for doubles.
FW_PRINTF = __i_vfprintf
$(foreach s,retry_backoff return_exceptions,$(FW_BUILD)/%/$(s).elf): FW_PRINTF = __d_vfprintf

.PHONY: firmware test-firmware check-firmware check-firmware-core

# Every board is built twice: the default build in $(FW_BUILD)/BOARD and the minimal one (async.h's
# ASYNC_CONFIG_MINIMAL: the features a small board can do without are configured out) in
# $(FW_BUILD)/BOARD-minimal, for the samples of the size table. A build folder's board and defines:
FW_MINIMAL     := -DASYNC_CONFIG_MINIMAL=1
FW_MIN_IMAGES  := $(FW_SAMPLES)
# and the minimal core's own check, compared with its expected text (test/firmware/minimal.c)
FW_MIN_TESTS   := minimal
# The most core-flash the minimal builds may take on the Cortex-M3 (make test-firmware fails beyond).
FW_MIN_LIMIT_countdown := 2048
FW_MIN_LIMIT_gather    := 2560
FW_DIRS        := $(FW_BOARDS) $(FW_BOARDS:=-minimal)
$(foreach b,$(FW_BOARDS),$(eval FW_BOARD_$(b) := $(b))$(eval FW_BOARD_$(b)-minimal := $(b)) \
    $(eval FW_DEFS_$(b)-minimal := $(FW_MINIMAL)))

# One build folder's object from one source folder ($(1) the folder, $(2) the sources, $(3) the board).
define FW_OBJ
$(FW_BUILD)/$(1)/obj/%.o: $(2)/%.c $(FW_HEADERS)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  CC      $$< ($(1))")
	$$(Q)$$(FW_CC_$(3)) $$(FW_ARCH_$(3)) $$(FW_ALL_CFLAGS) $$(FW_DEFS_$(1)) $$(FW_EXTRA_CFLAGS) -c $$< -o $$@
endef

# One build folder's rules: objects, images (with a map file each), and the type-size probe.
define FW_BOARD
$(foreach d,$(call FW_SRC_DIRS,$(2)),$(call FW_OBJ,$(1),$(d),$(2))
)
$(FW_BUILD)/$(1)/obj/start.o: $(FW_PATH_$(2))/start.S
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  AS      $$<")
	$$(Q)$$(FW_CC_$(2)) $$(FW_ARCH_$(2)) -c $$< -o $$@

$(FW_BUILD)/$(1)/%.elf: $(FW_BUILD)/$(1)/obj/%.o $(addprefix $(FW_BUILD)/$(1)/obj/,$(FW_START_$(2)) \
                        $(FW_COMMON:%=%.o)) $(FW_PATH_$(2))/link.ld
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(FW_CC_$(2)) $$(FW_ARCH_$(2)) $$(FW_LIBC) -nostartfiles -T $(FW_PATH_$(2))/link.ld \
	    -Wl,--gc-sections -Wl,--defsym=vfprintf=$$(FW_PRINTF) -Wl,-Map=$$(@:.elf=.map) $$(filter %.o,$$^) -o $$@
endef
$(foreach d,$(FW_DIRS),$(eval $(call FW_BOARD,$(d),$(FW_BOARD_$(d)))))

FW_ALL  := $(sort $(FW_IMAGES) $(FW_RUN))
FW_ELFS := $(foreach b,$(FW_BOARDS),$(FW_ALL:%=$(FW_BUILD)/$(b)/%.elf) \
               $(FW_MIN_IMAGES:%=$(FW_BUILD)/$(b)-minimal/%.elf) $(FW_MIN_TESTS:%=$(FW_BUILD)/$(b)-minimal/%.elf))
.SECONDARY: $(foreach d,$(FW_DIRS),$(addprefix $(FW_BUILD)/$(d)/obj/,$(FW_IMAGES:=.o) $(FW_TOOLKIT:=.o) $(FW_MIN_TESTS:=.o) \
                                      $(FW_COMMON:=.o) start.o sizes.o))

firmware: $(FW_ELFS) $(FW_DIRS:%=$(FW_BUILD)/%/obj/sizes.o)
	$(Q)$(foreach b,$(FW_BOARDS),sh $(FW_PORTS)/sizes/sizes.sh $(b) $(FW_TOOLS_$(b))size $(FW_TOOLS_$(b))nm \
	    $(FW_BUILD)/$(b)/obj/sizes.o $(FW_BUILD)/$(b)/obj/core.o $(FW_IMAGES:%=$(FW_BUILD)/$(b)/%.elf) && \
	    sh $(FW_PORTS)/sizes/sizes.sh $(b)-minimal $(FW_TOOLS_$(b))size $(FW_TOOLS_$(b))nm \
	    $(FW_BUILD)/$(b)-minimal/obj/sizes.o $(FW_BUILD)/$(b)-minimal/obj/core.o \
	    $(FW_MIN_IMAGES:%=$(FW_BUILD)/$(b)-minimal/%.elf) &&) true

# Each sample against its hosted run (and the hand-rolled baseline against gather's); the ISR test
# against its expected text; then the deliberately
# failing image must fail the comparison (status 1) and the hung one the time limit (status 2).
test-firmware: $(FW_ELFS) $(FW_RUN:%=$(BUILD)/samples/%)
	@echo "  CHECK   firmware images in QEMU: $(FW_BOARDS)"
	$(Q)$(foreach b,$(FW_BOARDS),$(foreach s,$(FW_RUN), \
	    FW_TIMEOUT=$(FW_TIMEOUT) sh $(FW_TEST)/run.sh -h $(BUILD)/samples/$(s) $(b)/$(s) -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)/$(s).elf &&) \
	    $(foreach s,$(FW_MIN_IMAGES), \
	    FW_TIMEOUT=$(FW_TIMEOUT) sh $(FW_TEST)/run.sh -h $(BUILD)/samples/$(s) $(b)-minimal/$(s) -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)-minimal/$(s).elf &&) \
	    FW_TIMEOUT=$(FW_TIMEOUT) sh $(FW_TEST)/run.sh -e $(FW_TEST)/minimal.expected $(b)-minimal/minimal -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)-minimal/minimal.elf && \
	    FW_TIMEOUT=$(FW_TIMEOUT) sh $(FW_TEST)/run.sh -h $(BUILD)/samples/gather $(b)/baseline -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)/baseline.elf && \
	    FW_TIMEOUT=$(FW_TIMEOUT) sh $(FW_TEST)/run.sh -e $(FW_TEST)/isr.expected $(b)/isr -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)/isr.elf &&) true
	$(Q)$(foreach b,$(FW_BOARDS), \
	    { sh $(FW_TEST)/run.sh -e $(FW_TEST)/fail.expected $(b)/fail -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)/fail.elf 2>/dev/null; rc=$$?; \
	      if [ $$rc -eq 1 ]; then echo "  PASS    $(b)/fail failed the check, as it must"; \
	      else echo "  FAIL    $(b)/fail: the check returned $$rc, not 1"; exit 1; fi; } && \
	    { FW_TIMEOUT=2 sh $(FW_TEST)/run.sh -e $(FW_TEST)/fail.expected $(b)/hang -- \
	        $(FW_QEMU_$(b)) $(FW_QEMU_RUN) $(FW_BUILD)/$(b)/hang.elf 2>/dev/null; rc=$$?; \
	      if [ $$rc -eq 2 ]; then echo "  PASS    $(b)/hang hit the time limit, as it must"; \
	      else echo "  FAIL    $(b)/hang: the check returned $$rc, not 2"; exit 1; fi; } &&) true
	$(Q)$(foreach s,countdown gather, \
	    n=$$(sh $(FW_PORTS)/sizes/sizes.sh --core $(FW_BUILD)/mps2-an385-minimal/$(s).map) && \
	    if [ "$$n" -gt 0 ] && [ "$$n" -le $(FW_MIN_LIMIT_$(s)) ]; then \
	        echo "  PASS    mps2-an385-minimal/$(s): core-flash $$n <= $(FW_MIN_LIMIT_$(s)) bytes"; \
	    else echo "  FAIL    mps2-an385-minimal/$(s): core-flash $$n, more than $(FW_MIN_LIMIT_$(s)) bytes"; \
	         exit 1; fi &&) true

# The portable core alone for RV32, as check-portable does for Cortex-M3, in the default and the minimal
# configuration: no header beyond the compiler's freestanding ones.
check-firmware-core:
	@echo "  CHECK   async.h core: $(RV_CC) rv32imac"
	$(Q)mkdir -p $(FW_BUILD) && printf '#define ASYNC_IMPLEMENTATION\n#include "async.h"\n' > $(FW_BUILD)/core_check.c
	$(Q)$(RV_CC) $(FW_ARCH_virt-rv32) -Os -std=c99 -ffreestanding -Wall -Wextra -Wpedantic -Werror \
	    -nostdinc -isystem $$($(RV_CC) -print-file-name=include) -Iinclude -c $(FW_BUILD)/core_check.c \
	    -o $(FW_BUILD)/core_rv32.o
	$(Q)$(RV_CC) $(FW_ARCH_virt-rv32) -Os -std=c99 -ffreestanding -Wall -Wextra -Wpedantic -Werror \
	    -nostdinc -isystem $$($(RV_CC) -print-file-name=include) -Iinclude $(FW_MINIMAL) \
	    -c $(FW_BUILD)/core_check.c -o $(FW_BUILD)/core_rv32_minimal.o
	$(Q)riscv64-unknown-elf-size $(FW_BUILD)/core_rv32.o $(FW_BUILD)/core_rv32_minimal.o

check-firmware: check-firmware-core firmware test-firmware

