# The "outside" of the --allow connect tests (AllowOutside.cs), run in a
# network namespace the test made.  Arguments: DIRECTORY, then listeners as
# KIND:ADDRESS:PORT (KIND http: files of DIRECTORY; count: accept and close;
# udp: receive).  Every accept and datagram is counted by listener; GET
# /counts on any http listener answers them as JSON.  Prints "ready" once
# all listen.
import http.server, json, os, socket, sys, threading

directory = sys.argv[1]
counts = {}
lock = threading.Lock()


def count(key):
    with lock:
        counts[key] = counts.get(key, 0) + 1


def family(address):
    return socket.AF_INET6 if ":" in address else socket.AF_INET


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=directory, **kwargs)

    def do_GET(self):
        if self.path == "/counts":
            with lock:
                body = json.dumps(counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args):
        pass


def http_server(address, port):
    key = f"{address}:{port}"

    class Server(http.server.ThreadingHTTPServer):
        address_family = family(address)
        request_queue_size = 1024

        def get_request(self):
            r = super().get_request()
            count(key)
            return r

    return Server((address, port), Handler)


def serve_count(address, port, sock):
    key = f"{address}:{port}"
    while True:
        c, _ = sock.accept()
        count(key)
        c.close()


def serve_udp(address, port, sock):
    key = f"udp:{address}:{port}"
    while True:
        sock.recv(2048)
        count(key)


threads = []
for spec in sys.argv[2:]:
    kind, rest = spec.split(":", 1)
    address, port = rest.rsplit(":", 1)
    address = address.strip("[]")
    port = int(port)
    if kind == "http":
        threads.append(threading.Thread(target=http_server(address, port).serve_forever, daemon=True))
        continue
    s = socket.socket(family(address), socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    if kind == "udp":
        threads.append(threading.Thread(target=serve_udp, args=(address, port, s), daemon=True))
    else:
        s.listen(4096)
        threads.append(threading.Thread(target=serve_count, args=(address, port, s), daemon=True))
for t in threads:
    t.start()
print("ready", flush=True)
sys.stdin.read()  # ends when the test closes our stdin (or dies)
