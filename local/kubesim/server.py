"""HTTPS front of kubesim: auth, routing, content negotiation, watch streaming, the fixture.

``KubeSim`` is the one entry point for tests and the local stack::

    with KubeSim() as sim:
        subprocess.run(["kubectl", "--kubeconfig", sim.kubeconfig_path, "get", "ns"])

Everything a client can observe goes through real sockets (TLS verified against a CA the
server generates), so kubectl and the Python client are exercised exactly as against a
cluster. Anything not implemented answers a proper Status (404/405/415/422/501).
"""

from __future__ import annotations

import base64
import json
import os
import random
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from local.kubesim import discovery, eksauth, errors, tls
from local.kubesim.clock import Clock
from local.kubesim.errors import ApiError
from local.kubesim.schema import Schemas
from local.kubesim.store import APPLY_PATCH, PATCH_TYPES, Store
from local.kubesim.types import ResourceType

JSON = dict[str, Any]

_WRITE_METHODS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
# Subresources that exist on a real cluster but that kubesim does not emulate: 501, not 404.
_UNSUPPORTED_SUBRESOURCES = {
    "log", "exec", "attach", "portforward", "proxy", "eviction", "binding", "ephemeralcontainers",
    "resize", "token", "approval", "finalize",
}
_LOG_LIMIT = 100_000


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer doing the TLS handshake in the request thread, not in accept()."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], sim: KubeSim, context: ssl.SSLContext) -> None:
        self.sim = sim
        self.context = context
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls_sock = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.conn_lock:
            self.connections.add(tls_sock)
        return tls_sock, addr

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return  # clients hanging up mid-stream are normal (watches, kubectl exiting)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """One connection (keep-alive): every request is answered with Content-Length or chunked."""

    protocol_version = "HTTP/1.1"
    server_version = "kubesim"
    sys_version = ""
    timeout = 300
    server: _Server

    def setup(self) -> None:
        self.request.settimeout(30)
        self.request.do_handshake()
        self.request.settimeout(self.timeout)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, code: int, body: Any, *, content_type: str = "application/json",
              headers: list[tuple[str, str]] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        lines = [f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}",
                 f"Content-Type: {content_type}", f"Content-Length: {len(data)}",
                 "Cache-Control: no-cache, private", f"Audit-Id: {secrets.token_hex(8)}"]
        for key, value in headers or ():
            lines.append(f"{key}: {value}")
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._status = code
        if not getattr(self, "_logged", False):  # logged before the answer leaves: a client that has it finds it in the log
            self._logged = True
            self.server.sim._log(self.command, self.path, code, self.headers.get("User-Agent", ""))
        self.wfile.write(head + data)

    def _send_error(self, exc: ApiError) -> None:
        self._send(exc.code, exc.status())

    def _read_body(self) -> bytes:
        """The request body, at most MAX_REQUEST_BODY bytes (the apiserver's limitedReadBody).

        A larger body is answered 413 ``Request entity too large: limit is 3145728``; the rest
        is read and dropped (bounded by MAX_DISCARD) so the client still gets the answer.
        """
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > MAX_DISCARD:
                    self.close_connection = True
                    raise _too_large()
                chunk = self.rfile.read(size)
                if total <= MAX_REQUEST_BODY:
                    chunks.append(chunk)
                self.rfile.readline()
            if total > MAX_REQUEST_BODY:
                raise _too_large()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            if length > MAX_DISCARD:
                self.close_connection = True
            else:
                left = length
                while left > 0:
                    got = self.rfile.read(min(left, 1 << 16))
                    if not got:
                        break
                    left -= len(got)
            raise _too_large()
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_OPTIONS(self) -> None:
        self._dispatch("OPTIONS")

    def _dispatch(self, method: str) -> None:
        sim = self.server.sim
        self._status = 0
        self._logged = False
        body = b""
        try:
            body = self._read_body()
            if sim.latency_s > 0:  # the network round trip of a real cluster: waiting, not CPU
                time.sleep(sim.latency_s)
            Request(self, sim, method, body).handle()
        except ApiError as exc:
            self._send_error(exc)
        except (ConnectionError, ssl.SSLError, TimeoutError, BrokenPipeError):
            self.close_connection = True
        except Exception as exc:  # noqa: BLE001 - every failure must still be a Status
            traceback.print_exc(file=sys.stderr)
            sim.internal_errors.append(f"{method} {self.path}: {exc!r}")
            try:
                self._send(500, ApiError(500, "InternalError", f"Internal error occurred: {exc!r}").status())
            except OSError:
                self.close_connection = True
        finally:
            if not self._logged:  # no answer sent (a dropped connection, a stream)
                sim._log(method, self.path, self._status, self.headers.get("User-Agent", ""))


MAX_REQUEST_BODY = 3 * 1024 * 1024  # genericapiserver MaxRequestBodyBytes
MAX_DISCARD = 64 * 1024 * 1024  # beyond this an oversized body is not even drained


def _too_large() -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_REQUEST_BODY}")


class Request:
    """One API request: parsed once, routed, answered."""

    def __init__(self, handler: _Handler, sim: KubeSim, method: str, body: bytes) -> None:
        self.h = handler
        self.sim = sim
        self.store = sim.store
        self.method = method
        self.body = body
        parts = urlsplit(handler.path)
        self.path = parts.path
        self.query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        self.query_multi = parse_qs(parts.query, keep_blank_values=True)
        self.accept = handler.headers.get("Accept", "") or ""
        self.content_type = (handler.headers.get("Content-Type", "") or "").split(";")[0].strip().lower()
        self.user_agent = handler.headers.get("User-Agent", "") or ""
        self.warnings: list[str] = []
        self.read_only = False
        self.username = "kubesim-readonly"

    # ------------------------------------------------------------------ entry

    def handle(self) -> None:
        if self.path in ("/healthz", "/readyz", "/livez"):
            self.h._send(200, b"ok", content_type="text/plain")
            return
        self._authenticate()
        segs = [s for s in self.path.split("/") if s]
        if self.method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise errors.method_not_allowed(self.method, self.path)
        if self.method == "GET" and self._discovery(segs):
            return
        if segs[:2] == ["api", "v1"]:
            self._resource("", "v1", segs[2:])
            return
        if len(segs) >= 3 and segs[0] == "apis":
            self._resource(segs[1], segs[2], segs[3:])
            return
        if self.method != "GET" and (segs[:1] in (["api"], ["apis"], ["version"], ["openapi"]) or not segs):
            raise errors.method_not_allowed(self.method, self.path)
        raise _not_found_path()

    def _authenticate(self) -> None:
        auth = self.h.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        if token and secrets.compare_digest(token, self.sim.token):
            return
        if token and self.sim.read_only_token and secrets.compare_digest(token, self.sim.read_only_token):
            self.read_only = True
            return
        if token and self.sim.eks_auth is not None and token.startswith(eksauth.PREFIX):
            identity = self.sim.eks_auth.authenticate(token)  # None: refused, reason in eks_auth.log
            if identity is not None:
                self.read_only = not identity.may_write
                self.username = identity.username
                return
        raise errors.unauthorized()

    def _json(self, code: int, body: Any) -> None:
        headers = [("Warning", f'299 - "{w}"'.replace("\n", " ")) for w in self.warnings]
        self.h._send(code, body, headers=headers)

    # ------------------------------------------------------------------ discovery / openapi

    def _discovery(self, segs: list[str]) -> bool:
        types = self.store.types.all()
        if segs == ["version"]:
            self._json(200, discovery.version_info())
        elif segs == ["api"]:
            host = self.h.headers.get("Host") or f"127.0.0.1:{self.sim.port}"
            self._json(200, discovery.api_versions(host))
        elif segs == ["apis"]:
            self._json(200, discovery.group_list(types))
        elif len(segs) == 2 and segs[0] == "apis":
            doc = discovery.api_group(types, segs[1])
            if doc is None:
                raise _not_found_path()
            self._json(200, doc)
        elif segs == ["api", "v1"] or (len(segs) == 3 and segs[0] == "apis"):
            gv = "v1" if segs[0] == "api" else f"{segs[1]}/{segs[2]}"
            doc = discovery.resource_list(types, gv)
            if doc is None:
                raise _not_found_path()
            self._json(200, doc)
        elif segs[:2] == ["openapi", "v3"]:
            self._openapi_v3(segs[2:], types)
        elif segs[:1] == ["openapi"]:
            raise _not_found_path()
        else:
            return False
        return True

    def _openapi_v3(self, rest: list[str], types: list[ResourceType]) -> None:
        from local.kubesim import openapi

        if not rest:
            self._json(200, openapi.openapi_index(types, self.store.schemas))
            return
        if rest[0] == "api" and len(rest) == 2:
            gv = rest[1]
        elif rest[0] == "apis" and len(rest) == 3:
            gv = f"{rest[1]}/{rest[2]}"
        else:
            raise _not_found_path()
        if gv not in discovery.served_group_versions(types):
            raise _not_found_path()
        self.h._send(200, openapi.openapi_document_bytes(self.store.schemas, gv, types))

    # ------------------------------------------------------------------ resources

    def _resource(self, group: str, version: str, rest: list[str]) -> None:
        watch_path = bool(rest) and rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
            if self.method != "GET":
                raise errors.method_not_allowed(self.method, self.path)
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace = rest[1]
            rest = rest[2:]
        if not rest or len(rest) > 3:
            raise _not_found_path()
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        rt = self.store.types.lookup(group, version, plural)
        if rt is None:
            raise _not_found_path()
        if namespace is not None and not rt.namespaced:
            raise _not_found_path()
        if rt.namespaced and namespace is None and name is not None:
            raise _not_found_path()
        if sub is not None and sub not in rt.subresources:
            if sub in _UNSUPPORTED_SUBRESOURCES:
                raise errors.not_implemented(f"the {plural}/{sub} subresource")
            raise _not_found_path()
        if self.read_only and self.method in _WRITE_METHODS:
            verb = _WRITE_METHODS[self.method]
            if self.method == "DELETE" and name is None:
                verb = "deletecollection"
            where = f' in the namespace "{namespace}"' if namespace else ""
            res = f"{plural}/{sub}" if sub else plural
            raise errors.forbidden(
                f'{rt.group_resource} "{name or ""}" is forbidden: User "{self.username}" cannot {verb} '
                f'resource "{res}" in API group "{group}"{where}', rt, name or "")
        dry_run = self._dry_run()
        field_validation = self.query.get("fieldValidation", "Warn") or "Warn"
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(
                f"fieldValidation parameter unsupported: {field_validation}: supported values: Strict, Warn, Ignore")
        manager = self.query.get("fieldManager") or ""
        if len(manager) > 128:
            raise errors.invalid(rt, name or "", [errors_cause(
                "FieldValueTooLong", "Too long: may not be more than 128 bytes", "fieldManager")])
        default_manager = manager or self.user_agent.split("/")[0] or "unknown"
        store = self.store
        m = self.method

        if name is None:
            if m == "GET":
                watch = watch_path or self.query.get("watch") in ("1", "true", "True")
                if watch:
                    self._watch(rt, namespace)
                else:
                    self._list(rt, namespace)
                return
            if m == "POST":
                if rt.namespaced and namespace is None:
                    raise _not_found_path()
                obj = self._body_json()
                out = store.create(rt, namespace, obj, manager=default_manager, dry_run=dry_run,
                                   field_validation=field_validation, warnings=self.warnings)
                self._json(201, out)
                return
            if m == "DELETE":
                opts = self._delete_options()
                self._json(200, store.delete_collection(
                    rt, namespace, label_selector=self.query.get("labelSelector", ""),
                    field_selector=self.query.get("fieldSelector", ""),
                    propagation=opts.get("propagationPolicy"), dry_run=dry_run))
                return
            raise errors.method_not_allowed(m, self.path)

        if sub == "scale":
            self._scale(rt, namespace, name, default_manager, dry_run)
            return
        if m == "GET":
            obj = store.get(rt, namespace, name)
            self._answer_objects(rt, [obj], single=True)
        elif m == "PUT":
            obj = self._body_json()
            self._json(200, store.update(rt, namespace, name, obj, manager=default_manager, subresource=sub,
                                         dry_run=dry_run, field_validation=field_validation,
                                         warnings=self.warnings))
        elif m == "PATCH":
            if self.content_type not in PATCH_TYPES:
                raise errors.unsupported_media_type(self.content_type)
            force = self.query.get("force") in ("true", "1", "True")
            if self.content_type == APPLY_PATCH:
                patch_body = self._body_yaml()
                manager_arg: str | None = manager or None
            else:
                patch_body = self._body_json(allow_list=True)
                manager_arg = default_manager
            existed = self._exists(rt, namespace, name)
            out = store.patch(rt, namespace, name, self.content_type, patch_body, manager=manager_arg,
                              force=force, subresource=sub, dry_run=dry_run,
                              field_validation=field_validation, warnings=self.warnings)
            self._json(200 if existed else 201, out)
        elif m == "DELETE":
            if sub is not None:
                raise errors.method_not_allowed(m, self.path)
            opts = self._delete_options()
            out = store.delete(rt, namespace, name, propagation=opts.get("propagationPolicy"),
                               preconditions=opts.get("preconditions"), dry_run=dry_run)
            self._json(200, out)
        else:
            raise errors.method_not_allowed(m, self.path)

    def _exists(self, rt: ResourceType, namespace: str | None, name: str) -> bool:
        try:
            self.store.get(rt, namespace, name)
            return True
        except ApiError:
            return False

    def _dry_run(self) -> bool:
        values = [v for vs in self.query_multi.get("dryRun", []) for v in vs.split(",") if v]
        for v in values:
            if v != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
        return bool(values)

    def _body_json(self, *, allow_list: bool = False) -> Any:
        if not self.body:
            raise errors.bad_request("the body of the request is empty")
        if self.content_type in ("application/yaml", "application/x-yaml"):
            return self._body_yaml()
        if "protobuf" in self.content_type:
            raise errors.unsupported_media_type(self.content_type)
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None
        if not isinstance(data, dict) and not (allow_list and isinstance(data, list)):
            raise errors.bad_request("the body of the request must be a JSON object")
        return data

    def _body_yaml(self) -> Any:
        try:
            data = yaml.safe_load(self.body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise errors.bad_request(f"error decoding YAML: {exc}") from None
        if not isinstance(data, dict):
            raise errors.bad_request("error decoding YAML: the apply patch must be an object")
        return data

    def _delete_options(self) -> JSON:
        opts: JSON = {}
        if self.body:
            try:
                opts = json.loads(self.body)
            except ValueError:
                raise errors.bad_request("DeleteOptions body is not JSON") from None
            if not isinstance(opts, dict):
                raise errors.bad_request("DeleteOptions body must be an object")
        if self.query.get("propagationPolicy"):
            opts["propagationPolicy"] = self.query["propagationPolicy"]
        if opts.get("orphanDependents") is True and not opts.get("propagationPolicy"):
            opts["propagationPolicy"] = "Orphan"
        if "All" in (opts.get("dryRun") or []):
            raise errors.not_implemented("dryRun in a DeleteOptions body; use the dryRun=All query parameter")
        return opts

    # ------------------------------------------------------------------ answers

    def _table_mode(self) -> str | None:
        """``Table`` / ``PartialObjectMetadata`` when the Accept header asks for it first."""
        for part in self.accept.split(","):
            params = {p.split("=", 1)[0].strip(): p.split("=", 1)[1].strip()
                      for p in part.split(";")[1:] if "=" in p}
            if params.get("as") in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList") \
                    and params.get("g") == "meta.k8s.io":
                return params["as"]
            media = part.split(";")[0].strip()
            if media in ("application/json", "*/*", "application/yaml", "application/vnd.kubernetes.protobuf", ""):
                if not params:
                    return None
        return None

    def _printer_columns(self, rt: ResourceType) -> list[JSON] | None:
        if not rt.is_custom:
            return None
        try:
            crd = self.store.get(self.store.crd_rt, None, f"{rt.plural}.{rt.group}")
        except ApiError:
            return None
        for v in (crd.get("spec") or {}).get("versions") or []:
            if v.get("name") == rt.version:
                return v.get("additionalPrinterColumns")
        return None

    def _table(self, rt: ResourceType, objs: list[JSON], rv: str = "", cont: str = "") -> JSON:
        from local.kubesim import tables

        include = self.query.get("includeObject") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise errors.bad_request(f'includeObject: Unsupported value: "{include}"')
        return tables.to_table(rt, objs, include, now=self.sim.clock.now(),
                               printer_columns=self._printer_columns(rt),
                               resource_version=rv, continue_token=cont)

    def _answer_objects(self, rt: ResourceType, objs: list[JSON], *, single: bool, rv: str = "",
                        cont: str = "") -> None:
        mode = self._table_mode()
        if mode == "Table":
            self._json(200, self._table(rt, objs, rv, cont))
            return
        if mode in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            partial = [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
                       for o in objs]
            if single:
                self._json(200, partial[0])
            else:
                meta: JSON = {"resourceVersion": rv}
                if cont:
                    meta["continue"] = cont
                self._json(200, {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": meta, "items": [{"metadata": p["metadata"]} for p in partial]})
            return
        if single:
            self._json(200, objs[0])
            return
        meta = {"resourceVersion": rv}
        if cont:
            meta["continue"] = cont
        items = objs if rt.is_custom else [{k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
                                             for o in objs]
        self._json(200, {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items})

    def _list(self, rt: ResourceType, namespace: str | None) -> None:
        try:
            limit = int(self.query.get("limit") or 0)
        except ValueError:
            raise errors.bad_request(f"limit: invalid value {self.query.get('limit')!r}") from None
        match = self.query.get("resourceVersionMatch", "")
        if match and match not in ("NotOlderThan", "Exact"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}"')
        if match and not self.query.get("resourceVersion"):
            raise errors.invalid(rt, "", [errors_cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided", "resourceVersionMatch")])
        items, rv, cont = self.store.list(rt, namespace, self.query.get("labelSelector", ""),
                                          self.query.get("fieldSelector", ""), limit, self.query.get("continue", ""))
        self._answer_objects(rt, items, single=False, rv=rv, cont=cont)

    def _scale(self, rt: ResourceType, namespace: str | None, name: str, manager: str, dry_run: bool) -> None:
        from local.kubesim import patch as patch_mod

        store = self.store
        m = self.method
        if m == "GET":
            self._json(200, store.get_scale(rt, namespace, name))
            return
        if m == "PUT":
            self._json(200, store.update_scale(rt, namespace, name, self._body_json(), manager=manager,
                                               dry_run=dry_run))
            return
        if m == "PATCH":
            current = store.get_scale(rt, namespace, name)
            ct = self.content_type
            if ct == "application/merge-patch+json":
                new = patch_mod.json_merge_patch(current, self._body_json())
            elif ct == "application/json-patch+json":
                new = patch_mod.json_patch(current, self._body_json(allow_list=True))
            elif ct == "application/strategic-merge-patch+json":
                from local.kubesim.schema import EMPTY

                new = patch_mod.strategic_merge_patch(current, self._body_json(), EMPTY)
            elif ct == APPLY_PATCH:
                raise errors.not_implemented("server-side apply on the scale subresource")
            else:
                raise errors.unsupported_media_type(ct)
            self._json(200, store.update_scale(rt, namespace, name, new, manager=manager, dry_run=dry_run))
            return
        raise errors.method_not_allowed(m, self.path)

    # ------------------------------------------------------------------ watch

    def _watch(self, rt: ResourceType, namespace: str | None) -> None:
        q = self.query
        store = self.store
        send_initial = q.get("sendInitialEvents") == "true"
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        rv_param = q.get("resourceVersion", "")
        if send_initial:
            if q.get("resourceVersionMatch") != "NotOlderThan":
                raise errors.invalid(rt, "", [errors_cause(
                    "FieldValueForbidden",
                    "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    "sendInitialEvents")])
            if not bookmarks:
                raise errors.invalid(rt, "", [errors_cause(
                    "FieldValueForbidden", "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    "allowWatchBookmarks")])
        elif q.get("resourceVersionMatch"):
            raise errors.invalid(rt, "", [errors_cause(
                "FieldValueForbidden", "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                "resourceVersionMatch")])
        try:
            timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else 1800.0 + random.random() * 1800
        except ValueError:
            raise errors.bad_request("timeoutSeconds must be a number") from None
        label_sel = q.get("labelSelector", "")
        field_sel = q.get("fieldSelector", "")
        initial: list[tuple[str, JSON]] = []
        expired: ApiError | None = None
        watcher = None
        list_rv = ""
        if send_initial or rv_param in ("", "0"):
            with store._lock:
                items, list_rv, _ = store.list(rt, namespace, label_sel, field_sel)
                watcher = store.watch(rt, namespace, int(list_rv), label_sel, field_sel)
            initial = [("ADDED", o) for o in items]
        else:
            try:
                since = int(rv_param)
            except ValueError:
                raise errors.bad_request(f'resourceVersion: Invalid value: "{rv_param}": must be an integer') from None
            try:
                watcher = store.watch(rt, namespace, since, label_sel, field_sel)
            except ApiError as exc:
                if exc.code != 410:
                    raise
                expired = exc
        table = self._table_mode() == "Table"
        h = self.h
        head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                b"Cache-Control: no-cache, private\r\n\r\n")
        h.wfile.write(head)
        h._status = 200

        def send(event_type: str, obj: JSON) -> None:
            if table and event_type in ("ADDED", "MODIFIED", "DELETED"):
                obj = self._table(rt, [obj])
            data = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        def bookmark(rv: str, initial_end: bool = False) -> None:
            meta: JSON = {"resourceVersion": rv}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            send("BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta})

        try:
            if expired is not None:
                send("ERROR", expired.status())
                return
            assert watcher is not None
            for event_type, obj in initial:
                send(event_type, obj)
            if send_initial:
                bookmark(list_rv, initial_end=True)
            deadline = time.monotonic() + timeout
            last_bookmark = time.monotonic()
            while not self.sim._closing.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    ev = watcher.next(min(remaining, 0.5))
                except ApiError as exc:
                    send("ERROR", exc.status())
                    break
                if ev is not None:
                    send(*ev)
                elif bookmarks and time.monotonic() - last_bookmark > 10 and watcher.last_rv:
                    bookmark(str(watcher.last_rv))
                    last_bookmark = time.monotonic()
        finally:
            if watcher is not None:
                watcher.close()
            try:
                h.wfile.write(b"0\r\n\r\n")
            except OSError:
                h.close_connection = True


def errors_cause(reason: str, message: str, field: str) -> Any:
    from local.kubesim.types import Cause

    return Cause(reason, message, field)


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    details={"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


class KubeSim:
    """An in-process kubesim server (context manager); see the module docstring.

    ``token`` is the read-write bearer token; ``read_only_token`` (when enabled) may only read.
    ``request_log`` holds ``(method, path+query, status, user-agent)`` per answered request.
    ``latency_ms`` delays every answer by that long, in the request's own thread (a sleep, so
    concurrent requests wait side by side): one network round trip to a real API server.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        kubeconfig_path: str | None = None,
        read_only_token: bool = False,
        run_controllers: bool = True,
        clock: Clock | None = None,
        history: int = 20000,
        eks_auth: eksauth.EksAuthConfig | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        if latency_ms < 0:
            raise ValueError(f"latency_ms must be >= 0, not {latency_ms}")
        self.latency_s = latency_ms / 1000
        self.host = host
        self._requested_port = port
        self.token = secrets.token_urlsafe(24)
        self.read_only_token: str | None = secrets.token_urlsafe(24) if read_only_token else None
        # EKS mode: bearer tokens made from IAM credentials, verified through STS (eksauth.py)
        self.eks_auth: eksauth.EksAuth | None = eksauth.EksAuth(eks_auth) if eks_auth is not None else None
        self.clock = clock or Clock()
        self.schemas = Schemas()
        self.store = Store(self.schemas, self.clock, history=history)
        from local.kubesim.controllers import Controllers

        self.controllers = Controllers(self.store, self.clock)
        self.request_log: list[tuple[str, str, int, str]] = []
        self._log_dropped = 0  # entries cut from the front of request_log (it is bounded)
        self.internal_errors: list[str] = []
        self.background_errors: list[str] = []
        self._log_lock = threading.Lock()
        self._closing = threading.Event()
        self._controllers_running = threading.Event()
        if run_controllers:
            self._controllers_running.set()
        self._tmpdir: str | None = None
        self._kubeconfig_arg = kubeconfig_path
        self.kubeconfig_path = ""
        self.port = 0
        self.url = ""
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self.certs = tls.generate((host, "localhost"))

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> KubeSim:
        """Listen, serve, start the controller loop, then (only then) write the kubeconfig."""
        self._server = _Server((self.host, self._requested_port), self, self.certs.server_context())
        self.port = self._server.server_address[1]
        self.url = f"https://{self.host}:{self.port}"
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                 name=f"kubesim-http-{self.port}", daemon=True)
        loop = threading.Thread(target=self._loop, name=f"kubesim-controllers-{self.port}", daemon=True)
        self._threads = [serve, loop]
        serve.start()
        loop.start()
        if self._kubeconfig_arg:
            self.kubeconfig_path = os.path.abspath(self._kubeconfig_arg)
        else:
            self._tmpdir = tempfile.mkdtemp(prefix="kubesim-")
            self.kubeconfig_path = os.path.join(self._tmpdir, "kubeconfig")
        self._wait_ready()
        write_atomic(self.kubeconfig_path, self.kubeconfig())
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop serving, end watches and keep-alive connections, join the threads."""
        self._closing.set()
        server = self._server
        if server is not None:
            server.shutdown()
            with server.conn_lock:
                conns = list(server.connections)
            for conn in conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        if self._tmpdir:
            try:
                os.unlink(self.kubeconfig_path)
                os.rmdir(self._tmpdir)
            except OSError:
                pass

    def __enter__(self) -> KubeSim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ controllers

    def _loop(self) -> None:
        """kube-controller-manager: controllers every 50 ms (unless paused), GC always."""
        pause = 0.05
        while not self._closing.wait(pause):
            started = time.monotonic()
            try:
                if self._controllers_running.is_set():
                    self.controllers.reconcile()
                self.store.collect_garbage()
            except Exception:  # noqa: BLE001 - keep the loop alive, but make failures visible
                text = traceback.format_exc()
                if len(self.background_errors) < 100:
                    self.background_errors.append(text)
                print(text, file=sys.stderr)
            # A pass over many objects holds the GIL; leave at least twice its time to requests.
            pause = max(0.05, 2 * (time.monotonic() - started))

    def pause_controllers(self) -> None:
        self._controllers_running.clear()

    def resume_controllers(self) -> None:
        self._controllers_running.set()

    def enable_eks_auth(self, config: eksauth.EksAuthConfig) -> eksauth.EksAuth:
        """Accept EKS tokens for ``config.cluster_id`` from now on (the static tokens still work)."""
        self.eks_auth = eksauth.EksAuth(config)
        return self.eks_auth

    def fail_image(self, pattern: str, mode: str) -> None:
        self.controllers.fail_image(pattern, mode)

    # ------------------------------------------------------------------ kubeconfig / log

    def _log(self, method: str, path: str, status: int, user_agent: str) -> None:
        with self._log_lock:
            if len(self.request_log) >= _LOG_LIMIT:
                del self.request_log[: _LOG_LIMIT // 2]
                self._log_dropped += _LOG_LIMIT // 2
            self.request_log.append((method, path, status, user_agent))

    def log_mark(self) -> int:
        """How many requests were answered so far: a mark for :meth:`requests_since` (which,
        unlike an index into ``request_log``, survives the log being cut)."""
        with self._log_lock:
            return self._log_dropped + len(self.request_log)

    def requests_since(self, mark: int) -> list[tuple[str, str, int, str]]:
        """The request_log entries answered after ``mark`` (from :meth:`log_mark`)."""
        with self._log_lock:
            return list(self.request_log[max(0, mark - self._log_dropped):])

    def kubeconfig(self, *, read_only: bool = False, namespace: str = "default") -> str:
        """A kubeconfig (CA data + bearer token); ``read_only`` selects the read-only token."""
        token = self.read_only_token if read_only else self.token
        if read_only and not token:
            raise ValueError("this KubeSim was started without read_only_token")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubesim", "cluster": {
                "server": self.url,
                "certificate-authority-data": base64.b64encode(self.certs.ca_pem).decode(),
            }}],
            "users": [{"name": "kubesim", "user": {"token": token}}],
            "contexts": [{"name": "kubesim", "context": {"cluster": "kubesim", "user": "kubesim",
                                                         "namespace": namespace}}],
            "current-context": "kubesim",
            "preferences": {},
        }
        return yaml.safe_dump(doc, sort_keys=False)

    def write_kubeconfig(self, path: str, *, read_only: bool = False, namespace: str = "default") -> str:
        """Write another kubeconfig (e.g. the read-only one) atomically; returns the path."""
        write_atomic(path, self.kubeconfig(read_only=read_only, namespace=namespace))
        return path


def write_atomic(path: str, text: str) -> None:
    """Write via a temp file + rename in the same directory: readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kubeconfig-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
