#!/usr/bin/env python3
"""The demo's stand-in for Slack (scripts/demo.sh): a tiny HTTP server on 127.0.0.1 that prints
every request it receives (method, path, JSON body pretty-printed) and answers `ok`, as Slack's
incoming webhooks do. Usage: demo-recorder.py PORT_FILE. It binds a free port and writes it to
PORT_FILE, so the caller never races another process for a port."""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Recorder(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        try:
            shown = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        except ValueError:
            shown = body
        print(f"[slack recorder] {self.command} {self.path}", flush=True)
        print(shown, flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass  # one line per message above is enough


def main():
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
