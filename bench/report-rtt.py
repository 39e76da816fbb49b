#!/usr/bin/env python3
"""bench/report-rtt.py NONET: the cost of --report on a program that talks
to its own server on loopback (issue 21), as the user who runs it.

Inside nonet, a client and an echo server (two processes) make 100,000
request/response round trips of 64 bytes over one TCP connection to
127.0.0.1: send() and recv() on connected sockets, as a test suite talking
to its database does.  Runs with and without --report are interleaved;
prints the medians, their interquartile ranges and the ratio (target: within
10% of no report)."""
import os, statistics, subprocess, sys

nonet = sys.argv[1]
rounds = int(os.environ.get("BENCH_REPORT_ROUNDS", "7"))
trips = int(os.environ.get("BENCH_RTT_TRIPS", "100000"))

LOOP = r"""
import os, socket, sys, time
trips = int(sys.argv[1])
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
if os.fork() == 0:
    c, _ = server.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(64)
        if not b: os._exit(0)
        c.send(b)
client = socket.create_connection(server.getsockname())
client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
message = b"x" * 64
start = time.perf_counter()
for _ in range(trips):
    client.send(message)
    n = 0
    while n < 64:
        n += len(client.recv(64 - n))
elapsed = time.perf_counter() - start
client.close(); os.wait()
print(elapsed)
"""


def run(report):
    args = [nonet] + (["--report"] if report else []) + [sys.executable, "-c", LOOP, str(trips)]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=600)
    return float(out.stdout)


def show(name, values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    print(f"  {name:<16} {statistics.median(values):7.3f} s  (IQR {q[0]:.3f}-{q[2]:.3f}; {trips / statistics.median(values) / 1000:.1f}k round trips/s)")


plain, reported = [], []
for _ in range(rounds):
    plain.append(run(False))
    reported.append(run(True))
print(f"{trips} round trips of 64 bytes over TCP on 127.0.0.1 inside nonet, {rounds} runs each:")
show("without --report", plain)
show("with --report", reported)
print(f"  ratio            {statistics.median(reported) / statistics.median(plain):.3f}x (target: at most 1.10x)")
