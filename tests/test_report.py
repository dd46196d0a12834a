"""The promotion gate's statistics, and a report on a run where nothing has run yet."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentdistill.errors import UserError
from agentdistill.report import build_report
from agentdistill.report.gate import bootstrap_difference, pass_k, promotion_gate


def _trials(passes: list[int], trials: int = 1) -> dict[str, list[bool]]:
    return {f"s{i}": [bool(p)] * trials for i, p in enumerate(passes)}


def test_pass_k_is_the_unbiased_all_k_trials_pass_estimate():
    assert pass_k([True, True, False], 1) == pytest.approx(2 / 3)
    assert pass_k([True, True, False], 2) == pytest.approx(1 / 3)
    assert pass_k([True, False, False], 2) == 0.0


def test_equal_models_are_not_worse_and_a_clearly_worse_student_is():
    teacher = _trials([1] * 25 + [0] * 5)
    same = bootstrap_difference(teacher, teacher)
    assert same["difference"] == 0 and same["ci"] == [0.0, 0.0] and not same["worse"]
    worse = bootstrap_difference(_trials([1] * 10 + [0] * 20), teacher)
    assert worse["difference"] == pytest.approx(-0.5) and worse["ci"][1] < 0 and worse["worse"]
    # a small gap on few scenarios is inside the interval: the gate does not refuse on noise
    close = bootstrap_difference(_trials([0, 0] + [1] * 23 + [1, 0, 0, 0, 0]), teacher)  # 2 lost, 1 won
    assert close["ci"][0] < 0 < close["ci"][1] and not close["worse"]


def test_only_common_scenarios_are_compared():
    student = {"a": [True], "b": [False], "extra": [False]}
    teacher = {"a": [True], "b": [True]}
    assert bootstrap_difference(student, teacher)["scenarios"] == 2
    with pytest.raises(UserError, match="share no evaluated scenario"):
        bootstrap_difference({"x": [True]}, teacher)


def test_gate_undecided_and_report_says_not_run_on_an_empty_run(tmp_path: Path):
    run = tmp_path / "run"
    run.mkdir()
    gate = promotion_gate(run, "dpo")
    assert gate["promote"] is None and gate["missing"] == ["heldout", "stress"]
    result = build_report(run)
    assert not any(ran for title, ran in result["sections"].items() if title != "Summary")
    html = Path(result["html"]).read_text()
    assert html.count("Not run:") == len(result["sections"]) - 2 and "<img" not in html  # summary, gate: undecided
    assert "teacher: not evaluated" in html and "Speed: not measured" in html
    assert "not decided" in Path(result["markdown"]).read_text()
