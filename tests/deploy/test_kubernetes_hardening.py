"""deploy/kubernetes/: restricted pods that can still write where they must, network policies that let
only the right callers in, keys from a Secret no manifest holds, bounded resources."""

import re
from pathlib import PurePosixPath
from typing import Any

from routeyard.gateway.settings import GatewaySettings, reference_problems, secret_problems
from tests.deploy.deploy_files import (
    DEPLOY,
    container_environment,
    env_example,
    every_container,
    filled_env_file,
    gateway_container,
    kubernetes_objects,
    pod_spec,
    redis_statefulset,
)

KEYS_SECRET = "routeyard-keys"
RESTRICTED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def workloads() -> dict[str, dict[str, Any]]:
    return {**kubernetes_objects("Deployment"), **kubernetes_objects("StatefulSet")}


def gateway() -> dict[str, Any]:
    return kubernetes_objects("Deployment")["routeyard"]


def effective_security(workload: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    """The container's security context, the pod's filling what the container leaves unset."""
    pod = {k: v for k, v in pod_spec(workload).get("securityContext", {}).items() if k != "fsGroup"}
    return {**pod, **container.get("securityContext", {})}


def port_names(container: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


def test_every_container_runs_restricted_as_a_fixed_non_root_user():
    assert set(workloads()) == {"routeyard", "routeyard-redis"}
    for name, workload in workloads().items():
        assert pod_spec(workload)["automountServiceAccountToken"] is False, name
        for container in every_container(workload):
            security = effective_security(workload, container)
            assert {k: security.get(k) for k in RESTRICTED} == RESTRICTED, (name, container["name"])
            assert isinstance(security["runAsUser"], int) and security["runAsUser"] > 0


def test_the_gateway_runs_as_the_user_the_image_creates():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (user,) = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    for container in every_container(gateway()):
        security = effective_security(gateway(), container)
        assert (str(security["runAsUser"]), str(security["runAsGroup"])) == user
    assert f"--uid {user[0]} --gid {user[1]}" in dockerfile


def test_every_path_the_gateway_writes_is_a_writable_volume():
    container = gateway_container()
    environment = container_environment(container, filled_env_file())
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for variable in ("ROUTEYARD_CACHE_DIR", "HF_HOME"):  # the image and the pod agree on where they are
        assert f"{variable}={environment[variable]}" in dockerfile
    volumes = {v["name"]: v for v in pod_spec(gateway())["volumes"]}
    scratch = [m["mountPath"] for m in container["volumeMounts"] if "emptyDir" in volumes[m["name"]]]
    for path in (environment["ROUTEYARD_CACHE_DIR"], environment["HF_HOME"], environment["TMPDIR"], "/tmp"):
        assert any(PurePosixPath(path).is_relative_to(mount) for mount in scratch), path
    (seed,) = pod_spec(gateway())["initContainers"]  # the image's baked demo artifacts reach the cache
    assert seed["command"][-2:] == [
        environment["ROUTEYARD_CACHE_DIR"] + "/.",
        seed["volumeMounts"][0]["mountPath"] + "/",
    ]
    assert seed["volumeMounts"][0]["name"] == next(
        m["name"] for m in container["volumeMounts"] if m["mountPath"] == environment["ROUTEYARD_CACHE_DIR"]
    )


def test_redis_writes_only_to_its_data_volume_and_tmp():
    spec = pod_spec(redis_statefulset())
    (container,) = spec["containers"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"] for c in redis_statefulset()["spec"]["volumeClaimTemplates"]}
    assert mounts["/data"] in claims and "--dir /data" in " ".join(container["command"])
    assert "emptyDir" in {v["name"]: v for v in spec["volumes"]}[mounts["/tmp"]]
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsUser"]  # /data is its own


def test_the_gateway_takes_its_api_from_anyone_and_its_metrics_only_from_monitoring():
    policy = kubernetes_objects("NetworkPolicy")["routeyard"]["spec"]
    assert policy["podSelector"]["matchLabels"] == gateway()["spec"]["template"]["metadata"]["labels"]
    assert policy["policyTypes"] == ["Ingress"]
    open_rules = [rule for rule in policy["ingress"] if "from" not in rule]
    assert [port["port"] for rule in open_rules for port in rule["ports"]] == ["http"]
    (metrics_rule,) = [
        rule for rule in policy["ingress"] if any(p["port"] == "metrics" for p in rule["ports"])
    ]
    (source,) = metrics_rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "monitoring"}
    assert all(rule in open_rules or rule is metrics_rule for rule in policy["ingress"])
    ports = port_names(gateway_container())
    assert {"http", "metrics"} <= set(ports)
    annotations = gateway()["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])
    service = kubernetes_objects("Service")["routeyard"]
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]


def test_redis_takes_connections_only_from_the_gateway():
    policy = kubernetes_objects("NetworkPolicy")["routeyard-redis"]["spec"]
    assert (
        policy["podSelector"]["matchLabels"] == redis_statefulset()["spec"]["template"]["metadata"]["labels"]
    )
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["from"] == [
        {"podSelector": {"matchLabels": gateway()["spec"]["template"]["metadata"]["labels"]}}
    ]
    assert [port["port"] for port in rule["ports"]] == ["redis"]
    assert "redis" in port_names(pod_spec(redis_statefulset())["containers"][0])


def test_keys_come_from_a_secret_that_no_manifest_holds():
    assert kubernetes_objects("Secret") == {}  # created with kubectl from the operator's env file
    assert (
        f"kubectl create secret generic {KEYS_SECRET} --from-env-file"
        in (DEPLOY / "kubernetes" / "deployment.yaml").read_text()
    )
    secret_names = {*env_example(), "REDISCLI_AUTH"}
    for workload in workloads().values():
        for container in every_container(workload):
            for variable in container.get("env", []):
                if variable["name"] in secret_names:
                    assert variable["valueFrom"]["secretKeyRef"]["name"] == KEYS_SECRET, variable
    assert gateway_container()["envFrom"] == [{"secretRef": {"name": KEYS_SECRET}}]
    (redis_container,) = pod_spec(redis_statefulset())["containers"]
    referenced = {v["valueFrom"]["secretKeyRef"]["key"] for v in redis_container["env"] if "valueFrom" in v}
    assert referenced == {"REDIS_PASSWORD"} and "envFrom" not in redis_container  # nothing but its password
    assert referenced <= set(env_example())


def test_the_kubernetes_gateway_authenticates_and_reaches_redis_with_its_password(monkeypatch):
    secrets = filled_env_file()
    for name, value in container_environment(gateway_container(), secrets).items():
        monkeypatch.setenv(name, value)
    settings = GatewaySettings()
    assert reference_problems(settings) + secret_problems(settings) == []
    assert settings.authenticates_clients and settings.virtual_keys
    assert settings.admin_key() == secrets["ROUTEYARD_ADMIN_KEY"]
    assert settings.request_id_secret() == secrets["ROUTEYARD_REQUEST_ID_SECRET"]
    assert settings.metrics_port == port_names(gateway_container())["metrics"]
    service = kubernetes_objects("Service")["routeyard-redis"]
    redis_port = service["spec"]["ports"][0]["port"]
    assert settings.redis_url == f"redis://:{secrets['REDIS_PASSWORD']}@routeyard-redis:{redis_port}/0"
    assert pod_spec(gateway())["enableServiceLinks"] is False  # no ROUTEYARD_*_PORT from Services


def test_every_container_has_cpu_and_memory_requests_and_limits():
    for name, workload in workloads().items():
        for container in every_container(workload):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[bound]), (name, container["name"], bound)
