# async.h — build and install the library and the samples. `make V=1` shows the commands.
# The other areas keep their rules in mk/: test.mk (the test runner), check.mk (what `make check` runs),
# bench.mk, thread.mk, firmware.mk, reliability.mk, lines.mk (`make lines`). mk/check.mk lists the stages `make check` runs.
CC      ?= cc
AR      ?= ar
PREFIX  ?= /usr/local
DESTDIR ?=
CFLAGS  ?= -O2 -g
ARM_CC  ?= arm-none-eabi-gcc

# Warnings the project is held to. (A local that would not survive an await is an error whatever the
# flags: async.h's coroutine macros turn the compilers' uninitialised-use warnings into errors.)
WARN := -std=c99 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wundef \
        -Wwrite-strings -Wuninitialized -Werror

ifeq ($(SANITIZE),1)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  BUILD    ?= build-san
endif
ifeq ($(SANITIZE),thread)
  SANFLAGS := -fsanitize=thread -fno-omit-frame-pointer
  BUILD    ?= build-tsan
endif
BUILD ?= build

ALL_CFLAGS  = $(WARN) -Iinclude -Isrc $(SANFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)
# What every program linked with libasync.a needs; HTTP adds libhttp-parser, libssl for https and TLS
# (src/tls.c), and libcrypto for TLS and WebSocket's SHA-1. Only the programs that call async_http_*,
# async_ws_* or the TLS calls pull in the objects that need them: a stream that never starts TLS reaches
# tls.c only through pointers, so plain network programs link without libssl.
LIBS      = -lev -luring -lpthread
HTTP_LIBS = -lhttp_parser -lssl -lcrypto

ifeq ($(V),1)
  Q :=
else
  Q := @
endif

HEADERS  := include/async.h $(wildcard include/async/*.h)
LIB_SRC  := $(wildcard src/*.c)
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/src/%.o)
SAMPLES  := $(basename $(notdir $(wildcard samples/*.c)))
SAMPLE_BIN := $(SAMPLES:%=$(BUILD)/samples/%)
# samples that use the HTTP client or server or TLS, and so link libhttp-parser and libssl
HTTP_SAMPLES := $(basename $(notdir $(shell grep -lE 'async_http_|async_tls_|_TLS_' samples/*.c)))
# samples that use SQLite, and so link libsqlite3 (Debian's libsqlite3-dev)
SQLITE_SAMPLES := $(basename $(notdir $(shell grep -l '<sqlite3.h>' samples/*.c)))

.DEFAULT_GOAL := all
-include $(wildcard mk/*.mk)

.PHONY: all lib samples run install clean

all: lib samples

lib: $(BUILD)/libasync.a

$(BUILD)/src/%.o: src/%.c $(HEADERS) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libasync.a: $(LIB_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

samples: $(SAMPLE_BIN)

$(BUILD)/samples/%: samples/%.c $(BUILD)/libasync.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) $< -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) \
	    $(if $(filter $*,$(HTTP_SAMPLES)),$(HTTP_LIBS)) $(if $(filter $*,$(SQLITE_SAMPLES)),-lsqlite3)

# Builds and runs the showcase sample: seed 001's gather of three tasks (3, 2 and 1 s) in 3 s.
run: $(BUILD)/samples/gather
	$(BUILD)/samples/gather

install: $(BUILD)/libasync.a
	install -d $(DESTDIR)$(PREFIX)/include/async $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/async.h $(DESTDIR)$(PREFIX)/include/async.h
	install -m 644 $(wildcard include/async/*.h) $(DESTDIR)$(PREFIX)/include/async/
	install -m 644 $(BUILD)/libasync.a $(DESTDIR)$(PREFIX)/lib/libasync.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(LIBS)|' async.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/async.pc
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBS@|$(HTTP_LIBS) $(LIBS)|' async-http.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/async-http.pc

clean:
	rm -rf build build-*
