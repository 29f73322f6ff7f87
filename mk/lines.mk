# The line table: each sample that mirrors a code block of the seed texts, its C lines beside the
# block's Python lines, the ratio, and the median and maximum ratio (mk/lines.py says how lines count).
#   make lines [SEEDS=dir]   the seed texts are looked for in ../shared/seeds beside this checkout
SEEDS ?=
.PHONY: lines
lines:
	$(Q)python3 mk/lines.py $(if $(SEEDS),--seeds $(SEEDS))
