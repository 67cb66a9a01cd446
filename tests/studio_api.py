"""studio_api.py: nst studio's HTTP API and its security rules, against a
real server on 127.0.0.1 (tests/test_studio.sh runs it).

usage: python3 tests/studio_api.py WORKDIR"""
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from studio_common import NST, REPO, Server, make_inputs, ok, read  # noqa: E402

BAD = os.path.join(REPO, "tests", "bad")


def upload(sv, kind, name, data, client="testpage", extra=""):
    return sv.json("POST", "/upload?kind=%s&name=%s%s" % (kind, name, extra), data, client=client)


def test_binds_localhost(sv):
    assert sv.host == "127.0.0.1", sv.url
    # the listening socket, as the kernel lists it: 127.0.0.1 only
    port = "%04X" % sv.port
    with open("/proc/net/tcp") as f:
        rows = [l.split() for l in f.readlines()[1:]]
    listening = [r[1] for r in rows if r[1].endswith(":" + port) and r[3] == "0A"]
    assert listening == ["0100007F:" + port], listening
    r = subprocess.run([NST, "studio", "--host", "0.0.0.0"], capture_output=True, text=True)
    assert r.returncode == 2 and "Host header" in r.stderr, r
    for args, want in ((["--port", "70000"], "not a port"), (["--host", "example.com"], "IPv4"),
                       (["--prot", "1"], "did you mean --port"), (["x"], "unexpected argument")):
        r = subprocess.run([NST, "studio", *args], capture_output=True, text=True)
        assert r.returncode == 2 and want in r.stderr and not r.stdout, (args, r)
    r = subprocess.run([NST, "studio", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--port" in r.stdout and "token" in r.stdout
    ok("binds 127.0.0.1 unless --host; --host 0.0.0.0 is refused")


def test_token(sv):
    for path in ("/", "/state", "/events", "/frame.png", "/result.png", "/command", "/mask.png?k=1"):
        for tok in (False, "0" * 32, sv.token[:-1], sv.token + "0"):
            st, _, body = sv.request("GET", path, token=tok)
            assert st == 403 and b"token" in body, (path, tok, st)
    for path in ("/start", "/retarget", "/pause", "/upload?kind=content"):
        st, _, _ = sv.request("POST", path, b"{}", token=False)
        assert st == 403, (path, st)
    st, _, body = sv.request("GET", "/", token=False, headers={"X-Nst-Token": sv.token})
    assert st == 200 and b"nst studio" in body
    st, _, body = sv.request("GET", "/")
    assert st == 200 and b"<script>" in body
    ok("every request needs the token (403 without it, or with a wrong one)")


def test_host_and_origin(sv):
    for host in ("evil.example:%d" % sv.port, "evil.example", "127.0.0.1:1", "127.0.0.1"):
        st, _, body = sv.request("GET", "/state", headers={"Host": host})
        assert st == 403 and b"Host" in body, (host, st)
    st, _, _ = sv.request("GET", "/state", headers={"Host": "localhost:%d" % sv.port})
    assert st == 200
    for origin in ("http://evil.example", "http://evil.example:%d" % sv.port, "null",
                   "https://127.0.0.1:%d" % sv.port):
        st, _, _ = sv.request("POST", "/pause", b"", headers={"Origin": origin})
        assert st == 403, (origin, st)
    st, _, _ = sv.request("POST", "/resume", b"", headers={"Origin": "http://" + sv.hostport})
    assert st == 200
    ok("Host and Origin checked (DNS rebinding, other sites)")


def test_uploads_bounded(sv):
    # too many bytes: refused from Content-Length, before the body
    st, _, body = sv.request("POST", "/upload?kind=content&name=big.png", b"",
                             headers={"Content-Length": str(33 << 20)})
    assert st == 413 and b"larger than" in body, (st, body)
    # and when streamed in chunks (no Content-Length)
    def chunks():
        for _ in range(34):
            yield b"\0" * (1 << 20)
    try:
        st, _, body = sv.request("POST", "/upload?kind=content&name=big.png", chunks(),
                                 headers={"Transfer-Encoding": "chunked"})
        assert st == 413, st
    except (BrokenPipeError, ConnectionResetError):
        pass
    cases = {"bomb.png": b"limit", "bomb.jpg": b"limit", "random.bin": b"not a usable image",
             "truncated.png": b"not a usable image", "text.png": b"not a usable image",
             "empty.png": b"not a usable image", "zero_height.jpg": b"not a usable image"}
    for name, want in cases.items():
        st, j = upload(sv, "content", name, read(BAD, name))
        assert st == 400 and want.decode() in j["error"], (name, st, j)
    assert not sv.state()["content"]
    ok("uploads bounded in bytes and pixels; bombs and garbage refused with a message")


def start_run(sv, work, client="testpage", iterations=2000, size=64):
    st, j = upload(sv, "content", "photo.png", read(work, "photo.png"), client=client)
    assert st == 200, j
    sv.request("POST", "/styles/clear", b"", client=client)
    st, j = upload(sv, "style", "stripes.png", read(work, "stripes.png"), client=client)
    assert st == 200, j
    st, j = sv.json("POST", "/start", json.dumps({"size": size, "iterations": iterations,
                                                  "style_weight": 1000}), client=client)
    assert st == 200, j
    return sv.wait(lambda s: s["state"] == "running" and s["iteration"] >= 2, what="a run")


def frame(sv):
    st, h, png = sv.request("GET", "/frame.png")
    assert st == 200 and png[:8] == b"\x89PNG\r\n\x1a\n", st
    return int(h["X-Nst-Frame"]), hashlib.sha1(png).hexdigest()


def test_run(sv, work):
    start_run(sv, work)
    seen = {}
    end = time.time() + 20
    while len(set(seen.values())) < 3 and time.time() < end:
        fid, digest = frame(sv)
        seen[fid] = digest
        time.sleep(0.05)
    assert len(set(seen.values())) >= 3, seen
    ok("a run streams distinct preview frames (%d seen)" % len(set(seen.values())))

    # re-target mid-run: the style weight divided by 10^4, the style term falls
    s = sv.wait(lambda s: s["iteration"] >= 8, what="iteration 8")
    before = s["iteration"]
    style_before = sv.state()["points"][-1][3]
    st, j = sv.json("POST", "/retarget", json.dumps({"style_weight": 0.1}))
    assert st == 200, j
    s = sv.wait(lambda s: s["iteration"] >= before + 4, what="4 more iterations")
    assert s["run"] == 1, "re-targeting restarted the run"
    style_after = s["points"][-1][3]
    assert style_after < style_before / 100, (style_before, style_after)
    ok("re-target mid-run: same run, the style term falls (%.3g -> %.3g)" % (style_before, style_after))

    st, j = sv.json("POST", "/pause")
    s = sv.wait(lambda s: s["state"] == "paused", what="paused")
    it = s["iteration"]
    time.sleep(0.5)
    assert sv.state()["iteration"] == it
    sv.json("POST", "/resume")
    sv.wait(lambda s: s["iteration"] > it + 2, what="resumed")
    ok("pause holds the iteration; resume goes on")

    # a size change starts a run from the current image
    sv.json("POST", "/retarget", json.dumps({"size": 96}))
    s = sv.wait(lambda s: s["run"] == 2 and s["width"] == 96 and s["iteration"] >= 1, what="size 96")
    sv.json("POST", "/restart")
    sv.wait(lambda s: s["run"] == 3 and s["state"] == "running", what="start over")
    st, j = upload(sv, "mask", "m.png", read(work, "noise.png"), extra="&k=1")
    assert st == 200, j
    s = sv.wait(lambda s: s["run"] == 4 and s["masks"], what="a run with the mask")
    st, _, body = sv.request("GET", "/command")
    cmd = body.decode()
    assert cmd.startswith("nst --content photo.png --style stripes.png --mask mask-1.png") and \
        "--size 96" in cmd and "--style-weight 0.1 " in cmd, cmd
    st, h, png = sv.request("GET", "/mask.png?k=1")
    assert st == 200 and png[:4] == b"\x89PNG"
    sv.json("POST", "/masks/clear")
    sv.wait(lambda s: not s["masks"] and s["run"] == 5, what="masks cleared")
    st, j = sv.json("POST", "/refine")
    assert st == 200, j
    s = sv.wait(lambda s: s["refined"] and s["width"] == 128 and s["iteration"] >= 1, what="refine")
    st, h, png = sv.request("GET", "/result.png")
    assert st == 200 and png[:4] == b"\x89PNG" and "attachment" in h["Content-Disposition"]
    st, _, body = sv.request("GET", "/command")
    assert "--size 128 " in body.decode() and "--scales 2" in body.decode(), body
    ok("size change, start over, masks, refine at full size, download and command line")


def test_busy(sv, work):
    s = sv.state()
    assert s["state"] in ("running", "paused"), s
    st, j = sv.json("POST", "/start", json.dumps({"size": 64}), client="otherpage")
    assert st == 409 and "busy" in j["error"], (st, j)
    st, j = upload(sv, "content", "photo.png", read(work, "photo.png"), client="otherpage")
    assert st == 409, j
    st, j = sv.json("GET", "/state", client="otherpage")
    assert j["steer"] is False and j["state"] == "running", j
    st, j = sv.json("GET", "/state", client="testpage")
    assert j["steer"] is True
    fid, _ = frame(sv)  # and it watches
    ok("one optimisation per device: a second page is told it is busy and watches")


def stream_client(sv, seconds, out, slow=False):
    """An event stream read for `seconds`; counts events."""
    n = 0
    try:
        s = socket.create_connection((sv.host, sv.port), timeout=10)
        s.sendall(("GET /events?token=%s&client=w%d HTTP/1.1\r\nHost: %s\r\n\r\n" %
                   (sv.token, threading.get_ident() % 100000, sv.hostport)).encode())
        end = time.time() + seconds
        buf = b""
        while time.time() < end:
            data = s.recv(4096 if not slow else 64)
            if not data:
                break
            n += data.count(b"data: ")
            if slow:
                time.sleep(0.05)
        s.close()
    except OSError as e:
        out.append(("error", repr(e)))
        return
    out.append(("events", n))


def test_disconnects(sv):
    it = sv.state()["iteration"]
    # streams dropped mid-way, an upload cut short, a request never finished
    for _ in range(5):
        s = socket.create_connection((sv.host, sv.port))
        s.sendall(("GET /events?token=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sv.token, sv.hostport)).encode())
        s.recv(100)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # reset
        s.close()
    s = socket.create_connection((sv.host, sv.port))
    s.sendall(("POST /upload?kind=style&name=x.png&token=%s HTTP/1.1\r\nHost: %s\r\n"
               "X-Nst-Client: testpage\r\nContent-Length: 1000000\r\n\r\n" % (sv.token, sv.hostport)).encode()
              + b"\x89PNG" + b"\0" * 5000)
    s.close()
    s = socket.create_connection((sv.host, sv.port))
    s.sendall(b"GET /state HTTP/1.1\r\nHo")
    s.close()
    # the steering page itself leaves: the run goes on, another page may steer
    s = socket.create_connection((sv.host, sv.port))
    s.sendall(("GET /events?token=%s&client=testpage HTTP/1.1\r\nHost: %s\r\n\r\n" % (sv.token, sv.hostport)).encode())
    s.recv(100)
    s.close()
    sv.wait(lambda s: s["iteration"] > it + 3 and s["state"] == "running", what="the run going on")
    assert sv.proc.poll() is None
    ok("clients that disconnect stop nothing and crash nothing")


def test_many_streams(sv):
    """50 event streams at once for a bounded time, the server's RSS flat."""
    n, seconds = 50, 8
    threads0 = sv.status("Threads")
    out = []
    threads = [threading.Thread(target=stream_client, args=(sv, seconds, out, i % 10 == 0))
               for i in range(n)]
    for t in threads:
        t.start()
    samples = []
    t0 = time.time()
    while time.time() - t0 < seconds + 1:
        samples.append((time.time() - t0, sv.rss_kib()))
        time.sleep(0.25)
    for t in threads:
        t.join(20)
    errors = [o for o in out if o[0] == "error"]
    counts = [o[1] for o in out if o[0] == "events"]
    assert not errors and len(counts) == n, (errors, len(counts))
    assert min(counts) >= 3, counts
    # flat: after the streams' first 2 s (threads and buffers made), no growth
    # beyond one frame and its encoding per stream would leave (64 KiB each)
    warm = [r for t, r in samples if 2 <= t <= 3]
    late = [r for t, r in samples if t >= seconds - 1]
    growth = max(late) - max(warm)
    # (under AddressSanitizer freed memory waits in its quarantine and each
    # thread keeps caches: RSS says nothing there)
    assert growth < n * 64 or os.environ.get("ASAN_OPTIONS"), (warm, late)
    # and their threads end once they are gone (noticed at the next write:
    # an event, or the ping every 5 s)
    end = time.time() + 12
    while sv.status("Threads") > threads0 and time.time() < end:
        time.sleep(0.2)
    assert sv.status("Threads") <= threads0, (threads0, sv.status("Threads"))
    ok("50 concurrent streams for %d s: every one served (%d..%d events), RSS %d -> %d KiB, "
       "threads back to %d" % (seconds, min(counts), max(counts), max(warm), max(late), threads0))
    return max(warm), max(late)


def test_paths(sv, dirs):
    for path in ("/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/frame.png/../../etc/passwd",
                 "//etc/passwd", "/events/../../etc/hostname", "/w.safetensors", "/photo.png"):
        st, _, body = sv.request("GET", path)
        assert st in (400, 404) and b"root:" not in body, (path, st)
    st, j = upload(sv, "style", "..%2F..%2F..%2Fevil.png", read(dirs["work"], "noise.png"))
    assert st == 200, j
    st, _, body = sv.request("GET", "/command")
    assert "evil.png" in body.decode() and ".." not in body.decode(), body
    ok("only its own endpoints are served; names never become paths")


def test_wct_first_preview(work):
    """With WCT's models, a run's first frame is WCT's (iteration 0)."""
    data = os.environ.get("NST_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
    models = os.path.join(data, "wct")
    if not os.path.exists(os.path.join(models, "vgg_normalised_conv1_1.pth")):
        print("SKIP - the first preview from WCT: no models in %s (set NST_SHARED_DATA)" % models)
        return
    with Server(work, extra=("--wct-models", models)) as sv:
        assert b"first previews from WCT" in sv.proc.stderr.readline()
        upload(sv, "content", "photo.png", read(work, "photo.png"))
        upload(sv, "style", "stripes.png", read(work, "stripes.png"))
        st, j = sv.json("POST", "/start", json.dumps({"size": 64, "iterations": 20}))
        assert st == 200, j
        s = sv.wait(lambda s: s["frame"] >= 1, timeout=60, what="the first frame")
        assert s["wct"] and s["run"] == 1, s
        sv.wait(lambda s: s["state"] == "done", timeout=60, what="the run")
        st, _, body = sv.request("GET", "/command")
        assert "--init wct --wct-models" in body.decode(), body
        assert sv.stop() == 0
    ok("the first preview is WCT's; the command says --init wct")


def main():
    work = os.path.abspath(sys.argv[1])
    make_inputs(work)
    test_wct_first_preview(work)
    dirs = {k: os.path.join(work, k) for k in ("cwd", "tmp", "home")}
    import shutil
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    dirs["work"] = work
    shutil.copy(os.path.join(work, "w.safetensors"), dirs["cwd"])
    t0 = time.time()
    with Server(work, env={"TMPDIR": dirs["tmp"], "HOME": dirs["home"], "XDG_CACHE_HOME": ""}, cwd=dirs["cwd"]) as sv:
        test_binds_localhost(sv)
        test_token(sv)
        test_host_and_origin(sv)
        test_uploads_bounded(sv)
        test_run(sv, work)
        start_run(sv, work, iterations=100000)
        test_busy(sv, work)
        test_disconnects(sv)
        start_run(sv, work, iterations=100000, client="testpage")
        test_many_streams(sv)
        test_paths(sv, dirs)
        # Ctrl-C in the middle of a run, with a stream open
        s = socket.create_connection((sv.host, sv.port))
        s.sendall(("GET /events?token=%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (sv.token, sv.hostport)).encode())
        s.recv(100)
        t = time.time()
        rc = sv.stop(60)
        s.close()
        assert rc == 0, rc
        err = sv.proc.stderr.read().decode()
        assert "stopping" in err, err
        ok("Ctrl-C stops it cleanly mid-run, a stream open (exit 0 in %.1f s)" % (time.time() - t))
    # nothing written: the working directory holds only what was put there,
    # TMPDIR and HOME stay empty
    assert os.listdir(dirs["cwd"]) == ["w.safetensors"], os.listdir(dirs["cwd"])
    # (PoCL, the OpenCL driver, keeps its own scratch in ~/.cache/pocl)
    home = [os.path.relpath(os.path.join(r, f), dirs["home"])
            for r, _, fs in os.walk(dirs["home"]) for f in fs]
    assert os.listdir(dirs["tmp"]) == [] and all(f.startswith(".cache/pocl/") for f in home), \
        (os.listdir(dirs["tmp"]), home)
    ok("nothing written: the working directory, TMPDIR and HOME untouched "
       "(images, frames and results live in memory)")
    print("studio API: all passed in %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
