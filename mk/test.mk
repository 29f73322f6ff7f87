# The test runner. Every test/test_SUITE.c is a translation unit of its own; test/util.c holds the
# helpers they share; the list of tests is generated from their TEST lines (test/list.awk), so a test is
# written once and listed nowhere else (see test/test.h).
#   make test [T=text] [TAG=tags] [SKIP_TAG=tags]   the tests whose names begin with the text (T=sync_:
#                                                  test/test_sync.c) or, if none does, contain it, and that
#                                                  carry one of the tags / none of them; with gcc (CC)
#   make valgrind [T=...]                          the same under valgrind's memcheck
# TEST_JOBS=n tests run at once (default: the number of CPUs); their output is printed in list order.
TEST_SRC     := $(sort $(wildcard test/test_*.c))
TEST_OBJ     := $(TEST_SRC:test/%.c=$(BUILD)/test/%.o)
TEST_SUPPORT := $(BUILD)/test/util.o $(BUILD)/test/list.o
TEST_CFLAGS   = $(ALL_CFLAGS) -I. -Itest -DSAMPLES_DIR='"$(BUILD)/samples"' -MMD -MP
TEST_JOBS    ?= $(shell getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
TEST_ARGS     = -j $(TEST_JOBS) $(if $(TAG),--tag $(TAG)) $(if $(SKIP_TAG),--skip-tag $(SKIP_TAG)) $(T)
.PHONY: test valgrind FORCE

# Written again at every build, replaced only when it changes (a test added, renamed, moved or removed).
# The scratch file is the shell's own ($$): make check's stages run sub-makes in one build directory at once.
$(BUILD)/test/list.c: FORCE
	@mkdir -p $(dir $@)
	$(Q)t=$@.$$$$.tmp; awk -f test/list.awk $(TEST_SRC) > $$t || { rm -f $$t; exit 1; }; \
	    cmp -s $$t $@ && rm -f $$t || mv $$t $@

FORCE:

# $(HEADERS) by name: gcc's -MMD leaves out what async.h includes, as async.h marks itself a system header
$(BUILD)/test/%.o: test/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/test/list.o: $(BUILD)/test/list.c
	$(Q)$(CC) $(TEST_CFLAGS) -c $< -o $@

$(BUILD)/test/runner: $(BUILD)/test/runner.o $(TEST_SUPPORT) $(TEST_OBJ) $(BUILD)/libasync.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(BUILD)/test/runner.o $(TEST_SUPPORT) $(TEST_OBJ) -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) \
	    $(HTTP_LIBS)

-include $(wildcard $(BUILD)/test/*.d)

test: $(BUILD)/test/runner samples
	$(Q)$(BUILD)/test/runner $(TEST_ARGS)

# Each test's process is a fork of the runner, so memcheck follows it; memcheck writes its reports to
# the terminal itself, as they come, not into the test's output that the runner prints in order.
valgrind: $(BUILD)/test/runner samples
	$(Q)ASYNC_TEST_VALGRIND=1 valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no \
	    $(BUILD)/test/runner $(TEST_ARGS)
