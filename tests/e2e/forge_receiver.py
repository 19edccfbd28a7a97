#!/usr/bin/env python3
"""A stand-in for a forge's commit status API in end-to-end tests.

Usage: forge_receiver.py PORT_FILE LOG_FILE [FAIL_FIRST [PORT]]

Listens on 127.0.0.1 (PORT, or a free port; written to PORT_FILE once bound), answers
every POST with 201 except the first FAIL_FIRST ones (500), and appends one
JSON line per POST to LOG_FILE: method, path, query, the auth headers, the
JSON body (or null) and the status it answered.
"""
import json
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, log_file = sys.argv[1], sys.argv[2]
fail_first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
port = int(sys.argv[4]) if len(sys.argv) > 4 else 0
seen = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urllib.parse.urlsplit(self.path)
        seen += 1
        status = 500 if seen <= fail_first else 201
        rec = {
            "path": url.path,
            "query": dict(urllib.parse.parse_qsl(url.query)),
            "authorization": self.headers.get("Authorization"),
            "private_token": self.headers.get("PRIVATE-TOKEN"),
            "body": body,
            "status": status,
        }
        with open(log_file, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"id": 1}' if status == 201 else b'{"message": "try later"}')

    def log_message(self, fmt, *args):
        pass


srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
