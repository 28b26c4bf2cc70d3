"""run_sync(stop=...) against kubesim: a terminated operation writes nothing after the wave boundary
at which it was told to stop, even when the waves before it were healthy at once (one invocation
running wave after wave), and reports what it did not attempt."""

from __future__ import annotations

from gitferry import kube
from test_sync_cluster import cm, run, statuses


def test_stop_between_healthy_waves_writes_nothing_after_it(cluster: kube.ClusterClient, app_name: str,
                                                            namespace: str) -> None:
    asked: list[int] = []

    def stop() -> str | None:
        asked.append(1)
        # waves 0 and 1 go; asked before wave 2 the answer is "terminated"
        return "terminated by api:alice" if len(asked) >= 3 else None

    desired = [cm("w0", wave=0), cm("w1", wave=1), cm("w2", wave=2), cm("w3", wave=3)]
    result = run(cluster, app_name, namespace, desired, wait_between_waves=True, stop=stop)
    assert result.phase == "Failed" and result.message == "terminated by api:alice"
    assert cluster.get("v1", "ConfigMap", "w0", namespace) is not None
    assert cluster.get("v1", "ConfigMap", "w1", namespace) is not None
    assert cluster.get("v1", "ConfigMap", "w2", namespace) is None
    assert cluster.get("v1", "ConfigMap", "w3", namespace) is None
    got = statuses(result)
    assert got["ConfigMap/w1"] == ("Synced", "created")
    assert got["ConfigMap/w2"] == ("SyncFailed", "not attempted: terminated by api:alice")
    assert got["ConfigMap/w3"] == ("SyncFailed", "not attempted: terminated by api:alice")


def test_no_stop_runs_every_wave(cluster: kube.ClusterClient, app_name: str, namespace: str) -> None:
    result = run(cluster, app_name, namespace, [cm("a", wave=0), cm("b", wave=1)], wait_between_waves=True,
                 stop=lambda: None)
    assert result.phase == "Succeeded", result.message
    assert cluster.get("v1", "ConfigMap", "b", namespace) is not None
