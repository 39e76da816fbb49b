#!/usr/bin/env python3
"""bench/allow.py NONET: the cost of --allow's connect hand-over (issue 22).

The allowed destination is a listener in a network namespace this script
makes (a veth pair, 10.213.251.0/24): nothing goes anywhere else.  That
needs root; as another user the script says so and measures nothing.
Interleaved rounds of:

  - bulk throughput: 1 GiB over one allowed TCP connection, from inside
    nonet (NONET_ALLOW) and directly from the host (the same client);
  - one allowed connect(): connect and close, 500 times, inside nonet with
    the address allowed, and directly from the host;
  - one inside connect() (127.0.0.1, the namespace's own): 500 times under
    nonet with and without --allow (every connect is then done by nonet).

Prints medians and interquartile ranges."""
import os, statistics, subprocess, sys, time

nonet = sys.argv[1]
rounds = int(os.environ.get("BENCH_ALLOW_ROUNDS", "15"))
NS, HOST_IF, NS_IF = "nonet-bench-allow", "nbah", "nbao"
HOST, PEER, PORT, SINK = "10.213.251.1", "10.213.251.2", 7100, 7101

SERVER = r"""
import socket, sys, threading
def accept_close(s):
    while True:
        c, _ = s.accept(); c.close()
def sink(s):
    while True:
        c, _ = s.accept()
        def drain(c=c):
            while c.recv(1 << 20): pass
            c.sendall(b"k"); c.close()
        threading.Thread(target=drain, daemon=True).start()
a = socket.socket(); a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); a.bind((sys.argv[1], int(sys.argv[2]))); a.listen(4096)
b = socket.socket(); b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); b.bind((sys.argv[1], int(sys.argv[3]))); b.listen(16)
threading.Thread(target=accept_close, args=(a,), daemon=True).start()
threading.Thread(target=sink, args=(b,), daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""

TRANSFER = r"""
import socket, sys, time
total = 1 << 30
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
block = b"x" * (1 << 20); start = time.perf_counter()
for _ in range(total >> 20): c.sendall(block)
c.shutdown(socket.SHUT_WR); c.recv(1)
print((total / (1 << 20)) / (time.perf_counter() - start))
"""

CONNECTS = r"""
import socket, sys, time, threading
n = 500
address, port = sys.argv[1], int(sys.argv[2])
if address == "127.0.0.1":
    s = socket.socket(); s.bind((address, 0)); s.listen(4096); port = s.getsockname()[1]
    def accept():
        while True:
            c, _ = s.accept(); c.close()
    threading.Thread(target=accept, daemon=True).start()
start = time.perf_counter()
for _ in range(n):
    c = socket.socket(); c.connect((address, port)); c.close()
print((time.perf_counter() - start) / n * 1e6)
"""


def sh(*argv, check=True):
    return subprocess.run(argv, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def output(argv, env=None):
    return float(subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stdout)


def summary(name, values, unit):
    q = statistics.quantiles(values, n=4)
    print(f"  {name:<44} median {statistics.median(values):9.1f} {unit}  (IQR {q[0]:.1f}-{q[2]:.1f})")


def main():
    if os.geteuid() != 0:
        print("  skipped: the allowed destination is a veth pair into a network namespace, which needs root")
        return
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "netns", "add", NS)
    server = None
    try:
        sh("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF, "netns", NS)
        sh("ip", "addr", "add", f"{HOST}/24", "dev", HOST_IF)
        sh("ip", "link", "set", HOST_IF, "up")
        sh("ip", "-n", NS, "addr", "add", f"{PEER}/24", "dev", NS_IF)
        sh("ip", "-n", NS, "link", "set", NS_IF, "up")
        sh("ip", "-n", NS, "link", "set", "lo", "up")
        server = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c", SERVER, PEER, str(PORT), str(SINK)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "ready"
        py = sys.executable
        allow = dict(os.environ, NONET_ALLOW=PEER)
        plain = {k: v for k, v in os.environ.items() if not k.startswith("NONET_")}
        results = {k: [] for k in ("direct MiB/s", "allowed MiB/s", "direct connect", "allowed connect",
                                   "inside connect", "inside connect, --allow")}
        for _ in range(rounds):
            results["direct MiB/s"].append(output([py, "-c", TRANSFER, PEER, str(SINK)], plain))
            results["allowed MiB/s"].append(output([nonet, py, "-c", TRANSFER, PEER, str(SINK)], allow))
            results["direct connect"].append(output([py, "-c", CONNECTS, PEER, str(PORT)], plain))
            results["allowed connect"].append(output([nonet, py, "-c", CONNECTS, PEER, str(PORT)], allow))
            results["inside connect"].append(output([nonet, py, "-c", CONNECTS, "127.0.0.1", "0"], plain))
            results["inside connect, --allow"].append(output([nonet, py, "-c", CONNECTS, "127.0.0.1", "0"], allow))
        print(f"  {rounds} interleaved rounds; 1 GiB per transfer, 500 connects per figure")
        summary("bulk TCP, direct from the host", results["direct MiB/s"], "MiB/s")
        summary("bulk TCP, allowed connection from nonet", results["allowed MiB/s"], "MiB/s")
        ratio = statistics.median(results["allowed MiB/s"]) / statistics.median(results["direct MiB/s"])
        print(f"  {'allowed / direct throughput':<44} {ratio:.3f}")
        summary("connect()+close(), direct", results["direct connect"], "us")
        summary("connect()+close(), allowed (handed over)", results["allowed connect"], "us")
        summary("inside connect()+close(), no --allow", results["inside connect"], "us")
        summary("inside connect()+close(), --allow", results["inside connect, --allow"], "us")
    finally:
        if server is not None:
            server.stdin.close()
            server.wait(timeout=10)
        sh("ip", "link", "del", HOST_IF, check=False)
        sh("ip", "netns", "del", NS, check=False)


main()
