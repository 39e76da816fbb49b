#!/usr/bin/python3
"""The test's "outside": a stub nameserver and TCP listeners, run by
Outside.cs inside a network namespace the test made, on the test's own
addresses (10.213.N.2, fd00:213::N:2).  Nothing here sends to any address
but the peer that asked.

    outside.py ZONE_JSON LOG [ADDR,PORT ...]

ZONE_JSON, re-read at every query so that a test can change it:
    {"name.example": {"A": ["10.213.0.2"], "AAAA": [...], "CNAME": "other.example",
                       "HTTPS": [{"v4": [...], "v6": [...]}],
                       "behaviour": "silent" | "garbage" | "mismatch-id" |
                                    "mismatch-question" | "truncate" | "servfail" |
                                    "compression-loop" | "many"}}
A name not in the zone gets NXDOMAIN.  Every query is logged to LOG, one
JSON object per line: transport, id, name as sent (case kept), type, the
EDNS options it carried.  Each ADDR,PORT is a TCP listener that writes
"outside ADDR PORT\n" to every connection and closes it.
"""
import json
import os
import socket
import struct
import sys
import threading

ZONE, LOG = sys.argv[1], sys.argv[2]
LISTEN = [a.rsplit(",", 1) for a in sys.argv[3:]]
log_lock = threading.Lock()


def read_name(msg, off):
    labels = []
    while True:
        n = msg[off]
        if n == 0:
            return b".".join(labels), off + 1
        labels.append(msg[off + 1:off + 1 + n])
        off += 1 + n


def wire_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def record(name, rtype, rdata, ttl=60):
    return wire_name(name) + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def svcb(entry):
    params = b""
    if entry.get("v4"):
        value = b"".join(socket.inet_pton(socket.AF_INET, a) for a in entry["v4"])
        params += struct.pack(">HH", 4, len(value)) + value
    if entry.get("v6"):
        value = b"".join(socket.inet_pton(socket.AF_INET6, a) for a in entry["v6"])
        params += struct.pack(">HH", 6, len(value)) + value
    return struct.pack(">H", 1) + b"\0" + params


def answer(query, transport):
    qid, flags, qd = struct.unpack(">HHH", query[:6])
    qname, off = read_name(query, 12)
    qtype, qclass = struct.unpack(">HH", query[off:off + 4])
    question = query[12:off + 4]
    rest = query[off + 4:]
    options = []
    if len(rest) >= 11 and rest[0] == 0 and struct.unpack(">H", rest[1:3])[0] == 41:
        rdlen = struct.unpack(">H", rest[9:11])[0]
        opts = rest[11:11 + rdlen]
        while len(opts) >= 4:
            code, length = struct.unpack(">HH", opts[:4])
            options.append(code)
            opts = opts[4 + length:]
    name = qname.decode("ascii", "replace")
    with log_lock, open(LOG, "a") as f:
        f.write(json.dumps({"transport": transport, "id": qid, "name": name, "type": qtype,
                            "edns": len(rest) >= 11, "options": options}) + "\n")
    try:
        with open(ZONE) as f:
            zone = json.load(f)
    except (OSError, ValueError):
        zone = {}
    entry = zone.get(name.lower().rstrip("."))
    behaviour = (entry or {}).get("behaviour")
    rd = flags & 0x0100
    if behaviour == "silent":
        return None
    if behaviour == "garbage":
        return struct.pack(">HH", qid, 0x8180 | rd) + b"\x00\x01\xff\xff\x00\x00\x00\x00" + question + b"\xc0"
    if behaviour == "compression-loop":
        # one answer whose owner is a pointer to itself
        here = 12 + len(question)
        return struct.pack(">HHHHHH", qid, 0x8180 | rd, 1, 1, 0, 0) + question + struct.pack(">H", 0xc000 | here) + struct.pack(">HHIH", 1, 1, 60, 4) + b"\x0a\xd5\x00\x02"
    if behaviour == "mismatch-id":
        qid ^= 0x5a5a
    if behaviour == "mismatch-question":
        question = wire_name("other.example") + struct.pack(">HH", qtype, qclass)
    if behaviour == "servfail":
        return struct.pack(">HHHHHH", qid, 0x8182 | rd, 1, 0, 0, 0) + question
    if entry is None:
        return struct.pack(">HHHHHH", qid, 0x8183 | rd, 1, 0, 0, 0) + question
    answers = []
    owner = name
    if entry.get("CNAME"):
        answers.append(record(owner, 5, wire_name(entry["CNAME"])))
        target = zone.get(entry["CNAME"].lower(), {})
        owner = entry["CNAME"]
        if entry.get("loop"):
            answers.append(record(entry["CNAME"], 5, wire_name(name)))
        entry = target
    if qtype in (1, 255):
        answers += [record(owner, 1, socket.inet_pton(socket.AF_INET, a)) for a in entry.get("A", [])]
    if qtype in (28, 255):
        answers += [record(owner, 28, socket.inet_pton(socket.AF_INET6, a)) for a in entry.get("AAAA", [])]
    if qtype == 65:
        answers += [record(owner, 65, svcb(h)) for h in entry.get("HTTPS", [])]
    if behaviour == "many" and qtype == 1:
        answers = [record(owner, 1, bytes([10, 213, i // 250, i % 250 + 1])) for i in range(1000)]
    header = struct.pack(">HHHHHH", qid, 0x8180 | rd, 1, len(answers), 0, 0)
    reply = header + question + b"".join(answers)
    if transport == "udp" and (behaviour == "truncate" or behaviour == "many" or len(reply) > 1232):
        return struct.pack(">HHHHHH", qid, 0x8380 | rd, 1, 0, 0, 0) + question
    return reply


def serve_udp(sock):
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            reply = answer(data, "udp")
        except Exception:  # malformed query: no answer
            continue
        if reply is not None:
            sock.sendto(reply, peer)


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve_tcp_dns(conn):
    with conn:
        while True:
            head = recv_exact(conn, 2)
            if head is None:
                return
            data = recv_exact(conn, struct.unpack(">H", head)[0])
            if data is None:
                return
            reply = answer(data, "tcp")
            if reply is None:
                continue
            conn.sendall(struct.pack(">H", len(reply)) + reply)


def serve_listener(sock, addr, port):
    while True:
        conn, _ = sock.accept()
        with conn:
            try:
                conn.sendall(f"outside {addr} {port}\n".encode())
            except OSError:
                pass


def accept_loop(sock, handler):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def main():
    threads = []
    for addr in os.environ["OUTSIDE_DNS"].split(","):
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        u = socket.socket(family, socket.SOCK_DGRAM)
        u.bind((addr, 53))
        t = socket.socket(family, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind((addr, 53))
        t.listen(64)
        threads.append(threading.Thread(target=serve_udp, args=(u,), daemon=True))
        threads.append(threading.Thread(target=accept_loop, args=(t, serve_tcp_dns), daemon=True))
    for addr, port in LISTEN:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, int(port)))
        s.listen(128)
        threads.append(threading.Thread(target=serve_listener, args=(s, addr, int(port)), daemon=True))
    for t in threads:
        t.start()
    print("ready", flush=True)
    sys.stdin.read()  # until the test closes stdin (or dies)


main()
