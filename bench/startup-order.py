#!/usr/bin/env python3
"""bench/startup-order.py STEPTRACE NONET NONET_DBG [TRACE]: the managed
methods that 'nonet true' runs, in the order it first reaches them, one
symbol a line: Nonet.Host/startup.order, which ILC lays out first
(IlcOrderFile), so that start-up touches a few pages of code instead of one
in every 64 KiB of it (issue 23).

Runs 'NONET true' under STEPTRACE (bench/steptrace.c), one instruction at a
time (a few minutes), or reads the addresses from TRACE, and names each
with NONET_DBG's symbols.  Run it as an ordinary user (as root, nonet takes
root's own path) after changing what the start-up path runs; 'make
startup-order' does.  A name the compiler no longer produces is ignored,
so a stale list costs page faults, never correctness.
"""
import bisect
import os
import re
import subprocess
import sys
import tempfile


def managed_code(dbg):
    """The [start, end) of the __managedcode section."""
    for line in subprocess.run(["readelf", "-SW", dbg], capture_output=True, text=True, check=True).stdout.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+__managedcode\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            start = int(m.group(1), 16)
            return start, start + int(m.group(2), 16)
    sys.exit("startup-order: no __managedcode section in " + dbg)


def functions(dbg):
    syms = []
    for line in subprocess.run(["nm", "-n", "--defined-only", dbg], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in "tT":
            syms.append((int(parts[0], 16), parts[2]))
    return syms


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.splitlines()[0])
    steptrace, nonet, dbg = sys.argv[1:4]
    start, end = managed_code(dbg)
    if len(sys.argv) == 5:
        trace = sys.argv[4]
    else:
        fd, trace = tempfile.mkstemp(prefix="nonet-steptrace.")
        os.close(fd)
        if os.geteuid() == 0:
            sys.exit("startup-order: run it as an ordinary user: as root, nonet takes root's own path")
        if subprocess.run([steptrace, trace, hex(start), hex(end), nonet, "true"]).returncode != 0:
            os.unlink(trace)
            sys.exit(f"startup-order: '{nonet} true' did not succeed under {steptrace}: no order written")
    syms = functions(dbg)
    addresses = [a for a, _ in syms]
    seen = set()
    with open(trace) as f:
        for line in f:
            address = int(line, 16)
            i = bisect.bisect_right(addresses, address) - 1
            if i < 0 or not start <= address < end:
                continue
            name = syms[i][1]
            if name not in seen:
                seen.add(name)
                print(name)
    if len(sys.argv) == 4:
        os.unlink(trace)


if __name__ == "__main__":
    main()
