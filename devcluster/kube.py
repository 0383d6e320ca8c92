# kmock types its object keys narrower than its own request fields: checked by tests instead.
# mypy: disable-error-code="index, operator, union-attr, unused-ignore"
"""A Kubernetes API emulator on 127.0.0.1, built on kmock: what the demo and every end-to-end
test run the real operator against.

No real API server can be installed here (docs/ARCHITECTURE.md, "Real parts in tests"), so
kmock's KubernetesEmulator is extended with what kopf, kubectl and the kubernetes client
rely on: object metadata stamps (uid, resourceVersion, generation, creationTimestamp), 409
on duplicate create, 422 when a JSON-patch `test` fails, a separate /status subresource,
CRDs that become discoverable and Established and whose openAPIV3Schema validates custom
resources, equality label selectors, PUT, Table responses for kubectl (lists, and watches:
`kubectl get -w`), and list/discovery
responses in the shapes clients expect.
Nothing here runs Jobs or rolls out Deployments: devcluster.controller does that.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonschema
import kmock
from kmock._internal import dicts, enums, rendering
from kmock._internal.k8s import KubernetesError

CORE = {
    "v1/namespaces": ("Namespace", False, set()),
    "v1/events": ("Event", True, set()),
    "v1/pods": ("Pod", True, {"status"}),
    "v1/secrets": ("Secret", True, set()),
    "v1/configmaps": ("ConfigMap", True, set()),
    "apps/v1/deployments": ("Deployment", True, {"status", "scale"}),
    "batch/v1/jobs": ("Job", True, {"status"}),
    "events.k8s.io/v1/events": ("Event", True, set()),
    "apiextensions.k8s.io/v1/customresourcedefinitions": (
        "CustomResourceDefinition", False, {"status"}),
}
NAMESPACES_PATH = re.compile(r"^/api/v1/namespaces/?$")
COLLECTION_PATH = re.compile(
    r"^/apis?/(?P<gv>(?:[^/]+/)?v[^/]+)/(?:namespaces/(?P<ns>[^/]+)/)?(?P<plural>[^/]+)/?$")
VERBS = {"create", "delete", "get", "list", "patch", "update", "watch"}


def now_iso() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, reason: str, message: str) -> KubernetesError:
    return KubernetesError(status=status, reason=reason, message=message,
                           details={})  # type: ignore[call-arg]


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif labels.get(term) is None:
            return False
    return True


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with the gaps listed in the module docstring filled."""

    _rv: int = attrs.field(default=0, init=False)
    _schemas: dict[Any, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _status_sub: set[Any] = attrs.field(factory=set, init=False)
    _columns: dict[Any, list[dict[str, Any]]] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, (kind, namespaced, subs) in CORE.items():
            self.resources[key] = kmock.ResourceInfo(
                kind=kind, namespaced=namespaced, verbs=VERBS, subresources=subs,
                singular=kind.lower())
            if "status" in subs:
                self._status_sub.add(kmock.resource(key))

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock 0.8 cannot parse /api/v1/namespaces itself: serve it here (one namespace).
        Watches that ask for Tables (kubectl get -w) are served here too."""
        watching = raw_request.query.get("watch") in ("true", "1")
        found = COLLECTION_PATH.match(raw_request.path)
        if watching and found and raw_request.method == "GET" and \
                "as=Table" in raw_request.headers.get("Accept", ""):
            res = kmock.resource(f"{found['gv']}/{found['plural']}")
            if res in self._columns:
                return await self._watch_table(raw_request, res, found["ns"])
        if NAMESPACES_PATH.match(raw_request.path) and raw_request.method == "GET":
            if raw_request.query.get("watch") in ("true", "1"):
                resp = aiohttp.web.StreamResponse()
                await resp.prepare(raw_request)  # type: ignore[arg-type]
                await asyncio.sleep(float(raw_request.query.get("timeoutSeconds", "60")))
                return resp
            return aiohttp.web.json_response({
                "kind": "NamespaceList", "apiVersion": "v1",
                "metadata": {"resourceVersion": str(self._rv)},
                "items": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {
                    "name": "default", "uid": "default-ns", "resourceVersion": "1"}}]})
        return await super().__call__(raw_request)

    async def _watch_table(self, raw_request: aiohttp.web.BaseRequest, res: Any,
                           namespace: str | None) -> aiohttp.web.StreamResponse:
        """Changes from now on, each object as a one-row Table (kubectl lists first, then
        watches from that list's resourceVersion, so nothing is replayed)."""
        name = raw_request.query.get("fieldSelector", "").removeprefix("metadata.name=") or None
        resp = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(raw_request)  # type: ignore[arg-type]
        limit = float(raw_request.query.get("timeoutSeconds", "1800"))
        try:
            async with asyncio.timeout(limit):
                async for event in self._buses[res]:
                    meta = (event.get("object") or {}).get("metadata") or {}
                    if (namespace and meta.get("namespace") != namespace) or \
                            (name and meta.get("name") != name):
                        continue
                    row = {"type": event["type"], "object": self._table(res, [event["object"]])}
                    await resp.write(json.dumps(row).encode() + b"\n")
        except (TimeoutError, ConnectionError):
            pass
        return resp

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _register_crd(self, crd: dict[str, Any]) -> None:
        spec, names = crd["spec"], crd["spec"]["names"]
        for version in spec["versions"]:
            res = kmock.resource(f"{spec['group']}/{version['name']}/{names['plural']}")
            subs = set((version.get("subresources") or {}).keys())
            self.resources[res] = kmock.ResourceInfo(
                kind=names["kind"], namespaced=spec.get("scope") == "Namespaced", verbs=VERBS,
                shortnames=set(names.get("shortNames", [])), subresources=subs,
                singular=names.get("singular"), categories=set(names.get("categories", [])))
            if "status" in subs:
                self._status_sub.add(res)
            self._columns[res] = version.get("additionalPrinterColumns") or []
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                self._schemas[res] = schema
        crd.setdefault("status", {})["conditions"] = [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]

    def _validate(self, res: Any, obj: dict[str, Any]) -> None:
        schema = self._schemas.get(res)
        if schema is None:
            return
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(body), key=str)
        if errors:
            where = ".".join(str(p) for p in errors[0].absolute_path)
            raise _error(422, "Invalid", f"{obj.get('kind')} is invalid: {where}: "
                         f"{errors[0].message}")

    async def _respond(self, request: rendering.Request, obj: dict[str, Any], status: int,
                       event: str) -> aiohttp.web.StreamResponse:
        assert request.resource is not None
        await self._buses[request.resource].put({"type": event, "object": copy.deepcopy(obj)})
        return aiohttp.web.json_response(obj, status=status)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is not None and request.action == enums.action.CREATE:
            return await self._create(request)
        if res is not None and request.action == enums.action.UPDATE and request.name:
            return await self._update(request)
        return await super()._handle(request)

    async def _create(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        obj = copy.deepcopy(request.data or {})
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        namespace = request.namespace or meta.get("namespace")
        key = (res, namespace, meta.get("name"))
        async with self._lock:
            if key in self._objects and not self._objects[key].deleted:
                raise _error(409, "AlreadyExists", f"{meta.get('name')!r} already exists")
            self._validate(res, obj)
            if namespace:
                meta["namespace"] = namespace
            meta.update(uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), generation=1,
                        creationTimestamp=now_iso())
            if res in self._status_sub and str(res.plural) != "customresourcedefinitions":
                obj.pop("status", None)
            if res.plural == "customresourcedefinitions":
                self._register_crd(obj)
            if key in self._objects:
                self._objects[key].create(obj)
            else:
                self._objects[key] = obj
        return await self._respond(request, obj, 201, "ADDED")

    async def _update(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        res = request.resource
        key = (res, request.namespace, request.name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise _error(404, "NotFound", f"{request.name!r} not found")
            old = copy.deepcopy(self._objects[key].raw)
            try:
                if request.method == enums.method.PUT:
                    new = copy.deepcopy(request.data)
                else:
                    new = dict(dicts.patch_dict(copy.deepcopy(old), request.data))
            except jsonpatch.JsonPatchTestFailed as e:
                raise _error(422, "Invalid", f"the patch test failed: {e}") from None
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise _error(422, "Invalid", f"bad patch: {e}") from None
            if res in self._status_sub:
                if request.subresource == "status":
                    new = {**old, "status": new.get("status")}
                elif new.get("status") != old.get("status"):
                    new["status"] = old.get("status")
            new = {k: v for k, v in new.items() if v is not None}
            self._validate(res, new)
            meta = new.setdefault("metadata", {})
            for stamp in ("uid", "creationTimestamp", "namespace", "name"):
                if stamp in old.get("metadata", {}):
                    meta[stamp] = old["metadata"][stamp]
            generation = int(old["metadata"].get("generation", 1))
            meta["generation"] = generation + (new.get("spec") != old.get("spec"))
            meta["resourceVersion"] = self._next_rv()
            deleting = meta.get("deletionTimestamp") and not meta.get("finalizers")
            self._objects[key].create(new)
            if deleting:
                self._objects[key].delete()
        return await self._respond(request, new, 200, "DELETED" if deleting else "MODIFIED")

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        result = await super()._serve_list(request)
        assert isinstance(result, dict) and request.resource is not None
        selector = request.params.get("labelSelector")
        if selector:
            result["items"] = [o for o in result["items"]
                               if _matches(o.get("metadata", {}).get("labels") or {}, selector)]
        res = request.resource
        info = self.resources.get(res)
        kind = getattr(info, "kind", None) or str(res.plural).capitalize()
        result["kind"] = f"{kind}List"
        result["apiVersion"] = f"{res.group}/{res.version}" if res.group else str(res.version)
        result["metadata"] = {"resourceVersion": str(self._rv)}
        if "as=Table" in request.headers.get("Accept", "") and res in self._columns:
            return self._table(res, result["items"])
        return result

    def _table(self, res: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
        """Server-side printing, as kubectl asks for it: the CRD's printer columns."""
        columns = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                    "description": "name"}]
        columns += [{"name": c["name"], "type": c["type"], "format": "", "priority": 0,
                     "description": c.get("description", "")} for c in self._columns[res]]
        rows = []
        for item in items:
            cells: list[Any] = [item["metadata"]["name"]]
            for col in self._columns[res]:
                value: Any = item
                for part in col["jsonPath"].strip(".").split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if col["type"] == "date" and isinstance(value, str):
                    born = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
                    age = datetime.datetime.now(tz=datetime.UTC) - born
                    value = f"{int(age.total_seconds())}s"
                cells.append(value)
            rows.append({"cells": cells, "object": {
                "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                "metadata": item["metadata"]}})
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": str(self._rv)}, "columnDefinitions": columns,
                "rows": rows}

    async def _serve_version(self, request: rendering.Request) -> rendering.Payload:
        result = await super()._serve_version(request)
        if isinstance(result, dict) and str(result.get("groupVersion", "")).startswith("/"):
            result["groupVersion"] = result["groupVersion"][1:]
        for entry in result.get("resources", []) if isinstance(result, dict) else []:
            if "/" in entry["name"]:
                entry.update(shortNames=[], categories=[])
        return result

    def obj(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (kmock.resource(resource), namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)

    def objs(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        res = kmock.resource(resource)
        return [copy.deepcopy(o.raw) for (r, ns, _), o in self._objects.items()
                if r == res and not o.deleted and (namespace is None or ns == namespace)]


@attrs.define
class KubeCluster:
    emulator: KubeEmulator
    url: str
    kubeconfig: Path

    async def request(self, method: str, path: str, body: Any = None,
                      content_type: str = "application/merge-patch+json") -> Any:
        async with aiohttp.ClientSession() as session, session.request(
                method, self.url + path, data=None if body is None else json.dumps(body),
                headers={"Content-Type": content_type}) as resp:
            payload = await resp.json()
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: {resp.status} {payload.get('message')}")
            return payload

    async def apply_file(self, path: Path | str) -> None:
        import yaml
        text = await asyncio.to_thread(Path(path).read_text)
        for doc in yaml.safe_load_all(text):
            await self.create(doc)

    async def create(self, obj: dict[str, Any]) -> Any:
        api, kind = obj["apiVersion"], obj["kind"]
        plural = {"Deployment": "deployments", "Job": "jobs", "Pod": "pods",
                  "Namespace": "namespaces",
                  "CustomResourceDefinition": "customresourcedefinitions"}.get(kind)
        if plural is None:
            plural = kind.lower() + "s"
        prefix = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        ns = obj.get("metadata", {}).get("namespace")
        path = f"{prefix}/namespaces/{ns}/{plural}" if ns else f"{prefix}/{plural}"
        return await self.request("POST", path, obj, "application/json")


def write_kubeconfig(path: Path, url: str) -> Path:
    import yaml
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emulator", "context": {
            "cluster": "emulator", "user": "tester", "namespace": "default"}}],
    }))
    return path


async def serve_emulator(emulator: KubeEmulator) -> tuple[kmock.Server, str]:
    """Start kmock's HTTP server for `emulator` in the running loop: (server, base URL)."""
    server = kmock.Server(emulator)
    await server.__aenter__()
    return server, str(server.url).rstrip("/")


__all__ = ["KubeCluster", "KubeEmulator", "now_iso", "serve_emulator", "write_kubeconfig"]
