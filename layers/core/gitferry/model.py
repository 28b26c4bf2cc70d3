"""Pydantic models of what gitferry stores and shows.

``Application`` is the subset of Argo CD's ``argoproj.io/v1alpha1`` ``Application``
that gitferry implements. Users paste their Argo CD manifests, so field names
and defaults are Argo CD's; anything outside the subset is refused with a
``path: message`` line per bad field (see :meth:`Application.from_manifest`)
instead of being silently ignored, because a silently ignored ``helm:`` block
would deploy something other than what the user asked for.

Status models (``AppStatus`` and friends) mirror Argo CD's API shape with
camelCase JSON aliases so the API and dashboard speak the same language as
``argocd app get -o json``. They ignore unknown keys so stored documents
written by a newer version still load.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from gitferry.errors import InvalidSpecError

__all__ = [
    "API_VERSION",
    "KIND",
    "APP_NAME_MAX",
    "SUPPORTED_SYNC_OPTIONS",
    "Application",
    "AppMetadata",
    "AppSpec",
    "ApplicationSource",
    "SourceEntry",
    "ref_value_file",
    "DirectoryOptions",
    "JsonnetOptions",
    "JsonnetVar",
    "HelmOptions",
    "HelmParameter",
    "KustomizeOptions",
    "KustomizeReplica",
    "KustomizePatch",
    "KustomizeSelector",
    "ApplicationDestination",
    "SyncPolicy",
    "Automated",
    "RetryStrategy",
    "Backoff",
    "IgnoreDifference",
    "Repository",
    "Cluster",
    "EksCluster",
    "IN_CLUSTER_NAME",
    "IN_CLUSTER_SERVER",
    "SyncStatusCode",
    "HealthStatusCode",
    "OperationPhase",
    "ResultCode",
    "SyncStatus",
    "ComparedTo",
    "HealthStatus",
    "ResourceStatus",
    "Condition",
    "OperationInitiator",
    "ResourceResult",
    "SyncOperationResult",
    "OperationState",
    "HistoryEntry",
    "AppStatus",
    "format_validation_error",
    "check_repo_url",
    "check_cluster_name",
]

API_VERSION = "argoproj.io/v1alpha1"
KIND = "Application"
#: an Application name is a DNS-1123 subdomain, as in Argo CD (``example.guestbook``); where a
#: shorter value is needed (the 63-character ``gitferry.dev/app`` label value, a 128-character
#: SQS MessageGroupId) a derived value is used (:func:`gitferry.tracking.label_value`,
#: :func:`gitferry.queues.group_id`) and the full name is kept elsewhere.
APP_NAME_MAX = 253
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: a cluster name is a Secrets Manager name part and a file name: a DNS-1123 subdomain, shorter
CLUSTER_NAME_MAX = 128
MAX_ANNOTATIONS_BYTES = 256 * 1024
#: spec.sources entries one application may have (Argo CD: "more than 2-3 ... is abuse")
MAX_SOURCES = 20

#: syncOptions keys gitferry understands, with the values each accepts.
SUPPORTED_SYNC_OPTIONS: dict[str, frozenset[str]] = {
    "CreateNamespace": frozenset({"true", "false"}),
    "ServerSideApply": frozenset({"true"}),
    "ApplyOutOfSyncOnly": frozenset({"true", "false"}),
    "PruneLast": frozenset({"true", "false"}),
    "PrunePropagationPolicy": frozenset({"foreground", "background", "orphan"}),
    "RespectIgnoreDifferences": frozenset({"true", "false"}),
    "Replace": frozenset({"true", "false"}),
    "Validate": frozenset({"true", "false"}),
    "FailOnSharedResource": frozenset({"true", "false"}),
}

#: syncOptions values Argo CD has and gitferry refuses, with the reason.
_UNSUPPORTED_SYNC_OPTIONS: dict[str, str] = {
    "ServerSideApply=false": "gitferry always applies server-side (field manager gitferry); Argo CD's "
                             "client-side apply with kubectl.kubernetes.io/last-applied-configuration is not implemented",
}

_KUSTOMIZE_UNSUPPORTED = frozenset({
    "version", "forceCommonLabels", "forceCommonAnnotations", "commonAnnotationsEnvsubst",
    "components", "ignoreMissingComponents", "labelWithoutSelector", "labelIncludeTemplates",
    "kubeVersion", "apiVersions",
})

#: what to use instead, for refused Argo CD fields where "not supported" alone leaves a user stuck
_UNSUPPORTED_HINTS: dict[str, str] = {
    "plugin": ("not supported by gitferry (Config Management Plugins run arbitrary code in the repo server): "
               "render the manifests in CI and commit the output (a directory source), or use a Kustomize, "
               "Helm or Jsonnet source"),
    "ref": "not supported by gitferry in spec.source: a ref source is one entry of spec.sources",
}

#: Argo CD fields that exist but gitferry does not implement, by parent path.
#: They get "not supported by gitferry" rather than "unknown field" so users
#: know the field is real but the feature is missing here.
_ARGO_UNSUPPORTED: dict[str, frozenset[str]] = {
    "": frozenset({"operation"}),
    "spec": frozenset({"info", "sourceHydrator"}),
    "spec.source": frozenset({"plugin", "ref", "name"}),
    "spec.sources": frozenset({"plugin", "name"}),
    "spec.source.helm": frozenset({"fileParameters", "passCredentials", "version"}),
    "spec.sources.helm": frozenset({"fileParameters", "passCredentials", "version"}),
    "spec.source.kustomize": _KUSTOMIZE_UNSUPPORTED,
    "spec.sources.kustomize": _KUSTOMIZE_UNSUPPORTED,
    "spec.syncPolicy": frozenset({"managedNamespaceMetadata"}),
    "spec.syncPolicy.automated": frozenset({"enabled"}),
}

#: metadata the API server fills in; dropped on input so ``kubectl get -o yaml``
#: output can be registered as is.
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


# --------------------------------------------------------------------------- spec


class _Spec(BaseModel):
    """Base of Application spec parts: Argo CD names only, strict types,
    unknown keys refused (a typo must not silently change a deployment)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        strict=True,
        frozen=False,
    )


class JsonnetVar(_Spec):
    """``spec.source.directory.jsonnet.extVars[]`` / ``tlas[]``: a string, or Jsonnet code
    when ``code`` is true (``--ext-code`` / ``--tla-code``)."""

    name: str = Field(min_length=1)
    value: str = ""
    code: bool = False


class JsonnetOptions(_Spec):
    """``spec.source.directory.jsonnet``: how the ``*.jsonnet`` files of ``path`` are
    evaluated. ``libs`` are library directories (relative to the repository root, as in
    Argo CD) searched by ``import`` after the importing file's own directory."""

    ext_vars: list[JsonnetVar] = Field(default_factory=list)
    tlas: list[JsonnetVar] = Field(default_factory=list)
    libs: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> JsonnetOptions:
        for field_name, items in (("extVars", self.ext_vars), ("tlas", self.tlas)):
            names = [v.name for v in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{field_name}: duplicate name {', '.join(map(repr, dupes))}")
        return self


class DirectoryOptions(_Spec):
    """``spec.source.directory``: which files of ``path`` become manifests."""

    recurse: bool = False
    include: str | None = None
    exclude: str | None = None
    jsonnet: JsonnetOptions | None = None


class HelmParameter(_Spec):
    """``spec.source.helm.parameters[]``: one ``--set`` (``--set-string`` when ``forceString``)."""

    name: str = Field(min_length=1)
    value: str = ""
    force_string: bool = False


#: ``$values/path/values.yaml``: a value file of the spec.sources entry with ``ref: values``
_REF_VALUE_FILE = re.compile(r"^\$([A-Za-z0-9_-]+)/(.+)$")
_REF_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def ref_value_file(value_file: str) -> tuple[str, str] | None:
    """(ref name, path in that source's repository) of a ``$ref/path`` value file, else None."""
    match = _REF_VALUE_FILE.match(value_file)
    return (match.group(1), match.group(2)) if match else None


class HelmOptions(_Spec):
    """``spec.source.helm``: how ``helm template`` renders the chart at ``path``.

    ``fileParameters``, ``passCredentials`` and ``version`` are refused (see
    ``_ARGO_UNSUPPORTED``): gitferry renders charts from the Git repo or from a Helm
    repository (``spec.source.chart``), with the one helm binary of its tools layer."""

    value_files: list[str] = Field(default_factory=list)
    values: str | None = None
    values_object: dict[str, Any] | None = None
    parameters: list[HelmParameter] = Field(default_factory=list)
    release_name: str | None = None
    skip_crds: bool = False
    skip_tests: bool = False
    skip_schema_validation: bool = False
    namespace: str | None = None
    ignore_missing_value_files: bool = False
    kube_version: str | None = None
    api_versions: list[str] = Field(default_factory=list)

    @field_validator("value_files")
    @classmethod
    def _repo_relative(cls, v: list[str]) -> list[str]:
        # Caught at registration so a user learns at once; render checks again after
        # resolving symlinks, which only the checked-out tree can tell.
        # A ``$<ref>/<path>`` file is another source's (spec.sources); AppSpec checks the ref exists.
        bad = [f for f in v if "://" in f or (f.startswith("$") and not _REF_VALUE_FILE.match(f))]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: only files inside the application's Git repository or "
                "$<ref>/<path> files of a ref source in spec.sources are supported (remote value files are "
                "not supported by gitferry)"
            )
        return v

    @field_validator("values")
    @classmethod
    def _values_mapping(cls, v: str | None) -> str | None:
        # Refuse at registration what helm would refuse at every render.
        if v is None or not v.strip():
            return v
        from gitferry import loader

        try:
            parsed = loader.load_one(v, limits=loader.Limits(max_bytes=512 * 1024, max_nodes=100_000,
                                                             max_aliases=100, max_depth=64))
        except loader.LoadError as exc:
            raise ValueError(f"{'line ' + str(exc.line) + ': ' if exc.line else ''}{exc.message}") from None
        if parsed is not None and not isinstance(parsed, dict):
            raise ValueError(f"must be a YAML mapping, got {type(parsed).__name__}")
        return v


class KustomizeReplica(_Spec):
    """``spec.source.kustomize.replicas[]``: the replica count of a named workload."""

    name: str = Field(min_length=1)
    count: int | str

    @field_validator("count")
    @classmethod
    def _non_negative(cls, v: int | str) -> int | str:
        # Argo CD's type is an int-or-string; the string must still be a number.
        n = int(v) if isinstance(v, int) or v.strip().isdigit() else -1
        if n < 0:
            raise ValueError("must be a non-negative integer")
        return v


class KustomizeSelector(_Spec):
    """``spec.source.kustomize.patches[].target``: which objects a patch applies to."""

    group: str | None = None
    version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    label_selector: str | None = None
    annotation_selector: str | None = None


class KustomizePatch(_Spec):
    """``spec.source.kustomize.patches[]``: inline ``patch`` or a ``path`` (relative to the
    application path, inside the repository)."""

    target: KustomizeSelector | None = None
    patch: str | None = None
    path: str | None = None
    options: dict[str, bool] | None = None

    @model_validator(mode="after")
    def _one_of_patch_or_path(self) -> KustomizePatch:
        if bool(self.patch) == bool(self.path):
            raise ValueError("exactly one of patch or path")
        return self


class KustomizeOptions(_Spec):
    """``spec.source.kustomize``: what the Application adds on top of the kustomization at
    ``path`` (applied through an overlay, never by editing the checked-out tree)."""

    name_prefix: str | None = None
    name_suffix: str | None = None
    images: list[str] = Field(default_factory=list)
    replicas: list[KustomizeReplica] = Field(default_factory=list)
    common_labels: dict[str, str] = Field(default_factory=dict)
    common_annotations: dict[str, str] = Field(default_factory=dict)
    namespace: str | None = None
    patches: list[KustomizePatch] = Field(default_factory=list)

    @field_validator("images")
    @classmethod
    def _image_syntax(cls, v: list[str]) -> list[str]:
        bad = [i for i in v if not i or any(c.isspace() for c in i) or i.startswith(("=", ":", "@"))]
        if bad:
            raise ValueError(
                f"invalid image(s) {', '.join(map(repr, bad))}: use name=newName:tag, name:tag or name@digest"
            )
        return v


#: the longest URL / name gitferry stores (a DynamoDB key part, a Secrets Manager name part)
MAX_URL_LENGTH = 2048


_SCP_URL = re.compile(r"^([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+):(?!//)(\S+)$")


def check_repo_url(url: str) -> str:
    """``url`` when it is an ``https://`` / ``http://`` or ssh (``ssh://[user@]host[:port]/path``,
    ``user@host:path``) repository URL; ValueError otherwise.

    Local paths and ``file://`` would let an Application read the render function's own
    filesystem (the Git cache holds other apps' checkouts), and ``git://`` is unauthenticated and
    unencrypted. An ssh repository is read with the private key and known hosts registered for it
    (``POST /api/v1/repositories``); the user name is part of an ssh URL, a password never."""
    from urllib.parse import urlsplit

    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 for c in text):
        raise ValueError("must not contain spaces or control characters")
    if _SCP_URL.match(text):
        return text
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http", "ssh"):
        kind = f"{scheme}://" if scheme and "://" in text else "a local path"
        raise ValueError(f"{kind} is not supported by gitferry: use an https:// (or http://) or ssh repository URL")
    if not parts.hostname:
        raise ValueError(f"must name a host ({scheme}://host/path)")
    if scheme == "ssh":
        if parts.password is not None:
            raise ValueError("must not contain a password; register an ssh private key with the repository")
        return text
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValueError("must not contain credentials; register them with the repository instead")
    return text


class ApplicationSource(_Spec):
    """``spec.source``: a directory of manifests, a Kustomize kustomization or a Helm chart
    in a Git repository (``path``), or a chart from a Helm chart repository (``chart``).

    For a Git path the type is detected from the files at ``path`` (as Argo CD does); a
    ``directory`` / ``helm`` / ``kustomize`` block forces the type, so at most one may be set.
    With ``chart``, ``repoURL`` is the Helm repository, ``targetRevision`` the chart version
    or a semver constraint (``1.2.*``, ``^1.2``, ``>=1.0.0 <2.0.0``) and only ``helm`` options
    apply: a path, a directory or a kustomize block would be silently meaningless."""

    repo_url: str = Field(alias="repoURL", min_length=1)
    target_revision: str = "HEAD"
    path: str = "."
    chart: str | None = None
    directory: DirectoryOptions | None = None
    helm: HelmOptions | None = None
    kustomize: KustomizeOptions | None = None

    @model_validator(mode="after")
    def _one_source_type(self) -> ApplicationSource:
        # Argo CD refuses this too ("multiple application sources defined"): which one
        # would win is a guess that deploys something the user may not expect.
        given = [n for n in ("directory", "helm", "kustomize") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"only one of directory, helm, kustomize may be set (got {', '.join(given)})")
        return self

    @model_validator(mode="after")
    def _chart_source(self) -> ApplicationSource:
        if self.chart is None:
            return self
        problems: list[str] = []
        if "path" in self.model_fields_set:
            problems.append("set exactly one of path (a directory in a Git repository) and chart "
                            "(a chart in a Helm repository), not both")
        extra = [n for n in ("directory", "kustomize") if getattr(self, n) is not None]
        if extra:
            problems.append(f"{' and '.join(extra)} cannot be used with chart (a Helm chart takes only helm options)")
        if "target_revision" not in self.model_fields_set:
            problems.append("targetRevision is required with chart: a chart version or a semver constraint "
                            "(1.2.3, 1.2.*, ^1.2, >=1.0.0 <2.0.0)")
        else:
            from gitferry import oci
            from gitferry.helmrepo import parse_constraint

            try:
                parse_constraint(self.target_revision)
            except ValueError as exc:
                if not (oci.is_oci_source(self.repo_url, self.chart) and oci.check_revision(self.target_revision)):
                    problems.append(f"targetRevision: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_serializer(mode="wrap")
    def _no_path_with_chart(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A chart source has no path; writing the default "." back would make the stored
        # document fail the "path or chart" rule when it is read again.
        data: dict[str, Any] = handler(self)
        if self.chart is not None or not self.renders:
            data.pop("path", None)
        return data

    @property
    def renders(self) -> bool:
        """False for a ``ref`` source without a path: it only provides value files (Argo CD)."""
        return not (getattr(self, "ref", None) and "path" not in self.model_fields_set)

    @field_validator("chart")
    @classmethod
    def _chart_name(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip() or "/" in v or v.strip() in (".", "..") or any(c.isspace() for c in v):
            raise ValueError("must be a chart name in the Helm repository (no slashes or spaces)")
        return v

    @field_validator("repo_url")
    @classmethod
    def _no_credentials_in_url(cls, v: str) -> str:
        from gitferry import oci

        if v.strip().startswith("oci://") or oci.looks_like_registry(v):
            oci.check_oci_url(v)  # a scheme-less registry needs chart: checked by _oci_source
            return v
        check_repo_url(v)
        return v

    @model_validator(mode="after")
    def _oci_source(self) -> ApplicationSource:
        """Argo CD's OCI forms: ``chart`` with a scheme-less or ``oci://`` registry, or an
        ``oci://`` artifact with ``path`` (docs/oci.md)."""
        from gitferry import oci

        url = self.repo_url.strip()
        if not url.startswith("oci://") and not oci.looks_like_registry(url):
            return self
        problems: list[str] = []
        if not url.startswith("oci://") and self.chart is None:
            problems.append("repoURL without a scheme is an OCI registry only with chart (an OCI Helm chart); "
                            "write oci://... for an OCI artifact or https://... for Git")
        if self.chart is None:
            if "target_revision" not in self.model_fields_set:
                problems.append("targetRevision is required with an oci:// repoURL: a tag, a semver constraint "
                                "over the tags (1.2.*, ^1.2) or a digest (sha256:...)")
            elif not oci.check_revision(self.target_revision):
                problems.append(f"targetRevision {self.target_revision!r} is not a tag, digest or semver constraint")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @field_validator("target_revision")
    @classmethod
    def _revision_not_blank(cls, v: str) -> str:
        return v.strip() or "HEAD"


class SourceEntry(ApplicationSource):
    """One ``spec.sources[]`` entry: an ApplicationSource that may carry ``ref``, the name by which
    other entries' ``helm.valueFiles`` use its repository (``$<ref>/<path>``, relative to the
    repository root). With a ``path`` it is also rendered; without, it only provides files."""

    ref: str | None = None

    @field_validator("ref")
    @classmethod
    def _ref_name(cls, v: str | None) -> str | None:
        if v is not None and not _REF_NAME.match(v):
            raise ValueError("must be letters, digits, '-' or '_' (at most 63), used as $<ref>/ in valueFiles")
        return v

    @model_validator(mode="after")
    def _ref_not_chart(self) -> SourceEntry:
        if self.ref is not None and self.chart is not None:
            raise ValueError("a source with ref cannot include chart: value files come from a Git repository")
        return self


class ApplicationDestination(_Spec):
    """``spec.destination``: a registered cluster (by API server URL or by name)."""

    server: str | None = None
    name: str | None = None
    namespace: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> ApplicationDestination:
        if bool(self.server) == bool(self.name):
            raise ValueError("exactly one of server or name")
        return self


class Automated(_Spec):
    """``spec.syncPolicy.automated``: present means gitferry syncs on its own."""

    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


def parse_duration(text: str) -> float:
    """Argo CD / Go durations as used in retry backoff: ``5s``, ``3m``, ``1h``, ``1m30s``."""
    parts = _DURATION.findall(text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"invalid duration {text!r}: use e.g. 5s, 3m, 1h30m")
    return sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)


class Backoff(_Spec):
    """``spec.syncPolicy.retry.backoff`` (Argo CD duration strings like ``5s``, ``3m``)."""

    duration: str = "5s"
    factor: int = Field(default=2, ge=1)
    max_duration: str = "3m"

    @field_validator("duration", "max_duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class RetryStrategy(_Spec):
    """``spec.syncPolicy.retry``: ``limit`` -1 means unlimited."""

    limit: int = Field(default=0, ge=-1)
    backoff: Backoff = Field(default_factory=Backoff)


class SyncPolicy(_Spec):
    """``spec.syncPolicy``."""

    automated: Automated | None = None
    sync_options: list[str] = Field(default_factory=list)
    retry: RetryStrategy | None = None

    @field_validator("sync_options")
    @classmethod
    def _known_options(cls, v: list[str]) -> list[str]:
        refused = [f"{opt} is not supported by gitferry: {_UNSUPPORTED_SYNC_OPTIONS[opt]}"
                   for opt in v if opt in _UNSUPPORTED_SYNC_OPTIONS]
        if refused:
            raise ValueError("; ".join(refused))
        bad: list[str] = []
        for opt in v:
            key, sep, value = opt.partition("=")
            allowed = SUPPORTED_SYNC_OPTIONS.get(key)
            if not sep or allowed is None or value not in allowed:
                bad.append(opt)
        if bad:
            raise ValueError(
                f"unsupported sync option(s) {', '.join(map(repr, bad))}; supported: "
                + ", ".join(f"{k}={'|'.join(sorted(vals))}" for k, vals in SUPPORTED_SYNC_OPTIONS.items())
            )
        return v


def _jq_expression(v: str) -> str:
    """Compiled with libjq at registration: an expression that would fail every diff is refused now."""
    from gitferry import jqpath

    jqpath.check_expression(v)
    return v


class IgnoreDifference(_Spec):
    """``spec.ignoreDifferences[]``: fields of matching objects never reported as drift."""

    group: str = ""
    kind: str
    name: str | None = None
    namespace: str | None = None
    json_pointers: list[str] = Field(default_factory=list)
    jq_path_expressions: list[Annotated[str, AfterValidator(_jq_expression)]] = Field(default_factory=list)
    managed_fields_managers: list[str] = Field(default_factory=list)

    @field_validator("json_pointers")
    @classmethod
    def _pointers(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not p.startswith("/")]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: a JSON pointer starts with '/' (RFC 6901)")
        return v


class AppSpec(_Spec):
    """``spec`` of an Application. ``project`` must be ``default``: gitferry has no
    AppProjects, so any other project's restrictions would be silently ignored."""

    project: str = "default"

    @field_validator("project")
    @classmethod
    def _default_project(cls, v: str) -> str:
        if v != "default":
            shown = repr(v) if len(v) <= 64 else f"{v[:64]!r}... ({len(v)} characters)"
            raise ValueError(f"project {shown} is not supported by gitferry (AppProjects): use 'default'")
        return v
    source: ApplicationSource | None = None
    sources: list[SourceEntry] | None = None
    destination: ApplicationDestination
    sync_policy: SyncPolicy | None = None
    ignore_differences: list[IgnoreDifference] = Field(default_factory=list)
    revision_history_limit: int = Field(default=10, ge=0)

    @model_validator(mode="after")
    def _source_or_sources(self) -> AppSpec:
        # Argo CD ignores spec.source when spec.sources is set; a manifest with both is a mistake
        # waiting to deploy the wrong thing, so gitferry refuses it.
        if self.source is not None and self.sources is not None:
            raise ValueError("set spec.source or spec.sources, not both (Argo CD would silently ignore spec.source)")
        if self.source is None and self.sources is None:
            raise ValueError("one of source or sources is required")
        problems: list[str] = []
        if self.sources is not None:
            if not self.sources:
                problems.append("sources: at least one source")
            if len(self.sources) > MAX_SOURCES:
                problems.append(f"sources: at most {MAX_SOURCES} sources")
            refs = [s.ref for s in self.sources if s.ref]
            dupes = sorted({r for r in refs if refs.count(r) > 1})
            if dupes:
                problems.append(f"sources: ref {', '.join(map(repr, dupes))} is used by more than one source")
            if not any(s.renders for s in self.sources):
                problems.append("sources: every source is a ref without a path: nothing would be rendered")
        for where, src in self.all_sources_with_paths():
            for i, vf in enumerate(src.helm.value_files if src.helm else []):
                ref = ref_value_file(vf)
                if ref is None:
                    continue
                if self.sources is None:
                    problems.append(f"{where}.helm.valueFiles[{i}]: {vf!r}: $ref value files need spec.sources "
                                    "with a source carrying that ref")
                elif ref[0] not in {s.ref for s in self.sources if s.ref}:
                    problems.append(f"{where}.helm.valueFiles[{i}]: no source in spec.sources has ref {ref[0]!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def all_sources_with_paths(self) -> list[tuple[str, ApplicationSource]]:
        """(field path, source) of every source, in order: ``spec.source`` or ``spec.sources[i]``."""
        if self.sources is not None:
            return [(f"spec.sources[{i}]", s) for i, s in enumerate(self.sources)]
        return [("spec.source", self.source)] if self.source is not None else []

    @property
    def all_sources(self) -> list[ApplicationSource]:
        """The sources to resolve, in order (one for ``spec.source``)."""
        return [s for _, s in self.all_sources_with_paths()]

    @property
    def multi_source(self) -> bool:
        return self.sources is not None


class AppMetadata(_Spec):
    """``metadata`` of an Application. The name becomes a label value and a
    DynamoDB key part, hence the DNS-1123 label rule."""

    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)

    @field_validator("finalizers")
    @classmethod
    def _known_finalizers(cls, v: list[str]) -> list[str]:
        # The resources finalizer (cascading delete, deletion.py), foreground or background.
        known = ("resources-finalizer.argocd.argoproj.io", "resources-finalizer.argocd.argoproj.io/foreground",
                 "resources-finalizer.argocd.argoproj.io/background")
        bad = [f for f in v if f not in known]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: not supported by gitferry (supported: {', '.join(known)})")
        return v

    @field_validator("annotations")
    @classmethod
    def _annotations_size(cls, v: dict[str, str]) -> dict[str, str]:
        # The API server's own bound (apimachinery TotalAnnotationSizeLimitB).
        total = sum(len(k) + len(val) for k, val in v.items())
        if total > MAX_ANNOTATIONS_BYTES:
            raise ValueError(f"Too long: must have at most {MAX_ANNOTATIONS_BYTES} bytes (has {total})")
        return v

    @field_validator("name")
    @classmethod
    def _dns_subdomain(cls, v: str) -> str:
        if len(v) > APP_NAME_MAX:
            raise ValueError(f"must be at most {APP_NAME_MAX} characters (it is {len(v)})")
        if not _DNS_SUBDOMAIN.match(v):
            # the API server's wording for a DNS-1123 subdomain
            raise ValueError(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character"
            )
        return v


class Application(_Spec):
    """An ``argoproj.io/v1alpha1`` ``Application`` within gitferry's supported subset."""

    api_version: Literal["argoproj.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Application"] = KIND
    metadata: AppMetadata
    spec: AppSpec

    # -- parsing -------------------------------------------------------------

    @classmethod
    def from_manifest(cls, doc: Any) -> Application:
        """Parse a manifest (dict from YAML/JSON). Raises :class:`InvalidSpecError`
        listing every bad field, so one round trip tells the user everything."""
        if not isinstance(doc, dict):
            raise InvalidSpecError([f"(root): must be a mapping, got {type(doc).__name__}"])
        doc = dict(doc)
        doc.pop("status", None)  # output of a controller, never input
        meta = doc.get("metadata")
        if isinstance(meta, dict):
            doc["metadata"] = {k: v for k, v in meta.items() if k not in _SERVER_METADATA}
        try:
            return cls.model_validate(doc, by_alias=True, by_name=False)
        except ValidationError as exc:
            raise InvalidSpecError(format_validation_error(exc)) from None

    def to_manifest(self) -> dict[str, Any]:
        """The manifest as a user would write it (Argo CD names, no nulls)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    # -- conveniences the pipeline keeps asking for --------------------------

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def automated(self) -> Automated | None:
        """The automated policy, or None for a manual app."""
        return self.spec.sync_policy.automated if self.spec.sync_policy else None

    def sync_option(self, key: str) -> str | None:
        """Value of ``syncOptions`` entry ``key`` (e.g. ``CreateNamespace``), or None."""
        if not self.spec.sync_policy:
            return None
        for opt in self.spec.sync_policy.sync_options:
            k, _, v = opt.partition("=")
            if k == key:
                return v
        return None

    def has_sync_option(self, key: str) -> bool:
        """True when ``key=true`` is set."""
        return self.sync_option(key) == "true"


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


def format_validation_error(exc: ValidationError) -> list[str]:
    """Reshape pydantic's error list into ``path: message`` lines (Argo CD names)."""
    lines: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        path = _loc_path(loc)
        typ = err["type"]
        msg = str(err["msg"])
        if typ == "missing":
            msg = "field required"
        elif typ == "extra_forbidden":
            parent = _loc_path(tuple(p for p in loc[:-1] if not isinstance(p, int)))
            parent = "" if parent == "(root)" else parent
            if loc and loc[-1] in _ARGO_UNSUPPORTED.get(parent, frozenset()):
                msg = _UNSUPPORTED_HINTS.get(str(loc[-1]), "not supported by gitferry")
            else:
                msg = "unknown field"
        elif typ in ("value_error", "assertion_error"):
            msg = msg.split(", ", 1)[1] if ", " in msg else msg
        else:
            msg = msg[:1].lower() + msg[1:]
        lines.append(f"{path}: {msg}")
    return lines


# --------------------------------------------------------------------------- registry


class _Api(BaseModel):
    """Base of stored/API models: camelCase JSON, Python names accepted too,
    unknown keys ignored so newer stored documents still load."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-ready dict with camelCase keys and no nulls (what we store and serve)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Repository(_Api):
    """A registered Git (https or ssh) repository, Helm chart repository or OCI registry. The credential itself lives in Secrets
    Manager; the model only says whether there is one (and the username,
    which is not secret), so it can be returned by the API as is."""

    url: str
    #: ``oci`` / ``helm``: an OCI registry (``oci://host[/prefix]``) or a Helm repository whose
    #: credentials apply to charts, artifacts and chart dependencies under that URL (docs/oci.md)
    type: Literal["git", "helm", "oci"] = "git"
    name: str | None = None
    username: str | None = None
    has_credentials: bool = False
    #: an OCI registry without TLS (the local stack's): spoken to over http://, helm --plain-http
    plain_http: bool = False
    #: ECR registry (account) id: credentials from ecr:GetAuthorizationToken with the function's role
    ecr_registry_id: str | None = None


#: Argo CD's destination for the cluster it runs in (server and name)
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"


class EksCluster(_Api):
    """``Cluster.eks``: an EKS cluster reached with a token made from the functions' IAM role
    (or ``role_arn``, assumed first); no credential is stored (see gitferry.eks)."""

    cluster: str  # EKS cluster name (an ARN given at registration is split into name + region)
    region: str
    role_arn: str | None = None
    arn: str | None = None  # from DescribeCluster


class Cluster(_Api):
    """A registered destination cluster; its kubeconfig lives in Secrets Manager, unless it is
    an EKS cluster (``eks``), which has no stored credential at all. The name is part of a
    Secrets Manager name and of file names, hence a DNS-1123 subdomain (no ``/``, ``..``,
    upper case or spaces). ``context``: the kubeconfig context used (None = its current one).
    ``in_cluster``: the cluster Argo CD's ``https://kubernetes.default.svc`` / ``in-cluster``
    destinations mean (at most one is marked)."""

    name: str
    server: str
    namespace: str = "default"
    # gitVersion from the cluster's /version when it was registered (Helm's .Capabilities.KubeVersion).
    server_version: str | None = None
    # Apps annotated gitferry.dev/helm-lookup: "true" may render Helm lookup against this cluster,
    # read-only (gitferry.lookup_proxy); off by default, as Argo CD renders offline.
    allow_helm_lookup: bool = False
    context: str | None = None
    eks: EksCluster | None = None
    in_cluster: bool = False

    @property
    def auth(self) -> str:
        return "eks" if self.eks is not None else "kubeconfig"

    @field_validator("name")
    @classmethod
    def _dns_subdomain(cls, v: str) -> str:
        return check_cluster_name(v)


def check_cluster_name(name: str) -> str:
    """``name`` when it is a valid cluster name; ValueError saying why otherwise."""
    if len(name) > CLUSTER_NAME_MAX:
        raise ValueError(f"must be at most {CLUSTER_NAME_MAX} characters (it is {len(name)})")
    if not _DNS_SUBDOMAIN.match(name):
        raise ValueError("must be a DNS-1123 subdomain: lower case alphanumeric characters, '-' or '.', "
                         "starting and ending with an alphanumeric character (no '/', '..' or spaces)")
    return name


# --------------------------------------------------------------------------- status

SyncStatusCode = Literal["Synced", "OutOfSync", "Unknown"]
HealthStatusCode = Literal["Healthy", "Progressing", "Suspended", "Degraded", "Missing", "Unknown"]
OperationPhase = Literal["Running", "Terminating", "Failed", "Error", "Succeeded"]
ResultCode = Literal["Synced", "SyncFailed", "Pruned", "PruneSkipped"]


class ComparedTo(_Api):
    """What the last comparison used (source + destination), like Argo CD."""

    source: ApplicationSource | None = None
    sources: list[SourceEntry] | None = None
    destination: ApplicationDestination | None = None


class SyncStatus(_Api):
    status: SyncStatusCode = "Unknown"
    #: a multi-source app's revisions joined by "," (gitferry's pinned identity; Argo CD leaves it empty)
    revision: str | None = None
    #: multi-source apps: each source's revision, in spec.sources order (Argo CD's field)
    revisions: list[str] | None = None
    compared_to: ComparedTo | None = None
    #: the stored rendered manifests this comparison used (what GET .../diff compares again)
    manifests: str | None = None


class HealthStatus(_Api):
    status: HealthStatusCode = "Unknown"
    message: str | None = None


class ResourceStatus(_Api):
    """One managed object in the app's resource list."""

    group: str = ""
    version: str = ""
    kind: str
    namespace: str = ""
    name: str
    status: SyncStatusCode | None = None
    health: HealthStatus | None = None
    requires_pruning: bool = False
    hook: bool = False
    sync_wave: int = 0


class Condition(_Api):
    """An app condition (InvalidSpecError, ComparisonError, SyncError ...)."""

    type: str
    message: str
    last_transition_time: datetime | None = None


class OperationInitiator(_Api):
    """Who asked for an operation: a user (``username``) or the automated policy."""

    username: str | None = None
    automated: bool = False


class ResourceResult(_Api):
    """Outcome of one object in a sync operation."""

    group: str = ""
    version: str = ""
    kind: str
    namespace: str = ""
    name: str
    status: ResultCode | None = None
    message: str | None = None
    hook_type: str | None = None
    hook_phase: str | None = None
    sync_phase: str | None = None


class SyncOperationResult(_Api):
    revision: str | None = None
    revisions: list[str] | None = None
    resources: list[ResourceResult] = Field(default_factory=list)
    source: ApplicationSource | None = None
    sources: list[SourceEntry] | None = None


class OperationState(_Api):
    """State of the current or last sync operation."""

    operation: dict[str, Any] | None = None
    phase: OperationPhase
    message: str | None = None
    sync_result: SyncOperationResult | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    retry_count: int = 0
    initiated_by: OperationInitiator | None = None


class HistoryEntry(_Api):
    """One recorded sync (what rollback re-applies)."""

    id: int
    revision: str
    deployed_at: datetime | None = None
    deploy_started_at: datetime | None = None
    initiated_by: OperationInitiator | None = None
    source: ApplicationSource | None = None
    revisions: list[str] | None = None
    sources: list[SourceEntry] | None = None


class AppStatus(_Api):
    """Observed state of an application, as the API and dashboard show it."""

    sync: SyncStatus = Field(default_factory=SyncStatus)
    health: HealthStatus = Field(default_factory=HealthStatus)
    resources: list[ResourceStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)
    operation_state: OperationState | None = None
    history: list[HistoryEntry] = Field(default_factory=list)
    reconciled_at: datetime | None = None
    observed_at: datetime | None = None
    next_check_at: datetime | None = None
    refresh_requested: bool = False
    sync_requested: bool = False
    # Set by StateStore when the status was read without its (possibly S3-spilled) lists, so
    # writing it back keeps the stored lists instead of erasing them (see StateStore.put_status).
    _partial_lists: bool = PrivateAttr(default=False)
