"""gitferry.eks: what a registration may name, and when a token is made again (moto STS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gitferry import eks

from local.aws import client


def test_targets_from_names_and_arns() -> None:
    arn = "arn:aws:eks:eu-west-1:111122223333:cluster/prod"
    assert eks.parse_target(arn) == eks.EksTarget("prod", "eu-west-1")
    assert eks.parse_target("prod", default_region="us-east-2") == eks.EksTarget("prod", "us-east-2")
    role = "arn:aws:iam::111122223333:role/path/deployer"
    assert eks.parse_target("prod", "eu-west-1", role).role_arn == role
    for args, field in (((arn, "us-east-1"), "eks.region"), (("prod",), "eks.region"),
                        (("bad name",), "eks.cluster"), (("prod", "mars-1"), "eks.region"),
                        (("prod", "eu-west-1", "arn:aws:iam::1:user/x"), "eks.roleArn")):
        with pytest.raises(ValueError, match=field):
            eks.parse_target(*args)


@pytest.fixture
def signed_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The engine session's moto; credentials of a role moto issued (as Lambda's are)."""
    creds = client("sts", moto_endpoint).assume_role(
        RoleArn="arn:aws:iam::123456789012:role/gitferry-api", RoleSessionName="api")["Credentials"]
    for key, value in (("AWS_ACCESS_KEY_ID", creds["AccessKeyId"]),
                       ("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"]),
                       ("AWS_SESSION_TOKEN", creds["SessionToken"]), ("AWS_ENDPOINT_URL", moto_endpoint)):
        monkeypatch.setenv(key, value)
    yield moto_endpoint


def test_a_token_is_reused_until_a_minute_before_its_15_minutes(signed_env: str) -> None:
    clock = [1_000_000.0]
    access = eks.EksAccess(eks.EksTarget("prod", "us-east-1"), now=lambda: clock[0])
    first = access.token()
    assert access.token_expires == 1_000_000.0 + 900
    clock[0] += 13 * 60 + 59
    assert access.token() is first  # the cached object, not merely an equal string
    clock[0] += 2
    again = access.token()
    assert access.token_expires == clock[0] + 900  # made again, valid 15 minutes from now
    assert again.startswith("k8s-aws-v1.")


def test_the_refresh_hook_puts_the_bearer_token_on_the_configuration(signed_env: str) -> None:
    from kubernetes import client as k8s

    access = eks.EksAccess(eks.EksTarget("prod", "us-east-1"))
    conf = k8s.Configuration()
    access.refresh_hook(conf)
    assert conf.api_key["BearerToken"] == "Bearer " + access.token()


def test_an_unknown_cluster_is_an_eks_error(signed_env: str) -> None:
    with pytest.raises(eks.EksError, match="ResourceNotFoundException"):
        eks.EksAccess(eks.EksTarget("absent", "us-east-1")).describe()
