"""studio_browser.py: nst studio's page end to end in headless Chromium,
driven by Selenium (tests/test_studio.sh runs it): drop a photo and two
paintings, start, see at least three distinct preview frames, move a slider
mid-run and see the loss change course, paint a region, download.

usage: python3 tests/studio_browser.py WORKDIR [--screenshots DIR [--real]]
--real: the real (partial) VGG-19 and photos of $NST_SHARED_DATA (default
../shared/data) instead of the generated network, for pictures worth keeping.
Exit status 77: Selenium, Chromium or its driver is missing (skipped)."""
import hashlib
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from studio_common import REPO, Server, make_inputs, ok  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:
    print("SKIP: no Selenium for %s (Debian: python3-selenium)" % sys.executable)
    sys.exit(77)


def find(*names):
    for n in names:
        p = shutil.which(n)
        if p:
            return p
    return None


def until(driver, js, timeout=30, what="the page"):
    end = time.time() + timeout
    while time.time() < end:
        v = driver.execute_script(js)
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s (%s)" % (what, js))


PREVIEW_HASH = """
const img = document.getElementById('preview');
if (!img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas');
c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext('2d').drawImage(img, 0, 0);
return c.toDataURL('image/png');
"""


def main():
    work = os.path.abspath(sys.argv[1])
    shots = None
    if "--screenshots" in sys.argv:
        shots = os.path.abspath(sys.argv[sys.argv.index("--screenshots") + 1])
        os.makedirs(shots, exist_ok=True)
    chrome = find("chromium", "chromium-browser", "google-chrome")
    driver_bin = find("chromedriver")
    if not chrome or not driver_bin:
        print("SKIP: no Chromium and chromedriver (Debian: chromium chromium-driver)")
        sys.exit(77)
    make_inputs(work)
    photo, paintings = os.path.join(work, "photo.png"), ("stripes.png", "noise.png")
    weights, extra, size, sw = None, (), 96, 3
    if "--real" in sys.argv:
        data = os.environ.get("NST_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
        weights = os.path.join(data, "vgg19-imagenet-conv1_1-conv3_4.safetensors")
        if not os.path.exists(weights):
            print("SKIP: no %s" % weights)
            sys.exit(77)
        for f in ("tubingen.jpg", "starry_night.jpg", "the_scream.jpg"):
            shutil.copy(os.path.join(data, "images", f), work)
        photo, paintings = os.path.join(work, "tubingen.jpg"), ("starry_night.jpg", "the_scream.jpg")
        extra = ("--content-layers", "relu3_2", "--style-layers", "relu1_1,relu2_1,relu3_1")
        size, sw = 192, 4
    real = "--real" in sys.argv

    def settle(d, n):
        """In --real mode, n iterations before a picture (slow on a CPU)."""
        if real:
            until(d, "return window.studio.state.iteration >= %d" % n, timeout=600,
                  what="iteration %d" % n)
    downloads = os.path.join(work, "downloads")
    shutil.rmtree(downloads, ignore_errors=True)
    os.makedirs(downloads)
    t0 = time.time()
    with Server(work, extra=extra, weights=weights) as sv:
        opts = webdriver.ChromeOptions()
        opts.binary_location = chrome
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1280,860", "--disable-extensions", "--no-first-run"):
            opts.add_argument(a)
        opts.add_experimental_option("prefs", {"download.default_directory": downloads,
                                               "download.prompt_for_download": False})
        d = webdriver.Chrome(service=Service(driver_bin), options=opts)
        try:
            d.get(sv.url)
            assert d.title == "nst studio", d.title
            until(d, "return window.studio && window.studio.state !== null", what="the first event")
            # drop a photo and two paintings (the file inputs behind the drop zones)
            d.find_element(By.ID, "file-photo").send_keys(photo)
            until(d, "return document.getElementById('photo-wrap').style.display === 'block'",
                  what="the photo")
            d.find_element(By.ID, "file-style").send_keys(
                os.path.join(work, paintings[0]) + "\n" + os.path.join(work, paintings[1]))
            until(d, "return document.querySelectorAll('.painting').length === 2", what="2 paintings")
            # a garbage upload is refused with a visible message
            d.find_element(By.ID, "file-style").send_keys(os.path.join(work, "w.safetensors"))
            until(d, "return document.getElementById('message').textContent.includes('not a usable image')",
                  what="the refusal")
            ok("drop a photo and two paintings; garbage refused visibly")

            # settings for a quick run on the test network, then start
            d.execute_script("""
              const set = (id, v) => { const e = document.getElementById(id); e.value = v; };
              set('size', arguments[0]); set('iterations', 2000); set('style_weight', arguments[1]);
              document.getElementById('size').dispatchEvent(new Event('input'));""", size, sw)
            time.sleep(0.3)
            d.find_element(By.ID, "start").click()
            frames = set()
            end = time.time() + 30
            while len(frames) < 3 and time.time() < end:
                h = d.execute_script(PREVIEW_HASH)
                if h:
                    frames.add(hashlib.sha1(h.encode()).hexdigest())
                time.sleep(0.1)
            assert len(frames) >= 3, frames
            ok("at least three distinct preview frames (%d)" % len(frames))
            if shots:
                settle(d, 30)
                d.save_screenshot(os.path.join(shots, "studio-running.png"))

            # move the style slider mid-run (keyboard: Home, its lowest value)
            until(d, "return window.studio.points.length >= 10", what="10 loss points")
            n0 = d.execute_script("return window.studio.points.length")
            style0 = d.execute_script("return window.studio.points[window.studio.points.length-1][3]")
            run0 = d.execute_script("return window.studio.state.run")
            slider = d.find_element(By.ID, "style_weight")
            slider.send_keys(Keys.HOME)
            until(d, "return window.studio.state.job.style_weight < 0.1", what="the new weight")
            n1 = d.execute_script("return window.studio.points.length")
            until(d, "return window.studio.points.length >= %d" % (n1 + 5), what="more points")
            pts = d.execute_script("return window.studio.points")
            style1 = pts[-1][3]
            assert d.execute_script("return window.studio.state.run") == run0, "the run restarted"
            assert d.execute_script("return window.studio.marks.length") >= 1
            assert style1 < style0 / 100, (style0, style1)
            ok("moving a slider mid-run changes the loss's course (style %.3g -> %.3g)" % (style0, style1))
            slider.send_keys(Keys.END)  # back to a strong style for the pictures

            # paint a region for the first painting, then the second
            labels = d.find_element(By.ID, "labels")
            w, h = labels.size["width"], labels.size["height"]
            for k, (x0, x1) in enumerate(((-w // 3, -w // 12), (w // 12, w // 3))):
                d.find_elements(By.CSS_SELECTOR, ".painting img")[k].click()
                ActionChains(d).move_to_element_with_offset(labels, x0, -h // 4).click_and_hold() \
                    .move_by_offset(0, h // 4).move_by_offset(x1 - x0, 0) \
                    .move_by_offset(0, h // 4).release().perform()
                until(d, "return (window.studio.masksSent || 0) >= %d" % (k + 1), what="masks sent")
            until(d, "return window.studio.state.masks && window.studio.state.state === 'running'",
                  what="a run with regions")
            assert sv.state()["masks"]
            time.sleep(2)
            ok("paint regions with a brush, one colour per painting")
            if shots:
                settle(d, 30)
                d.save_screenshot(os.path.join(shots, "studio-regions.png"))

            # download the PNG and show the command line
            d.find_element(By.ID, "download").click()
            d.find_element(By.ID, "show-command").click()
            cmd = until(d, "return document.getElementById('command').textContent", what="the command")
            assert cmd.startswith("nst --content %s --style %s,%s" % ((os.path.basename(photo),) + paintings)), cmd
            assert "--mask mask-1.png,mask-2.png" in cmd, cmd
            end = time.time() + 20
            got = None
            while time.time() < end and not got:
                fs = [f for f in os.listdir(downloads) if f.endswith(".png")]
                got = fs[0] if fs else None
                time.sleep(0.1)
            assert got, os.listdir(downloads)
            with open(os.path.join(downloads, got), "rb") as f:
                assert f.read(8) == b"\x89PNG\r\n\x1a\n"
            ok("download the PNG (%s) and the nst command line" % got)
            if shots:
                d.save_screenshot(os.path.join(shots, "studio-command.png"))
        finally:
            d.quit()
        assert sv.stop() == 0
    print("studio browser: all passed in %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
