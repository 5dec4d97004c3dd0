"""``python -m minio3_ext.verl.cluster``: every Ray node imports the same package from
the same path (what ``masked_grpo_multinode.sh`` checks before training)."""

from __future__ import annotations

import pytest

from minio3_ext.verl import cluster


def _report(host, path="/opt/env/site-packages/minio3_ext", version="0.1.0", problems=()):
    return {"host": host, "minio3_ext": path, "minio3_ext_version": version, "verl": "0.9.1",
            "verl_path": "/opt/env/site-packages/verl", "problems": list(problems)}


def test_consistent_nodes_pass():
    assert cluster.compare([_report("a"), _report("b")]) == []


def test_a_node_with_another_copy_or_version_is_named():
    got = cluster.compare([_report("a"), _report("b", path="/home/u/minio3_ext"), _report("c", version="0.0.9")])
    assert len(got) == 2
    assert got[0].startswith("node b: minio3_ext='/home/u/minio3_ext'") and "node a" in got[0]
    assert got[1].startswith("node c: minio3_ext_version='0.0.9'")


def test_a_node_where_the_plugin_did_not_register_is_named():
    got = cluster.compare([_report("a"), _report("b", problems=["advantage estimator 'masked_grpo' is not registered"])])
    assert got == ["node b: advantage estimator 'masked_grpo' is not registered"]


@pytest.mark.slow
def test_real_ray_cluster_reports_each_node(capsys):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        reports = cluster.cluster_reports()
        assert len(reports) == len([n for n in ray.nodes() if n["Alive"]]) == 1
        assert {k: v for k, v in reports[0].items()} == cluster.node_report()
        assert cluster.main([]) == 0
    finally:
        ray.shutdown()
    assert "minio3_ext" in capsys.readouterr().out
