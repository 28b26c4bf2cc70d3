"""DynamoDB single-table state: applications, status, operation lease, history,
repositories and clusters. Keys follow docs/engine-design.md.

Documents (the Application manifest, the status, each history entry) are
stored as JSON *strings*, not DynamoDB maps: no float/Decimal conversion, the
item size is simply the string length, and the document round-trips exactly.
Only what DynamoDB must compare or index is a native attribute (``type``,
``name``, ``version``, ``expiresAt``, ``opId``, request flags).

A status whose resource list would push the item past ~350 KB (the hard limit
is 400 KB) keeps the list in S3 through a :class:`~gitferry.blobs.ManifestStore`
(content-addressed under ``status/<app>/``) and stores only the key.

The refresh / sync request flags are separate attributes of the STATUS item,
so the API can set them with one UpdateItem while the diff stage rewrites the
status without losing a request that arrived in between.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import boto3
from botocore.exceptions import ClientError

from gitferry.blobs import ManifestStore
from gitferry.errors import ConflictError, NotFoundError, StateError
from gitferry.model import (
    IN_CLUSTER_NAME,
    IN_CLUSTER_SERVER,
    Application,
    AppStatus,
    Cluster,
    HistoryEntry,
    Repository,
    ResourceStatus,
)

__all__ = ["StateStore", "StoredApp", "Lease", "SPILL_THRESHOLD", "GSI_BY_TYPE"]

GSI_BY_TYPE = "byType"
#: bytes of status JSON above which resources go to S3 (DynamoDB's limit is 400 KB per item).
SPILL_THRESHOLD = 350_000
#: longest condition / operation message kept (a message listing thousands of objects is cut).
MAX_MESSAGE_CHARS = 16_000
_RESOURCES = "resources"
_RESULTS = "operationState.syncResult.resources"
#: part -> (inline attribute, S3 reference attribute) of the STATUS item
_PART_ATTRS = {_RESOURCES: ("resources", "resourcesRef"), _RESULTS: ("", "resultsRef")}
_HISTORY_PREFIX = "HISTORY#"
_CHILD_PREFIX = "CHILD#"


@dataclass(frozen=True)
class StoredApp:
    """An application spec with the version to pass back for an optimistic update."""

    app: Application
    version: int
    # Set once a cascading delete was asked for (DELETE ?cascade=true): ``deletionTimestamp``,
    # ``propagation`` and the progress of deletion.py. The app is then only being deleted.
    deletion: dict[str, Any] | None = None
    # The app of apps that renders this app (``ownerApp`` on the SPEC item, children.py); None
    # for an app registered through the API.
    owner: str | None = None


K = TypeVar("K")
T = TypeVar("T")


class Parsed(Generic[K, T]):
    """Values parsed from stored text, kept by that text, for a reader that reads every app
    again and again and never changes what it is given (the poll: a warm Lambda's tick parsed
    5,000 mostly unchanged specs and statuses each minute, the largest part of gitferry's own
    CPU in the tick). The same text parses to the same value, so only what is new or changed
    is parsed; what does not parse is not kept (it fails again, as it did). One value may
    stand for several items of the same text (two apps' identical statuses). Only what the
    last round used is kept: :meth:`next_round` lets go of the rest."""

    def __init__(self, parse: Callable[[K], T]) -> None:
        self._parse = parse
        self._last: dict[K, T] = {}
        self._this: dict[K, T] = {}

    def get(self, key: K) -> T:
        value = self._this.get(key)
        if value is None:
            value = self._last.get(key)
        if value is None:
            value = self._parse(key)
        self._this[key] = value
        return value

    def next_round(self) -> None:
        """Start a new listing: what the previous one did not use is let go."""
        self._last, self._this = self._this, {}


def parsed_specs() -> Parsed[str, Application]:
    """Applications by their stored spec's JSON text (:meth:`StateStore.iter_app_pages`)."""
    return Parsed(lambda text: Application.from_manifest(json.loads(text)))


#: what a status read without its lists is made of: (statusDoc, refreshRequested, syncRequested)
PartialStatusKey = tuple[str | None, bool, bool]


def parsed_statuses() -> Parsed[PartialStatusKey, AppStatus]:
    """Statuses read without their lists, by their stored text (:meth:`StateStore.get_statuses`)."""
    return Parsed(_partial_status)


def _partial_status_key(item: dict[str, Any]) -> PartialStatusKey:
    return (item["statusDoc"]["S"] if "statusDoc" in item else None,
            item.get("refreshRequested", {}).get("BOOL", False), item.get("syncRequested", {}).get("BOOL", False))


def _partial_status(key: PartialStatusKey) -> AppStatus:
    return _status_of(json.loads(key[0]) if key[0] is not None else {}, key[1], key[2], partial=True)


def _status_of(doc: dict[str, Any], refresh: bool, sync: bool, *, partial: bool) -> AppStatus:
    doc["refreshRequested"] = refresh
    doc["syncRequested"] = sync
    status = AppStatus.model_validate(doc)
    status._partial_lists = partial
    return status


@dataclass(frozen=True)
class Lease:
    """The running operation of an app: who holds it and until when (epoch s)."""

    app: str
    op_id: str
    expires_at: int


def app_pk(name: str) -> str:
    return f"APP#{name}"


def _s(v: str) -> dict[str, str]:
    return {"S": v}


def _n(v: int | float) -> dict[str, str]:
    return {"N": str(v)}


def _bound_messages(doc: dict[str, Any]) -> None:
    """Cut condition and operation messages to :data:`MAX_MESSAGE_CHARS` (in place)."""
    texts = [c for c in doc.get("conditions") or [] if isinstance(c, dict)]
    if isinstance(doc.get("operationState"), dict):
        texts.append(doc["operationState"])
    for holder in texts:
        msg = holder.get("message")
        if isinstance(msg, str) and len(msg) > MAX_MESSAGE_CHARS:
            holder["message"] = msg[:MAX_MESSAGE_CHARS] + f"... ({len(msg) - MAX_MESSAGE_CHARS} more characters)"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class StateStore:
    """All gitferry state in one DynamoDB table (``TABLE_NAME``).

    ``client`` may be a boto3 DynamoDB client or resource; it is created lazily
    so building the store at import time costs nothing. ``blobs`` is needed only
    to spill large statuses.
    """

    def __init__(self, table_name: str, client: Any = None, blobs: ManifestStore | None = None) -> None:
        self.table_name = table_name
        if client is not None and not hasattr(client, "get_item") and hasattr(client, "meta"):
            client = client.meta.client  # a boto3 resource: use its low-level client
        self._client = client
        self.blobs = blobs

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("dynamodb")
        return self._client

    # ------------------------------------------------------------------ applications

    def put_app(self, app: Application, expected_version: int | None = None, *, owner: str | None = None) -> int:
        """Create (``expected_version=None``; fails if it exists) or update an app
        whose stored version is ``expected_version``. Returns the new version.
        Raises :class:`ConflictError` when the condition fails. ``owner``: the app of apps
        whose render this app comes from (children.py); an update without it keeps the
        stored owner (and any other attribute of the SPEC item: it is an UpdateItem)."""
        new_version = 1 if expected_version is None else expected_version + 1
        spec = json.dumps(app.to_manifest(), separators=(",", ":"))
        try:
            if expected_version is None:
                item = {
                    "pk": _s(app_pk(app.name)),
                    "sk": _s("SPEC"),
                    "type": _s("app"),
                    "name": _s(app.name),
                    "spec": _s(spec),
                    "version": _n(new_version),
                    "updatedAt": _n(int(time.time())),
                }
                if owner:
                    item["ownerApp"] = _s(owner)
                self.client.put_item(TableName=self.table_name, Item=item,
                                     ConditionExpression="attribute_not_exists(pk)")
            else:
                values: dict[str, Any] = {":s": _s(spec), ":n": _n(new_version), ":u": _n(int(time.time())),
                                          ":v": _n(expected_version)}
                update = "SET spec = :s, version = :n, updatedAt = :u"
                if owner:
                    update += ", ownerApp = :o"
                    values[":o"] = _s(owner)
                self.client.update_item(TableName=self.table_name, Key=self._key(app_pk(app.name), "SPEC"),
                                        UpdateExpression=update, ConditionExpression="version = :v",
                                        ExpressionAttributeValues=values)
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                if expected_version is None:
                    raise ConflictError(f"application {app.name!r} already exists") from None
                raise ConflictError(
                    f"application {app.name!r} was changed by someone else (expected version {expected_version})"
                ) from None
            raise
        if owner:
            self._index_child(owner, app.name)
        return new_version

    def _index_child(self, owner: str, child: str) -> None:
        """``APP#<owner>`` / ``CHILD#<child>``: the parent's list of its children, so a parent
        finds them with one query of its own key (the child's ``ownerApp`` stays the authority:
        :meth:`list_owned` checks it, and the item goes with the parent's other items)."""
        self.client.put_item(TableName=self.table_name, Item={"pk": _s(app_pk(owner)), "sk": _s(f"{_CHILD_PREFIX}{child}")})

    def set_owner(self, name: str, owner: str | None) -> None:
        """Set (or with None clear: the app is orphaned, as if registered through the API) the
        app of apps owning ``name``; nothing when the app is gone."""
        kwargs: dict[str, Any] = ({"UpdateExpression": "SET ownerApp = :o", "ExpressionAttributeValues": {":o": _s(owner)}}
                                  if owner else {"UpdateExpression": "REMOVE ownerApp"})
        try:
            old = self.client.update_item(TableName=self.table_name, Key=self._key(app_pk(name), "SPEC"),
                                          ConditionExpression="attribute_exists(pk)", ReturnValues="UPDATED_OLD",
                                          **kwargs).get("Attributes", {})
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return
        previous = old.get("ownerApp", {}).get("S")
        if previous and previous != owner:
            self.client.delete_item(TableName=self.table_name, Key=self._key(app_pk(previous), f"{_CHILD_PREFIX}{name}"))
        if owner:
            self._index_child(owner, name)

    def list_owned(self, owner: str) -> list[StoredApp]:
        """The apps whose ``ownerApp`` is ``owner``: one query of the owner's ``CHILD#`` items,
        then their SPEC items (consistent reads), each checked to be owned by ``owner`` still."""
        names = [it["sk"]["S"][len(_CHILD_PREFIX):]
                 for it in self._query_pk(app_pk(owner), prefix=_CHILD_PREFIX, keys_only=True)]
        if not names:
            return []
        items = self._batch_get([self._key(app_pk(n), "SPEC") for n in names])
        owned = [self._stored_app(it) for it in items if it.get("ownerApp", {}).get("S") == owner]
        return sorted(owned, key=lambda s: s.app.name)

    def get_app(self, name: str) -> StoredApp:
        """The stored app; :class:`NotFoundError` when absent."""
        resp = self.client.get_item(
            TableName=self.table_name, Key=self._key(app_pk(name), "SPEC"), ConsistentRead=True
        )
        item = resp.get("Item")
        if not item:
            raise NotFoundError(f"application {name!r} not found")
        return self._stored_app(item)

    def delete_app(self, name: str, expected_version: int | None = None) -> None:
        """Delete the app and everything under its key (status, lease, history).
        With ``expected_version`` the spec delete is conditional."""
        kwargs: dict[str, Any] = {}
        if expected_version is not None:
            kwargs = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": _n(expected_version)},
            }
        try:
            old = self.client.delete_item(TableName=self.table_name, Key=self._key(app_pk(name), "SPEC"),
                                          ReturnValues="ALL_OLD", **kwargs).get("Attributes", {})
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ConflictError(f"application {name!r} was changed by someone else") from None
            raise
        spilled = self.client.get_item(
            TableName=self.table_name, Key=self._key(app_pk(name), "STATUS"), ConsistentRead=True,
            ProjectionExpression="resourcesRef, resultsRef",
        ).get("Item", {})
        keys = [self._key(app_pk(name), it["sk"]["S"]) for it in self._query_pk(app_pk(name), keys_only=True)]
        self._batch_delete(keys)
        owner = old.get("ownerApp", {}).get("S")
        if owner:  # out of its parent's list of children
            self.client.delete_item(TableName=self.table_name, Key=self._key(app_pk(owner), f"{_CHILD_PREFIX}{name}"))
        for ref in spilled.values():  # the app's spilled lists go with it
            if self.blobs is not None:
                self.blobs.delete(ref["S"])

    def list_apps(self) -> list[StoredApp]:
        """Every application (paginated GSI query; fine for 5,000 apps)."""
        return list(self.iter_apps())

    def iter_apps(self) -> Iterator[StoredApp]:
        """Applications one by one, in name order, through GSI ``byType``."""
        for page in self.iter_app_pages():
            yield from page

    def iter_app_pages(self, limit: int = 500,
                       specs: Parsed[str, Application] | None = None) -> Iterator[list[StoredApp]]:
        """Applications a page (one Query) at a time, in name order: a caller can start on a
        page while the next is being read (the poll tick does). With ``specs``
        (:func:`parsed_specs`), a spec already parsed there is not parsed again (the Application
        is shared: the caller must not change it)."""
        cursor: str | None = None
        while True:
            page, cursor = self.list_apps_page(limit=limit, cursor=cursor, specs=specs)
            yield page
            if cursor is None:
                return

    def list_apps_page(
        self, limit: int = 100, cursor: str | None = None, specs: Parsed[str, Application] | None = None
    ) -> tuple[list[StoredApp], str | None]:
        """One page of applications and an opaque cursor for the next (None at the end)."""
        items, next_cursor = self._query_type("app", limit, cursor)
        missing = [it for it in items if "spec" not in it]  # index projected keys only
        if missing:
            fetched = self._batch_get([self._key(it["pk"]["S"], it["sk"]["S"]) for it in missing])
            by_pk = {it["pk"]["S"]: it for it in fetched}
            items = [by_pk.get(it["pk"]["S"], it) if "spec" not in it else it for it in items]
        return [self._stored_app(it, specs) for it in items if "spec" in it], next_cursor

    def list_app_names(self) -> list[str]:
        names: list[str] = []
        cursor: str | None = None
        while True:
            items, cursor = self._query_type("app", 1000, cursor, names_only=True)
            names.extend(it["name"]["S"] for it in items)
            if cursor is None:
                return names

    def _stored_app(self, item: dict[str, Any], specs: Parsed[str, Application] | None = None) -> StoredApp:
        try:
            text = item["spec"]["S"]
            app = specs.get(text) if specs is not None else Application.from_manifest(json.loads(text))
        except Exception as exc:
            raise StateError(
                f"stored spec of {item.get('name', {}).get('S')!r} is unreadable: {exc}"
            ) from None
        deletion = json.loads(item["deletion"]["S"]) if "deletion" in item else None
        owner = item["ownerApp"]["S"] if "ownerApp" in item else None
        return StoredApp(app=app, version=int(item["version"]["N"]), deletion=deletion, owner=owner)

    def mark_deleting(self, name: str, deletion: dict[str, Any], *, first: bool) -> None:
        """Record the app's deletion (``first``: only if the app exists and is not being deleted
        yet, else :class:`ConflictError`; otherwise: only while the app exists, to store
        progress). Refuses with :class:`NotFoundError` when the app is gone."""
        cond = "attribute_exists(pk)" + (" AND attribute_not_exists(deletion)" if first else "")
        try:
            self.client.update_item(
                TableName=self.table_name, Key=self._key(app_pk(name), "SPEC"),
                UpdateExpression="SET deletion = :d", ConditionExpression=cond,
                ExpressionAttributeValues={":d": _s(json.dumps(deletion, separators=(",", ":")))},
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            self.get_app(name)  # NotFoundError when it is gone
            raise ConflictError(f"application {name!r} is already being deleted") from None

    # ------------------------------------------------------------------ status

    def put_status(self, name: str, status: AppStatus) -> None:
        """Write the status. ``history`` is not stored here (see :meth:`append_history`)
        and the request flags are left as they are (see :meth:`request`).

        The two lists that grow with the app (``resources`` and the last operation's
        ``operationState.syncResult.resources``) are spilled to S3, largest first, until the
        item fits under :data:`SPILL_THRESHOLD`; the blobs they replace are deleted once the
        item no longer points at them. A status read without its lists (:meth:`get_statuses`)
        is written back without touching the stored lists."""
        doc = status.to_json_dict()
        doc.pop("history", None)
        doc.pop("refreshRequested", None)
        doc.pop("syncRequested", None)
        _bound_messages(doc)
        partial = bool(getattr(status, "_partial_lists", False))
        resources = doc.pop("resources", [])
        result = (doc.get("operationState") or {}).get("syncResult")
        parts: dict[str, Any] = {}
        if not partial:  # a partial read writes back statusDoc only: the stored lists stay
            parts[_RESOURCES] = resources
            if isinstance(result, dict) and "resources" in result:
                parts[_RESULTS] = result.pop("resources")
        bodies = {p: json.dumps(v, separators=(",", ":")) for p, v in parts.items()}
        body = json.dumps(doc, separators=(",", ":"))
        spill: list[str] = []
        size = len(body.encode()) + sum(len(b.encode()) for b in bodies.values())
        for part in sorted(bodies, key=lambda p: len(bodies[p]), reverse=True):
            if size <= SPILL_THRESHOLD:
                break
            spill.append(part)
            size -= len(bodies[part].encode())
        if size > SPILL_THRESHOLD:
            raise StateError(f"status of {name!r} is too large even with its resource lists in S3 ({size} bytes)")
        if spill and self.blobs is None:
            raise StateError(f"status of {name!r} is too large for DynamoDB and no blob store is configured")
        values: dict[str, Any] = {":st": _s(body), ":at": _n(int(time.time())),
                                  # native, so a conditional write can refuse a second operation
                                  ":ph": _s(status.operation_state.phase if status.operation_state else ""),
                                  # native, so the fleet's counts read two short strings per app
                                  ":ss": _s(status.sync.status), ":hs": _s(status.health.status)}
        sets = ["statusDoc = :st", "updatedAt = :at", "opPhase = :ph", "syncStatus = :ss", "healthStatus = :hs"]
        removes: list[str] = []
        for part in parts:
            attr, ref = _PART_ATTRS[part]
            if part in spill:
                assert self.blobs is not None
                values[f":{ref}"] = _s(self.blobs.put_json_addressed(f"status/{name}/", parts[part]))
                sets.append(f"{ref} = :{ref}")
                if attr:
                    removes.append(attr)
            else:
                if attr:
                    values[f":{attr}"] = _s(bodies[part])
                    sets.append(f"{attr} = :{attr}")
                elif isinstance(result, dict):  # results stay inline in statusDoc
                    result["resources"] = parts[part]
                removes.append(ref)
        if _RESULTS in parts and _RESULTS not in spill:
            values[":st"] = _s(json.dumps(doc, separators=(",", ":")))
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        resp = self.client.update_item(
            TableName=self.table_name,
            Key=self._key(app_pk(name), "STATUS"),
            UpdateExpression=update,
            ExpressionAttributeValues=values,
            ReturnValues="UPDATED_OLD",
        )
        old = resp.get("Attributes", {})
        now_refs = {values[f":{_PART_ATTRS[p][1]}"]["S"] for p in spill}
        for _, ref in _PART_ATTRS.values():
            old_key = old.get(ref, {}).get("S")
            if old_key and old_key not in now_refs and self.blobs is not None:
                self.blobs.delete(old_key)  # nothing points at it any more

    def get_status(self, name: str, include_history: bool = False) -> AppStatus | None:
        """The status (lists loaded back from S3 when spilled), or None if never written."""
        for attempt in range(3):
            resp = self.client.get_item(
                TableName=self.table_name, Key=self._key(app_pk(name), "STATUS"), ConsistentRead=True
            )
            item = resp.get("Item")
            if not item:
                return None
            try:
                status = self._status_from_item(name, item)
                break
            except NotFoundError:
                if attempt == 2:
                    raise StateError(f"status of {name!r} points at a resource list that is gone from S3") from None
                continue  # replaced (and its old blob deleted) between our two reads: read again
        if include_history:
            status.history = self.list_history(name)
        return status

    def get_statuses(self, names: list[str],
                     parsed: Parsed[PartialStatusKey, AppStatus] | None = None) -> dict[str, AppStatus]:
        """Statuses of many apps without their resource lists (what a poll tick needs):
        BatchGetItem, 100 keys a call. With ``parsed`` (:func:`parsed_statuses`), a status
        whose stored text was parsed there is not parsed again (it is shared: the caller must
        not change it)."""
        keys = [self._key(app_pk(n), "STATUS") for n in names]
        out: dict[str, AppStatus] = {}
        for item in self._batch_get(keys, projection="pk, statusDoc, refreshRequested, syncRequested"):
            # read without its lists: put_status of it keeps the stored lists
            name = item["pk"]["S"].removeprefix("APP#")
            key = _partial_status_key(item)
            out[name] = parsed.get(key) if parsed is not None else _partial_status(key)
        return out

    def get_status_codes(self, names: list[str]) -> dict[str, tuple[str, str]]:
        """(sync status, health status) of many apps from the STATUS items' native attributes
        (BatchGetItem of two short strings each); an app never compared is absent. A status
        written before those attributes existed is read from its document."""
        keys = [self._key(app_pk(n), "STATUS") for n in names]
        out: dict[str, tuple[str, str]] = {}
        old: list[str] = []
        for item in self._batch_get(keys, projection="pk, syncStatus, healthStatus"):
            name = item["pk"]["S"].removeprefix("APP#")
            if "syncStatus" in item and "healthStatus" in item:
                out[name] = (item["syncStatus"]["S"], item["healthStatus"]["S"])
            else:
                old.append(name)
        for name, status in (self.get_statuses(old) if old else {}).items():
            out[name] = (status.sync.status, status.health.status)
        return out

    def request(self, name: str, refresh: bool = False, sync: bool = False) -> None:
        """Ask for a refresh and/or a sync (sets flags without touching the status)."""
        sets = [f"{attr} = :t" for attr, on in (("refreshRequested", refresh), ("syncRequested", sync)) if on]
        if not sets:
            return
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(app_pk(name), "STATUS"),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeValues={":t": {"BOOL": True}},
        )

    def clear_requests(self, name: str, refresh: bool = True, sync: bool = True) -> None:
        """Drop request flags once the work they asked for has been taken on."""
        attrs = [a for a, on in (("refreshRequested", refresh), ("syncRequested", sync)) if on]
        if attrs:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(app_pk(name), "STATUS"),
                UpdateExpression="REMOVE " + ", ".join(attrs),
            )

    def request_operation(self, name: str, token: str, stale_after: int, now: float | None = None,
                          *, over_orphan: bool = False) -> None:
        """Mark that a person asked for an operation (``token``), in one conditional write:
        refused with :class:`ConflictError` while another request is pending (younger than
        ``stale_after`` seconds) or an operation is Running, as Argo CD refuses a sync while
        ``app.operation`` is set. The mark is given back by :meth:`clear_operation_request`.
        ``over_orphan``: the Running operation was found orphaned (its apply died, nothing will
        resume it): only a pending request refuses."""
        now_s = int(time.time() if now is None else now)
        condition = "(attribute_not_exists(opRequested) OR opRequestedAt < :stale)"
        values = {":tok": _s(token), ":now": _n(now_s), ":stale": _n(now_s - stale_after)}
        if not over_orphan:
            condition += " AND (attribute_not_exists(opPhase) OR opPhase <> :running)"
            values[":running"] = _s("Running")
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(app_pk(name), "STATUS"),
                UpdateExpression="SET opRequested = :tok, opRequestedAt = :now",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise ConflictError("another operation is already in progress") from None
            raise

    def clear_operation_request(self, name: str, token: str) -> bool:
        """Give back the mark set by :meth:`request_operation` (only ``token``'s own)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(app_pk(name), "STATUS"),
                UpdateExpression="REMOVE opRequested, opRequestedAt",
                ConditionExpression="opRequested = :tok",
                ExpressionAttributeValues={":tok": _s(token)},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _status_from_item(self, name: str, item: dict[str, Any]) -> AppStatus:
        """The whole status: its document with its lists (from the item, or from S3)."""
        doc = json.loads(item["statusDoc"]["S"]) if "statusDoc" in item else {}
        if "resourcesRef" in item:
            doc["resources"] = self._load_part(name, item["resourcesRef"]["S"])
        elif "resources" in item:
            doc["resources"] = json.loads(item["resources"]["S"])
        result = (doc.get("operationState") or {}).get("syncResult")
        if "resultsRef" in item and isinstance(result, dict):
            result["resources"] = self._load_part(name, item["resultsRef"]["S"])
        _, refresh, sync = _partial_status_key(item)
        return _status_of(doc, refresh, sync, partial=False)

    def _load_part(self, name: str, key: str) -> Any:
        if self.blobs is None:
            raise StateError(f"status of {name!r} was spilled to S3 but no blob store is configured")
        return self.blobs.get_json(key)

    def put_resources(self, name: str, resources: list[ResourceStatus]) -> None:
        """Replace only the resource list of a status (keeps everything else)."""
        status = self.get_status(name) or AppStatus()
        status.resources = resources
        self.put_status(name, status)

    # ------------------------------------------------------------------ operation lease

    def acquire_operation(self, name: str, op_id: str, ttl: int, now: float | None = None) -> bool:
        """Take the app's operation lease for ``ttl`` seconds. True when taken (or
        renewed by the same ``op_id``), False while another unexpired operation holds it."""
        now_s = int(time.time() if now is None else now)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={
                    "pk": _s(app_pk(name)),
                    "sk": _s("OPERATION"),
                    "opId": _s(op_id),
                    "expiresAt": _n(now_s + ttl),
                    "acquiredAt": _n(now_s),
                },
                ConditionExpression="attribute_not_exists(pk) OR expiresAt <= :now OR opId = :op",
                ExpressionAttributeValues={":now": _n(now_s), ":op": _s(op_id)},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_operation(self, name: str, op_id: str) -> bool:
        """Give the lease back; False when ``op_id`` no longer holds it (expired and taken)."""
        try:
            self.client.delete_item(
                TableName=self.table_name,
                Key=self._key(app_pk(name), "OPERATION"),
                ConditionExpression="opId = :op",
                ExpressionAttributeValues={":op": _s(op_id)},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_operation(self, name: str) -> Lease | None:
        """The lease item, expired or not (callers compare ``expires_at`` with now)."""
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(app_pk(name), "OPERATION"), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Lease(app=name, op_id=item["opId"]["S"], expires_at=int(item["expiresAt"]["N"]))

    # ------------------------------------------------------------------ history

    def append_history(self, name: str, entry: HistoryEntry, limit: int = 10) -> HistoryEntry:
        """Record a sync; its id is assigned here (previous max + 1, as Argo CD does)
        and the oldest entries beyond ``limit`` are deleted. Returns the stored entry."""
        for _ in range(5):
            last = self._query_pk(
                app_pk(name), prefix=_HISTORY_PREFIX, forward=False, limit=1, keys_only=True
            )
            next_id = int(last[0]["sk"]["S"].removeprefix(_HISTORY_PREFIX)) + 1 if last else 1
            stored = entry.model_copy(update={"id": next_id})
            try:
                self.client.put_item(
                    TableName=self.table_name,
                    Item={
                        "pk": _s(app_pk(name)),
                        "sk": _s(f"{_HISTORY_PREFIX}{next_id:010d}"),
                        "entry": _s(json.dumps(stored.to_json_dict(), separators=(",", ":"))),
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except ClientError as exc:
                if _code(exc) == "ConditionalCheckFailedException":
                    continue  # a concurrent writer took this id: take the next
                raise
            break
        else:
            raise ConflictError(f"could not record history for {name!r}: too many concurrent writers")
        keys = self._query_pk(app_pk(name), prefix=_HISTORY_PREFIX, keys_only=True)
        excess = len(keys) - max(limit, 0)
        if excess > 0:
            self._batch_delete([self._key(it["pk"]["S"], it["sk"]["S"]) for it in keys[:excess]])
        return stored

    def list_history(self, name: str) -> list[HistoryEntry]:
        """History, oldest first."""
        return [
            HistoryEntry.model_validate(json.loads(it["entry"]["S"]))
            for it in self._query_pk(app_pk(name), prefix=_HISTORY_PREFIX)
        ]

    def get_history(self, name: str, history_id: int) -> HistoryEntry:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(app_pk(name), f"{_HISTORY_PREFIX}{history_id:010d}")
        ).get("Item")
        if not item:
            raise NotFoundError(f"application {name!r} has no history entry {history_id}")
        return HistoryEntry.model_validate(json.loads(item["entry"]["S"]))

    # ------------------------------------------------------------------ repositories

    def put_repository(self, repo: Repository) -> None:
        self._put_meta(f"REPO#{repo.url}", "repo", repo.url, repo.to_json_dict())

    def get_repository(self, url: str) -> Repository:
        return Repository.model_validate(self._get_meta(f"REPO#{url}", f"repository {url!r}"))

    def list_repositories(self) -> list[Repository]:
        return [Repository.model_validate(d) for d in self._list_meta("repo")]

    def delete_repository(self, url: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._key(f"REPO#{url}", "META"))

    # ------------------------------------------------------------------ clusters

    def put_cluster(self, cluster: Cluster) -> None:
        self._put_meta(
            f"CLUSTER#{cluster.name}", "cluster", cluster.name, cluster.to_json_dict(), server=cluster.server
        )

    def get_cluster(self, name: str) -> Cluster:
        return Cluster.model_validate(self._get_meta(f"CLUSTER#{name}", f"cluster {name!r}"))

    def list_clusters(self) -> list[Cluster]:
        return [Cluster.model_validate(d) for d in self._list_meta("cluster")]

    def find_cluster(self, server: str | None = None, name: str | None = None) -> Cluster:
        """Resolve an Application destination (``server`` or ``name``) to a cluster. Argo CD's
        ``https://kubernetes.default.svc`` / ``in-cluster`` (the cluster Argo CD runs in) mean
        the cluster marked ``inCluster``, unless one is registered under that very server/name."""
        if name:
            try:
                return self.get_cluster(name)
            except NotFoundError:
                if name != IN_CLUSTER_NAME:
                    raise
                return self._marked_in_cluster(f"name {name!r}")
        clusters = self.list_clusters()
        for cluster in clusters:
            if cluster.server.rstrip("/") == (server or "").rstrip("/"):
                return cluster
        if (server or "").rstrip("/") == IN_CLUSTER_SERVER:
            return self._marked_in_cluster(f"server {server!r}", clusters)
        raise NotFoundError(f"no cluster registered with server {server!r}")

    def _marked_in_cluster(self, what: str, clusters: list[Cluster] | None = None) -> Cluster:
        for cluster in clusters if clusters is not None else self.list_clusters():
            if cluster.in_cluster:
                return cluster
        raise NotFoundError(
            f"destination {what} means the cluster gitferry runs beside, and no registered cluster is marked "
            "as in-cluster: mark one with PATCH /api/v1/clusters/<name> {\"inCluster\": true} "
            "(gitferry cluster update <name> --in-cluster)")

    def delete_cluster(self, name: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._key(f"CLUSTER#{name}", "META"))

    # ------------------------------------------------------------------ API tokens (metadata only)

    def create_token(self, name: str, meta: dict[str, Any]) -> bool:
        """Record a token's name, role and creation time; False when the name exists."""
        item = {"pk": _s(f"TOKEN#{name}"), "sk": _s("META"), "type": _s("token"), "name": _s(name),
                "doc": _s(json.dumps(meta, separators=(",", ":")))}
        try:
            self.client.put_item(TableName=self.table_name, Item=item,
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get_token(self, name: str) -> dict[str, Any] | None:
        try:
            return self._get_meta(f"TOKEN#{name}", f"token {name!r}")
        except NotFoundError:
            return None

    def list_tokens(self) -> list[dict[str, Any]]:
        return self._list_meta("token")

    def delete_token(self, name: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=self._key(f"TOKEN#{name}", "META"))

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def _key(pk: str, sk: str) -> dict[str, Any]:
        return {"pk": _s(pk), "sk": _s(sk)}

    def _put_meta(self, pk: str, typ: str, name: str, doc: dict[str, Any], **extra: str) -> None:
        item = {
            "pk": _s(pk),
            "sk": _s("META"),
            "type": _s(typ),
            "name": _s(name),
            "doc": _s(json.dumps(doc, separators=(",", ":"))),
            **{k: _s(v) for k, v in extra.items()},
        }
        self.client.put_item(TableName=self.table_name, Item=item)

    def _get_meta(self, pk: str, what: str) -> dict[str, Any]:
        item = self.client.get_item(TableName=self.table_name, Key=self._key(pk, "META")).get("Item")
        if not item:
            raise NotFoundError(f"{what} not found")
        return dict(json.loads(item["doc"]["S"]))

    def _list_meta(self, typ: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            items, cursor = self._query_type(typ, 500, cursor)
            missing = [self._key(it["pk"]["S"], it["sk"]["S"]) for it in items if "doc" not in it]
            items = [it for it in items if "doc" in it] + (self._batch_get(missing) if missing else [])
            out.extend(json.loads(it["doc"]["S"]) for it in items)
            if cursor is None:
                return out

    def _query_type(
        self, typ: str, limit: int, cursor: str | None, names_only: bool = False
    ) -> tuple[list[dict[str, Any]], str | None]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": GSI_BY_TYPE,
            "KeyConditionExpression": "#t = :t",
            "ExpressionAttributeNames": {"#t": "type"},
            "ExpressionAttributeValues": {":t": _s(typ)},
            "Limit": limit,
        }
        if names_only:
            kwargs["ProjectionExpression"] = "pk, sk, #n"
            kwargs["ExpressionAttributeNames"]["#n"] = "name"
        if cursor:
            kwargs["ExclusiveStartKey"] = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        resp = self.client.query(**kwargs)
        lek = resp.get("LastEvaluatedKey")
        next_cursor = base64.urlsafe_b64encode(json.dumps(lek).encode()).decode() if lek else None
        return resp.get("Items", []), next_cursor

    def _query_pk(
        self,
        pk: str,
        prefix: str | None = None,
        forward: bool = True,
        limit: int | None = None,
        keys_only: bool = False,
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk" + (" AND begins_with(sk, :p)" if prefix else ""),
            "ExpressionAttributeValues": {":pk": _s(pk), **({":p": _s(prefix)} if prefix else {})},
            "ScanIndexForward": forward,
            "ConsistentRead": True,
        }
        if keys_only:
            kwargs["ProjectionExpression"] = "pk, sk"
        items: list[dict[str, Any]] = []
        while True:
            if limit is not None:
                kwargs["Limit"] = limit - len(items)
            resp = self.client.query(**kwargs)
            items.extend(resp.get("Items", []))
            lek = resp.get("LastEvaluatedKey")
            if not lek or (limit is not None and len(items) >= limit):
                return items
            kwargs["ExclusiveStartKey"] = lek

    def _batch_get(self, keys: list[dict[str, Any]], projection: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for i in range(0, len(keys), 100):
            request: dict[str, Any] = {"Keys": keys[i : i + 100], "ConsistentRead": True}
            if projection:
                request["ProjectionExpression"] = projection
            pending = {self.table_name: request}
            for attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=pending)
                out.extend(resp.get("Responses", {}).get(self.table_name, []))
                pending = resp.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StateError("DynamoDB kept keys unprocessed (throttled); try again")
        return out

    def _batch_delete(self, keys: list[dict[str, Any]]) -> None:
        for i in range(0, len(keys), 25):
            pending: dict[str, Any] = {
                self.table_name: [{"DeleteRequest": {"Key": k}} for k in keys[i : i + 25]]
            }
            for attempt in range(8):
                resp = self.client.batch_write_item(RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise StateError("DynamoDB kept deletes unprocessed (throttled); try again")
