"""moto, made to answer a SigV4-presigned STS GetCallerIdentity the way AWS STS does.

An EKS bearer token is a presigned ``GET https://sts.<region>.amazonaws.com/?Action=GetCallerIdentity``
(the ``x-k8s-aws-id`` header, naming the cluster, is signed too). The API server's authenticator
calls that URL with the header set to *its* cluster name; STS checks the signature and answers
with the caller's ARN. moto 5.2 gets three things wrong for such a request:

* routing: with no ``Authorization`` header its server cannot tell the service and hands the
  request to S3 (``ListAllMyBuckets``); AWS reads the credential scope from ``X-Amz-Credential``;
* identity: it takes the access key only from ``Authorization`` / ``AWSAccessKeyId`` and answers
  with its default ``user/moto`` whoever signed; AWS uses the key of ``X-Amz-Credential``;
* verification: it checks no signature at all, so a token signed for another cluster (another
  ``x-k8s-aws-id`` value), an expired one or one signed with a wrong secret would pass; STS answers
  403 ``SignatureDoesNotMatch`` / ``InvalidClientTokenId``.

:func:`install` fixes the three, for presigned requests only (those carrying ``X-Amz-Signature``
in the query and no ``Authorization`` header), in this process's moto (the local stack runs
moto's ThreadedMotoServer in-process). The signature is recomputed from the request (SigV4 query
signing: canonical query without the signature, the signed headers' values as received,
``UNSIGNED-PAYLOAD``) with the secret moto issued for the key; only keys moto issued through
``sts:AssumeRole`` are known (the local runner gives every function such credentials for its
execution role, as Lambda does). Everything else moto does is unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from typing import Any
from urllib.parse import parse_qsl, quote

#: STS presigned URLs are valid this long after X-Amz-Date, whatever X-Amz-Expires says
PRESIGNED_VALIDITY = dt.timedelta(minutes=15)

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Patch moto's server routing, caller key and GetCallerIdentity (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _patch_routing()
        _patch_access_key()
        _patch_get_caller_identity()
        _installed = True


def _presigned_credential(query_string: str) -> str | None:
    params = dict(parse_qsl(query_string, keep_blank_values=True))
    if "X-Amz-Signature" not in params:
        return None
    return params.get("X-Amz-Credential")


def _patch_routing() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.infer_service_region_host

    def infer_service_region_host(self: Any, environ: dict[str, Any], path: str) -> str | None:
        if not environ.get("HTTP_AUTHORIZATION"):
            credential = _presigned_credential(environ.get("QUERY_STRING", ""))
            if credential and credential.count("/") == 4:
                # route by the credential scope, exactly as for a header-signed request
                environ = {**environ, "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={credential}, x"}
        return original(self, environ, path)

    DomainDispatcherApplication.infer_service_region_host = infer_service_region_host  # type: ignore[method-assign]


def _patch_access_key() -> None:
    from moto.core.responses import BaseResponse

    original = BaseResponse.get_access_key

    def get_access_key(self: Any) -> str:
        if "Authorization" not in self.headers:
            credential = (self.querystring.get("X-Amz-Credential") or [None])[0]
            if credential and (self.querystring.get("X-Amz-Signature") or [None])[0]:
                return str(credential).split("/")[0]
        return original(self)

    BaseResponse.get_access_key = get_access_key  # type: ignore[method-assign]


class _StsDenied(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _patch_get_caller_identity() -> None:
    from moto.sts.responses import TokenResponse

    original = TokenResponse.get_caller_identity

    def get_caller_identity(self: Any) -> Any:
        if "Authorization" not in self.headers and self.querystring.get("X-Amz-Signature"):
            try:
                _verify(self)
            except _StsDenied as denied:
                return _error(denied)
        return original(self)

    TokenResponse.get_caller_identity = get_caller_identity  # type: ignore[method-assign]


def _error(denied: _StsDenied) -> tuple[str, dict[str, Any]]:
    body = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{denied.code}</Code><Message>{_xml(denied.message)}</Message></Error>"
            "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
    return body, {"status": 403, "Content-Type": "text/xml"}


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _verify(response: Any) -> None:
    """SigV4 query-signature check of a presigned GetCallerIdentity, as STS does it."""
    from urllib.parse import urlsplit

    parts = urlsplit(response.uri)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(pairs)
    credential = params.get("X-Amz-Credential", "")
    scope = credential.split("/")
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or len(scope) != 5:
        raise _StsDenied("IncompleteSignature", "Invalid or missing X-Amz-Algorithm / X-Amz-Credential")
    amz_date = params.get("X-Amz-Date", "")
    try:
        signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise _StsDenied("IncompleteSignature", f"Invalid X-Amz-Date {amz_date!r}") from None
    now = dt.datetime.now(dt.UTC)
    if now > signed_at + PRESIGNED_VALIDITY:
        raise _StsDenied("SignatureDoesNotMatch",
                         f"Signature expired: {amz_date} is now earlier than "
                         f"{(now - PRESIGNED_VALIDITY).strftime('%Y%m%dT%H%M%SZ')}")
    key_id = scope[0]
    role = response.backend.get_assumed_role_from_access_key(key_id)
    if role is None:
        raise _StsDenied("InvalidClientTokenId", "The security token included in the request is invalid.")
    if params.get("X-Amz-Security-Token") != role.session_token:
        raise _StsDenied("InvalidClientTokenId", "The security token included in the request is invalid.")
    signed_headers = params.get("X-Amz-SignedHeaders", "").split(";")
    headers = {k.lower(): str(v) for k, v in response.headers.items()}
    canonical_headers = "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers)
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(pairs) if k != "X-Amz-Signature")
    key = ("AWS4" + role.secret_access_key).encode()
    for part in scope[1:]:
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    given = params.get("X-Amz-Signature", "")
    matches = False
    # the payload hash of a presigned GET: the empty body's (AWS SDKs over http, the Go SDK) or
    # the UNSIGNED-PAYLOAD constant; STS accepts both
    for payload in (hashlib.sha256(b"").hexdigest(), "UNSIGNED-PAYLOAD"):
        canonical = "\n".join([response.method.upper(), parts.path or "/", canonical_query, canonical_headers,
                               ";".join(signed_headers), payload])
        string_to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, "/".join(scope[1:]),
                                    hashlib.sha256(canonical.encode()).hexdigest()])
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        matches = matches or hmac.compare_digest(expected, given)
    if not matches:
        raise _StsDenied("SignatureDoesNotMatch",
                         "The request signature we calculated does not match the signature you provided. "
                         "Check your AWS Secret Access Key and signing method. Consult the service documentation "
                         "for details.")
