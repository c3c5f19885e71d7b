"""Monitoring against real servers: the embedded Triton under load from `stanet load`'s generator, scraped by a
real Prometheus (Debian package) running the project's configuration and rules. Every PromQL expression of
the dashboard, the recording rules, the alert rules, the prometheus-adapter rule and the KEDA trigger is
evaluated through Prometheus' HTTP API."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.parse

import numpy as np
import pytest
import yaml

from helpers import PROJECT, free_port, http_get, wait_for
from serving.loadgen import ClientMetrics, closed_loop
from serving.server import ServerOptions, TritonServer
from stanet.constants import MODEL_NAME

pytestmark = pytest.mark.slow
DEPLOY = PROJECT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "stanet.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
JOB = "stanet-triton"
# Exported only by a GPU Triton (DCGM) or by Triton versions newer than the embedded 2.51 (the latency
# histogram): expressions made of these alone are checked to parse, not to return data.
NOT_EXPORTED_HERE = {"nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes",
                     "nv_inference_first_response_histogram_ms_bucket"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}


def promql_metrics(expr: str) -> set[str]:
    """Metric (and recording rule) names an expression selects."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"(?<![\w:.])\d+(\.\d+)?(e[+-]?\d+)?", "", text)  # numbers
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        is_function = text[match.end():].lstrip().startswith("(")
        if not is_function and match.group().lower() not in PROMQL_WORDS:
            names.add(match.group())
    return names


def dashboard_expressions(dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable, with Grafana's variables replaced as
    a dashboard showing all models and instances would."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((f"dashboard panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"]
        selector = re.fullmatch(r"label_values\((.*), *(\w+)\)", query)
        found.append((f"dashboard variable {variable['name']}", selector.group(1)))
    substitutions = {"$__rate_interval": "1m", "$model": ".*", "$instance": ".*"}
    out = []
    for where, expr in found:
        for key, value in substitutions.items():
            expr = expr.replace(key, value)
        out.append((where, expr))
    return out


def rule_expressions() -> list[tuple[str, str, bool]]:
    """(where, PromQL, is_alert) for every recording and alert rule."""
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                name = rule.get("record") or rule.get("alert")
                out.append((f"{path.name} {name}", rule["expr"], "alert" in rule))
    return out


def autoscaler_expressions() -> list[tuple[str, str]]:
    adapter = yaml.safe_load((DEPLOY / "k8s" / "hpa" / "prometheus-adapter-values.yaml").read_text())
    rule = adapter["rules"]["custom"][0]
    # The adapter fills these per pod; here Triton runs outside Kubernetes, so per target.
    adapter_query = (rule["metricsQuery"].replace("<<.GroupBy>>", "instance")
                     .replace("<<.LabelMatchers>>", f'job="{JOB}"'))
    keda = yaml.safe_load((DEPLOY / "k8s" / "keda" / "scaledobject.yaml").read_text())
    return [("prometheus-adapter metricsQuery", adapter_query),
            ("prometheus-adapter seriesQuery", rule["seriesQuery"].replace('namespace!="",pod!=""', f'job="{JOB}"')),
            ("KEDA trigger", keda["spec"]["triggers"][0]["metadata"]["query"])]


class Prometheus:
    def __init__(self, url: str, process: subprocess.Popen):
        self.url, self.process = url, process

    def query(self, expr: str) -> dict:
        """Prometheus' instant query API; the parsed `data`, or AssertionError with Prometheus' error."""
        params = urllib.parse.urlencode({"query": expr})
        try:
            body = json.loads(http_get(f"{self.url}/api/v1/query?{params}"))
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read().decode())
        assert body["status"] == "success", f"{body.get('errorType')}: {body.get('error')}"
        return body["data"]

    def series(self, expr: str) -> list[dict]:
        return self.query(expr)["result"]

    def alerts(self) -> dict[str, str]:
        body = json.loads(http_get(f"{self.url}/api/v1/alerts"))
        return {a["labels"]["alertname"]: a["state"] for a in body["data"]["alerts"]}


@pytest.fixture(scope="module")
def triton(served_repository):
    options = ServerOptions(repository=served_repository, grpc_port=free_port(), metrics_port=free_port(),
                            exit_timeout_s=5)
    with TritonServer(options) as server:
        yield server


@pytest.fixture(scope="module")
def load(triton):
    """`stanet load`'s generator at concurrency 2 for as long as the module runs, its metrics served."""
    metrics = ClientMetrics()
    port = free_port()
    metrics.serve("127.0.0.1", port)
    clips = np.random.default_rng(0).integers(0, 256, (4, 16, 32, 32, 3), dtype=np.uint8)
    stop = threading.Event()
    worker = threading.Thread(target=closed_loop, kwargs=dict(
        url=triton.options.grpc_url, model=MODEL_NAME, clips=clips, concurrency=2, duration_s=600, metrics=metrics,
        stop=stop), daemon=True)
    worker.start()
    yield port
    stop.set()
    worker.join(timeout=30)
    metrics.close()


@pytest.fixture(scope="module")
def prometheus(triton, load, tmp_path_factory):
    """A real Prometheus with deploy/prometheus/prometheus-local.yml and the project's rule files; only the
    targets' ports (free ones, not 8002/9464) and the intervals (1 s, to keep the test short) differ."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed: `make test` installs the Debian package prometheus"
    folder = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-local.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "prometheus" / pattern) for pattern in config["rule_files"]]
    ports = {"stanet-triton": triton.options.metrics_port, "stanet-client": load}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(folder / "prometheus.log", "wb")
    process = subprocess.Popen([binary, f"--config.file={folder / 'prometheus.yml'}",
                                f"--storage.tsdb.path={folder / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready():
        assert process.poll() is None, (folder / "prometheus.log").read_text()[-3000:]
        try:
            return "Ready" in http_get(f"{url}/-/ready", timeout_s=2)
        except OSError:
            return False

    try:
        wait_for(ready, 60, what="Prometheus ready")
        yield Prometheus(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_promtool_accepts_the_configurations_and_rules():
    for config in ("prometheus.yml", "prometheus-local.yml"):
        result = subprocess.run(["promtool", "check", "config", config], cwd=DEPLOY / "prometheus",
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
    result = subprocess.run(["promtool", "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_metric_names_are_read_from_promql():
    assert promql_metrics('sum by (model, le) (rate(x_bucket{a="b"}[1m])) / 1e3 or y:z:p99') == {"x_bucket", "y:z:p99"}
    assert promql_metrics('count(up{job="t"} == 1) or vector(0)') == {"up"}
    assert promql_metrics("a > 0.5 and deriv(b[5m]) > 0") == {"a", "b"}


def test_every_query_parses_and_returns_series(prometheus):
    # Rules need a few evaluations over scraped data (rates over 1m windows, deriv over 5m).
    wait_for(lambda: all(prometheus.series(name) for name in (
        "stanet:client_latency_seconds:p99", "stanet:queue_compute:ratio", "stanet:latency_seconds:p99",
        "stanet:requests:rate1m", "stanet:failure_ratio:rate1m")), 90, what="recording rules with data")
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = ([(w, e, False) for w, e in dashboard_expressions(dashboard)] + rule_expressions()
                   + [(w, e, False) for w, e in autoscaler_expressions()])
    # ... and the recording rules computed from those alone
    unavailable = set(NOT_EXPORTED_HERE)
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule and promql_metrics(rule["expr"]) <= unavailable:
                    unavailable.add(rule["record"])
    problems, parse_only, checked = [], [], []
    for where, expr, is_alert in expressions:
        try:
            result = prometheus.series(expr)
        except AssertionError as exc:
            problems.append(f"{where}: does not evaluate: {exc}\n    {expr}")
            continue
        names = promql_metrics(expr)
        missing = [n for n in sorted(names - unavailable) if not prometheus.series(n)]
        if missing:
            problems.append(f"{where}: no series for {missing}\n    {expr}")
        elif names and names <= unavailable:
            parse_only.append(where)
        elif not is_alert and not result:
            problems.append(f"{where}: returns no series\n    {expr}")
        else:
            checked.append(where)
    print(f"{len(checked)} expressions returned series; parsed only (GPU / newer Triton metrics): {parse_only}")
    assert not problems, "\n".join(problems)
    assert len(checked) >= 40, checked


def test_a_misspelled_metric_is_caught_by_name(prometheus):
    names = promql_metrics("sum by (model) (rate(nv_inference_request_sucess[1m]))")
    assert names == {"nv_inference_request_sucess"} and not prometheus.series("nv_inference_request_sucess")


def test_dashboard_panels_use_the_provisioned_datasource_and_defined_variables():
    dashboard = json.loads(DASHBOARD.read_text())
    (datasource,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uid = datasource["uid"]
    defined = {v["name"] for v in dashboard["templating"]["list"]}
    titles = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, (panel["title"], target["refId"])
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval", "__interval", "__range"}
            assert used <= defined, (panel["title"], used - defined)
        titles.add(panel["title"])
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid
    for needed in ("Server latency p50 / p95 / p99", "Request rate", "Inferences and average batch size",
                   "Queue vs compute time per request", "Failures by reason", "Pending requests", "GPU utilization",
                   "GPU memory used", "CPU utilization and memory", "Ready replicas"):
        assert needed in titles


def test_no_ready_replica_alert_fires_when_triton_stops(prometheus, triton):
    assert prometheus.alerts().get("StanetNoReadyReplica", "inactive") == "inactive"
    triton.stop()
    wait_for(lambda: prometheus.series(f'up{{job="{JOB}"}} == 0'), 30, what="target marked down")
    rule = next(r for g in yaml.safe_load((DEPLOY / "prometheus" / "rules" / "stanet-alerts.yml").read_text())["groups"]
                for r in g["rules"] if r.get("alert") == "StanetNoReadyReplica")
    window = int(rule["for"].rstrip("s"))
    wait_for(lambda: prometheus.alerts().get("StanetNoReadyReplica") == "firing", window + 30,
             what="StanetNoReadyReplica firing")
