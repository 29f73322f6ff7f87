# Threads: the tests that run threads (tagged "threads": the pool behind to_thread and the files, name
# resolution, remote calls, run_threads; see test/test.h) under ThreadSanitizer (`make test
# SANITIZE=thread`, see the Makefile's SANITIZE blocks). `make check` runs it.
#   make check-thread   those tests built with -fsanitize=thread
# Needs gcc's libtsan (Debian: libtsan2, pulled in by build-essential's gcc).

.PHONY: check-thread

check-thread:
	@echo "  CHECK   the tests tagged threads under ThreadSanitizer"
	$(Q)$(MAKE) --no-print-directory test SANITIZE=thread BUILD=$(BUILD)-tsan TAG=threads
