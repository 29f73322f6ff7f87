# to_thread and files: the test suite under ThreadSanitizer (`make test SANITIZE=thread`, see the
# Makefile's SANITIZE blocks). `make check` runs it.
#   make check-thread   the thread tests (names starting with thread_) built with -fsanitize=thread
# Needs gcc's libtsan (Debian: libtsan2, pulled in by build-essential's gcc).

CHECK_STAGES += check-thread
.PHONY: check-thread

check-thread:
	@echo "  CHECK   thread tests under ThreadSanitizer"
	$(Q)$(MAKE) --no-print-directory test SANITIZE=thread BUILD=$(BUILD)-tsan T=thread_
