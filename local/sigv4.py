"""What API Gateway does for a route with ``AWS_IAM`` authorization, as far as it can be done
locally: check the request's SigV4 signature against the credentials moto issued.

The secret of an access key is looked up in moto's in-process IAM backend (keys from
``iam.create_access_key``) or STS backend (temporary credentials from ``sts.assume_role``, whose
session token must then match ``X-Amz-Security-Token``); the signature is recomputed with
botocore's own ``SigV4Auth`` over the method, path, query, the signed headers and the body, and
compared in constant time. The scope must be ``<date>/<stack region>/execute-api/aws4_request``
and ``X-Amz-Date`` within 5 minutes of now. The answer is what API Gateway puts in
``requestContext.identity`` (accessKey, accountId, caller, user, userArn).

Limits, said plainly: IAM *authorization* is not evaluated (moto evaluates no execute-api
policies: any valid signature of a known key passes, where AWS would also check that the
principal's policies allow ``execute-api:Invoke`` on the method); the lookup needs moto running
in this process (the local stack's ``MotoServer``); presigned query-string SigV4 is refused;
the 403 messages are API Gateway's wording for the common cases.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

MAX_SKEW = dt.timedelta(minutes=5)
_AUTH = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$")

MISSING = "Missing Authentication Token"
BAD_TOKEN = "The security token included in the request is invalid."
MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS "
            "Secret Access Key and signing method. Consult the service documentation for details.")


def error_type(message: str) -> str:
    """API Gateway's ``x-amzn-ErrorType`` for a refusal."""
    return {MISSING: "MissingAuthenticationTokenException", BAD_TOKEN: "UnrecognizedClientException",
            MISMATCH: "InvalidSignatureException"}.get(message, "IncompleteSignatureException")


class SigV4Refused(Exception):
    """The 403 API Gateway would answer, with its message."""


@dataclass(frozen=True)
class Identity:
    access_key: str
    account_id: str
    caller: str
    user_arn: str

    def request_context(self) -> dict[str, Any]:
        return {"accessKey": self.access_key, "accountId": self.account_id, "caller": self.caller,
                "user": self.caller, "userArn": self.user_arn}


@dataclass(frozen=True)
class _Key:
    secret: str
    session_token: str | None
    identity: Identity


def _lookup(access_key_id: str, account_id: str) -> _Key | None:
    """The secret moto issued for ``access_key_id``, and who it belongs to."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    for partition in ("aws",):
        iam = iam_backends[account_id][partition]
        for user in iam.users.values():
            for key in user.access_keys:
                if key.access_key_id == access_key_id and key.status == "Active":
                    return _Key(key.secret_access_key, None,
                                Identity(access_key_id, account_id, user.id, user.arn))
        role = sts_backends[account_id][partition].get_assumed_role_from_access_key(access_key_id)
        if role is not None and role.expiration > dt.datetime.now(dt.UTC).replace(tzinfo=None):
            return _Key(role.secret_access_key, role.session_token,
                        Identity(access_key_id, account_id, role.user_id, role.arn))
    return None


def verify(method: str, url: str, headers: list[tuple[str, str]], body: bytes, *, region: str,
           account_id: str, now: dt.datetime | None = None) -> Identity:
    """The caller of a SigV4-signed request, or SigV4Refused with API Gateway's message."""
    lower = {k.lower(): v for k, v in headers}
    match = _AUTH.match((lower.get("authorization") or "").strip())
    if match is None:
        raise SigV4Refused(MISSING)
    credential, signed, signature = match.groups()
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SigV4Refused(f"Authorization header requires 'Credential' parameter. Authorization={credential}")
    access_key_id, day, scope_region, service, _ = parts
    if service != "execute-api" or scope_region != region:
        raise SigV4Refused(f"Credential should be scoped to a valid region and service 'execute-api' "
                           f"in region '{region}', not '{scope_region}/{service}'.")
    amz_date = lower.get("x-amz-date", "")
    try:
        when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise SigV4Refused("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.") from None
    current = now or dt.datetime.now(dt.UTC)
    if abs(current - when) > MAX_SKEW or not amz_date.startswith(day):
        raise SigV4Refused(f"Signature expired: {amz_date} is now earlier than "
                           f"{(current - MAX_SKEW):%Y%m%dT%H%M%SZ}")
    key = _lookup(access_key_id, account_id)
    if key is None:
        raise SigV4Refused(BAD_TOKEN)
    if key.session_token is not None and not hmac.compare_digest(
            lower.get("x-amz-security-token", "").encode(), key.session_token.encode()):
        raise SigV4Refused(BAD_TOKEN)
    names = signed.split(";")
    if "host" not in names:
        raise SigV4Refused(MISMATCH)
    missing = [n for n in names if n not in lower]
    if missing:
        raise SigV4Refused(MISMATCH)
    request = AWSRequest(method=method.upper(), url=url, data=body,
                         headers={n: lower[n] for n in names})
    request.context["timestamp"] = amz_date
    auth = SigV4Auth(Credentials(access_key_id, key.secret, key.session_token), "execute-api", region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise SigV4Refused(MISMATCH)
    return key.identity
