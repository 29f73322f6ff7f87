# The task timeline of the gather sample (seed 001: three tasks of 3, 2 and 1 s) under the virtual clock:
# its trace (ASYNC_TRACE, Chrome trace-event JSON: open it in ui.perfetto.dev) and that trace drawn as an
# SVG by tools/trace_svg.py (python3, its standard library only), copied to samples/gather-trace.svg,
# which the README shows.   make trace
.PHONY: trace
trace: $(BUILD)/samples/gather
	@mkdir -p $(BUILD)/trace
	$(Q)ASYNC_CLOCK=virtual ASYNC_TRACE=$(BUILD)/trace/gather.json $(BUILD)/samples/gather > $(BUILD)/trace/gather.txt
	$(Q)python3 tools/trace_svg.py $(BUILD)/trace/gather.json $(BUILD)/trace/gather.svg \
	    --title "samples/gather.c: three tasks started together, finished 1, 2, 3 s later (virtual clock)"
	$(Q)cp $(BUILD)/trace/gather.svg samples/gather-trace.svg
	@echo "  $(BUILD)/trace/gather.json (ui.perfetto.dev: Open trace file), $(BUILD)/trace/gather.svg, samples/gather-trace.svg"
