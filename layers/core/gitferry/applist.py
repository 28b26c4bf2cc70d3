"""``GET /api/v1/applications``: filters, name order and a keyset cursor, fast at thousands of apps.

Applications come from GSI ``byType`` (``type = app``), which DynamoDB keeps sorted by ``name``:
the list is in name order for free, and a page starts right after the last name of the previous
one (the cursor is that name, opaque to callers), so a page costs one index query plus one
BatchGetItem of statuses per 100 apps, whatever the fleet size, and apps created or deleted
between two pages never shift the others. Specs are filtered as the stored JSON documents
(no model is built per app); statuses are read without their resource lists
(:meth:`gitferry.state.StateStore.get_statuses`), and only for the apps a page shows, unless
a sync / health filter needs them to decide.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

from gitferry import selectors
from gitferry.errors import InvalidSpecError
from gitferry.model import HealthStatusCode, SyncStatusCode
from gitferry.state import GSI_BY_TYPE, StateStore
from gitferry.webhooks import normalise_repo_url

__all__ = ["COUNT_PARAMETERS", "DEFAULT_LIMIT", "MAX_LIMIT", "QUERY_PARAMETERS", "Filters", "count", "list_page"]

DEFAULT_LIMIT, MAX_LIMIT = 500, 1000
#: index items read per query while filters drop apps
_SCAN_CHUNK = 500
QUERY_PARAMETERS = ("project", "repo", "cluster", "namespace", "sync", "health", "selector", "search",
                    "limit", "cursor")
#: ``GET /api/v1/application-counts``: the list's filters, no paging
COUNT_PARAMETERS = tuple(p for p in QUERY_PARAMETERS if p not in ("limit", "cursor"))
_SYNC = get_args(SyncStatusCode)
_HEALTH = get_args(HealthStatusCode)
_MAX_TEXT = 1024


@dataclass
class Filters:
    project: str | None = None
    repo: str | None = None
    cluster: str | None = None
    namespace: str | None = None
    sync: str | None = None
    health: str | None = None
    selector: list[selectors.Requirement] = field(default_factory=list)
    search: str | None = None
    limit: int = DEFAULT_LIMIT
    after: str | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str] | None, known: tuple[str, ...] = QUERY_PARAMETERS) -> Filters:
        """The filters of a query string; InvalidSpecError naming every bad parameter."""
        query = dict(query or {})
        problems = [f"{k}: unknown query parameter (known: {', '.join(known)})"
                    for k in sorted(set(query) - set(known))]
        problems += [f"{k}: longer than {_MAX_TEXT} characters" for k, v in query.items()
                     if k in QUERY_PARAMETERS and k != "selector" and len(v) > _MAX_TEXT]
        out = cls()
        for key in ("project", "repo", "cluster", "namespace", "search"):
            if query.get(key):
                setattr(out, key, query[key])
        for key, allowed in (("sync", _SYNC), ("health", _HEALTH)):
            value = query.get(key)
            if value:
                if value not in allowed:
                    problems.append(f"{key}: {value[:64]!r} is not one of {', '.join(allowed)}")
                else:
                    setattr(out, key, value)
        if query.get("selector"):
            try:
                out.selector = selectors.parse(query["selector"])
            except selectors.SelectorError as exc:
                problems.append(f"selector: {exc}")
        limit = query.get("limit")
        if limit is not None:
            if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
                problems.append(f"limit: must be an integer from 1 to {MAX_LIMIT}")
            else:
                out.limit = int(limit)
        if query.get("cursor"):
            try:
                out.after = decode_cursor(query["cursor"])
            except ValueError:
                problems.append("cursor: not a cursor this API returned")
        if problems:
            raise InvalidSpecError(problems, "invalid application list request")
        return out

    @property
    def needs_status(self) -> bool:
        return self.sync is not None or self.health is not None

    @property
    def filters_specs(self) -> bool:
        return any((self.project, self.repo, self.cluster, self.namespace, self.selector, self.search))


def encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(f"after:{name}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError("not a cursor") from None
    if not text.startswith("after:") or not 1 < len(text) <= 6 + 253:
        raise ValueError("not a cursor")
    return text[6:]


class _Clusters:
    """Registered clusters by name and by server, read once per request and only when needed."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self._pairs: list[tuple[str, str]] | None = None

    def names_for(self, wanted: str) -> tuple[set[str], set[str]]:
        """(names, servers) a destination may give to be on the cluster ``wanted`` (a name or a server)."""
        if self._pairs is None:
            self._pairs = [(c.name, c.server.rstrip("/")) for c in self.state.list_clusters()]
        target = wanted.rstrip("/")
        names = {n for n, s in self._pairs if target in (n, s)} | {wanted}
        servers = {s for n, s in self._pairs if target in (n, s)} | {target}
        return names, servers


def _spec_matches(doc: dict[str, Any], f: Filters, clusters: _Clusters) -> bool:
    meta = doc.get("metadata") or {}
    spec = doc.get("spec") or {}
    if f.search and f.search.lower() not in str(meta.get("name", "")).lower():
        return False
    if f.project and spec.get("project", "default") != f.project:
        return False
    dest = spec.get("destination") or {}
    if f.namespace and dest.get("namespace") != f.namespace:
        return False
    if f.repo:
        wanted = normalise_repo_url(f.repo)
        urls = [s.get("repoURL", "") for s in [spec.get("source") or {}, *(spec.get("sources") or [])]]
        if not any(normalise_repo_url(u) == wanted for u in urls if u):
            return False
    if f.cluster:
        names, servers = clusters.names_for(f.cluster)
        if dest.get("name") not in names and str(dest.get("server") or "").rstrip("/") not in servers:
            return False
    return not f.selector or selectors.matches(f.selector, meta.get("labels") or {})


def _status_matches(status: dict[str, Any], f: Filters) -> bool:
    if f.sync and (status.get("sync") or {}).get("status", "Unknown") != f.sync:
        return False
    return not f.health or (status.get("health") or {}).get("status", "Unknown") == f.health


def _query(state: StateStore, after: str | None, limit: int | None,
           names_only: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` app items of the index after name ``after`` (None: DynamoDB's 1 MB page),
    and whether more follow."""
    kwargs: dict[str, Any] = {
        "TableName": state.table_name, "IndexName": GSI_BY_TYPE,
        "KeyConditionExpression": "#t = :t", "ExpressionAttributeNames": {"#t": "type"},
        "ExpressionAttributeValues": {":t": {"S": "app"}},
    }
    if limit is not None:
        kwargs["Limit"] = limit
    if names_only:
        kwargs["ProjectionExpression"] = "#n"
        kwargs["ExpressionAttributeNames"]["#n"] = "name"
    if after is not None:
        kwargs["ExclusiveStartKey"] = {"type": {"S": "app"}, "name": {"S": after},
                                       "pk": {"S": f"APP#{after}"}, "sk": {"S": "SPEC"}}
    resp = state.client.query(**kwargs)
    return resp.get("Items", []), "LastEvaluatedKey" in resp


def list_page(state: StateStore, f: Filters,
              row: Any) -> dict[str, Any]:
    """One page: ``items`` (``row(manifest, version, deletion, status, owner)`` of each app, in
    name order; ``owner`` the app of apps rendering it, or None) and ``nextCursor`` when more
    apps match after them."""
    clusters = _Clusters(state)
    chosen: list[tuple[dict[str, Any], int, dict[str, Any] | None, str | None]] = []
    statuses: dict[str, Any] = {}
    after = f.after
    filtered = f.filters_specs or f.needs_status
    more = True
    while more and len(chosen) <= f.limit:
        items, more = _query(state, after, _SCAN_CHUNK if filtered else f.limit + 1 - len(chosen))
        if not items:
            break
        after = items[-1]["name"]["S"]
        candidates = []
        for it in items:
            if "spec" not in it:
                continue  # an index without the document (never written so by gitferry)
            doc = json.loads(it["spec"]["S"])
            if filtered and not _spec_matches(doc, f, clusters):
                continue
            deletion = json.loads(it["deletion"]["S"]) if "deletion" in it else None
            candidates.append((doc, int(it["version"]["N"]), deletion, it.get("ownerApp", {}).get("S")))
        if f.needs_status and candidates:
            read = state.get_statuses([c[0]["metadata"]["name"] for c in candidates])
            statuses.update({k: v.to_json_dict() for k, v in read.items()})
            candidates = [c for c in candidates if _status_matches(statuses.get(c[0]["metadata"]["name"], {}), f)]
        chosen.extend(candidates)
    page, has_next = chosen[:f.limit], len(chosen) > f.limit
    missing = [c[0]["metadata"]["name"] for c in page if c[0]["metadata"]["name"] not in statuses]
    if missing:
        statuses.update({k: v.to_json_dict() for k, v in state.get_statuses(missing).items()})
    answer: dict[str, Any] = {"items": [row(doc, version, deletion, statuses.get(doc["metadata"]["name"]), owner)
                                        for doc, version, deletion, owner in page]}
    if has_next and page:
        answer["nextCursor"] = encode_cursor(page[-1][0]["metadata"]["name"])
    return answer


def count(state: StateStore, f: Filters) -> dict[str, Any]:
    """``total`` and the apps per ``sync`` and per ``health`` status (every code, 0 included)
    over every app the filters match, the whole fleet by default: one index read of all apps
    (1 MB pages, the fewest queries; names only unless a spec filter needs the documents) and two native
    attributes of their statuses (:meth:`StateStore.get_status_codes`, BatchGetItem, 100 a
    call). The console asks it apart from the page."""
    clusters = _Clusters(state)
    sync = dict.fromkeys(_SYNC, 0)
    health = dict.fromkeys(_HEALTH, 0)
    after: str | None = None
    more = True
    while more:
        items, more = _query(state, after, None, names_only=not f.filters_specs)
        if not items:
            break
        after = items[-1]["name"]["S"]
        if not f.filters_specs:
            names = [it["name"]["S"] for it in items]
        else:
            docs = [json.loads(it["spec"]["S"]) for it in items if "spec" in it]
            names = [d["metadata"]["name"] for d in docs if _spec_matches(d, f, clusters)]
        codes = state.get_status_codes(names) if names else {}
        for name in names:
            s, h = codes.get(name, ("Unknown", "Unknown"))
            if (f.sync and s != f.sync) or (f.health and h != f.health):
                continue
            sync[s] += 1
            health[h] += 1
    return {"total": sum(sync.values()), "sync": sync, "health": health}
