"""The deployment files, validated offline: docker-compose.yml by docker compose (v2 where installed, else
the Debian docker-compose), the Kubernetes manifests against the Kubernetes API schemas (kubernetes-validate),
the custom resources and kustomizations by their structure, and the settings each file must carry."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from helpers import PROJECT
from serving.server import RESTRICTED_PROTOCOLS

K8S = PROJECT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.31"
COMPOSE_ENV = {"STANET_ADMIN_TOKEN": "test-token", "GRAFANA_ADMIN_PASSWORD": "test-password"}
TRITON_EXIT_TIMEOUT_S = 30


def compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    assert legacy, "neither `docker compose` nor docker-compose is installed (`make test` installs docker-compose)"
    return [legacy]


def compose_config(profile: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*compose_command(), "-f", "docker-compose.yml", "--profile", profile, "config"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


@pytest.mark.parametrize("profile", ["gpu", "cpu"])
def test_compose_file_validates_for_each_profile(profile):
    result = compose_config(profile, COMPOSE_ENV)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    triton = services["triton" if profile == "gpu" else "triton-cpu"]
    assert {"prometheus", "grafana"} <= set(services)
    # only gRPC published, on loopback; metrics and HTTP stay inside
    published = [str(p.get("published", p) if isinstance(p, dict) else p) for p in triton["ports"]]
    assert len(triton["ports"]) == 1 and "8001" in str(triton["ports"][0]), triton["ports"]
    assert not any("8000" in p or "8002" in p for p in published)
    (models,) = [v for v in triton["volumes"] if (v["target"] if isinstance(v, dict) else v.split(":")[1]) == "/models"]
    assert (models.get("read_only") if isinstance(models, dict) else models.endswith(":ro"))
    assert triton["user"] == "1000:1000" and triton["read_only"] is True
    assert triton["shm_size"] not in (None, "", 0)
    assert "/v2/health/ready" in " ".join(triton["healthcheck"]["test"])
    command = triton["command"]
    for flag in ("--model-control-mode=none", "--strict-readiness=true", "--disable-auto-complete-config",
                 "--metrics-config=histogram_latencies=true", "--metrics-config=summary_latencies=true",
                 "--metrics-address=0.0.0.0", "--http-address=127.0.0.1"):
        assert flag in command, flag
    (restricted,) = [c for c in command if c.startswith("--grpc-restricted-protocol=")]
    assert restricted.endswith(":stanet-admin=test-token")
    assert set(RESTRICTED_PROTOCOLS) <= set(restricted.split("=", 1)[1].split(":")[0].split(","))
    if profile == "gpu":
        builder = services["engine-builder"]
        assert triton["depends_on"]["engine-builder"]["condition"] == "service_completed_successfully"
        for service in (triton, builder):
            (device,) = service["deploy"]["resources"]["reservations"]["devices"]
            assert device["capabilities"] == ["gpu"]
        assert builder["image"].endswith(triton["image"].rsplit(":", 1)[1].removesuffix("-py3"))  # same NGC release


def test_compose_refuses_to_start_without_its_secrets():
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_ENV}
    result = subprocess.run([*compose_command(), "-f", "docker-compose.yml", "--profile", "cpu", "config"],
                            cwd=PROJECT, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode != 0
    assert "STANET_ADMIN_TOKEN" in result.stderr or "GRAFANA_ADMIN_PASSWORD" in result.stderr


# Custom resources have no schema in kubernetes-validate: test_custom_resources_point_at_the_deployment
# checks them.
CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("keda.sh/v1alpha1", "ScaledObject")}


def manifests(custom: bool = False) -> list[tuple[Path, dict]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name in ("kustomization.yaml", "prometheus-adapter-values.yaml"):
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if ((document["apiVersion"], document["kind"]) in CUSTOM_RESOURCES) == custom:
                found.append((path, document))
    return found


@pytest.mark.parametrize("path, document", manifests(), ids=lambda v: v.name if isinstance(v, Path) else "")
def test_kubernetes_manifests_validate_against_the_api_schemas(path, document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_catches_a_misspelled_field():
    deployment = _load("base/deployment.yaml")
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_only_known_custom_resources_are_used():
    assert {(d["apiVersion"], d["kind"]) for _, d in manifests(custom=True)} == CUSTOM_RESOURCES


def test_kustomizations_list_existing_files():
    for path in K8S.rglob("kustomization.yaml"):
        for resource in yaml.safe_load(path.read_text())["resources"]:
            assert (path.parent / resource).exists(), f"{path}: {resource}"


def _load(name: str) -> dict:
    return yaml.safe_load((K8S / name).read_text())


def test_deployment_is_hardened_and_probed():
    deployment = _load("base/deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # model load and engine build
    assert f"--exit-timeout-secs={TRITON_EXIT_TIMEOUT_S}" in container["args"]
    assert pod["terminationGracePeriodSeconds"] > TRITON_EXIT_TIMEOUT_S + 5  # exit timeout + the preStop pause
    assert "--model-control-mode=none" in container["args"] and "--metrics-config=histogram_latencies=true" in container["args"]
    (models,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/models"]
    assert models["readOnly"] is True


def test_custom_resources_point_at_the_deployment():
    deployment = _load("base/deployment.yaml")
    service, monitor = _load("base/service.yaml"), _load("base/servicemonitor.yaml")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert "metrics" in [p["name"] for p in service["spec"]["ports"]]
    # Prometheus' job label is the Service name: the rules and the dashboard select job="stanet-triton"
    assert service["metadata"]["name"] == "stanet-triton"
    hpa, scaled = _load("hpa/hpa.yaml"), _load("keda/scaledobject.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    adapter = yaml.safe_load((K8S / "hpa" / "prometheus-adapter-values.yaml").read_text())
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == adapter["rules"]["custom"][0]["name"]["as"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "Value"
    assert float(trigger["metadata"]["threshold"]) == 0.05  # the HPA's 50m target, in seconds
