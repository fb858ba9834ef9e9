#!/usr/bin/env bash
# make demo: the local stack end to end. Starts impush-sim and the workers with
# deploy/local/impush.toml, registers sample devices in several presence states, publishes a
# sample conversation (C2C and group, several element types, one dead token, one transient
# vendor failure) reaching all ten vendors, with a muted group, an @ mention that breaks
# through, quiet hours and a recalled message, then prints what each vendor received and
# what was skipped and why; last, two delivered messages are recalled and the devices' trays
# show which notifications were withdrawn, replaced or left.
# Everything it started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

CONFIG=deploy/local/impush.toml
# The demo keeps to its own queues and keys, emptied at every start, so leftovers of an
# earlier (interrupted) demo never mix in.
export IMPUSH__AMQP__PREFIX=impush-demo
export IMPUSH__REDIS__PREFIX=impush-demo
BIN=target/debug
SIM=http://127.0.0.1:8700
LOGS=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped everything the demo started (logs were in $LOGS)"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && exec 3>&- ; }
wait_url() {
  for _ in $(seq 1 150); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$1 did not come up; see $LOGS" >&2; exit 1
}
start() {
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
}

if port_open 8700; then
  echo "port 8700 is taken (another impush-sim?); stop it first" >&2; exit 1
fi
start sim "$BIN/impush-sim" --config "$CONFIG"
wait_url "$SIM/sim/deliveries"
curl -fsS -X DELETE "$SIM/sim/deliveries" >/dev/null

"$BIN/impush" setup --reset --config "$CONFIG"
start ingest "$BIN/impush-ingest" --config "$CONFIG" --metrics-addr 127.0.0.1:9601
start router "$BIN/impush-router" --config "$CONFIG" --metrics-addr 127.0.0.1:9602
VENDORS="apns fcm huawei xiaomi oppo vivo meizu tpns honor harmony"
port=9603
for vendor in $VENDORS; do
  start "sender-$vendor" "$BIN/impush-sender" --vendor "$vendor" --config "$CONFIG" --metrics-addr "127.0.0.1:$port"
  port=$((port + 1))
done
for port in $(seq 9601 9612); do wait_url "http://127.0.0.1:$port/readyz"; done
echo "fleet ready: impush-sim on :8700; metrics of ingest :9601, router :9602, senders :9603-9612 ($VENDORS)"

run=$(date +%s%N)
now=$(( $(date +%s%N) / 1000000 ))
# olly's quiet hours: from an hour ago (seconds after 00:00 UTC) for two hours.
quiet_start=$(( (now / 1000 % 86400 + 86400 - 3600) % 86400 ))
fill() { sed -e "s/@RUN@/$run/g" -e "s/@NOW@/$now/g" -e "s/@NOW1@/$((now + 1))/g" -e "s/@NOW2@/$((now + 2))/g" -e "s/@QUIET_START@/$quiet_start/g" "$1"; }

echo; echo "== registering devices and presence (deploy/local/demo-state.jsonl)"
fill deploy/local/demo-state.jsonl | "$BIN/impush" publish --config "$CONFIG"
sleep 1
echo "== APNs will answer 503 once: the first push is retried through the delay ladder"
curl -fsS -X POST "$SIM/sim/faults" -H 'content-type: application/json' \
  -d '{"vendor":"apns","status":503,"reason":"ServiceUnavailable","times":1}' >/dev/null
echo "== hana muted the team group, xiao only wants its @ mentions, olly is in quiet hours (mentions only)"
echo "== denny recalls a message before it even arrives (deploy/local/demo-recall.jsonl)"
fill deploy/local/demo-recall.jsonl | "$BIN/impush" publish --config "$CONFIG"
sleep 1
echo "== publishing the conversation (deploy/local/demo-messages.jsonl)"
fill deploy/local/demo-messages.jsonl | "$BIN/impush" publish --config "$CONFIG"

# Wait until deliveries stop changing (retries take a second or two).
last=-1; stable=0
for _ in $(seq 1 60); do
  count=$(curl -fsS "$SIM/sim/deliveries" | grep -o '"vendor"' | wc -l || true)
  if [ "$count" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
  [ "$stable" -ge 6 ] && [ "$count" -gt 0 ] && break
  last=$count; sleep 0.5
done

curl -fsS "$SIM/sim/deliveries" >"$LOGS/deliveries.json"

echo "== denny recalls the group message and the standup after delivery (deploy/local/demo-recall-after.jsonl)"
fill deploy/local/demo-recall-after.jsonl | "$BIN/impush" publish --config "$CONFIG"
# Wait until the trays stop changing.
last=""; stable=0
for _ in $(seq 1 60); do
  tray=$(curl -fsS "$SIM/sim/notifications" || true)
  if [ "$tray" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
  [ "$stable" -ge 6 ] && break
  last=$tray; sleep 0.5
done
curl -fsS "$SIM/sim/notifications" >"$LOGS/notifications.json"

echo
for port in $(seq 9602 9612); do curl -fsS "http://127.0.0.1:$port/metrics"; done >"$LOGS/metrics.txt"
python3 - "$LOGS/deliveries.json" "$LOGS/metrics.txt" "$LOGS/notifications.json" <<'PY'
import json, sys, re
deliveries = json.load(open(sys.argv[1]))
metrics = open(sys.argv[2]).read()
tray = json.load(open(sys.argv[3]))
def short(s, n):
    s = "" if s is None else str(s)
    return s if len(s) <= n else s[: n - 1] + "…"
deliveries.sort(key=lambda d: (d["vendor"], d.get("received_at_ms", 0)))
print(f"What each vendor received ({len(deliveries)} notifications):")
print(f"  {'vendor':<7} {'token':<14} {'title':<12} {'body':<44} {'badge':>5}  {'sound':<10} ext")
for d in deliveries:
    print(f"  {d['vendor']:<7} {short(d['token'], 14):<14} {short(d.get('title'), 12):<12} "
          f"{short(d.get('body'), 44):<44} {str(d.get('badge') if d.get('badge') is not None else '-'):>5}  "
          f"{short(d.get('sound') or '(silent)', 10):<10} {short(d.get('ext'), 30)}")
def series(name):
    out = {}
    for line in metrics.splitlines():
        m = re.match(name + r'\{([^}]*)\} ([0-9.e+]+)', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            out[tuple(sorted(labels.items()))] = out.get(tuple(sorted(labels.items())), 0) + float(m.group(2))
    # Counters are exported at 0 from start-up; the summary shows what happened.
    return {k: v for k, v in out.items() if v > 0}
print("\nSkipped, and why (router):")
for labels, n in sorted(series("impush_skips_total").items()):
    print(f"  {dict(labels)['reason']:<28} {int(n)}")
print("\nVendor answers and actions (senders):")
for labels, n in sorted(series("impush_pushes_total").items()):
    l = dict(labels)
    print(f"  {l['vendor']:<7} {l['outcome']:<16} {int(n)}")
for labels, n in sorted(series("impush_recalls_total").items()):
    print(f"  recalls {dict(labels)['outcome']:<16} {int(n)}")
for labels, n in sorted(series("impush_tokens_pruned_total").items()):
    print(f"  {dict(labels)['vendor']:<7} token pruned     {int(n)}  (device removed, feedback.token published)")
recalled = [n for n in tray if n["withdrawn"] or n["replaced"]]
recalled.sort(key=lambda n: (n["vendor"], n["token"]))
print("\nAfter the recalls, on the devices whose vendor can take a notification back or replace it:")
for n in recalled:
    state = "withdrawn" if n["withdrawn"] else ("replaced" if n["replaced"] else "shown")
    print(f"  {n['vendor']:<7} {short(n['token'], 14):<14} {state:<10} {short(n.get('body'), 44)}")
print("  (the other vendors' devices keep theirs: too late)")
PY
