"""The bounded jq evaluator behind ignoreDifferences.jqPathExpressions (a real worker process)."""

from __future__ import annotations

from gitferry import jqpath

OBJ = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}]}}


def test_paths_are_what_del_would_delete() -> None:
    with jqpath.JqRunner() as jq:
        (one, empty) = jq.select('.spec.containers[] | select(.name == "y")', [OBJ, {"spec": {"containers": []}}])
        assert one == jqpath.Result(paths=(("spec", "containers", 1),))
        assert empty == jqpath.Result(paths=())
        assert jq.select(".metadata.labels.a, .missing.field", [OBJ])[0].paths == (
            ("metadata", "labels", "a"), ("missing", "field"))


def test_memory_limit_kills_the_worker_and_the_next_request_gets_a_fresh_one() -> None:
    with jqpath.JqRunner(timeout=120, memory_bytes=128 * 2**20) as jq:
        assert jq.select(".a", [{"a": 1}])[0].paths == (("a",),)
        first = jq._proc.pid if jq._proc else None
        (result,) = jq.select("select([range(1e9)] | length > 0)", [{}])
        assert result.error == "evaluation exceeded the memory limit of 128 MiB" and not result.from_data
        assert jq.select(".a", [{"a": 1}])[0].paths == (("a",),)
        assert jq._proc is not None and jq._proc.pid != first
        proc = jq._proc
    assert proc.returncode is not None  # closed: killed and waited for, no worker left behind


def test_too_many_paths_and_data_errors_are_per_value() -> None:
    with jqpath.JqRunner(max_paths=5) as jq:
        many, few = jq.select(".[]", [list(range(6)), [1, 2]])
        assert many.error == "selects more than 5 paths" and many.from_data
        assert few.paths == ((0,), (1,))
        (bad,) = jq.select(".a | ascii_downcase", [{"a": "x"}])
        assert bad.from_data and "Invalid path expression" in (bad.error or "")
        (compile_error,) = jq.select(".a[", [{}])
        assert compile_error.error and compile_error.error.startswith("invalid jq expression") and not compile_error.from_data
