# What CI runs: `make check`. The portable core (gcc, clang, freestanding Cortex-M3), an install used
# through pkg-config, the stages the other mk/ files add to CHECK_STAGES, and the test suite with clang,
# under ASan+UBSan, under valgrind and with gcc.
.PHONY: check check-portable check-install

check: check-portable check-install $(CHECK_STAGES)
	$(Q)$(MAKE) --no-print-directory test CC=clang BUILD=build-clang
	$(Q)$(MAKE) --no-print-directory test SANITIZE=1
	$(Q)$(MAKE) --no-print-directory valgrind
	$(Q)$(MAKE) --no-print-directory test

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
