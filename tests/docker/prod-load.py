#!/usr/bin/env python3
"""Load for tests/docker/prod-test.sh: up to N sequential increments (GET /) through HAProxy,
paced, one at a time.

  prod-load.py PORT N KILL_AT CONTAINER PACE_MS [STOP_FILE]

At request KILL_AT it runs `docker kill CONTAINER` (empty CONTAINER: no kill). With STOP_FILE it
stops early once that file exists (load that lasts as long as a scaling step).

Prints one line of KEY=VALUE pairs: sent, acked, errors, first/last count seen, the error window
(from the kill, or else from the start of the first failed request, to the end of the last
failed request; 0 if none failed), the longest request, and whether the counts of acknowledged
increments only ever rose.
"""
import os
import http.client
import re
import subprocess
import sys
import time

port, n, kill_at, container, pace_ms = (
    int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]))
stop_file = sys.argv[6] if len(sys.argv) > 6 else None
count_re = re.compile(rb"count=(\d+)")

acked = errors = 0
counts = []
kill_t = None
first_error_start = None
last_error_end = None
longest = 0.0
sent = 0
for i in range(n):
    if stop_file and os.path.exists(stop_file):
        break
    sent += 1
    if i == kill_at and container:
        subprocess.run(["docker", "kill", container], check=True, stdout=subprocess.DEVNULL)
        kill_t = time.monotonic()
    start = time.monotonic()
    ok = False
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/", headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        m = count_re.search(body)
        if resp.status == 200 and m:
            counts.append(int(m.group(1)))
            ok = True
    except (OSError, http.client.HTTPException):
        pass
    end = time.monotonic()
    longest = max(longest, end - start)
    if ok:
        acked += 1
    else:
        errors += 1
        last_error_end = end
        if first_error_start is None:
            first_error_start = start
    time.sleep(pace_ms / 1000.0)

window = 0.0
origin = kill_t if kill_t is not None else first_error_start
if origin is not None and last_error_end is not None and last_error_end > origin:
    window = last_error_end - origin
rising = all(b > a for a, b in zip(counts, counts[1:]))
print(f"sent={sent} acked={acked} errors={errors} first={counts[0] if counts else -1} "
      f"last={counts[-1] if counts else -1} window_s={window:.2f} longest_s={longest:.2f} "
      f"rising={'yes' if rising else 'no'}")
