#!/usr/bin/env python3
"""bench/report.py NONET: the cost of --report (issue 12), as the user who
runs it.  Interleaved runs with and without the option of:

  - `nonet true` (start-up: the filter, its listener handed over);
  - 1 GiB over 127.0.0.1 inside (one TCP connection, sendall() of 1 MiB
    buffers, so every send() goes through nonet's filter);
  - 20,000 UDP datagrams to 127.0.0.1 inside, one sendto() each (the
    per-call round trip through nonet).

Prints the medians and interquartile ranges."""
import os, statistics, subprocess, sys, time

nonet = sys.argv[1]
rounds = int(os.environ.get("BENCH_REPORT_ROUNDS", "100"))

TRANSFER = r"""
import socket, sys, threading, time
total = 1 << 30
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
def sink():
    c, _ = server.accept(); n = 0
    while True:
        b = c.recv(1 << 20)
        if not b: break
        n += len(b)
    assert n == total
t = threading.Thread(target=sink); t.start()
client = socket.create_connection(server.getsockname())
block = b"x" * (1 << 20); start = time.perf_counter()
for _ in range(total >> 20): client.sendall(block)
client.close(); t.join()
print(time.perf_counter() - start)
"""

DATAGRAMS = r"""
import socket, time
n = 20000
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0))
r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); to = r.getsockname(); start = time.perf_counter()
for i in range(n):
    s.sendto(b"x", to)
    if i % 64 == 63:
        r.setblocking(False)
        try:
            while True: r.recv(16)
        except BlockingIOError: pass
print((time.perf_counter() - start) / n * 1e6)
"""


def wall(argv):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def output(argv):
    return float(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)


def show(label, values, unit):
    q = statistics.quantiles(values, n=4)
    print(f"  {label:<44} {statistics.median(values):9.2f} {unit} ({q[0]:.2f}-{q[2]:.2f})")


variants = [("", []), ("--report", ["--report"])]
startup = {v: [] for v, _ in variants}
for _ in range(rounds):
    for v, opts in variants:
        startup[v].append(wall([nonet, *opts, "true"]))
print(f"nonet true, {rounds} interleaved rounds (wall ms, median and IQR)")
for v, _ in variants:
    show(f"nonet {v} true".replace("  ", " "), startup[v], "ms")

transfer = {v: [] for v, _ in variants}
datagrams = {v: [] for v, _ in variants}
for _ in range(5):
    for v, opts in variants:
        transfer[v].append(1024 / output([nonet, *opts, sys.executable, "-c", TRANSFER]))
        datagrams[v].append(output([nonet, *opts, sys.executable, "-c", DATAGRAMS]))
print("1 GiB over 127.0.0.1 inside, sendall() of 1 MiB (MiB/s, 5 rounds)")
for v, _ in variants:
    show(f"nonet {v}".strip(), transfer[v], "MiB/s")
print("one UDP sendto() to 127.0.0.1 inside (µs per call, 20,000 calls, 5 rounds)")
for v, _ in variants:
    show(f"nonet {v}".strip(), datagrams[v], "µs")
