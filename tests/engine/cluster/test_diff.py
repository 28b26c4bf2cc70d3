"""Pure parts of the diff: normalisation, paths, offline comparison, three-way, masking."""

from __future__ import annotations

import base64
import copy

from cluster_objects import (
    deployment_live,
    deployment_manifest,
    secret_live,
    secret_manifest,
    service_live,
    service_manifest,
)
from gitferry import diff, jqpath, tracking


def prepared(obj: dict, namespace: str = "shop") -> dict:
    out = copy.deepcopy(obj)
    out["metadata"]["namespace"] = namespace
    return out


def test_normalise_drops_server_metadata_status_and_empties() -> None:
    live = deployment_live()
    n = diff.normalise(live)
    assert "status" not in n
    assert set(n["metadata"]) == {"name", "namespace", "labels"}  # revision annotation gone too
    assert "securityContext" not in n["spec"]["template"]["spec"]
    assert "creationTimestamp" not in n["spec"]["template"]["metadata"]
    assert live["status"]  # input untouched


def test_normalise_folds_secret_string_data() -> None:
    n = diff.normalise(secret_manifest())
    assert "stringData" not in n
    assert n["data"] == {"password": base64.b64encode(b"hunter2-s3cr3t").decode(), "user": "YWRtaW4="}


def test_offline_compare_reports_no_false_drift_after_apply() -> None:
    """Server defaults, quantities (0.5 vs 500m, 1024Mi vs 1Gi), protocol TCP, int-or-string
    targetPort and stringData must not count as drift."""
    for desired, live in [
        (prepared(deployment_manifest()), deployment_live()),
        (prepared(secret_manifest()), secret_live()),
        (prepared(service_manifest()), service_live()),
    ]:
        result = diff.compare_one_offline(desired, live)
        assert (result.status, result.changed_paths) == ("Synced", []), result.changed_paths


def test_offline_compare_names_the_changed_fields() -> None:
    live = deployment_live()
    live["spec"]["replicas"] = 5
    live["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.25"
    result = diff.compare_one_offline(prepared(deployment_manifest()), live)
    assert result.status == "OutOfSync"
    assert result.changed_paths == ["spec.replicas", "spec.template.spec.containers[name=web].image"]
    assert "-  replicas: 5\n" in result.diff and "+  replicas: 2\n" in result.diff


def test_secret_value_change_is_drift_and_never_shown() -> None:
    live = secret_live(password_b64=base64.b64encode(b"old-password-value").decode())
    result = diff.compare_one_offline(prepared(secret_manifest()), live)
    assert result.changed_paths == ["data.password"]
    text = result.diff + repr(result.live) + repr(result.target)
    for secret in ("hunter2-s3cr3t", "old-password-value", "aHVudGVyMi1zM2NyM3Q=",
                   base64.b64encode(b"old-password-value").decode(), "YWRtaW4="):
        assert secret not in text
    assert "++++++++" in result.diff


def test_mask_secrets_keeps_changes_visible() -> None:
    a = {"apiVersion": "v1", "kind": "Secret", "data": {"k": "AAA", "same": "BBB"}}
    b = {"apiVersion": "v1", "kind": "Secret", "data": {"k": "CCC", "same": "BBB"}}
    ma, mb = diff.mask_secrets(a, b)
    assert ma["data"]["same"] == mb["data"]["same"]
    assert ma["data"]["k"] != mb["data"]["k"]
    assert all(set(v) == {"+"} for v in list(ma["data"].values()) + list(mb["data"].values()))
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "visible"}}
    assert diff.mask_secrets(cm)[0] == cm


def test_changed_paths_exact_and_keyed_lists() -> None:
    a = deployment_live()
    b = copy.deepcopy(a)
    assert diff.changed_paths(a, b) == []
    b["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "LOG", "value": "info"}]
    b["metadata"]["labels"]["app.kubernetes.io/part-of"] = "shop"
    b["status"]["replicas"] = 9  # status is never drift
    assert diff.changed_paths(a, b) == [
        'metadata.labels["app.kubernetes.io/part-of"]',
        "spec.template.spec.containers[name=web].env[name=MODE]",
    ]


def test_three_way_field_removed_from_git_is_drift() -> None:
    """gitferry applied env MODE before (managedFields); Git dropped it; live still has it."""
    desired = prepared(deployment_manifest())
    desired["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "LOG", "value": "info"}]
    live = deployment_live()
    assert diff.subset_changed_paths(desired, live) == []  # a subset check alone misses it
    assert diff.three_way_paths(desired, live) == ["spec.template.spec.containers[name=web].env[name=MODE]"]
    result = diff.compare_one_offline(desired, live)
    assert result.status == "OutOfSync"
    assert result.changed_paths == ["spec.template.spec.containers[name=web].env[name=MODE]"]


def test_three_way_ignores_fields_of_other_managers() -> None:
    desired = prepared(deployment_manifest())
    live = deployment_live()
    live["metadata"]["managedFields"][0]["manager"] = "kubectl"
    desired["spec"]["template"]["spec"]["containers"][0].pop("env")
    assert diff.three_way_paths(desired, live) == []


def test_owned_paths_parses_fields_v1() -> None:
    paths = diff.owned_paths({"f:spec": {"f:replicas": {}, "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}}}},
                              "f:metadata": {"f:finalizers": {'v:"a/b"': {}}}})
    assert ("spec", "replicas") in paths
    assert ("spec", "ports", (("port", 80), ("protocol", "TCP"))) in paths
    assert ("metadata", "finalizers", (("__value__", '"a/b"'),)) in paths


def test_missing_object_is_out_of_sync_and_missing() -> None:
    result = diff.compare_one_offline(prepared(deployment_manifest()), None)
    assert result.status == "OutOfSync" and result.health.status == "Missing"
    assert "+kind: Deployment" in result.diff


def test_extraneous_needs_ownership() -> None:
    mine = tracking.stamp("shop", prepared(deployment_manifest("old")))
    copied = copy.deepcopy(mine)
    copied["metadata"]["name"] = "old-copy"
    other = tracking.stamp("other", prepared(deployment_manifest("theirs")))
    hook = tracking.stamp("shop", prepared(deployment_manifest("hooky")))
    hook["metadata"]["annotations"]["argocd.argoproj.io/hook"] = "PostSync"
    kept = tracking.stamp("shop", prepared(deployment_manifest("web")))
    out = diff.extraneous("shop", [kept], [mine, copied, other, hook, kept])
    assert [o["metadata"]["name"] for o in out] == ["old"]


def test_sync_status_rules() -> None:
    ok = diff.ResourceDiff("apps", "v1", "Deployment", "shop", "web", "Synced")
    prune = diff.ResourceDiff("", "v1", "ConfigMap", "shop", "old", "OutOfSync", requires_pruning=True,
                              message="requires pruning")
    ignored = diff.ResourceDiff("", "v1", "ConfigMap", "shop", "x", "OutOfSync", requires_pruning=True,
                                message="ignored (extraneous)")
    unknown = diff.ResourceDiff("", "v1", "ConfigMap", "shop", "u", "Unknown")
    assert diff.sync_status([ok]) == "Synced"
    assert diff.sync_status([ok, prune]) == "OutOfSync"
    assert diff.sync_status([ok, ignored]) == "Synced"
    assert diff.sync_status([ok, unknown]) == "Unknown"


def test_scrub_removes_secret_values_from_error_messages() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
              "data": {"token": base64.b64encode(b"tok-123456").decode()}, "stringData": {"password": "pa55word"}}
    message = ('Secret "db" is invalid: data[token]: Invalid value: "tok-123456"; '
               f'raw {secret["data"]["token"]}; password pa55word / {base64.b64encode(b"pa55word").decode()}')
    scrubbed = diff.scrub(message, secret)
    for value in ("tok-123456", secret["data"]["token"], "pa55word", base64.b64encode(b"pa55word").decode()):
        assert value not in scrubbed
    assert scrubbed.startswith('Secret "db" is invalid: data[token]: Invalid value: "++++++++"')
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "pa55word"}}
    assert diff.scrub("value pa55word", cm) == "value pa55word"


def test_ignore_differences_json_pointers_and_managers() -> None:
    live = deployment_live()
    live["spec"]["replicas"] = 7
    live["metadata"]["labels"]["team/owner"] = "x"  # not in desired: ignored by a subset check anyway
    desired = prepared(deployment_manifest())
    assert diff.compare_one_offline(desired, live).changed_paths == ["spec.replicas"]
    rules = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/spec/replicas"]}])
    assert diff.compare_one_offline(desired, live, rules).status == "Synced"
    other = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "name": "api", "jsonPointers": ["/spec/replicas"]}])
    assert diff.compare_one_offline(desired, live, other).status == "OutOfSync"  # another object's rule
    live["metadata"]["managedFields"].append({"manager": "hpa-controller", "operation": "Update", "apiVersion": "apps/v1",
                                              "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    by_manager = diff.ignore_rules([{"kind": "Deployment", "group": "apps", "managedFieldsManagers": ["hpa-controller"]}])
    assert diff.compare_one_offline(desired, live, by_manager).status == "Synced"


def test_ignore_rules_accept_model_like_objects() -> None:
    class Rule:  # the Application model's snake_case attributes
        group = "apps"
        kind = "Deployment"
        name = None
        namespace = None
        json_pointers = ["/spec/template/spec/containers/0/image"]
        managed_fields_managers: list[str] = []
        jq_path_expressions = [".spec.replicas"]

    (rule,) = diff.ignore_rules([Rule()])
    assert rule.json_pointers == ("/spec/template/spec/containers/0/image",)
    assert rule.jq_path_expressions == (".spec.replicas",) and rule.field == "spec.ignoreDifferences[0]"
    live = deployment_live(image="nginx:9", replicas=6)
    result = diff.compare_one_offline(prepared(deployment_manifest()), live, [rule])
    assert (result.status, result.message) == ("Synced", "")


# ---- jqPathExpressions ---------------------------------------------------------------------

JQ_IMAGE = '.spec.template.spec.containers[] | select(.name == "web") | .image'


def test_jq_path_expressions_ignore_what_they_select() -> None:
    desired = prepared(deployment_manifest())
    live = deployment_live(image="nginx:9", replicas=6)
    assert diff.compare_one_offline(desired, live).changed_paths == [
        "spec.replicas", "spec.template.spec.containers[name=web].image"]
    image_only = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "jqPathExpressions": [JQ_IMAGE]}])
    assert diff.compare_one_offline(desired, live, image_only).changed_paths == ["spec.replicas"]
    both = diff.ignore_rules([{"group": "apps", "kind": "Deployment",
                               "jqPathExpressions": [JQ_IMAGE, ".spec.replicas"]}])
    result = diff.compare_one_offline(desired, live, both)
    assert (result.status, result.changed_paths, result.message) == ("Synced", [], "")
    other_kind = diff.ignore_rules([{"kind": "StatefulSet", "group": "apps", "jqPathExpressions": [".spec.replicas"]}])
    assert diff.compare_one_offline(desired, live, other_kind).status == "OutOfSync"


def test_ignored_paths_selects_concrete_paths_from_every_kind_of_rule() -> None:
    """The helper sync.py shares (RespectIgnoreDifferences): json pointers, jq and managers,
    ordered so removing them one by one keeps list indexes valid."""
    live = deployment_live()
    live["metadata"]["managedFields"].append({"manager": "hpa", "operation": "Update", "apiVersion": "apps/v1",
                                              "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"},
           "data": {"a": "1", "b": "2", "80": "x"}, "list": ["p", "q", "r", "s"]}
    rules = diff.ignore_rules([{"kind": "ConfigMap", "jsonPointers": ["/data/80"],
                                "jqPathExpressions": [".list[0, 2]", '.data[] | select(. == "2")']}])
    paths, failures = diff.ignored_paths(obj, rules)
    assert failures == []
    assert paths == [("list", 2), ("list", 0), ("data", "b"), ("data", 80)]
    for path in paths:
        diff._remove(obj, path)
    assert obj["list"] == ["q", "s"] and obj["data"] == {"a": "1"}
    managers = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["hpa"]}])
    assert diff.ignored_paths(diff.normalise(live), managers, live=live) == ([("spec", "replicas")], [])


def test_jq_expression_that_never_ends_is_cut_off_and_named() -> None:
    """A hostile expression must not hang the diff Lambda: the worker is killed at the time
    limit, the rule is named, and the object that differs is Unknown, not Synced."""
    desired = prepared(deployment_manifest())
    live = deployment_live(image="nginx:9", replicas=6)
    spinning = ".spec | select(last(range(1e12)) > 0)"
    rules = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "jsonPointers": ["/metadata/labels"]},
                               {"group": "apps", "kind": "Deployment", "jqPathExpressions": [".spec.replicas", spinning]}])
    with jqpath.JqRunner(timeout=0.5) as jq:
        result = diff.compare_one_offline(desired, live, rules, jq=jq)
        assert result.status == "Unknown"
        assert f'spec.ignoreDifferences[1].jqPathExpressions[1] "{spinning}"' in result.message
        assert "exceeded the time limit of 0.5s on apps/Deployment/shop/web" in result.message
        # the same expression is not run again in this comparison (the answer is immediate)
        assert jq.select(spinning, [{}])[0].error == "evaluation exceeded the time limit of 0.5s"
        # the worker was replaced: other expressions still work
        assert jq.select(".spec.replicas", [live])[0].paths == (("spec", "replicas"),)
    memory = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "jqPathExpressions": ["[range(1e9)]"]}])
    result = diff.compare_one_offline(desired, live, memory)
    assert result.status == "Unknown"
    assert 'spec.ignoreDifferences[0].jqPathExpressions[0] "[range(1e9)]": evaluation exceeded the' in result.message
    in_sync = diff.compare_one_offline(desired, deployment_live(), memory)
    assert in_sync.status == "Synced"  # ignoring more could not make it differ


def test_jq_failure_on_data_makes_a_differing_object_unknown() -> None:
    desired = prepared(deployment_manifest())
    rules = diff.ignore_rules([{"group": "apps", "kind": "Deployment",
                                "jqPathExpressions": [".spec.template.spec.initContainers[] | .image"]}])
    result = diff.compare_one_offline(desired, deployment_live(replicas=6), rules)
    assert result.status == "Unknown"
    assert "Cannot iterate over null" in result.message and "jqPathExpressions[0]" in result.message
    assert diff.compare_one_offline(desired, deployment_live(), rules).status == "Synced"


def test_jq_rules_on_secrets_never_reveal_values() -> None:
    live = secret_live(password_b64=base64.b64encode(b"old-password-value").decode())
    desired = prepared(secret_manifest())
    password = diff.ignore_rules([{"kind": "Secret", "jqPathExpressions": [".data.password"]}])
    assert diff.compare_one_offline(desired, live, password).status == "Synced"
    user = diff.ignore_rules([{"kind": "Secret", "jqPathExpressions": [".data.user"]}])
    result = diff.compare_one_offline(desired, live, user)
    assert result.status == "OutOfSync" and result.changed_paths == ["data.password"]
    # jq quotes the value it fails on; on a Secret its message is withheld
    leaky = diff.ignore_rules([{"kind": "Secret", "jqPathExpressions": [".data.password | @base64d | ascii_downcase"]}])
    failed = diff.compare_one_offline(desired, live, leaky)
    assert failed.status == "Unknown" and "details withheld" in failed.message
    text = failed.diff + repr(failed.live) + repr(failed.target) + failed.message
    for secret in ("hunter2", "old-password", base64.b64encode(b"old-password-value").decode(),
                   base64.b64encode(b"hunter2-s3cr3t").decode(), "YWRtaW4=", "admin"):
        assert secret not in text
    for codes in ([ord(c) for c in "old"], [ord(c) for c in "hun"]):  # jq shows strings as code points
        assert ",".join(map(str, codes)) not in text
    # the same failure on a ConfigMap shows jq's own message (so the withholding is Secret-only)
    cm_desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"},
                  "data": {"password": base64.b64encode(b"a").decode()}}
    cm_live = copy.deepcopy(cm_desired)
    cm_live["data"]["password"] = base64.b64encode(b"b").decode()
    cm_rules = diff.ignore_rules([{"kind": "ConfigMap", "jqPathExpressions": [".data.password | @base64d | ascii_downcase"]}])
    cm = diff.compare_one_offline(cm_desired, cm_live, cm_rules)
    assert cm.status == "Unknown" and "Invalid path expression" in cm.message


def test_managed_fields_managers_count_scale_subresource_entries() -> None:
    """`kubectl scale` and the HPA own spec.replicas through the scale subresource."""
    desired = prepared(deployment_manifest())
    live = deployment_live(replicas=9)
    live["metadata"]["managedFields"].append({"manager": "kube-controller-manager", "operation": "Update",
                                              "subresource": "scale", "apiVersion": "apps/v1",
                                              "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    rules = diff.ignore_rules([{"group": "apps", "kind": "Deployment", "managedFieldsManagers": ["kube-controller-manager"]}])
    assert diff.compare_one_offline(desired, live).changed_paths == ["spec.replicas"]
    assert diff.compare_one_offline(desired, live, rules).status == "Synced"
