# make bench: nonet's fixed cost and throughput against its peers (issue 4),
# and the cost of its port forwarding (issue 5).
# Included from the top-level Makefile; BUILD, WARNINGS and LAUNCHER_CC come
# from there.  See BENCHMARKS.md for the latest results.

BENCH_BUILD  := $(BUILD)/bench
BENCH_CFLAGS := -std=c11 -O2 $(WARNINGS)

.PHONY: bench

bench: all $(BENCH_BUILD)/floor $(BENCH_BUILD)/harness $(BENCH_BUILD)/xfer
	bench/run.sh $(BUILD)/nonet $(BUILD)/nonet-launcher $(BENCH_BUILD)/floor $(BENCH_BUILD)/harness \
	  $(BENCH_BUILD)/xfer

# The floor is linked like the launcher (static, musl when present): the
# cheapest way to start a process, so that the comparison is with the floor.
$(BENCH_BUILD)/floor: bench/floor.c
	@mkdir -p $(BENCH_BUILD)
	$(LAUNCHER_CC) $(BENCH_CFLAGS) -static -o $@ $<

$(BENCH_BUILD)/harness: bench/harness.c
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

# The two TCP ends of the forwarding measurements.  Dynamic: it runs on the
# host and, under nonet, on the same filesystem.
$(BENCH_BUILD)/xfer: bench/xfer.c
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) -o $@ $<
