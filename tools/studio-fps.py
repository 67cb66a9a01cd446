#!/usr/bin/env python3
"""studio-fps.py: nst studio's preview rate, as a page sees it.

Starts `nst studio --port 0`, drops a photo and a painting, starts a run at
--size (default 256: 256x256 images), then for --seconds watches the event
stream like the page does and fetches every frame it announces, the newest
when several came meanwhile. Prints one JSON object: the device, frames per
second received by the page and made by the server, iterations per second.

  tools/studio-fps.py                       # nst's default device and weights
  tools/studio-fps.py --generated           # a generated VGG-19 of the real widths
  tools/studio-fps.py --weights weights/vgg19-conv.safetensors --device 0

Run from the repository root after `make` (it uses build/nst and, for the
generated network and the test images, build/tools)."""
import argparse
import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nst", default=os.path.join(ROOT, "build", "nst"))
    ap.add_argument("--weights", help="VGG weights (default: nst's own search)")
    ap.add_argument("--generated", action="store_true",
                    help="a generated VGG-19 of the real widths (no weight file needed)")
    ap.add_argument("--device", help="device selection, as for nst")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--content", help="photo (default: a generated 256x256 one)")
    ap.add_argument("--style", help="painting (default: generated stripes)")
    a = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="nst-studio-fps-")
    tools = os.path.join(ROOT, "build", "tools")
    content, style = a.content, a.style
    if not content:
        content = os.path.join(tmp, "photo.png")
        subprocess.run([os.path.join(tools, "nst-mkimage"), "--pattern", "photo", "--size",
                        "%dx%d" % (a.size, a.size), "--out", content], check=True,
                       stdout=subprocess.DEVNULL)
    if not style:
        style = os.path.join(tmp, "stripes.png")
        subprocess.run([os.path.join(tools, "nst-mkimage"), "--pattern", "stripes", "--size",
                        "%dx%d" % (a.size, a.size), "--out", style], check=True,
                       stdout=subprocess.DEVNULL)
    cmd = [a.nst, "studio", "--port", "0"]
    if a.generated:
        w = os.path.join(tmp, "vgg19-generated.safetensors")
        subprocess.run([os.path.join(tools, "nst-genweights"), "--out", w, "--width-mult", "1"],
                       check=True, stdout=subprocess.DEVNULL)
        cmd += ["--weights", w]
    elif a.weights:
        cmd += ["--weights", a.weights]
    if a.device:
        cmd += ["--device", a.device]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = proc.stdout.readline().decode().strip()
        if not url.startswith("http://"):
            sys.exit("nst studio did not start: " + proc.stderr.read().decode())
        m = None
        for _ in range(8):  # warnings may come first
            m = re.match(r"nst studio: (.*), weights (.*); open", proc.stderr.readline().decode())
            if m:
                break
        device = m.group(1) if m else "?"
        u = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(u.query)["token"][0]
        hostport = "%s:%d" % (u.hostname, u.port)

        def req(method, path, body=None):
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            c.request(method, path + ("&" if "?" in path else "?") + "token=" + token, body=body,
                      headers={"Host": hostport, "X-Nst-Client": "fps"})
            r = c.getresponse()
            data = r.read()
            c.close()
            if r.status != 200:
                sys.exit("%s %s: %d %s" % (method, path, r.status, data[:300]))
            return r, data

        for kind, path in (("content", content), ("style", style)):
            with open(path, "rb") as f:
                req("POST", "/upload?kind=%s&name=%s" % (kind, os.path.basename(path)), f.read())
        req("POST", "/start", json.dumps({"size": a.size, "iterations": 100000}))

        # the event stream, as the page reads it
        latest = {"frame": 0, "iteration": 0, "fps": 0.0}
        stop = threading.Event()

        def events():
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
            c.request("GET", "/events?client=fps&token=" + token, headers={"Host": hostport})
            r = c.getresponse()
            while not stop.is_set():
                line = r.fp.readline()
                if not line:
                    break
                if line.startswith(b"data: "):
                    s = json.loads(line[6:])
                    latest.update(frame=s["frame"], iteration=s["iteration"], fps=s["fps"])
            c.close()

        th = threading.Thread(target=events, daemon=True)
        th.start()
        t_end = time.time() + 300  # the first frame: kernels compiled, targets made
        while latest["frame"] == 0 and time.time() < t_end:
            time.sleep(0.01)
        if latest["frame"] == 0:
            sys.exit("no frame within 300 s")
        shown, received = latest["frame"], 0
        it0, f0, t0 = latest["iteration"], latest["frame"], time.time()
        while time.time() - t0 < a.seconds:
            if latest["frame"] > shown:
                r, png = req("GET", "/frame.png")
                shown = int(r.getheader("X-Nst-Frame"))
                received += 1
            else:
                time.sleep(0.002)
        dt = time.time() - t0
        it1, f1 = latest["iteration"], latest["frame"]
        stop.set()
        print(json.dumps({"device": device, "size": a.size, "seconds": round(dt, 2),
                          "frames_received_per_second": round(received / dt, 2),
                          "frames_made_per_second": round((f1 - f0) / dt, 2),
                          "iterations_per_second": round((it1 - it0) / dt, 2)}))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
