#!/usr/bin/env bash
# make soak (not in CI): the fleet of make bench under a steady mixed-vendor C2C stream at
# about half its maximum rate for SOAK_SECONDS (default 600), sampling every 10 s each
# worker's resident memory (VmRSS), open file descriptors and TCP connections into
# docs/soak.csv, then plotting docs/soak.png. Memory must level off after warm-up; read the
# curve in docs/soak.md. Needs the release binaries (make soak builds them).
set -euo pipefail
cd "$(dirname "$0")/.."

SOAK_SECONDS=${SOAK_SECONDS:-600}
USERS=${SOAK_USERS:-20000}
CSV=${SOAK_CSV:-docs/soak.csv}
PNG=${SOAK_PNG:-docs/soak.png}

source scripts/fleet.sh
trap 'kill "${SAMPLER:-}" 2>/dev/null || true; fleet_stop; rm -rf "$FLEET_DIR"' EXIT

fleet_start
"$LOADGEN" register --config "$CONFIG" --users "$USERS"

# The rate: half of what the fleet sustains flat out, measured now on this machine.
max=$("$LOADGEN" run --config "$CONFIG" --users "$USERS" --sim "$SIM_URL" --name soak-max \
  --kind c2c --messages 20000)
rate=${SOAK_RATE:-$(python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])["messages_per_s"] / 2))' "$max")}
echo "soak: $rate messages/s for $SOAK_SECONDS s (max measured: $max)"

# t_s,process,rss_kb,fds,tcp: TCP connections are the process's socket descriptors found in
# /proc/net/tcp (IPv4 loopback is all the fleet uses).
python3 - "$CSV" "${FLEET_PIDS[@]}" <<'PY' &
import os, sys, time
csv, entries = sys.argv[1], [e.split("=", 1) for e in sys.argv[2:]]
def tcp_inodes():
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                inodes.update(line.split()[9] for line in f)
        except OSError:
            pass
    return inodes
start = time.time()
with open(csv, "w") as out:
    out.write("t_s,process,rss_kb,fds,tcp\n")
    while True:
        inodes = tcp_inodes()
        t = round(time.time() - start, 1)
        for name, pid in entries:
            try:
                rss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))
                links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except (OSError, StopIteration):
                continue
            tcp = sum(1 for l in links if l.startswith("socket:[") and l[8:-1] in inodes)
            out.write(f"{t},{name},{rss},{len(links)},{tcp}\n")
        out.flush()
        time.sleep(10)
PY
SAMPLER=$!

"$LOADGEN" run --config "$CONFIG" --users "$USERS" --sim "$SIM_URL" --name soak \
  --kind c2c --messages $((rate * SOAK_SECONDS)) --rate "$rate" | tee "$FLEET_DIR/soak.json"
sleep 10
kill "$SAMPLER" 2>/dev/null || true
"$LOADGEN" soak-plot --csv "$CSV" --png "$PNG" \
  --title "impush soak: $rate msg/s for $SOAK_SECONDS s, $(date -u +%Y-%m-%d), $(nproc) cores"
echo "wrote $CSV and $PNG"
