#!/usr/bin/env bash
# Validates what can be validated of deploy/ without a cluster or a container engine: every
# YAML and JSON file parses, the generated manifests (per-vendor senders, PrometheusRule)
# match their sources, the Kubernetes objects match the API schemas, the Prometheus
# config and rules pass `promtool check`, the alert unit tests pass `promtool test rules`,
# and every query of the Grafana dashboard is valid PromQL. Installs promtool (Debian's
# prometheus package), PyYAML and kubernetes-validate (PyPI) when absent, as
# scripts/ensure-services.sh does for RabbitMQ. Run by `make test`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! have promtool; then
  echo "installing promtool (Debian package prometheus)"
  as_root apt-get update -qq
  # RUNLEVEL=1 keeps the package's init script from starting a Prometheus server here.
  RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
pip_install() {
  python3 -m pip install --quiet "$@" 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages "$@"
}
if ! python3 -c 'import yaml' 2>/dev/null; then
  echo "installing PyYAML"
  pip_install PyYAML
fi
if ! python3 -c 'import kubernetes_validate' 2>/dev/null; then
  echo "installing kubernetes-validate"
  pip_install kubernetes-validate
fi

echo "parsing every YAML and JSON file under deploy/"
python3 - <<'EOF'
import json, pathlib, sys, yaml

# PyYAML keeps the last of two equal keys; Kubernetes and compose reject or misread them.
class StrictLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        for key in keys:
            if keys.count(key) > 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", node.start_mark)
        return super().construct_mapping(node, deep)

def no_duplicates(pairs):
    keys = [key for key, _ in pairs]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise ValueError(f"duplicate keys {sorted(duplicates)}")
    return dict(pairs)

failed = False
count = 0
for path in sorted(pathlib.Path("deploy").rglob("*")):
    try:
        if path.suffix in (".yml", ".yaml"):
            list(yaml.load_all(path.read_text(), Loader=StrictLoader))
        elif path.suffix == ".json":
            json.loads(path.read_text(), object_pairs_hook=no_duplicates)
        else:
            continue
        count += 1
    except Exception as err:
        failed = True
        print(f"{path}: {err}", file=sys.stderr)
if failed:
    sys.exit(1)
print(f"  {count} files parse")
EOF

echo "checking the generated manifests (scripts/gen-k8s.sh --check)"
./scripts/gen-k8s.sh --check

# Strict: a misspelt field is an error, not silently dropped as the API server would. The
# CRDs (KEDA's ScaledObject and TriggerAuthentication, the PodMonitor) have no schema here;
# tests/deploy_check.rs checks the fields of theirs that impush relies on.
echo "validating the Kubernetes objects against the API schemas (1.30)"
find deploy/k8s -name '*.yaml' ! -name kustomization.yaml -print0 | sort -z \
  | xargs -0 python3 -m kubernetes_validate --strict --quiet --no-warn -k 1.30.0

promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

# promtool has no "check this expression" command, so the dashboard's queries go through it
# as recording rules, with Grafana's variables replaced by values PromQL accepts.
echo "checking the dashboard's queries"
queries="$(mktemp --suffix=.yml)"
titles="$(mktemp)"
trap 'rm -f "$queries" "$titles"' EXIT
python3 - deploy/grafana/impush-dashboard.json "$queries" "$titles" <<'EOF'
import json, sys, yaml
dashboard = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for panel in panels:
        walk(panel.get("panels", []))
        for target in panel.get("targets", []):
            exprs.append((panel["title"], target["expr"]))
walk(dashboard["panels"])
for variable in dashboard["templating"]["list"]:
    query = variable.get("query")
    if isinstance(query, dict) and query.get("query", "").startswith("label_values("):
        metric = query["query"][len("label_values("):].split(",")[0].strip()
        exprs.append((f"variable {variable['name']}", metric))
rules = []
for index, (title, expr) in enumerate(exprs):
    expr = expr.replace("$__rate_interval", "5m").replace("$vendor", ".*")
    rules.append({"record": f"dashboard:query_{index}", "expr": expr})
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
with open(sys.argv[3], "w") as titles:
    for index, (title, expr) in enumerate(exprs):
        titles.write(f"  dashboard:query_{index} is in panel {title!r}: {expr}\n")
print(f"  {len(rules)} queries")
EOF
if ! promtool check rules "$queries" >/dev/null; then
  cat "$titles" >&2
  exit 1
fi
echo "deploy/ checks passed"
