"""docker/kubernetes/, validated offline: every manifest against the Kubernetes API
schemas (kubernetes-validate) and the whole base against checkov's Kubernetes
checks, plus what the README's rollout relies on (README, Operations, "Kubernetes")."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.operations import servers

KUBERNETES = servers.REPO / "docker" / "kubernetes"
# The oldest Kubernetes release the manifests are written for (autoscaling/v2, policy/v1).
KUBERNETES_VERSION = "1.29.0"


def manifests() -> dict[str, dict]:
    return {
        path.name: yaml.safe_load(path.read_text())
        for path in sorted(KUBERNETES.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def by_kind(kind: str, name: str) -> dict:
    [found] = [doc for doc in manifests().values() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def pod(deployment_or_job: dict) -> dict:
    return deployment_or_job["spec"]["template"]["spec"]


def test_the_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(manifests())
    assert kustomization["namespace"] == "clacks"
    assert [image["name"] for image in kustomization["images"]] == ["clacks"]


@pytest.mark.parametrize("name", sorted(manifests()))
def test_each_manifest_is_valid_against_the_api_schema(name):
    # strict: a misspelt or misplaced field is an error, not silently dropped.
    kubernetes_validate.validate(manifests()[name], KUBERNETES_VERSION, strict=True)


# Installed by `make test` in a virtualenv of its own (Makefile, CHECKOV).
CHECKOV = os.environ.get("CHECKOV", str(servers.REPO / ".venv-checkov" / "bin" / "checkov"))


def test_checkov_finds_no_failed_check_and_every_skip_says_why():
    assert Path(CHECKOV).exists(), f"{CHECKOV} is missing: `make .venv-checkov/bin/checkov` installs it"
    done = subprocess.run(
        [CHECKOV, "--directory", str(KUBERNETES), "--framework", "kubernetes",
         "--output", "json", "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(check["check_id"], check["resource"], check["check_name"])
              for r in reports for check in r["results"]["failed_checks"]]
    passed = sum(r["summary"]["passed"] for r in reports)
    assert not failed, failed
    assert not any(r["summary"]["parsing_errors"] for r in reports), done.stdout[-2000:]
    assert passed > 50  # the checks ran
    # Each skip is an annotation on its resource (checkov.io/skipN: ID=reason) and says why.
    skipped = [check for r in reports for check in r["results"]["skipped_checks"]]
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{check['resource']}: {check['check_id']} skipped without a reason"
    assert {check["check_id"] for check in skipped} <= {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_14", "CKV_K8S_35", "CKV_K8S_43"}

def test_the_web_deployment_rolls_without_dropping_below_its_ready_count():
    web = by_kind("Deployment", "clacks-web")
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    [container] = pod(web)["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["args"] == ["serve"]
    env = {item["name"]: item["value"] for item in container["env"]}
    # Migrations come from the Job, the periodic jobs from the scheduler Deployment.
    assert env["CLACKS_MIGRATE_ON_START"] == "False" and env["CLACKS_SCHEDULER"] == "off"
    assert set(container["resources"]["requests"]) == set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert pod(web)["terminationGracePeriodSeconds"] > 30  # gunicorn's graceful timeout


@pytest.mark.parametrize("kind,name", [("Deployment", "clacks-web"), ("Deployment", "clacks-scheduler"),
                                       ("Job", "clacks-migrate")])
def test_every_pod_runs_as_the_image_user_on_a_read_only_root(kind, name):
    spec = pod(by_kind(kind, name))
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the image's clacks user (docker/Dockerfile)
    [container] = spec["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    # The only writable places: the state folder (CLACKS_VAR_DIR) and /tmp, both emptyDirs.
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert mounts == {"/var/lib/clacks", "/tmp"}
    assert all("emptyDir" in volume for volume in spec["volumes"])


def test_one_scheduler_replaced_not_rolled_and_a_migrations_job():
    scheduler = by_kind("Deployment", "clacks-scheduler")
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"] == {"type": "Recreate"}
    assert pod(scheduler)["containers"][0]["args"] == ["manage", "run_scheduler"]
    job = by_kind("Job", "clacks-migrate")
    assert pod(job)["containers"][0]["args"] == ["migrate"]  # docker/entrypoint.sh: migrate_locked, then exit
    assert pod(job)["restartPolicy"] == "Never"


def test_the_service_hpa_and_pdb_point_at_the_web_pods():
    labels = by_kind("Deployment", "clacks-web")["spec"]["template"]["metadata"]["labels"]
    service = by_kind("Service", "clacks-web")
    assert service["spec"]["selector"].items() <= labels.items()
    assert by_kind("PodDisruptionBudget", "clacks-web")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert by_kind("HorizontalPodAutoscaler", "clacks-web")["spec"]["scaleTargetRef"]["name"] == "clacks-web"
    backend = by_kind("Ingress", "clacks")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "clacks-web"


def test_every_setting_in_the_configmap_and_secret_is_documented():
    readme = (servers.REPO / "README.md").read_text()
    keys = [*by_kind("ConfigMap", "clacks-config")["data"], *by_kind("Secret", "clacks-secrets")["stringData"]]
    for key in keys:
        assert f"`{key}`" in readme, key
