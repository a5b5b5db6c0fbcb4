"""deploy/: the compose file and the Helm chart, validated without Docker or a cluster.

``helm template`` is used when a helm binary is on PATH; otherwise the chart
is rendered by a small renderer that understands exactly the template subset
the chart is written in (value lookups, ``quote``, ``if``/``end``,
``toYaml | nindent``) and fails on anything else, and the manifests are
checked structurally (selectors match labels, probes hit Triton's health
endpoints, the HPA scales the Triton deployment on the queue-time metric).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from core.settings import REPO_ROOT

COMPOSE = REPO_ROOT / "deploy" / "compose" / "docker-compose.yml"
CHART = REPO_ROOT / "deploy" / "helm" / "quickturn"

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def _lookup(context: dict[str, Any], path: str) -> Any:
    value: Any = context
    for part in path.lstrip(".").split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(f"undefined value {path}")
        value = value[part]
    return value


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(template: str, context: dict[str, Any]) -> str:
    """Render the chart's template subset; raises on anything outside it."""
    # Whitespace trimming of `{{-`: drop the preceding whitespace including the newline.
    template = re.sub(r"\s*\{\{-", "{{-", template)
    out: list[str] = []
    stack: list[bool] = []
    pos = 0
    for m in _ACTION.finditer(template):
        if all(stack):
            out.append(template[pos : m.start()])
        pos = m.end()
        expr = m.group(1)
        if expr.startswith("if "):
            stack.append(bool(_lookup(context, expr[3:].strip())))
            continue
        if expr == "end":
            stack.pop()
            continue
        if not all(stack):
            continue
        if expr.startswith("toYaml "):
            name, _, indent = expr[len("toYaml ") :].partition("| nindent")
            text = yaml.safe_dump(_lookup(context, name.strip()), default_flow_style=False, sort_keys=False).rstrip()
            pad = " " * int(indent.strip())
            out.append("\n" + "\n".join(pad + line for line in text.splitlines()))
            continue
        path, _, pipe = expr.partition("|")
        value = _scalar(_lookup(context, path.strip()))
        if pipe.strip() == "quote":
            value = '"' + value.replace('"', '\\"') + '"'
        elif pipe.strip():
            raise ValueError(f"template function not supported by the test renderer: {pipe.strip()}")
        if not path.strip().startswith("."):
            raise ValueError(f"unsupported template action: {expr}")
        out.append(value)
    assert not stack, "unclosed if"
    out.append(template[pos:])
    return "".join(out)


def manifests() -> list[dict[str, Any]]:
    if shutil.which("helm"):
        text = subprocess.run(["helm", "template", "qt", str(CHART)], check=True, capture_output=True, text=True).stdout
        return [d for d in yaml.safe_load_all(text) if d]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    context = {
        "Values": yaml.safe_load((CHART / "values.yaml").read_text()),
        "Release": {"Name": "qt", "Namespace": "default"},
        "Chart": {"Name": chart["name"], "AppVersion": chart["appVersion"], "Version": chart["version"]},
    }
    docs: list[dict[str, Any]] = []
    for path in sorted((CHART / "templates").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(render(path.read_text(), context)) if d]
    render((CHART / "templates" / "NOTES.txt").read_text(), context)
    return docs


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "quickturn" and chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_chart_renders_consistent_manifests() -> None:
    docs = manifests()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= d.keys(), d
        assert d["metadata"]["name"].startswith("qt-")
        by_kind.setdefault(d["kind"], []).append(d)
    assert sorted(by_kind) == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Service"]
    deployments = {d["metadata"]["name"]: d for d in by_kind["Deployment"]}
    assert set(deployments) == {"qt-triton", "qt-gateway"}
    for d in deployments.values():
        spec = d["spec"]
        selector = spec["selector"]["matchLabels"]
        labels = spec["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        for c in spec["template"]["spec"]["containers"]:
            assert ":" in c["image"] and "{{" not in yaml.safe_dump(c)
    # Every Service selects the pods of a Deployment, and its named target ports exist there.
    for svc in by_kind["Service"]:
        matches = [d for d in deployments.values()
                   if svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(matches) == 1, svc["metadata"]["name"]
        names = {p["name"] for c in matches[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names


def test_triton_pod_probes_metrics_and_settings() -> None:
    docs = manifests()
    triton = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "qt-triton")
    pod = triton["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["command"][:3] == ["quickturn", "serve", "triton"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8002"
    assert any(v["name"] == "dshm" and v["emptyDir"]["medium"] == "Memory" for v in pod["spec"]["volumes"])
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    settings = yaml.safe_load(config["data"]["settings.yaml"])
    from core.settings import Settings

    Settings(**settings)  # the mounted settings file is valid QuickTurn settings
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "qt-gateway")
    assert "--backend=triton://qt-triton:8001" in gateway["spec"]["template"]["spec"]["containers"][0]["args"]


def test_hpa_scales_triton_on_queue_time() -> None:
    hpa = next(d for d in manifests() if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "qt-triton")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qt-triton"}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Pods" and "queue_time" in metric["pods"]["metric"]["name"]
    assert metric["pods"]["target"]["type"] == "AverageValue"
    assert int(metric["pods"]["target"]["averageValue"]) > 0
    # The adapter rule that produces the metric from Triton's counters is documented.
    doc = (REPO_ROOT / "docs" / "triton.md").read_text()
    assert metric["pods"]["metric"]["name"] in doc and "nv_inference_queue_duration_us" in doc


def test_hpa_scales_gateways_on_a_metric_the_web_server_exposes() -> None:
    """The gateway autoscaler's metric is one GET /metrics really serves (same name, a gauge), and the pods
    say where to scrape it."""
    from assistant.web.metrics import ServerMetrics

    docs = manifests()
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler" and d["metadata"]["name"] == "qt-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "qt-gateway"}
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    metric = hpa["spec"]["metrics"][0]
    assert metric["type"] == "Pods" and metric["pods"]["target"]["type"] == "AverageValue"
    assert float(metric["pods"]["target"]["averageValue"]) > 0
    served = {f.name: f.type for f in ServerMetrics().registry.collect()}
    assert served.get(metric["pods"]["metric"]["name"]) == "gauge", served
    gateway = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "qt-gateway")
    pod = gateway["spec"]["template"]
    port = str(gateway["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"])
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/path": "/metrics",
                                              "prometheus.io/port": port}
    assert pod["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_renderer_rejects_what_it_does_not_understand() -> None:
    with pytest.raises(ValueError):
        render("{{ .Values.x | default 3 }}", {"Values": {"x": 1}})
    with pytest.raises(KeyError):
        render("{{ .Values.missing }}", {"Values": {}})


def test_compose_file() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"triton", "gateway"} <= set(services)
    triton, gateway = services["triton"], services["gateway"]
    assert triton["command"][:3] == ["quickturn", "serve", "triton"]
    assert {"8000:8000", "8001:8001", "8002:8002"} <= set(triton["ports"])
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    assert gateway["depends_on"]["triton"]["condition"] == "service_healthy"
    assert "triton://triton:8001" in gateway["command"]
    assert services["riva"]["command"][:3] == ["quickturn", "serve", "riva"] and "50051:50051" in services["riva"]["ports"]
    compose_dir = COMPOSE.parent
    for name, svc in services.items():
        build = svc.get("build") or {}
        context = (compose_dir / build.get("context", ".")).resolve()
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (compose_dir / source).resolve().is_dir(), (name, volume)
            else:
                assert source in compose.get("volumes", {}), (name, volume)
    dockerfile = (compose_dir / "Dockerfile").read_text()
    assert "numpy<2" in dockerfile and "[triton,riva]" in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert list(REPO_ROOT.glob(src)), f"Dockerfile copies a missing path: {src}"
