"""Discovery documents of the Kubernetes API sandbox (``/api``, ``/apis``, ``/apis/{group}[/{version}]``,
``/version``) built from the served types, so kubectl and the official client find every resource and
subresource (the scale subresource names its ``autoscaling/v1`` Scale kind, as kubectl's scaler needs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lab.sandbox.kube_types import ResourceType

Obj = dict[str, Any]

SERVER_VERSION: Obj = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-queuescale-sandbox",
    "gitCommit": "",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def api_versions(host: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def groups(types: Iterable[ResourceType]) -> list[Obj]:
    """Every named group, its versions and the preferred one (a version that stores, not converts)."""
    versions: dict[str, list[str]] = {}
    preferred: dict[str, str] = {}
    for rt in types:
        if not rt.group:
            continue
        if rt.version not in versions.setdefault(rt.group, []):
            versions[rt.group].append(rt.version)
        if rt.storage is None:
            preferred.setdefault(rt.group, rt.version)
    out = []
    for group, vs in sorted(versions.items()):
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in vs]
        best = preferred.get(group, vs[0])
        entries.sort(key=lambda e: e["version"] != best)
        out.append({"name": group, "versions": entries, "preferredVersion": entries[0]})
    return out


def group_list(types: Iterable[ResourceType]) -> Obj:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups(types)}


def group(types: Iterable[ResourceType], name: str) -> Obj | None:
    for found in groups(types):
        if found["name"] == name:
            return {"kind": "APIGroup", "apiVersion": "v1", **found}
    return None


def resource_list(types: Iterable[ResourceType], group_name: str, version: str) -> Obj | None:
    """The APIResourceList of one group version; None when nothing is served there."""
    resources: list[Obj] = []
    for rt in sorted(types, key=lambda t: t.key):
        if (rt.group, rt.version) != (group_name, version):
            continue
        entry: Obj = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": sorted(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sub_entry: Obj = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
            if sub == "scale":
                sub_entry.update(group="autoscaling", version="v1", kind="Scale")
            resources.append(sub_entry)
    if not resources:
        return None
    gv = f"{group_name}/{version}" if group_name else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}
