#!/usr/bin/env python3
"""Writes k8s/base/prometheusrule.yaml from docker/prometheus/rules.yml.

The plain rules file is the source: the PrometheusRule's spec is its `groups`, text and
comments included (indented under `spec:`), so the two cannot say different things.
scripts/check-deploy.sh fails while the PrometheusRule's groups differ from the file's.

    python3 scripts/sync-prometheus-rules.py          # write
    python3 scripts/sync-prometheus-rules.py --check  # exit 1 if the file is stale
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = "docker/prometheus/rules.yml"
TARGET = "k8s/base/prometheusrule.yaml"

HEADER = f"""\
# GENERATED from {SOURCE} by scripts/sync-prometheus-rules.py: edit that file, then
# run the script. scripts/check-deploy.sh fails while the two differ.
#
# The imgfeat alerting and recording rules for a prometheus-operator Prometheus. Its
# ruleSelector (and ruleNamespaceSelector) must select this object: add the label your
# Prometheus selects on in an overlay (kube-prometheus-stack: `release: <helm release>`).
# The rules read the metrics of the ServiceMonitors in servicemonitors.yaml and, for
# RabbitMQ's per-queue series, servicemonitor-rabbitmq.yaml.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: imgfeat
  labels:
    app.kubernetes.io/name: imgfeat
spec:
"""


def render() -> str:
    with open(os.path.join(ROOT, SOURCE)) as f:
        lines = f.read().splitlines()
    # The source's own header comment stays there; the spec starts at `groups:`.
    start = lines.index("groups:")
    body = [("  " + line) if line.strip() else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main() -> int:
    text = render()
    path = os.path.join(ROOT, TARGET)
    if "--check" in sys.argv[1:]:
        current = open(path).read() if os.path.exists(path) else ""
        if current != text:
            print(f"{TARGET} is stale: run python3 scripts/sync-prometheus-rules.py", file=sys.stderr)
            return 1
        return 0
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
