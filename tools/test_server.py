#!/usr/bin/env python3
"""test_server.py: a tiny HTTP server on 127.0.0.1 for tests/test_fetch.sh.

Serves the files of --dir with byte ranges ("Range: bytes=N-"), which
python3 -m http.server does not do. Paths:
  /NAME          the file
  /drop/NAME     the first request sends the headers of the whole file but only
                 half of it, then drops the connection; later ones behave
  /error.html    a 200 "text/html" error page (what a proxy or a hub sends)
  anything else  404
Writes the port it listens on to --port-file, logs one line per request to
--log, and exits by itself after --timeout seconds.
"""
import argparse
import http.server
import os
import threading

dropped = set()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        with open(self.server.logpath, "a") as f:
            f.write("%s range=%s\n" % (self.path, self.headers.get("Range", "-")))

    def do_GET(self):
        path = self.path
        drop = path.startswith("/drop/")
        if drop:
            path = path[len("/drop"):]
        if path == "/error.html":
            body = b"<!DOCTYPE html>\n<html><body><h1>Access denied</h1></body></html>\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        full = os.path.join(self.server.root, os.path.basename(path))
        if not os.path.isfile(full):
            self.send_error(404)
            return
        with open(full, "rb") as f:
            data = f.read()
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if drop and path not in dropped:
            dropped.add(path)
            self.wfile.write(data[start:start + (len(data) - start) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data[start:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.root, srv.logpath = a.dir, a.log
    threading.Timer(a.timeout, lambda: os._exit(0)).start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
