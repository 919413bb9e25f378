"""``deploy/``: every kustomization renders with the real kubectl, every object passes the Kubernetes schemas
of each supported version, and the pieces agree with each other and with the code (ports, paths, names,
metric names, the adapter's settings, the image)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from adapter.settings import Settings, load_settings, split_host_port
from adapter.sources.spark import SparkSettings
from adapter.sources.trino import TrinoSettings
from autoscaler.controller.api_calls import DEFAULT_LEASE_NAME
from autoscaler.policy.loading import from_resource, load_policies
from core.catalog import DEFAULT_CATALOG
from tests.helpers.deploy import (
    DEPLOY,
    KUBECTL,
    ROOT,
    SELF_SIGNED_CERTS,
    Obj,
    containers,
    kustomization_dirs,
    of_kind,
    one,
    render,
    scratch_deploy,
)

pytestmark = pytest.mark.skipif(KUBECTL is None and not os.environ.get("CI"), reason="kubectl not installed")

KUSTOMIZATIONS = [str(p.relative_to(DEPLOY)) for p in kustomization_dirs(DEPLOY)]
COMPONENTS = [str(p.relative_to(DEPLOY)) for p in kustomization_dirs(DEPLOY, "Component")]
OVERLAYS = [k for k in KUSTOMIZATIONS if k.startswith("overlays/")]
# Components no shipped overlay includes are rendered on top of this overlay.
EXTRA_ON = "overlays/cert-manager"

# Custom resources of other projects: no schema ships with kubernetes-validate, so they are checked only
# through the assertions of this file. ScalingPolicy is checked by our own models instead.
THIRD_PARTY = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
}
OURS = ("queuescale.io/v1alpha1", "ScalingPolicy")

NAMESPACE = "queuescale"
ADAPTER_SERVICE = "queuescale-adapter"
TLS_SECRET = "queuescale-adapter-tls"
APISERVICE = "v1beta1.external.metrics.k8s.io"


def supported_versions() -> list[str]:
    """1.30 to the newest Kubernetes the installed kubernetes-validate knows."""
    return sorted({v for v in all_versions() if Version(v) >= Version("1.30")}, key=Version)


class Renders:
    """Each kustomization of a scratch ``deploy/`` copy rendered once, on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, list[Obj]] = {}
        self.extra: list[str] = []
        for component in COMPONENTS:
            if not any(component in self.components_of(k) for k in KUSTOMIZATIONS):
                self.extra.append(self._with_component(component))

    def components_of(self, rel: str) -> list[str]:
        doc = yaml.safe_load((self.root / rel / "kustomization.yaml").read_text()) or {}
        return [os.path.normpath(os.path.join(rel, c)) for c in doc.get("components", [])]

    def _with_component(self, component: str) -> str:
        rel = f"overlays/test-{component.replace('/', '-')}"
        folder = self.root / rel
        folder.mkdir(parents=True)
        doc = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [f"../{Path(EXTRA_ON).name}"],
            "components": [f"../../{component}"],
        }
        (folder / "kustomization.yaml").write_text(yaml.safe_dump(doc))
        return rel

    def __getitem__(self, rel: str) -> list[Obj]:
        if rel not in self._cache:
            self._cache[rel] = render(self.root / rel)
        return self._cache[rel]

    def everything(self) -> list[Obj]:
        return [obj for rel in [*KUSTOMIZATIONS, *self.extra] for obj in self[rel]]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(scratch_deploy(tmp_path_factory.mktemp("deploy")))


def _unique(objs: list[Obj]) -> list[Obj]:
    seen: dict[str, Obj] = {}
    for obj in objs:
        seen.setdefault(json.dumps(obj, sort_keys=True), obj)
    return list(seen.values())


def _kind(obj: Obj) -> tuple[str, str]:
    return obj["apiVersion"], obj["kind"]


# --- rendering and schemas --------------------------------------------------------------------------------


def test_the_layout_is_what_the_readme_describes() -> None:
    assert {"base", "overlays/self-signed", "overlays/cert-manager", "overlays/keda"} <= set(KUSTOMIZATIONS)
    assert {"examples/hpa", "examples/policies", "examples/keda"} <= set(KUSTOMIZATIONS)
    assert set(COMPONENTS) == {"components/cert-manager", "components/keda", "components/monitoring"}


@pytest.mark.parametrize("rel", KUSTOMIZATIONS)
def test_kustomization_renders(renders: Renders, rel: str) -> None:
    objs = renders[rel]
    assert objs, f"{rel} rendered nothing"
    for obj in objs:
        assert obj.get("apiVersion"), obj
        assert obj.get("kind"), obj
        assert obj["metadata"].get("name"), obj


def test_every_component_is_rendered_by_some_kustomization(renders: Renders) -> None:
    used = {c for k in [*KUSTOMIZATIONS, *renders.extra] for c in renders.components_of(k)}
    assert used == set(COMPONENTS)
    for rel in renders.extra:
        assert of_kind(renders[rel], "ServiceMonitor"), rel


@pytest.mark.parametrize("version", supported_versions())
def test_rendered_objects_pass_strict_validation(renders: Renders, version: str) -> None:
    failures = []
    for obj in _unique(renders.everything()):
        if _kind(obj) in THIRD_PARTY or _kind(obj) == OURS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.absolute_path)
            failures.append(f"{obj['kind']} {obj['metadata']['name']}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            failures.append(
                f"{obj['kind']} {obj['metadata']['name']}: {exc.message} (list it in THIRD_PARTY?)"
            )
    assert not failures, "\n".join(failures)


def test_the_third_party_list_is_exact(renders: Renders) -> None:
    kinds = {_kind(o) for o in renders.everything()}
    assert kinds >= THIRD_PARTY, f"listed but never rendered: {THIRD_PARTY - kinds}"
    for api_version, kind in kinds - THIRD_PARTY - {OURS}:
        group = api_version.rpartition("/")[0]
        assert "." not in group or group.endswith(".k8s.io"), f"{kind} ({api_version}) is not built in"


def test_scaling_policies_pass_the_models(renders: Renders) -> None:
    files = sorted((DEPLOY / "examples" / "policies").glob("*.yaml"))
    from_files = {
        (p.metadata.namespace, p.metadata.name)
        for f in files
        if yaml.safe_load(f.read_text()).get("kind") == "ScalingPolicy"
        for p, _ in load_policies(f)
    }
    rendered = [from_resource(o) for o in of_kind(renders["examples/policies"], "ScalingPolicy")]
    assert {(p.metadata.namespace, p.metadata.name) for p in rendered} == from_files
    assert {p.spec.target.kind for p in rendered} == {"TrinoWorkers", "SparkWorkerPool"}


def test_no_secret_material_is_committed() -> None:
    committed = [
        p for p in DEPLOY.rglob("*") if p.is_file() and SELF_SIGNED_CERTS.as_posix() not in p.as_posix()
    ]
    for path in committed:
        text = path.read_text()
        assert "PRIVATE KEY" not in text, path
        assert not re.search(r"^kind:\s*Secret\s*$", text, re.M), f"{path}: Secrets are made, not committed"
    ignored = (DEPLOY / "overlays" / "self-signed" / ".gitignore").read_text().split()
    assert f"{SELF_SIGNED_CERTS.name}/" in ignored


# --- the adapter ---------------------------------------------------------------------------------------------


def _adapter_settings() -> Settings:
    return load_settings(DEPLOY / "base" / "adapter" / "adapter.yaml")


def _mounts(container: Obj) -> dict[str, str]:
    return {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}


def _volume(dep: Obj, name: str) -> Obj:
    volumes: list[Obj] = [v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == name]
    assert len(volumes) == 1, f"volume {name}"
    return volumes[0]


def _mounted_volume(dep: Obj, container: Obj, path: Path) -> Obj:
    """The volume that holds ``path`` in ``container``."""
    for mount_path, name in _mounts(container).items():
        if path.is_relative_to(mount_path):
            return _volume(dep, name)
    raise AssertionError(f"{path} is on no volume of {container['name']}")


def test_adapter_settings_file_is_valid_and_matches_the_deployment(renders: Renders) -> None:
    settings = _adapter_settings()
    objs = renders["base"]
    dep = one(objs, "Deployment", "queuescale-adapter")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["adapter", "--config"]
    config = Path(container["args"][2])
    config_volume = _mounted_volume(dep, container, config)
    (config_map,) = of_kind(objs, "ConfigMap")
    assert config_volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert config_map["data"][config.name] == (DEPLOY / "base" / "adapter" / "adapter.yaml").read_text()

    assert settings.auth.mode == "front-proxy"
    assert not settings.server.insecure_http
    for path in (settings.server.tls_cert_file, settings.server.tls_key_file):
        assert path is not None
        assert _mounted_volume(dep, container, path)["secret"]["secretName"] == TLS_SECRET
    _, port = split_host_port(settings.server.listen)
    assert [p["containerPort"] for p in container["ports"]] == [port]


def test_adapter_is_highly_available_and_probed_over_https(renders: Renders) -> None:
    objs = renders["base"]
    dep = one(objs, "Deployment", "queuescale-adapter")
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pdb = one(objs, "PodDisruptionBudget", "queuescale-adapter")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/livez"
    for probe in probes.values():
        assert probe["scheme"] == "HTTPS"
        assert probe["port"] == container["ports"][0]["name"]


def test_apiservice_points_at_the_adapter_and_verifies_it(renders: Renders) -> None:
    checked = []
    for rel in OVERLAYS:
        objs = renders[rel]
        services = of_kind(objs, "APIService")
        if rel == "overlays/keda":
            assert not services, "the KEDA overlay must leave the external-metrics APIService alone"
            continue
        (api,) = services
        assert api["metadata"]["name"] == APISERVICE
        spec = api["spec"]
        assert not spec.get("insecureSkipTLSVerify")
        svc = one(objs, "Service", spec["service"]["name"])
        assert svc["metadata"]["namespace"] == spec["service"]["namespace"] == NAMESPACE
        assert spec["service"]["port"] in [p["port"] for p in svc["spec"]["ports"]]
        inject = api["metadata"].get("annotations", {}).get("cert-manager.io/inject-ca-from")
        if inject:
            ns, name = inject.split("/")
            cert = one(objs, "Certificate", name)
            assert cert["metadata"]["namespace"] == ns
            assert cert["spec"]["secretName"] == TLS_SECRET
            assert f"{ADAPTER_SERVICE}.{NAMESPACE}.svc" in cert["spec"]["dnsNames"]
            assert "caBundle" not in spec
        else:
            secret = one(objs, "Secret", TLS_SECRET)
            assert spec["caBundle"] == secret["data"]["ca.crt"]
            assert base64.b64decode(spec["caBundle"]).startswith(b"-----BEGIN CERTIFICATE-----")
        checked.append(rel)
    assert sorted(checked) == ["overlays/cert-manager", "overlays/self-signed"]


def test_keda_overlay_serves_the_keda_endpoint_behind_a_token(renders: Renders) -> None:
    objs = renders["overlays/keda"]
    assert not of_kind(objs, "CustomResourceDefinition")
    assert not [d for d in of_kind(objs, "Deployment") if d["metadata"]["name"] != "queuescale-adapter"]
    dep = one(objs, "Deployment", "queuescale-adapter")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    token_file = Path(env["QUEUESCALE_KEDA__BEARER_TOKEN_FILE"])
    keda = {"enabled": env["QUEUESCALE_KEDA__ENABLED"], "bearer_token_file": str(token_file)}
    settings = load_settings(DEPLOY / "base" / "adapter" / "adapter.yaml", {"keda": keda})
    assert settings.keda.enabled
    assert settings.keda.bearer_token_file == token_file
    volume = _mounted_volume(dep, container, token_file)
    assert [i["path"] for i in volume["secret"]["items"]] == [token_file.name]
    assert one(objs, "Certificate", "queuescale-adapter-serving")["spec"]["secretName"] == TLS_SECRET


def _monitoring(renders: Renders) -> list[Obj]:
    return renders[next(r for r in renders.extra if "monitoring" in r)]


def test_the_scraped_ports_serve_metrics(renders: Renders) -> None:
    objs = _monitoring(renders)
    for monitor in of_kind(objs, "ServiceMonitor"):
        matches = [
            s
            for s in of_kind(objs, "Service")
            if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]
        assert len(matches) == 1, monitor["metadata"]["name"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] in [p["name"] for p in matches[0]["spec"]["ports"]]
        assert endpoint["path"] == "/metrics"
        if endpoint.get("scheme") == "https":
            tls = endpoint["tlsConfig"]
            assert tls["ca"]["secret"] == {"name": TLS_SECRET, "key": "ca.crt"}
            assert tls["serverName"] == f"{matches[0]['metadata']['name']}.{NAMESPACE}.svc"
    # The controller's series carry each policy's namespace, which the rules aggregate by.
    controller = one(objs, "ServiceMonitor", "queuescale-controller")
    assert controller["spec"]["endpoints"][0]["honorLabels"] is True


def test_prometheus_may_scrape_the_guarded_adapter_metrics(renders: Renders) -> None:
    # /metrics is behind TokenReview and a SubjectAccessReview for the path: Prometheus sends its token
    # and its service account is granted get on the non-resource URL, nothing else.
    objs = _monitoring(renders)
    adapter = one(objs, "ServiceMonitor", "queuescale-adapter")
    (endpoint,) = adapter["spec"]["endpoints"]
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    role = one(objs, "ClusterRole", "queuescale-metrics-reader")
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    binding = one(objs, "ClusterRoleBinding", "queuescale-metrics-reader")
    assert binding["roleRef"]["name"] == "queuescale-metrics-reader"
    assert [s["kind"] for s in binding["subjects"]] == ["ServiceAccount"]


def test_prometheus_rule_is_the_rule_file(renders: Renders, tmp_path: Path) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yaml").read_text())
    rule = one(_monitoring(renders), "PrometheusRule", "queuescale")
    assert rule["spec"] == rules
    remade = tmp_path / "prometheusrule.yaml"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "make-prometheus-rule.sh"), str(remade)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    committed = DEPLOY / "components" / "monitoring" / "prometheusrule.yaml"
    assert committed.read_text() == remade.read_text(), "stale: run scripts/make-prometheus-rule.sh"


# --- the controller --------------------------------------------------------------------------------------------


def _flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_controller_command_line_matches_its_rbac_and_ports(renders: Renders) -> None:
    objs = renders["base"]
    dep = one(objs, "Deployment", "queuescale-controller")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "controller"
    assert _flag(args, "--policies") == "crd"
    assert _flag(args, "--metrics") == "external-api"
    assert "--leader-elect" in args
    assert dep["spec"]["replicas"] >= 2
    assert _flag(args, "--lease-name") == DEFAULT_LEASE_NAME
    env = {e["name"]: e for e in container["env"]}
    assert _flag(args, "--lease-namespace") == "$(POD_NAMESPACE)"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    role = one(objs, "Role", "queuescale-controller-leader-election")
    assert role["metadata"]["namespace"] == dep["metadata"]["namespace"]
    assert [DEFAULT_LEASE_NAME] in [r.get("resourceNames") for r in role["rules"]]
    _, port = split_host_port(_flag(args, "--listen-metrics"))
    (declared,) = container["ports"]
    assert declared["containerPort"] == port
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": declared["name"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": declared["name"]}
    crd = one(objs, "CustomResourceDefinition", "scalingpolicies.queuescale.io")
    assert crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


# --- both workloads ----------------------------------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of ``Dockerfile``, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def _image_user() -> int:
    users = [args for op, args in _dockerfile() if op == "USER"]
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "USER must be numeric so the kubelet can check runAsNonRoot"
    return int(uid)


def test_workloads_are_locked_down(renders: Renders) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    uid = _image_user()
    seen = []
    for dep, container in containers(renders["base"]):
        pod = dep["spec"]["template"]["spec"]
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["runAsUser"] == uid != 0
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        csc = container["securityContext"]
        assert csc["readOnlyRootFilesystem"] is True
        assert csc["allowPrivilegeEscalation"] is False
        assert csc["capabilities"]["drop"] == ["ALL"]
        assert "privileged" not in csc
        assert "hostNetwork" not in pod
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys()
        assert "memory" in resources["limits"]
        # A read-only root needs somewhere to write: /tmp, where the image points matplotlib too.
        assert "emptyDir" in _mounted_volume(dep, container, Path("/tmp/matplotlib"))
        assert container["image"] == f"queuescale:{pyproject['project']['version']}"
        seen.append(container["args"][0])
    assert sorted(seen) == ["adapter", "controller"]


def test_network_policies_open_only_the_served_ports(renders: Renders) -> None:
    objs = renders["base"]
    policies = of_kind(objs, "NetworkPolicy")
    for dep, container in containers(objs):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        (policy,) = [p for p in policies if p["spec"]["podSelector"]["matchLabels"].items() <= labels.items()]
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        opened = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
        assert opened == {p["containerPort"] for p in container["ports"]}


def test_services_select_their_pods(renders: Renders) -> None:
    objs = renders["base"]
    for svc in of_kind(objs, "Service"):
        selected = [
            (d, c)
            for d, c in containers(objs)
            if svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(selected) == 1, svc["metadata"]["name"]
        names = {p["name"] for p in selected[0][1]["ports"]}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= names


# --- examples -----------------------------------------------------------------------------------------------------


def _served(settings: Settings, metric: str, labels: dict[str, str], namespace: str) -> list[str]:
    """Why an HPA in ``namespace`` asking for ``metric`` with ``labels`` would get no answer (empty: fine)."""
    spec = DEFAULT_CATALOG.get(metric)
    if spec is None:
        return [f"{metric}: not in the adapter's catalog"]
    problems = [f"{metric}: no label {k}" for k in labels if k not in spec.labels]
    sources: list[TrinoSettings] | list[SparkSettings] = (
        settings.trino if spec.family == "trino" else settings.spark
    )
    key = spec.labels[0]
    named = [s for s in sources if s.name == labels.get(key)]
    if not named:
        problems.append(f"{metric}: {key}={labels.get(key)} is no configured {spec.family} source")
    elif named[0].namespaces and namespace not in named[0].namespaces:
        problems.append(f"{metric}: {key}={labels[key]} is not served in namespace {namespace}")
    return problems


def _external_metrics(metrics: list[dict[str, Any]]) -> list[tuple[str, dict[str, str]]]:
    return [
        (m["external"]["metric"]["name"], m["external"]["metric"]["selector"]["matchLabels"])
        for m in metrics
        if m["type"] == "External"
    ]


def test_example_hpas_ask_for_what_the_adapter_serves(renders: Renders) -> None:
    settings = _adapter_settings()
    problems = []
    targets = set()
    for hpa in of_kind(renders["examples/hpa"], "HorizontalPodAutoscaler"):
        ns = hpa["metadata"]["namespace"]
        targets.add(hpa["spec"]["scaleTargetRef"]["kind"])
        for metric, labels in _external_metrics(hpa["spec"]["metrics"]):
            problems += _served(settings, metric, labels, ns)
    assert not problems, problems
    assert targets == {"Deployment", "StatefulSet"}


def test_example_policies_ask_for_what_the_adapter_serves(renders: Renders) -> None:
    settings = _adapter_settings()
    problems = []
    for obj in of_kind(renders["examples/policies"], "ScalingPolicy"):
        policy = from_resource(obj)
        ns = policy.metadata.namespace or "default"
        for metric, labels in _external_metrics(obj["spec"]["metrics"]):
            problems += _served(settings, metric, labels, ns)
        target = policy.spec.target
        if target.trino is not None:
            problems += _served(settings, "trino_queued_queries", {"cluster": target.trino.cluster}, ns)
        if target.spark is not None:
            problems += _served(settings, "spark_executors_needed", {"pool": target.spark.pool}, ns)
    assert not problems, problems


def test_keda_example_reads_the_adapters_keda_endpoint(renders: Renders) -> None:
    settings = _adapter_settings()
    objs = renders["examples/keda"]
    (scaled,) = of_kind(objs, "ScaledObject")
    auth_names = {a["metadata"]["name"] for a in of_kind(objs, "TriggerAuthentication")}
    svc = one(renders["base"], "Service", ADAPTER_SERVICE)
    problems = []
    for trigger in scaled["spec"]["triggers"]:
        meta = trigger["metadata"]
        assert trigger["type"] == "metrics-api"
        assert meta["valueLocation"] == "value"
        assert meta["authMode"] == "bearer"
        assert trigger["authenticationRef"]["name"] in auth_names
        url = urlsplit(meta["url"])
        assert url.scheme == "https"
        assert url.hostname == f"{ADAPTER_SERVICE}.{NAMESPACE}.svc"
        assert (url.port or 443) in [p["port"] for p in svc["spec"]["ports"]]
        match = re.fullmatch(r"/keda/v1/namespaces/([^/]+)/([^/]+)", url.path)
        assert match, url.path
        ns, metric = match.groups()
        assert ns == scaled["metadata"]["namespace"]
        (selector,) = parse_qs(url.query)["labelSelector"]
        labels = dict(part.split("=", 1) for part in selector.split(","))
        problems += _served(settings, metric, labels, ns)
    assert not problems, problems


# --- the image --------------------------------------------------------------------------------------------------


def test_dockerfile_builds_one_non_root_image_running_the_console_script() -> None:
    steps = _dockerfile()
    stages = [args for op, args in steps if op == "FROM"]
    assert all(s.split()[0] == "python:3.11-slim" for s in stages)
    assert any(op == "RUN" and "pip install" in args and args.rstrip().endswith(" .") for op, args in steps)
    assert _image_user() != 0
    (entrypoint,) = [json.loads(args) for op, args in steps if op == "ENTRYPOINT"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["queuescale"]
    assert "queuescale" in scripts
    copied = {src for op, args in steps if op == "COPY" and "--from" not in args for src in args.split()[:-1]}
    ignore = (ROOT / ".dockerignore").read_text().split()
    for src in copied:
        assert f"!{src.rstrip('/')}" in [i.rstrip("/") for i in ignore], f"{src} is excluded from the context"
