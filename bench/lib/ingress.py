#!/usr/bin/env python3
"""A tiny stand-in for a site's ingress, for the benchmark scripts.

Usage: ingress.py ADDR PORT [MODE_FILE]

Answers every GET with 200 "ok", or with 503 while MODE_FILE exists and holds "503".
Speaks HTTP/1.1 with keep-alive, as real ingresses do, so signpost's probes reuse their
connections here as they would in production.
A hung ingress is made by stopping this process (SIGSTOP): the kernel still completes
the TCP handshake but nothing answers. Connection refused is made by ending it.
Listens on loopback only; exits when its parent script kills it.
"""

import http.server
import ipaddress
import os
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    mode_file = None
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        status = 200
        if self.mode_file:
            try:
                with open(self.mode_file, encoding="ascii") as f:
                    if f.read().strip() == "503":
                        status = 503
            except OSError:
                pass
        body = b"ok\n" if status == 200 else b"unavailable\n"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    addr, port = sys.argv[1], int(sys.argv[2])
    if not ipaddress.ip_address(addr).is_loopback:
        sys.exit(f"ingress.py: {addr} is not a loopback address")
    Handler.mode_file = sys.argv[3] if len(sys.argv) > 3 else None
    srv = http.server.ThreadingHTTPServer((addr, port), Handler)
    srv.daemon_threads = True
    print(f"ingress {addr}:{port} pid {os.getpid()}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
