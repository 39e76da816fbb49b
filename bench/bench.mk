# make bench: nonet's fixed cost and throughput against its peers (issue 4).
# Included from the top-level Makefile; BUILD, WARNINGS and LAUNCHER_CC come
# from there.  See BENCHMARKS.md for the latest results.

BENCH_BUILD  := $(BUILD)/bench
BENCH_CFLAGS := -std=c11 -O2 $(WARNINGS)

.PHONY: bench

bench: all $(BENCH_BUILD)/floor $(BENCH_BUILD)/harness
	bench/run.sh $(BUILD)/nonet $(BUILD)/nonet-launcher $(BENCH_BUILD)/floor $(BENCH_BUILD)/harness

# The floor is linked like the launcher (static, musl when present): the
# cheapest way to start a process, so that the comparison is with the floor.
$(BENCH_BUILD)/floor: bench/floor.c
	@mkdir -p $(BENCH_BUILD)
	$(LAUNCHER_CC) $(BENCH_CFLAGS) -static -o $@ $<

$(BENCH_BUILD)/harness: bench/harness.c
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) -o $@ $<
