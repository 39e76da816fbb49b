# make bench: nonet's fixed cost and throughput against its peers (issue 4),
# the cost of its port forwarding (issue 5), and real tools offline (issue
# 11; BENCH_ONLY=offline: only those), the cost of --report (issue 12;
# BENCH_ONLY=report), and --allow (issue 22; BENCH_ONLY=allow: its cost;
# BENCH_ONLY=registries: npm and dotnet against their real registries).
# Included from the top-level Makefile; BUILD, WARNINGS and LAUNCHER_CC come
# from there.  See BENCHMARKS.md for the latest results.

BENCH_BUILD  := $(BUILD)/bench
BENCH_CFLAGS := -std=c11 -O2 $(WARNINGS)

.PHONY: bench startup-order

bench: all $(BENCH_BUILD)/floor $(BENCH_BUILD)/harness $(BENCH_BUILD)/xfer
	@if [ "$(BENCH_ONLY)" != offline ] && [ "$(BENCH_ONLY)" != report ] && [ "$(BENCH_ONLY)" != allow ] \
	  && [ "$(BENCH_ONLY)" != registries ]; then \
	  bench/run.sh $(BUILD)/nonet $(BUILD)/nonet-launcher $(BENCH_BUILD)/floor $(BENCH_BUILD)/harness \
	    $(BENCH_BUILD)/xfer; fi
	@# Real tools that look up names, outside and inside nonet (issue 11):
	@# minutes of retries before nonet answered lookups, seconds now.
	@if [ -z "$(BENCH_ONLY)" ] || [ "$(BENCH_ONLY)" = offline ]; then \
	  echo; echo "== real tools offline (bench/offline-tools.sh)"; bench/offline-tools.sh $(abspath $(BUILD)/nonet); fi
	@# The cost of --report (issue 12; BENCH_ONLY=report: only this).
	@if [ -z "$(BENCH_ONLY)" ] || [ "$(BENCH_ONLY)" = report ]; then \
	  echo; echo "== the cost of --report (bench/report.py)"; bench/report.py $(abspath $(BUILD)/nonet); fi
	@if [ -z "$(BENCH_ONLY)" ] || [ "$(BENCH_ONLY)" = report ]; then \
	  echo; echo "== --report on a loopback request/response loop (bench/report-rtt.py)"; bench/report-rtt.py $(abspath $(BUILD)/nonet); fi
	@# The cost of --allow's connect hand-over (issue 22; BENCH_ONLY=allow: only this).
	@if [ -z "$(BENCH_ONLY)" ] || [ "$(BENCH_ONLY)" = allow ]; then \
	  echo; echo "== the cost of --allow (bench/allow.py)"; bench/allow.py $(abspath $(BUILD)/nonet); fi
	@# --allow against the real registries (issue 22; BENCH_ONLY=registries:
	@# only this). The one place where nonet is run against outside hosts.
	@if [ -z "$(BENCH_ONLY)" ] || [ "$(BENCH_ONLY)" = registries ]; then \
	  echo; echo "== --allow and the real registries (bench/allow-registries.sh)"; bench/allow-registries.sh $(abspath $(BUILD)/nonet); fi

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

# The order in which 'nonet true' first runs its managed methods, for ILC to
# lay them out together (IlcOrderFile, issue 23).  Run as an ordinary user
# after changing the start-up path, then rebuild; it single-steps one run
# (a few minutes).
$(BENCH_BUILD)/steptrace: bench/steptrace.c
	@mkdir -p $(BENCH_BUILD)
	$(CC) $(BENCH_CFLAGS) -o $@ $<

startup-order: $(BUILD)/nonet $(BUILD)/nonet-launcher $(BENCH_BUILD)/steptrace
	bench/startup-order.py $(BENCH_BUILD)/steptrace $(BUILD)/nonet $(BUILD)/publish/nonet.dbg > Nonet.Host/startup.order.new || { rm -f Nonet.Host/startup.order.new; exit 1; }
	mv Nonet.Host/startup.order.new Nonet.Host/startup.order
