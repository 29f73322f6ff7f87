# What CI runs: `make check`. Every stage below, CHECK_JOBS at a time (default: the number of CPUs), each
# in a sub-make whose output goes to build/check/STAGE.log; a line per stage as it ends (PASS or FAIL
# with its time, and the end of its log when it fails), then the gcc suite's last line, "N passed, N
# failed". The stages share builds: build/ for the gcc suite, valgrind, the install, the firmware
# comparison and the C++ check; build-san/ for ASan+UBSan and the injection drivers.
#   make check [CHECK_JOBS=n]        everything
#   make check-STAGE                 one stage alone (check-gcc, check-valgrind, check-inject, ...)
CHECK_JOBS   ?= $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
CHECK_LOGS   := build/check
# the stages, longest first, so that the short ones fill the gaps
CHECK_ORDER  := inject-alloc valgrind inject-cancel-each inject-cancel-main fuzz clang tsan asan inject-census \
                gcc uring sim firmware cxx install portable
.PHONY: check check-portable check-install check-cxx check-gcc check-clang check-asan check-valgrind \
        check-build-gcc check-build-san check-uring check-sim $(CHECK_ORDER:%=check-stage-%)

check:
	@rm -rf $(CHECK_LOGS) && mkdir -p $(CHECK_LOGS)
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -k -j$(CHECK_JOBS) $(CHECK_ORDER:%=check-stage-%); rc=$$?; \
	echo "  check: $$(ls $(CHECK_LOGS)/*.pass 2>/dev/null | wc -l) stages passed, $$(ls $(CHECK_LOGS)/*.fail 2>/dev/null | wc -l) failed, in $$(( $$(date +%s) - start )) s"; \
	tail -n 1 $(CHECK_LOGS)/gcc.log 2>/dev/null; exit $$rc

# One stage: its sub-make's output into its log, a line when it ends. The builds the stages share come
# first (check-build-*), so that no two sub-makes write one build directory at once.
define CHECK_STAGE
check-stage-$(1): $(2)
	@s=$$$$(date +%s); \
	if $$(MAKE) --no-print-directory check-$(1) >$(CHECK_LOGS)/$(1).log 2>&1; then \
	    touch $(CHECK_LOGS)/$(1).pass; echo "  PASS    $(1) ($$$$(( $$$$(date +%s) - s )) s)"; \
	else \
	    touch $(CHECK_LOGS)/$(1).fail; echo "  FAIL    $(1) ($$$$(( $$$$(date +%s) - s )) s): $(CHECK_LOGS)/$(1).log ends:"; \
	    tail -n 30 $(CHECK_LOGS)/$(1).log | sed 's/^/    /'; exit 1; \
	fi
endef
CHECK_NEEDS_gcc      := check-build-gcc
CHECK_NEEDS_valgrind := check-build-gcc
CHECK_NEEDS_uring    := check-build-gcc
CHECK_NEEDS_sim      := check-build-gcc
CHECK_NEEDS_install  := check-build-gcc
CHECK_NEEDS_firmware := check-build-gcc
CHECK_NEEDS_cxx      := check-build-gcc
CHECK_NEEDS_asan     := check-build-san
CHECK_NEEDS_inject-census      := check-build-san
CHECK_NEEDS_inject-alloc       := check-build-san
CHECK_NEEDS_inject-cancel-main := check-build-san
CHECK_NEEDS_inject-cancel-each := check-build-san
$(foreach s,$(CHECK_ORDER),$(eval $(call CHECK_STAGE,$(s),$(CHECK_NEEDS_$(s)))))

check-build-gcc:
	@mkdir -p $(CHECK_LOGS) && $(MAKE) --no-print-directory all build/test/runner >$(CHECK_LOGS)/build-gcc.log 2>&1 || \
	    { echo "  FAIL    build (gcc): $(CHECK_LOGS)/build-gcc.log"; tail -n 30 $(CHECK_LOGS)/build-gcc.log; exit 1; }
check-build-san:
	@mkdir -p $(CHECK_LOGS) && $(MAKE) --no-print-directory SANITIZE=1 all build-san/test/runner build-san/inject/inject \
	    >$(CHECK_LOGS)/build-san.log 2>&1 || \
	    { echo "  FAIL    build (ASan): $(CHECK_LOGS)/build-san.log"; tail -n 30 $(CHECK_LOGS)/build-san.log; exit 1; }

# The suites. Each runs TEST_JOBS tests at once inside its stage.
check-gcc:
	$(Q)$(MAKE) --no-print-directory test
# clang also builds without the awaits inlined into coroutines (ASYNC_CONFIG_INLINE_AWAITS=0), so the whole
# suite runs through the calls into the core that -Os and firmware builds make, as gcc's runs the inline ones.
check-clang:
	$(Q)$(MAKE) --no-print-directory test CC=clang BUILD=build-clang CFLAGS="-O2 -g -DASYNC_CONFIG_INLINE_AWAITS=0"
check-asan:
	$(Q)$(MAKE) --no-print-directory test SANITIZE=1
check-valgrind:
	$(Q)$(MAKE) --no-print-directory valgrind
check-tsan: check-thread

# The suites that use the loop's backend, again on io_uring (ASYNC_BACKEND=io_uring; no valgrind on this
# pass: valgrind lets no other thread run while io_uring_enter blocks). Where the machine refuses
# io_uring (the kernel, a container's seccomp profile, kernel.io_uring_disabled) it says so and passes.
URING_SUITES := uring_ net_ http_ ws_ tls_ files_ thread_ signals_ samples_ loop_ deadline_ debug_
check-uring: $(BUILD)/test/runner samples
	$(Q)if $(BUILD)/test/runner uring_flags_and_environment_choose_the_backend | grep -q '^skip'; then \
	    echo "  SKIP    io_uring is refused on this machine: the suites ran on libev only"; exit 0; fi; \
	for p in $(URING_SUITES); do \
	    echo "  TEST    $$p on io_uring"; ASYNC_BACKEND=io_uring $(BUILD)/test/runner -j $(TEST_JOBS) $$p || exit 1; \
	done

# Installs into a scratch directory and builds two samples against it with pkg-config, as a user would:
# one without HTTP (async: no libhttp-parser needed) and one with it (async-http).
check-install: $(BUILD)/libasync.a
	@echo "  CHECK   make install + pkg-config"
	$(Q)rm -rf $(BUILD)/stage && $(MAKE) --no-print-directory install DESTDIR=$(abspath $(BUILD))/stage PREFIX=/usr >/dev/null
	$(Q)PKG_CONFIG_SYSROOT_DIR=$(abspath $(BUILD))/stage PKG_CONFIG_LIBDIR=$(abspath $(BUILD))/stage/usr/lib/pkgconfig \
	    sh -c '$(CC) -std=c99 samples/hello_world.c $$(pkg-config --cflags async) -o $(BUILD)/stage/hello $$(pkg-config --libs async) && \
	           $(CC) -std=c99 samples/fetch_json.c $$(pkg-config --cflags async-http) -o $(BUILD)/stage/fetch_json $$(pkg-config --libs async-http)'
	$(Q)ASYNC_CLOCK=virtual $(BUILD)/stage/hello >/dev/null 2>&1

# The portable core alone: strict C99 with gcc and clang, and freestanding Cortex-M3 with the compiler's
# own headers only (-nostdinc: no C library).
check-portable:
	@echo "  CHECK   async.h core: gcc, clang, $(ARM_CC)"
	$(Q)mkdir -p $(BUILD) && printf '#define ASYNC_IMPLEMENTATION\n#include "async.h"\n' > $(BUILD)/core_check.c
	$(Q)gcc   -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror -Iinclude -c $(BUILD)/core_check.c -o /dev/null
	$(Q)clang -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Werror -Iinclude -c $(BUILD)/core_check.c -o /dev/null
	$(Q)$(ARM_CC) -mcpu=cortex-m3 -mthumb -Os -std=c99 -ffreestanding -Wall -Wextra -Wpedantic -Werror \
	    -nostdinc -isystem $$($(ARM_CC) -print-file-name=include) -Iinclude -c $(BUILD)/core_check.c -o $(BUILD)/core_m3.o
	$(Q)arm-none-eabi-size $(BUILD)/core_m3.o

# C++: the headers, core and hosted, compile as C++17 and C++20 with g++ and clang++, and four samples
# built as C++ against libasync.a run and print what their C builds print.
CXX_SAMPLES := gather cancel return_exceptions file_io
check-cxx: $(BUILD)/libasync.a $(CXX_SAMPLES:%=$(BUILD)/samples/%)
	@echo "  CHECK   C++17 and C++20 with g++ and clang++: $(CXX_SAMPLES)"
	$(Q)mkdir -p $(BUILD)/cxx && printf '#include "async.h"\n' > $(BUILD)/cxx/header.cc
	$(Q)for cxx in g++ clang++; do for std in c++17 c++20; do \
	    $$cxx -std=$$std -Wall -Wextra -Wpedantic -Werror -Iinclude -c $(BUILD)/cxx/header.cc -o /dev/null || exit 1; \
	done; done
	$(Q)for cxx in g++ clang++; do for std in c++17 c++20; do for s in $(CXX_SAMPLES); do \
	    $$cxx -std=$$std -x c++ -Wall -Wextra -Wpedantic -Werror -Iinclude samples/$$s.c -x none -o $(BUILD)/cxx/$$s \
	        $(BUILD)/libasync.a $(LIBS) || exit 1; \
	    ASYNC_CLOCK=virtual $(BUILD)/cxx/$$s >$(BUILD)/cxx/$$s.out 2>&1; \
	    ASYNC_CLOCK=virtual $(BUILD)/samples/$$s >$(BUILD)/cxx/$$s.expected 2>&1; \
	    cmp -s $(BUILD)/cxx/$$s.out $(BUILD)/cxx/$$s.expected || \
	        { echo "  FAIL    $$s as $$std with $$cxx prints other lines"; diff $(BUILD)/cxx/$$s.expected $(BUILD)/cxx/$$s.out; exit 1; }; \
	done; done; done
