"""The only place where gitferry talks to a Kubernetes API server.

Everything goes through the official ``kubernetes`` client over HTTP(S), so the same code runs
against EKS and against the local emulator. Objects cross this boundary as plain JSON dicts
(raw responses, not the client's ``ResourceInstance`` wrappers): the pure modules (diff, health,
sync planning) work on dicts, and converting 2,000 objects to wrapper types and back is wasted
Lambda time. Every API failure is turned into :class:`KubeError`, which carries the Status
reason/message and the object it was about, so a sync result can say what failed and why.
"""

from __future__ import annotations

import json
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

import urllib3
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config as _kube_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, ResourceNotFoundError
from kubernetes.dynamic.resource import Resource, ResourceList

FIELD_MANAGER: Final = "gitferry"

# Kinds that are never app resources and are expensive or pointless to LIST by label.
_SKIP_LIST: Final = {
    ("", "Event"),
    ("events.k8s.io", "Event"),
    ("", "ComponentStatus"),
    ("", "Binding"),
    ("metrics.k8s.io", "PodMetrics"),
    ("metrics.k8s.io", "NodeMetrics"),
}


class KubeError(Exception):
    """A failed API call: HTTP code, Status reason and message, and the object concerned.

    ``str()`` reads like ``Deployment apps/v1 shop/web: Invalid: <message>`` so it can go
    straight into a per-resource sync message. Never contains a request body.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int = 0,
        reason: str = "",
        kind: str = "",
        api_version: str = "",
        namespace: str = "",
        name: str = "",
    ) -> None:
        self.message = message
        self.code = code
        self.reason = reason
        self.kind = kind
        self.api_version = api_version
        self.namespace = namespace
        self.name = name
        super().__init__(str(self))

    @property
    def identity(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {self.api_version} {where}".strip()

    def __str__(self) -> str:
        reason = f"{self.reason}: " if self.reason else ""
        ident = self.identity
        return f"{ident}: {reason}{self.message}" if ident else f"{reason}{self.message}"


def _identity(obj: Mapping[str, Any] | None) -> dict[str, str]:
    obj = obj or {}
    meta = obj.get("metadata") or {}
    return {
        "kind": str(obj.get("kind", "")),
        "api_version": str(obj.get("apiVersion", "")),
        "namespace": str(meta.get("namespace") or ""),
        "name": str(meta.get("name") or ""),
    }


def _wrap(exc: Exception, **ident: str) -> KubeError:
    """Turn a client exception into a KubeError, reading the Status body when there is one."""
    if isinstance(exc, KubeError):
        return exc
    if isinstance(exc, (ApiException, DynamicApiError)):
        code = int(getattr(exc, "status", 0) or 0)
        reason = str(getattr(exc, "reason", "") or "")
        message = reason
        body = getattr(exc, "body", None)
        if body:
            try:
                status = json.loads(body)
                reason = str(status.get("reason") or reason)
                message = str(status.get("message") or message)
            except (ValueError, TypeError, AttributeError):
                message = str(body)[:500]
        return KubeError(message or f"HTTP {code}", code=code, reason=reason, **ident)
    if isinstance(exc, ResourceNotFoundError):
        return KubeError(str(exc), code=404, reason="NotFound", **ident)
    return KubeError(f"{type(exc).__name__}: {exc}", **ident)


def api_client_from_kubeconfig(text: str, context: str | None = None) -> k8s_client.ApiClient:
    """ApiClient for one cluster from kubeconfig text (from Secrets Manager).

    The client library writes inline ``*-data`` credentials to temp files (and only removes them
    at interpreter exit, which never comes in a warm Lambda). We let it write them into a private
    directory, load them into an in-memory ``SSLContext``, and delete the directory before
    returning: no credential is left on disk. Bearer tokens and exec plugins work unchanged.
    """
    config_dict = yaml.safe_load(text)
    if not isinstance(config_dict, dict):
        raise KubeError("kubeconfig is not a mapping", reason="InvalidKubeconfig")
    configuration = k8s_client.Configuration()
    with tempfile.TemporaryDirectory(prefix="gitferry-kube-") as tmp:
        try:
            k8s_config.load_kube_config_from_dict(
                config_dict=config_dict,
                context=context,
                client_configuration=configuration,
                persist_config=False,
                temp_file_path=tmp,
            )
        except Exception as exc:  # ConfigException and friends; never echo the kubeconfig
            raise KubeError(f"invalid kubeconfig: {type(exc).__name__}: {exc}", reason="InvalidKubeconfig") from None
        try:
            ssl_context = _ssl_context(configuration)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise KubeError(f"invalid TLS material in kubeconfig: {exc}", reason="InvalidKubeconfig") from None
        # Forget the file names (and the credential bytes used as cache keys) the library kept.
        for key, path in list(_kube_config._temp_files.items()):
            if os.path.dirname(path) == tmp:
                del _kube_config._temp_files[key]
        configuration.ssl_ca_cert = None
        configuration.cert_file = None
        configuration.key_file = None
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook = _RefreshOncePerSecond(configuration.refresh_api_key_hook)
    api_client = k8s_client.ApiClient(configuration=configuration)
    if ssl_context is not None:
        pool_args: dict[str, Any] = {"ssl_context": ssl_context,
                                     "maxsize": configuration.connection_pool_maxsize or 16}
        if configuration.tls_server_name:
            pool_args["server_hostname"] = configuration.tls_server_name
        if configuration.assert_hostname is not None:
            pool_args["assert_hostname"] = configuration.assert_hostname
        if configuration.proxy:
            api_client.rest_client.pool_manager = urllib3.ProxyManager(
                configuration.proxy, proxy_headers=configuration.proxy_headers, **pool_args)
        else:
            api_client.rest_client.pool_manager = urllib3.PoolManager(**pool_args)
    _default_request_timeout(api_client)
    return api_client


def api_client_for_token_source(host: str, ca_pem: str,
                                refresh: Callable[[k8s_client.Configuration], None]) -> k8s_client.ApiClient:
    """ApiClient for an API server reached at ``host`` (CA given in memory) whose bearer token
    comes from ``refresh`` (the client's ``refresh_api_key_hook``, called before each request,
    at most once a second): EKS tokens made from the function's IAM role, see :mod:`gitferry.eks`."""
    configuration = k8s_client.Configuration()
    configuration.host = host
    configuration.api_key = {"BearerToken": ""}  # set by refresh (auth_settings needs the key present)
    configuration.refresh_api_key_hook = _RefreshOncePerSecond(refresh)
    try:
        ssl_context = ssl.create_default_context(cadata=ca_pem)
    except (ssl.SSLError, ValueError) as exc:
        raise KubeError(f"invalid cluster CA certificate: {exc}", reason="InvalidKubeconfig") from None
    api_client = k8s_client.ApiClient(configuration=configuration)
    api_client.rest_client.pool_manager = urllib3.PoolManager(
        ssl_context=ssl_context, maxsize=configuration.connection_pool_maxsize or 16)
    _default_request_timeout(api_client)
    return api_client


#: connect / read timeout (s) of every Kubernetes request that sets none itself
#: (``KUBE_REQUEST_TIMEOUT_SECONDS``): a hung API server fails the request instead of holding the
#: Lambda until its own timeout kills it with the operation lease still taken.
DEFAULT_REQUEST_TIMEOUT: Final = 60.0


def _default_request_timeout(api_client: k8s_client.ApiClient) -> None:
    """The client has no global timeout; give every request of ``api_client`` one."""
    seconds = float(os.environ.get("KUBE_REQUEST_TIMEOUT_SECONDS") or DEFAULT_REQUEST_TIMEOUT)
    rest = api_client.rest_client
    request = rest.request

    def with_timeout(*args: Any, _request_timeout: Any = None, **kwargs: Any) -> Any:
        return request(*args, _request_timeout=_request_timeout or (min(10.0, seconds), seconds), **kwargs)

    rest.request = with_timeout


class _RefreshOncePerSecond:
    """The kubeconfig loader's ``refresh_api_key_hook``, run at most once a second.

    The client calls it before *every* request; it re-checks token expiry (exec plugins, OIDC)
    and re-copies host, TLS file names and proxy onto the configuration, re-reading the proxy
    environment each time: about half a millisecond of CPU per request, a quarter of a sync's
    client time. Expiring tokens are refreshed minutes before they expire, so checking once a
    second changes nothing. The TLS file names it copies back point into the deleted temporary
    directory and are cleared again (the in-memory SSLContext is what is used).

    The loader's hook re-installs itself on every run (``KubeConfigLoader._set_config`` assigns
    ``configuration.refresh_api_key_hook`` a new closure each time it sets a token), which used to
    replace this throttle after its first call: every request then ran the full refresh. The
    throttle puts itself back after each run.
    """

    def __init__(self, hook: Callable[[k8s_client.Configuration], None], interval: float = 1.0) -> None:
        self._hook = hook
        self._interval = interval
        self._lock = threading.Lock()
        self._last = float("-inf")

    def __call__(self, configuration: k8s_client.Configuration) -> None:
        if time.monotonic() - self._last < self._interval:
            return
        with self._lock:
            if time.monotonic() - self._last < self._interval:
                return
            self._hook(configuration)
            configuration.refresh_api_key_hook = self  # the loader's hook replaced itself
            configuration.ssl_ca_cert = None
            configuration.cert_file = None
            configuration.key_file = None
            self._last = time.monotonic()


def _ssl_context(configuration: k8s_client.Configuration) -> ssl.SSLContext | None:
    """In-memory TLS context from the (temporary) CA / client certificate files."""
    if not str(configuration.host).startswith("https"):
        return None
    ctx = ssl.create_default_context()
    if not configuration.verify_ssl:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif configuration.ssl_ca_cert:
        ctx.load_verify_locations(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        ctx.load_cert_chain(configuration.cert_file, configuration.key_file)
    if configuration.tls_server_name is None and configuration.assert_hostname is False:
        ctx.check_hostname = False
    return ctx


@dataclass(frozen=True)
class ResourceType:
    """What discovery says about one served kind."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class ClusterClient:
    """Small facade over ``DynamicClient`` with discovery cached in a file under
    ``discovery_cache_dir`` (Lambda: /tmp, survives warm invocations).

    Thread-safe for the concurrent LISTs of :meth:`list_by_label`: urllib3's pool is, and the
    discovery cache is only touched under a lock.
    """

    def __init__(self, api_client: k8s_client.ApiClient, discovery_cache_dir: str | None = None,
                 discovery_ttl_seconds: float = 300.0) -> None:
        self.api_client = api_client
        self.discovery_ttl_seconds = discovery_ttl_seconds
        cache_dir = discovery_cache_dir or tempfile.mkdtemp(prefix="gitferry-discovery-")
        os.makedirs(cache_dir, exist_ok=True)
        host = str(api_client.configuration.host).replace("://", "_").replace("/", "_").replace(":", "_")
        self._cache_file = os.path.join(cache_dir, f"discovery-{host}.json")
        self._lock = threading.RLock()
        # (apiVersion, kind) -> discovered Resource: the discoverer's own lookup walks its whole
        # cache, and a sync or diff of 500 objects asks 1,000 times for the same few kinds.
        self._resources: dict[tuple[str, str], Resource] = {}
        self._resources_source: Any = None  # the discoverer's cache they were read from
        try:
            self.dynamic = DynamicClient(api_client, cache_file=self._cache_file)
        except Exception as exc:
            raise _wrap(exc) from None
        try:  # a cache file left by an earlier (warm) invocation is as old as its mtime
            self._discovered_at = os.path.getmtime(self._cache_file)
        except OSError:
            self._discovered_at = time.time()

    # ---- discovery -------------------------------------------------------------------------

    def invalidate_discovery(self) -> None:
        """Forget cached discovery (after a CRD was applied, a new kind appears)."""
        with self._lock:
            self._invalidate()

    def _invalidate(self) -> None:
        self._resources.clear()
        try:
            self.dynamic.resources.invalidate_cache()
        except Exception as exc:
            raise _wrap(exc) from None
        self._discovered_at = time.time()

    def resource(self, api_version: str, kind: str) -> Resource:
        """The discovered resource for apiVersion+kind; refreshes discovery once on a miss."""
        with self._lock:
            for attempt in range(2):
                source = getattr(self.dynamic.resources, "_cache", None)
                if source is not self._resources_source:  # the discoverer refreshed on its own
                    self._resources.clear()
                    self._resources_source = source
                found = self._resources.get((api_version, kind))
                if found is not None:
                    return found
                try:
                    found = self.dynamic.resources.get(api_version=api_version, kind=kind)
                    self._resources[(api_version, kind)] = found
                    return found
                except ResourceNotFoundError:
                    if attempt == 0:
                        self._invalidate()
                        continue
                    raise KubeError(
                        f"the server does not serve kind {kind} in {api_version}",
                        code=404,
                        reason="NotFound",
                        kind=kind,
                        api_version=api_version,
                    ) from None
                except Exception as exc:
                    raise _wrap(exc, kind=kind, api_version=api_version) from None
        raise AssertionError("unreachable")

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return bool(self.resource(api_version, kind).namespaced)

    def served_types(self) -> list[ResourceType]:
        """Every served, listable top-level kind at its group's preferred version.

        Discovery older than ``discovery_ttl_seconds`` is refreshed first: a warm Lambda would
        otherwise never see a CRD installed after it started, and objects of that kind would look
        absent (false Missing, nothing pruned).
        """
        out: dict[tuple[str, str], ResourceType] = {}
        with self._lock:
            if time.time() - self._discovered_at > self.discovery_ttl_seconds:
                self._invalidate()
            try:
                resources = list(self.dynamic.resources)
            except Exception as exc:
                raise _wrap(exc) from None
        flat: list[Any] = []
        for entry in resources:  # the discoverer yields lists of Resource per kind
            flat.extend(entry if isinstance(entry, list) else [entry])
        for res in flat:
            if isinstance(res, ResourceList) or not isinstance(res, Resource):
                continue
            name = str(res.name or "")
            verbs = tuple(res.verbs or ())
            if not name or "/" in name or "list" not in verbs:
                continue
            group = str(res.group or "")
            if (group, res.kind) in _SKIP_LIST:
                continue
            key = (group, str(res.kind))
            rt = ResourceType(group, str(res.api_version), str(res.kind), name, bool(res.namespaced), verbs)
            if key not in out or res.preferred:
                out[key] = rt
        return sorted(out.values(), key=lambda r: (r.group, r.kind))

    # ---- reads -----------------------------------------------------------------------------

    def _request(self, method: str, path: str, *, ident: Mapping[str, str] | None = None, **params: Any) -> dict[str, Any]:
        try:
            resp = self.dynamic.request(method, path, serialize=False, **params)
        except Exception as exc:
            raise _wrap(exc, **dict(ident or {})) from None
        data = resp.data
        return json.loads(data) if data else {}

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        res = self.resource(api_version, kind)
        ident = {"kind": kind, "api_version": api_version, "namespace": namespace or "", "name": name}
        path = res.path(name=name, namespace=namespace if res.namespaced else None)
        try:
            obj = self._request("get", path, ident=ident)
        except KubeError as exc:
            if exc.code == 404:
                return None
            raise
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        return obj

    def list_kind(self, rt: ResourceType, selector: str, page_size: int = 500) -> list[dict[str, Any]]:
        """All objects of one kind matching a label selector, across namespaces, paginated."""
        res = self.resource(rt.api_version, rt.kind)
        path = res.path()
        items: list[dict[str, Any]] = []
        cont: str | None = None
        ident = {"kind": rt.kind, "api_version": rt.api_version}
        while True:
            body = self._request("get", path, ident=ident, label_selector=selector, limit=page_size, _continue=cont)
            for item in body.get("items") or []:
                # Built-in list items carry no kind/apiVersion; the diff needs them.
                item.setdefault("apiVersion", rt.api_version)
                item.setdefault("kind", rt.kind)
                items.append(item)
            cont = (body.get("metadata") or {}).get("continue") or None
            if not cont:
                return items

    def list_in_namespace(
        self,
        rt: ResourceType,
        namespace: str,
        *,
        page_size: int = 500,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """All objects of one namespaced kind in one namespace, paginated, optionally filtered.

        Used for the resource tree, whose children (Pods, ReplicaSets ...) carry no app label:
        they can only be found by listing the namespace and following ownerReferences. ``keep``
        runs on each item as its page arrives, so a namespace shared with big neighbours costs
        one page of memory per kind, not the whole namespace.
        """
        res = self.resource(rt.api_version, rt.kind)
        path = res.path(namespace=namespace)
        items: list[dict[str, Any]] = []
        cont: str | None = None
        ident = {"kind": rt.kind, "api_version": rt.api_version, "namespace": namespace}
        while True:
            body = self._request("get", path, ident=ident, limit=page_size, _continue=cont)
            for item in body.get("items") or []:
                item.setdefault("apiVersion", rt.api_version)
                item.setdefault("kind", rt.kind)
                if keep is None or keep(item):
                    items.append(item)
            cont = (body.get("metadata") or {}).get("continue") or None
            if not cont:
                return items

    def list_by_label(self, selector: str, *, workers: int = 8) -> list[dict[str, Any]]:
        """Every object of every served listable kind matching ``selector``.

        One LIST per kind, concurrently: an app of 2,000 objects over 30 kinds is ~60 HTTP round
        trips, and doing them one after another would dominate a diff Lambda's duration. Kinds
        the caller may not list (403) or that vanished (404, e.g. an aggregated API gone away)
        are skipped; any other failure is raised, because silently missing a kind would make
        its objects look deleted and report false drift.
        """
        types = self.served_types()

        def one(rt: ResourceType) -> list[dict[str, Any]]:
            try:
                return self.list_kind(rt, selector)
            except KubeError as exc:
                if exc.code in (403, 404, 405, 503):
                    return []
                raise

        with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="gitferry-list") as pool:
            results = list(pool.map(one, types))
        return [obj for chunk in results for obj in chunk]

    # ---- writes ----------------------------------------------------------------------------

    def server_side_apply(
        self,
        obj: Mapping[str, Any],
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
        dry_run: bool = False,
        field_validation: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply (PATCH application/apply-patch+yaml); creates when missing.

        ``force`` takes over fields another manager owns: Git is the source of truth, exactly
        as Argo CD's ServerSideApply sync option does. ``dry_run`` asks for ``dryRun=All``: the
        server returns the object as it *would* be, with its defaults and the effect of removing
        fields we no longer set, which is what the diff compares. ``field_validation``: the
        ``fieldValidation`` query parameter (Strict / Warn / Ignore; None: the server's default).
        """
        ident, res, namespace, body = self._write_target(obj)
        path = res.path(name=(obj.get("metadata") or {}).get("name"), namespace=namespace)
        params: dict[str, Any] = {
            "body": body,
            "content_type": "application/apply-patch+yaml",
            "field_manager": field_manager,
            "force_conflicts": "true" if force else "false",
        }
        if dry_run:
            params["dry_run"] = "All"
        if field_validation:
            params["query_params"] = [("fieldValidation", field_validation)]
        return self._request("patch", path, ident=ident, **params)

    def _write_target(self, obj: Mapping[str, Any]) -> tuple[dict[str, str], Resource, str | None, dict[str, Any]]:
        ident = _identity(obj)
        res = self.resource(ident["api_version"], ident["kind"])
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if res.namespaced else None
        if res.namespaced and not namespace:
            raise KubeError("namespaced object without a namespace", reason="Invalid", **ident)
        body = dict(obj)
        if not res.namespaced and "namespace" in meta:
            body["metadata"] = {k: v for k, v in meta.items() if k != "namespace"}
        return ident, res, namespace, body

    def create(self, obj: Mapping[str, Any], field_manager: str = FIELD_MANAGER, dry_run: bool = False,
               field_validation: str | None = None) -> dict[str, Any]:
        """POST (``kubectl create``): the server fills ``metadata.name`` from ``generateName``;
        409 AlreadyExists when the name is taken. Returns the created object."""
        ident, res, namespace, body = self._write_target(obj)
        params: dict[str, Any] = {"body": body, "field_manager": field_manager}
        if dry_run:
            params["dry_run"] = "All"
        if field_validation:
            params["query_params"] = [("fieldValidation", field_validation)]
        out = self._request("post", res.path(namespace=namespace), ident=ident, **params)
        out.setdefault("apiVersion", ident["api_version"])
        out.setdefault("kind", ident["kind"])
        return out

    def replace(self, obj: Mapping[str, Any], field_manager: str = FIELD_MANAGER, dry_run: bool = False,
                field_validation: str | None = None) -> dict[str, Any]:
        """PUT (``kubectl replace``): the whole object as given; fields it leaves out are
        removed. A ``metadata.resourceVersion`` in ``obj`` makes it conditional (409 on conflict)."""
        ident, res, namespace, body = self._write_target(obj)
        params: dict[str, Any] = {"body": body, "field_manager": field_manager}
        if dry_run:
            params["dry_run"] = "All"
        if field_validation:
            params["query_params"] = [("fieldValidation", field_validation)]
        meta = obj.get("metadata") or {}
        return self._request("put", res.path(name=meta.get("name"), namespace=namespace), ident=ident, **params)

    def list_selected(self, api_version: str, kind: str, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        """Objects of one kind matching a label selector, in one namespace (None: cluster-wide or
        cluster-scoped), all pages."""
        res = self.resource(api_version, kind)
        path = res.path(namespace=namespace if res.namespaced else None)
        ident = {"kind": kind, "api_version": api_version, "namespace": namespace or ""}
        items: list[dict[str, Any]] = []
        cont: str | None = None
        while True:
            body = self._request("get", path, ident=ident, label_selector=selector, limit=500, _continue=cont)
            for item in body.get("items") or []:
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            cont = (body.get("metadata") or {}).get("continue") or None
            if not cont:
                return items

    def delete(self, obj: Mapping[str, Any], propagation: str = "Foreground", dry_run: bool = False) -> dict[str, Any] | None:
        """Delete an object (foreground by default, as Argo CD prunes); None when already gone.

        The uid precondition makes sure we delete the object we looked at, not a namesake
        created in between by someone else.
        """
        ident = _identity(obj)
        res = self.resource(ident["api_version"], ident["kind"])
        meta = obj.get("metadata") or {}
        path = res.path(name=meta.get("name"), namespace=meta.get("namespace") if res.namespaced else None)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if meta.get("uid"):
            body["preconditions"] = {"uid": meta["uid"]}
        params: dict[str, Any] = {"body": body}
        if dry_run:
            params["dry_run"] = "All"
        try:
            return self._request("delete", path, ident=ident, **params)
        except KubeError as exc:
            if exc.code == 404:
                return None
            raise

    def ensure_namespace(self, name: str, dry_run: bool = False) -> dict[str, Any]:
        """Create the namespace when missing (CreateNamespace=true); returns the live Namespace.

        Uses server-side apply with our field manager only when the namespace is absent, so an
        existing namespace (maybe owned by a platform team) is left untouched.
        """
        live = self.get("v1", "Namespace", name)
        if live is not None:
            return live
        return self.server_side_apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, dry_run=dry_run
        )

    def close(self) -> None:
        self.api_client.close()


def identities(objs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Readable identities, for messages."""
    return [str(KubeError("", **_identity(o)).identity) for o in objs]
