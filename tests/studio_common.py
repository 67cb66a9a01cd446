"""studio_common.py: starting and stopping a real `nst studio` for the
studio tests (tests/test_studio.sh), and requests against it."""
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NST = os.environ.get("NST_STUDIO_BIN") or os.path.join(REPO, "build", "nst")


class Server:
    """`nst studio --port 0` with the test network; stopped by stop() (Ctrl-C)
    or, whatever happens, killed at exit."""

    def __init__(self, work, extra=(), env=None, cwd=None, weights=None):
        e = dict(os.environ)
        e["NST_CACHE"] = "0"
        e.update(env or {})
        self.proc = subprocess.Popen(
            [NST, "studio", "--port", "0", "--weights",
             weights or os.path.join(work, "w.safetensors"),
             *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e, cwd=cwd or work)
        line = self._line(60)
        if not line.startswith("http://"):
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
            self.kill()
            raise RuntimeError("nst studio printed %r first, not its address; stderr: %s" % (line, err))
        self.url = line
        u = urllib.parse.urlsplit(line)
        self.host, self.port = u.hostname, u.port
        self.token = urllib.parse.parse_qs(u.query)["token"][0]
        self.hostport = "%s:%d" % (self.host, self.port)

    def _line(self, timeout):
        end = time.time() + timeout
        buf = b""
        while time.time() < end:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                ch = os.read(self.proc.stdout.fileno(), 1)
                if not ch:
                    break
                if ch == b"\n":
                    return buf.decode()
                buf += ch
            elif self.proc.poll() is not None:
                break
        return buf.decode()

    def status(self, key):
        """A figure of /proc/PID/status (VmRSS in KiB, Threads)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self.status("VmRSS")

    def request(self, method, path, body=None, headers=None, token=True, client="testpage",
                timeout=30):
        """(status, headers, body bytes). token: True (the right one), False
        (none) or a string."""
        if token is True:
            token = self.token
        if token:
            path += ("&" if "?" in path else "?") + "token=" + urllib.parse.quote(token)
        h = {"Host": self.hostport}
        if client:
            h["X-Nst-Client"] = client
        h.update(headers or {})
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, method, path, body=None, **kw):
        st, _, data = self.request(method, path, body, **kw)
        return st, json.loads(data.decode() or "{}")

    def state(self):
        st, j = self.json("GET", "/state")
        assert st == 200, st
        return j

    def wait(self, cond, timeout=30, what="the condition"):
        end = time.time() + timeout
        while time.time() < end:
            s = self.state()
            if cond(s):
                return s
            time.sleep(0.05)
        raise AssertionError("timed out waiting for %s; state %s" % (what, self.state()))

    def stop(self, timeout=15):
        """Ctrl-C; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.kill()


def make_inputs(work):
    """The test network and images in work (once)."""
    os.makedirs(work, exist_ok=True)
    w = os.path.join(work, "w.safetensors")
    tools = os.path.join(REPO, "build", "tools")
    if not os.path.exists(w):
        subprocess.run([os.path.join(tools, "nst-genweights"), "--out", w, "--width-mult",
                        "0.0625", "--seed", "5"], check=True, stdout=subprocess.DEVNULL)
    for name, pat, size in (("photo.png", "photo", "128x96"), ("stripes.png", "stripes", "64x64"),
                            ("noise.png", "noise", "64x64")):
        p = os.path.join(work, name)
        if not os.path.exists(p):
            subprocess.run([os.path.join(tools, "nst-mkimage"), "--pattern", pat, "--size", size,
                            "--out", p], check=True, stdout=subprocess.DEVNULL)


def read(work, name):
    with open(os.path.join(work, name), "rb") as f:
        return f.read()


def ok(name):
    print("ok - " + name, flush=True)
