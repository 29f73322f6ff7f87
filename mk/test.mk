# The test runner: every test/test_NAME.c is one suite whose table is NAME_tests.
#   make test [T=filter]   the tests whose names contain the filter, with gcc (CC)
#   make valgrind [T=...]  the same under valgrind's memcheck
TEST_SRC   := $(wildcard test/test_*.c)
TEST_NAMES := $(TEST_SRC:test/test_%.c=%)
.PHONY: test valgrind FORCE

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
	$(Q)$(CC) $(ALL_CFLAGS) -I. -Itest -I$(BUILD)/test -DSAMPLES_DIR='"$(BUILD)/samples"' -DCOMPILE_FAIL_CC='"$(CC)"' \
	    test/runner.c -o $@ $(ALL_LDFLAGS) $(BUILD)/libasync.a $(LIBS) $(HTTP_LIBS)

# The test runner; `make test T=gather` runs the tests whose names contain "gather".
test: $(BUILD)/test/runner samples
	$(Q)$(BUILD)/test/runner $(T)

valgrind: $(BUILD)/test/runner samples
	$(Q)ASYNC_TEST_VALGRIND=1 valgrind -q --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --trace-children=no \
	    $(BUILD)/test/runner $(T)
