#!/bin/sh
# test_studio.sh: `nst studio` end to end on a generated network: its HTTP
# API and security rules against a real server on 127.0.0.1
# (tests/studio_api.py), then the page in headless Chromium driven by
# Selenium (tests/studio_browser.py). Each starts and stops its own servers
# (Ctrl-C, or killed whatever happens) on free ports. The browser part is
# skipped, saying so, without Chromium, chromedriver or Selenium
# (tools/install-deps.sh installs them).
set -u
cd "$(dirname "$0")/.."
T=build/tmp/studio
rm -rf "$T" && mkdir -p "$T"
pass=0
fail=0
skip=0
PY=${PYTHON:-python3}
"$PY" tests/studio_api.py "$T" && pass=$((pass + 1)) || { echo "FAIL - the studio's HTTP API"; fail=$((fail + 1)); }
# Selenium from Debian's python3-selenium is for Debian's python3
SPY=""
for p in "$PY" /usr/bin/python3; do
    if "$p" -c 'import selenium' 2>/dev/null; then SPY=$p; break; fi
done
if [ -z "$SPY" ]; then
    echo "SKIP - the page in Chromium: no Python with Selenium (Debian: python3-selenium)"
    skip=1
else
    "$SPY" tests/studio_browser.py "$T"
    rc=$?
    if [ $rc -eq 77 ]; then skip=1
    elif [ $rc -eq 0 ]; then pass=$((pass + 1))
    else echo "FAIL - the page in Chromium"; fail=$((fail + 1)); fi
fi
echo "studio: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
