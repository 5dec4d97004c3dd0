"""The ``verl.plugins`` entry point registers everything in a *fresh* interpreter that
only imports verl (no import of ours in the probe), and ``minio3 doctor`` fails
loudly when it does not."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import minio3_ext.verl as mv
from minio3_ext.commands.doctor import _VERL_PROBE, check_verl


def test_entry_point_is_declared():
    (ep,) = [ep for ep in entry_points(group="verl.plugins") if ep.name == "minio3"]
    assert ep.value == "minio3_ext.verl"


def test_fresh_interpreter_importing_only_verl_has_everything_registered(monkeypatch, run_doctor):
    """``minio3 doctor``'s probe: a new interpreter that runs ``import verl`` and reads
    verl's registries; our package is imported only after the check, to explain a failure.
    (``run_doctor`` shares the probe with the doctor runs of tests/commands.)"""
    monkeypatch.delenv("VERL_USE_EXTERNAL_PLUGINS", raising=False)
    before_check = _VERL_PROBE.split("found = {")[0]
    assert "minio3" not in before_check and "import verl\n" in before_check
    assert check_verl() == []


@pytest.mark.slow  # its own fresh interpreter importing verl (~8 s)
def test_doctor_fails_loudly_when_verl_skips_plugins(monkeypatch, run_doctor):
    monkeypatch.setenv("VERL_USE_EXTERNAL_PLUGINS", "none")
    problems = "\n".join(check_verl())
    assert "VERL_USE_EXTERNAL_PLUGINS='none'" in problems
    assert "not registered after 'import verl'" in problems
    assert "advantage estimator 'masked_grpo'" in problems and "agent loop 'minio3_agent'" in problems
    assert "tool parser 'minio3'" in problems


def test_registration_problems_sees_a_missing_registration(monkeypatch):
    from verl.trainer.ppo import core_algos

    assert mv.registration_problems() == []
    monkeypatch.delitem(core_algos.ADV_ESTIMATOR_REGISTRY, "masked_grpo")
    assert mv.registration_problems() == ["advantage estimator 'masked_grpo' is not registered"]
