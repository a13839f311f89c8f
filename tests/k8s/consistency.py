#!/usr/bin/env python3
"""Checks that the manifests in deploy/k8s fit together (what a schema cannot see): every
object selects the same pods, SHOAL_SEED names the headless Service, which publishes pods that
are not ready yet (nodes must find each other before they can be ready), the probes use the
HTTP port, the data volume is mounted where the image keeps its data, and the grace period
covers the leave-the-cluster hand-over."""
import sys

import yaml

docs = []
for path in sys.argv[1:]:
    with open(path) as f:
        docs += [d for d in yaml.safe_load_all(f) if d]
by_kind = {}
for d in docs:
    by_kind.setdefault(d["kind"], []).append(d)


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)


(sts,) = by_kind["StatefulSet"]
services = {s["metadata"]["name"]: s for s in by_kind["Service"]}
(pdb,) = by_kind["PodDisruptionBudget"]
spec = sts["spec"]
labels = spec["template"]["metadata"]["labels"]
selector = spec["selector"]["matchLabels"]
check(all(labels.get(k) == v for k, v in selector.items()), "StatefulSet selector does not match its pods")
headless = services.get(spec["serviceName"])
check(headless is not None, f"serviceName {spec['serviceName']} is not a Service here")
check(headless["spec"].get("clusterIP") == "None", "the StatefulSet's Service is not headless")
check(headless["spec"].get("publishNotReadyAddresses") is True,
      "the headless Service must publish not-ready pods (discovery comes before readiness)")
for name, svc in services.items():
    sel = svc["spec"]["selector"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"Service {name} selects other pods")
check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
      "the PodDisruptionBudget selects other pods")
check(pdb["spec"].get("maxUnavailable") == 1, "the PodDisruptionBudget should allow one pod down (RF 2)")

pod = spec["template"]["spec"]
(container,) = pod["containers"]
env = {e["name"]: e.get("value") for e in container["env"]}
check(env.get("SHOAL_SEED") == f"dns:{headless['metadata']['name']}",
      f"SHOAL_SEED is {env.get('SHOAL_SEED')!r}, not dns:{headless['metadata']['name']}")
check("replication-factor=2" in env.get("SHOAL_NAMESPACE", ""), "namespace without replication-factor=2")
ports = {p["name"]: p["containerPort"] for p in container["ports"]}
check(ports.get("http") == 9145, "the HTTP port is not 9145")
check(container["readinessProbe"]["httpGet"]["path"] == "/health/ready", "readiness is not /health/ready")
check(container["livenessProbe"]["httpGet"]["path"] == "/health/live", "liveness is not /health/live")
for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
    check(container[probe]["httpGet"]["port"] in ("http", 9145), f"{probe} does not use the HTTP port")
claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
check(mounts.get("data") == "/var/lib/shoal" and "data" in claims, "the data claim is not mounted at /var/lib/shoal")
check(pod.get("terminationGracePeriodSeconds", 30) >= 30,
      "terminationGracePeriodSeconds under 30 s cuts the leave hand-over short")
check(pod["securityContext"].get("runAsUser") == 10001 and pod["securityContext"].get("fsGroup") == 10001,
      "pods must run as the image's user 10001 with the volume group-writable")
print(f"ok: deploy/k8s is consistent ({len(docs)} objects)")
