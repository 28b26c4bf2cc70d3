"""The application resource tree: build_tree on realistic objects, collect_children on kubesim.

The pure tests pin what a user sees in the tree (who is whose parent, health, pod info, the
bound); the cluster tests prove the children are really found through ownerReferences on a live
API, with one LIST per kind and namespace, and that a neighbour's objects never leak in.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from gitferry import kube, tracking
from gitferry.tree import (
    CHILD_KINDS,
    Children,
    ResourceTree,
    build_tree,
    child_kinds_for,
    collect_children,
    pod_info,
)

TS = "2025-05-01T10:00:00Z"


def _uid() -> str:
    return str(uuid.uuid4())


def owner(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def deployment(name: str, ns: str = "shop", revision: str = "2") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "uid": _uid(), "resourceVersion": "100", "generation": 2,
                     "creationTimestamp": TS, "annotations": {"deployment.kubernetes.io/revision": revision}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
        "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                   "availableReplicas": 2},
    }


def replicaset(parent: dict[str, Any], suffix: str = "7d9f8c6b5d", replicas: int = 2) -> dict[str, Any]:
    name = f"{parent['metadata']['name']}-{suffix}"
    return {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": parent["metadata"]["namespace"], "uid": _uid(), "generation": 1,
                     "creationTimestamp": TS, "ownerReferences": [owner(parent)],
                     "annotations": {"deployment.kubernetes.io/revision": "2"},
                     "managedFields": [{"manager": "kube-controller-manager"}]},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas},
    }


def running_container(name: str = "web", restarts: int = 0, ready: bool = True) -> dict[str, Any]:
    return {"name": name, "image": "nginx:1.27", "ready": ready, "restartCount": restarts, "started": True,
            "state": {"running": {"startedAt": TS}}}


def pod(parent: dict[str, Any] | None, name: str, *, ready: bool = True, containers: list[dict[str, Any]] | None = None,
        restart_policy: str = "Always", phase: str = "Running", **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": (parent or {}).get("metadata", {}).get("namespace", "shop"),
                            "uid": _uid(), "creationTimestamp": TS}
    if parent is not None:
        meta["ownerReferences"] = [owner(parent)]
    body: dict[str, Any] = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": containers if containers is not None else [running_container(ready=ready)],
    }
    body.update(status)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"restartPolicy": restart_policy, "nodeName": "node-1",
                     "containers": [{"name": "web", "image": "nginx:1.27"}, ]},
            "status": body}


def by_name(tree: ResourceTree) -> dict[str, Any]:
    return {f"{n.kind}/{n.name}": n for n in tree.nodes}


# --------------------------------------------------------------------------- pure


def test_deployment_replicaset_pods_with_parent_refs_health_and_info() -> None:
    web = deployment("web")
    rs = replicaset(web)
    pods = [pod(rs, f"{rs['metadata']['name']}-a1"), pod(rs, f"{rs['metadata']['name']}-b2")]
    other = deployment("other")
    other_rs = replicaset(other, "55")
    other_pod = pod(other_rs, "other-55-x")
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "conf", "namespace": "shop", "uid": _uid(), "creationTimestamp": TS}}

    tree = build_tree([web, cm], [*pods, other_pod, rs, other_rs])  # order of children does not matter

    nodes = by_name(tree)
    assert set(nodes) == {"Deployment/web", "ConfigMap/conf", f"ReplicaSet/{rs['metadata']['name']}",
                          *(f"Pod/{p['metadata']['name']}" for p in pods)}
    assert tree.truncated is False
    # managed first, then the tree level by level: the deployment before its RS before its pods
    kinds = [n.kind for n in tree.nodes]
    assert kinds == ["ConfigMap", "Deployment", "ReplicaSet", "Pod", "Pod"]
    rs_node = nodes[f"ReplicaSet/{rs['metadata']['name']}"]
    assert [(r.kind, r.name, r.uid) for r in rs_node.parent_refs] == [("Deployment", "web", web["metadata"]["uid"])]
    assert rs_node.group == "apps" and rs_node.version == "v1" and rs_node.namespace == "shop"
    assert rs_node.info[0].name == "Revision" and rs_node.info[0].value == "Rev:2"
    assert nodes["Deployment/web"].parent_refs == []
    for p in pods:
        node = nodes[f"Pod/{p['metadata']['name']}"]
        assert [r.uid for r in node.parent_refs] == [rs["metadata"]["uid"]]
        assert node.health is not None and node.health.status == "Healthy"
        assert node.images == ["nginx:1.27"]
        info = {i.name: i.value for i in node.info}
        assert info == {"Status Reason": "Running", "Node": "node-1", "Containers": "1/1", "Restart Count": "0"}
        assert node.uid == p["metadata"]["uid"]
        assert node.created_at == TS


def test_json_shape_is_argo_cd_application_tree() -> None:
    web = deployment("web")
    rs = replicaset(web)
    doc = build_tree([web], [rs, pod(rs, "web-p")]).to_json_dict()
    assert set(doc) == {"nodes", "truncated"}
    node = doc["nodes"][2]
    assert set(node) == {"group", "version", "kind", "namespace", "name", "uid", "parentRefs", "health", "info",
                         "images", "createdAt"}
    assert node["kind"] == "Pod" and node["group"] == "" and node["version"] == "v1"
    assert node["parentRefs"] == [{"group": "apps", "version": "v1", "kind": "ReplicaSet", "namespace": "shop",
                                   "name": rs["metadata"]["name"], "uid": rs["metadata"]["uid"]}]
    assert node["health"] == {"status": "Healthy"}
    assert {"name": "Containers", "value": "1/1"} in node["info"]
    assert doc["nodes"][0]["resourceVersion"] == "100"
    assert ResourceTree.model_validate(doc).to_json_dict() == doc  # what is stored reads back the same


def test_cronjob_job_pod_statefulset_pvc_and_service_endpointslice() -> None:
    cron = {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "ops", "uid": _uid()}, "spec": {"schedule": "@daily"}}
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "nightly-2901", "namespace": "ops", "uid": _uid(), "ownerReferences": [owner(cron)]},
           "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}}
    done = pod(job, "nightly-2901-xx", restart_policy="Never", phase="Succeeded", ready=False, containers=[
        {"name": "web", "ready": False, "restartCount": 0,
         "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}])
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "db", "namespace": "ops", "uid": _uid(), "generation": 1},
           "spec": {"replicas": 1}, "status": {"observedGeneration": 1, "readyReplicas": 1, "replicas": 1}}
    sts_pod = pod(sts, "db-0")
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data-db-0", "namespace": "ops", "uid": _uid(), "ownerReferences": [owner(sts)]},
           "status": {"phase": "Pending"}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "ops", "uid": _uid()},
           "spec": {"type": "ClusterIP"}}
    slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
              "metadata": {"name": "db-abcde", "namespace": "ops", "uid": _uid(), "ownerReferences": [owner(svc)]}}

    nodes = by_name(build_tree([cron, sts, svc], [done, job, sts_pod, pvc, slice_]))

    assert [r.name for r in nodes["Job/nightly-2901"].parent_refs] == ["nightly"]
    assert nodes["Job/nightly-2901"].health.status == "Healthy"  # type: ignore[union-attr]
    assert [r.kind for r in nodes["Pod/nightly-2901-xx"].parent_refs] == ["Job"]
    assert {i.name: i.value for i in nodes["Pod/nightly-2901-xx"].info}["Status Reason"] == "Completed"
    assert [r.name for r in nodes["Pod/db-0"].parent_refs] == ["db"]
    assert nodes["PersistentVolumeClaim/data-db-0"].health.status == "Progressing"  # type: ignore[union-attr]
    assert [(r.group, r.kind) for r in nodes["EndpointSlice/db-abcde"].parent_refs] == [("", "Service")]
    assert nodes["EndpointSlice/db-abcde"].group == "discovery.k8s.io"


def test_objects_not_descending_from_managed_ones_are_left_out() -> None:
    web = deployment("web")
    rs = replicaset(web)
    orphan = pod(None, "debug")                           # no owner at all
    foreign = pod(deployment("elsewhere"), "stray")        # owner not in the tree
    same_name_rs = copy.deepcopy(rs)                      # same name, another object (uid differs)
    same_name_rs["metadata"]["uid"] = _uid()
    same_name_rs["metadata"]["ownerReferences"] = [dict(owner(web), uid=_uid())]
    tree = build_tree([web], [rs, orphan, foreign, same_name_rs])
    assert [n.uid for n in tree.nodes] == [web["metadata"]["uid"], rs["metadata"]["uid"]]


def test_pod_health_and_info_follow_the_kubelet_state() -> None:
    web = deployment("web")
    rs = replicaset(web)
    crashing = pod(rs, "web-crash", ready=False, containers=[
        {"name": "web", "ready": False, "restartCount": 7,
         "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
         "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}])
    starting = pod(rs, "web-start", ready=False, phase="Pending", containers=[
        {"name": "web", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}])
    nodes = by_name(build_tree([web], [rs, crashing, starting]))
    crash = nodes["Pod/web-crash"]
    assert crash.health is not None and crash.health.status == "Degraded"
    assert crash.health.message == "back-off 5m0s restarting failed container"
    assert {i.name: i.value for i in crash.info} == {"Status Reason": "CrashLoopBackOff", "Node": "node-1",
                                                   "Containers": "0/1", "Restart Count": "7"}
    start = nodes["Pod/web-start"]
    assert start.health is not None and start.health.status == "Progressing"
    assert {i.name: i.value for i in start.info}["Status Reason"] == "ContainerCreating"


def test_pod_info_init_containers_sidecars_and_terminating() -> None:
    base = pod(None, "p", ready=False, phase="Pending", containers=[
        {"name": "web", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}])
    base["spec"]["initContainers"] = [{"name": "migrate", "image": "tools:1"}, {"name": "wait", "image": "busybox"}]
    base["status"]["initContainerStatuses"] = [
        {"name": "migrate", "ready": False, "restartCount": 2, "state": {"terminated": {"exitCode": 0}}},
        {"name": "wait", "ready": False, "restartCount": 1, "state": {"running": {}}},
    ]
    info, images = pod_info(base)
    assert {i.name: i.value for i in info} == {"Status Reason": "Init:1/2", "Node": "node-1", "Containers": "0/1",
                                              "Restart Count": "3"}
    assert images == ["tools:1", "busybox", "nginx:1.27"]

    sidecar = copy.deepcopy(base)
    sidecar["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy:1", "restartPolicy": "Always"}]
    sidecar["status"].update(phase="Running", initContainerStatuses=[
        {"name": "proxy", "ready": True, "started": True, "restartCount": 0, "state": {"running": {}}}],
        containerStatuses=[running_container()])
    info, _ = pod_info(sidecar)
    assert {i.name: i.value for i in info}["Containers"] == "2/2"
    assert {i.name: i.value for i in info}["Status Reason"] == "Running"

    going = pod(None, "g")
    going["metadata"]["deletionTimestamp"] = TS
    assert {i.name: i.value for i in pod_info(going)[0]}["Status Reason"] == "Terminating"


def test_bound_keeps_managed_and_nearest_levels_and_says_truncated() -> None:
    web = deployment("web")
    rs = replicaset(web, replicas=10)
    pods = [pod(rs, f"web-{i:02d}") for i in range(10)]
    tree = build_tree([web], [*pods, rs], max_nodes=5)
    assert tree.truncated is True
    assert len(tree.nodes) == 5
    assert [n.kind for n in tree.nodes] == ["Deployment", "ReplicaSet", "Pod", "Pod", "Pod"]
    assert [n.name for n in tree.nodes[2:]] == ["web-00", "web-01", "web-02"]  # deterministic

    full = build_tree([web], [*pods, rs], max_nodes=12)
    assert full.truncated is False and len(full.nodes) == 12

    cut_upstream = Children([rs])
    cut_upstream.truncated = True
    assert build_tree([web], cut_upstream).truncated is True

    many = [dict(deployment(f"d{i}")) for i in range(4)]
    assert len(build_tree(many, [], max_nodes=3).nodes) == 3
    assert build_tree(many, [], max_nodes=3).truncated is True


def test_owner_cycles_and_duplicates_do_not_loop_or_repeat() -> None:
    web = deployment("web")
    a = replicaset(web, "a")
    b = replicaset(web, "b")
    a["metadata"]["ownerReferences"].append(owner(b))  # nonsense, but an API server accepts it
    b["metadata"]["ownerReferences"].append(owner(a))
    tree = build_tree([web, copy.deepcopy(web)], [a, b, a])
    assert [n.kind for n in tree.nodes] == ["Deployment", "ReplicaSet", "ReplicaSet"]
    node_a = by_name(tree)[f"ReplicaSet/{a['metadata']['name']}"]
    assert {r.kind for r in node_a.parent_refs} == {"Deployment", "ReplicaSet"}


def test_child_kinds_follow_what_the_managed_kinds_can_own() -> None:
    def kinds(*api_kind: tuple[str, str]) -> set[tuple[str, str]]:
        return child_kinds_for([{"apiVersion": av, "kind": k} for av, k in api_kind])

    assert kinds(("v1", "ConfigMap"), ("v1", "Secret"), ("rbac.authorization.k8s.io/v1", "Role")) == set()
    assert kinds(("apps/v1", "Deployment")) == {("apps", "ReplicaSet"), ("", "Pod"), ("", "PersistentVolumeClaim")}
    assert kinds(("batch/v1", "CronJob")) == {("batch", "Job"), ("", "Pod"), ("", "PersistentVolumeClaim")}
    assert kinds(("v1", "Service")) == {("discovery.k8s.io", "EndpointSlice")}
    assert kinds(("argoproj.io/v1alpha1", "Rollout")) == set(CHILD_KINDS)


# --------------------------------------------------------------------------- kubesim


def _deployment(name: str, ns: str, replicas: int = 2) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


def _apply_app(cluster: kube.ClusterClient, app: str, ns: str) -> list[dict[str, Any]]:
    """Apply the app's objects as the sync does (stamped) and return them as the diff stage sees
    them: listed by label and kept when the tracking annotation proves ownership."""
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    for obj in (_deployment("web", ns), svc):
        cluster.server_side_apply(tracking.stamp(app, obj))
    live = cluster.list_by_label(tracking.label_selector(app))
    return [o for o in live if tracking.is_owned(app, o)]


def _wait_tree(cluster: kube.ClusterClient, managed: list[dict[str, Any]], pods: int) -> ResourceTree:
    deadline = time.monotonic() + 30
    while True:
        tree = build_tree(managed, collect_children(cluster, managed))
        ready = [n for n in tree.nodes if n.kind == "Pod" and n.health and n.health.status == "Healthy"]
        if len(ready) == pods or time.monotonic() > deadline:
            return tree
        time.sleep(0.3)


def test_tree_of_a_live_deployment(cluster: kube.ClusterClient, namespace: str, app_name: str) -> None:
    cluster.server_side_apply(_deployment("other", namespace, replicas=1))  # a neighbour, not ours
    managed = _apply_app(cluster, app_name, namespace)
    assert {o["kind"] for o in managed} == {"Deployment", "Service"}

    tree = _wait_tree(cluster, managed, pods=2)

    dep = next(n for n in tree.nodes if n.kind == "Deployment")
    rss = [n for n in tree.nodes if n.kind == "ReplicaSet"]
    pods = [n for n in tree.nodes if n.kind == "Pod"]
    assert dep.name == "web" and dep.uid
    assert len(rss) == 1 and rss[0].name.startswith("web-")
    assert [(r.kind, r.name, r.uid) for r in rss[0].parent_refs] == [("Deployment", "web", dep.uid)]
    assert len(pods) == 2
    for p in pods:
        assert p.name.startswith(rss[0].name) and p.namespace == namespace
        assert [r.uid for r in p.parent_refs] == [rss[0].uid]
        assert p.health is not None and p.health.status == "Healthy", p.health
        info = {i.name: i.value for i in p.info}
        assert info["Containers"] == "1/1" and info["Status Reason"] == "Running" and info["Restart Count"] == "0"
        assert p.images == ["nginx:1.27"]
    assert not [n for n in tree.nodes if n.name.startswith("other")]
    assert tree.truncated is False
    # what the tree claims is what the API says
    live_rs = cluster.get("apps/v1", "ReplicaSet", rss[0].name, namespace)
    assert live_rs is not None and live_rs["metadata"]["uid"] == rss[0].uid
    # managed objects sorted by group/kind/name, then descendants level by level
    assert [n["kind"] for n in tree.to_json_dict()["nodes"]] == ["Service", "Deployment", "ReplicaSet", "Pod", "Pod"]


def test_collect_children_bound_and_paging(kubesim: Any, cluster: kube.ClusterClient, namespace: str,
                                          app_name: str) -> None:
    managed = _apply_app(cluster, app_name, namespace)
    _wait_tree(cluster, managed, pods=2)

    seen = kubesim.log_mark()
    collect_children(cluster, managed)
    lists = sorted(path.split("?")[0].rsplit("/", 1)[1] for method, path, _, _ in kubesim.requests_since(seen)
                   if method == "GET" and f"/namespaces/{namespace}/" in path)
    # one LIST per child kind the app's kinds can own, in its namespace; not one per parent;
    # EndpointSlice (for the Service) only when the server serves it
    served = {(rt.group, rt.kind) for rt in cluster.served_types()}
    expected = ["persistentvolumeclaims", "pods", "replicasets"]
    if ("discovery.k8s.io", "EndpointSlice") in served:
        expected = ["endpointslices", *expected]
    # (a request the client retried after a dropped connection on a loaded machine counts twice)
    assert sorted(set(lists)) == expected and len(lists) <= len(expected) + 1, lists

    cut = collect_children(cluster, managed, max_nodes=2)
    assert cut.truncated is True
    assert [o["kind"] for o in cut] == ["ReplicaSet", "Pod"]  # nearest level first
    assert "managedFields" not in cut[0]["metadata"]
    tree = build_tree(managed, cut)
    assert tree.truncated is True and len(tree.nodes) == 4

    pods_rt = next(rt for rt in cluster.served_types() if rt.kind == "Pod" and rt.group == "")
    paged = cluster.list_in_namespace(pods_rt, namespace, page_size=1)
    assert len(paged) == 2 and {p["kind"] for p in paged} == {"Pod"}
    assert cluster.list_in_namespace(pods_rt, namespace, keep=lambda o: False) == []
