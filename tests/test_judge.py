"""The judge: how well it catches the scripted teacher's injected faults (the measurement the issue asks for),
its refinements y*, end-state / required-output / policy scoring, and determinism.

Run with `pytest -s tests/test_judge.py` to see the measured numbers.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from typing import Any

import pytest

from agentdistill.backends.scripted import FaultConfig, ScriptedTeacher
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.judge.judge import Judge
from agentdistill.mas.prompts import role_of
from agentdistill.mas.runtime import MAS
from agentdistill.simulate.episode import run_episode
from agentdistill.simulate.user import ScriptedUser
from agentdistill.types import Completion, ToolCall

N_EPISODES = 300


@pytest.fixture(scope="module")
def judge_domain() -> DealershipDomain:
    return DealershipDomain()


def _episodes(domain: DealershipDomain, faults: FaultConfig, n: int, judge: Judge | None = None,
              on_judged: Any = None):
    """Run and judge `n` episodes round-robin over all scenario types; yields each judged episode."""
    types = [st.name for st in domain.scenario_types()]
    teacher = ScriptedTeacher(domain, faults)
    mas, judge = MAS(domain, teacher), judge or Judge(domain)
    for i in range(n):
        sc = domain.make_scenario(types[i % len(types)], f"judge:{i}")
        ep = run_episode(f"judge-{i}", sc, mas, ScriptedUser(sc, domain.fallback_reply), teacher)
        judge.judge_episode(ep)
        if on_judged is not None:
            on_judged(ep, judge)
        yield ep


def _clean_episode(domain: DealershipDomain, scenario_type: str, seed: int | str = 3) -> dict[str, Any]:
    teacher = ScriptedTeacher(domain, FaultConfig(rate=0.0))
    sc = domain.make_scenario(scenario_type, seed)
    return run_episode(f"clean-{scenario_type}", sc, MAS(domain, teacher), ScriptedUser(sc, domain.fallback_reply),
                       teacher)


# ------------------------------------------------------------------------------------ the measurement

def test_judge_flags_injected_faults_and_passes_clean_episodes(judge_domain):
    eps = list(_episodes(judge_domain, FaultConfig(rate=0.05, seed=1), N_EPISODES))
    injected = [c for ep in eps for c in ep["calls"] if c.get("injected")]
    flagged = [c for c in injected if not c["verdict"]["correct"]]
    clean = [ep for ep in eps if not any(c.get("injected") for c in ep["calls"])]
    clean_pass = [ep for ep in clean if ep["judgement"]["pass"]]
    flag_rate, pass_rate = len(flagged) / len(injected), len(clean_pass) / len(clean)
    by_kind = Counter(f"{c['agent']}/{c['injected']}" for c in injected)
    missed = Counter(f"{c['agent']}/{c['injected']}" for c in injected if c["verdict"]["correct"])
    print(f"\n[judge measurement, rate 0.05 seed 1, {len(eps)} episodes] injected faults {len(injected)}, "
          f"flagged {len(flagged)} ({flag_rate:.1%}); clean episodes {len(clean)}, passed {len(clean_pass)} "
          f"({pass_rate:.1%}); by kind {dict(sorted(by_kind.items()))}; missed {dict(missed)}")
    assert len(injected) >= 50 and len(clean) >= 100  # the measurement has enough of both
    assert flag_rate >= 0.95
    assert pass_rate >= 0.99
    # the episode-level counters agree with the per-call verdicts
    assert sum(ep["judgement"]["injected"] for ep in eps) == len(injected)
    assert sum(ep["judgement"]["injected_flagged"] for ep in eps) == len(flagged)
    assert all(ep["stats"]["injected"] == ep["judgement"]["injected"] for ep in eps)
    # without an injected fault no call is blamed
    assert all(ep["judgement"]["calls_wrong"] == 0 for ep in clean)


def test_clean_teacher_passes(judge_domain):
    eps = list(_episodes(judge_domain, FaultConfig(rate=0.0, seed=1), N_EPISODES))
    passed = sum(ep["judgement"]["pass"] for ep in eps)
    wrong_calls = sum(ep["judgement"]["calls_wrong"] for ep in eps)
    print(f"\n[judge measurement, rate 0.0, {len(eps)} episodes] passed {passed} ({passed / len(eps):.1%}), "
          f"wrong calls {wrong_calls}")
    assert passed / len(eps) >= 0.99
    assert wrong_calls == 0
    assert all(ep["judgement"]["injected"] == 0 for ep in eps)


# ----------------------------------------------------------------------------- fault kinds and y*

def _check_refinements(ep: dict[str, Any], judge: Judge, domain: DealershipDomain, counts: Counter) -> None:
    """For every wrong call: refined is the reference output, and judged as the call's own output it is correct."""
    reference = ScriptedTeacher(domain)  # independent of the judge's own teacher
    reference.set_oracle({t["user"].strip(): t["annotation"] for t in ep["turns"] if t.get("annotation")})
    for call in ep["calls"]:
        if call["verdict"]["correct"]:
            assert "refined" not in call
            continue
        counts[call["agent"]] += 1
        refined = call["refined"]
        _, ref_text, ref_calls = reference.reference(call["messages"])
        assert refined["completion"] == ref_text
        if call["agent"] == "executor":
            assert refined["tool_calls"] == [tc.to_openai() for tc in ref_calls]
        else:
            assert "tool_calls" not in refined
        fixed = {**call, "completion": refined["completion"], "tool_calls": refined.get("tool_calls") or []}
        fixed.pop("verdict")
        fixed.pop("refined")
        fixed["malformed"] = None  # the refined output is well-formed by construction
        verdict = judge.judge_call(fixed)
        assert verdict["correct"], (call["agent"], verdict["reason"])
        assert verdict["reason"] == ""
        assert call["verdict"]["reason"]  # a wrong call says why


def test_every_fault_kind_is_produced_and_flagged(judge_domain):
    wanted = {(role, kind) for role, kinds in judge_domain.fault_kinds.items() for kind in kinds}
    seen: Counter = Counter()
    flagged: Counter = Counter()
    refined_by_agent: Counter = Counter()
    n = 0

    def check(ep, judge):
        _check_refinements(ep, judge, judge_domain, refined_by_agent)

    for ep in _episodes(judge_domain, FaultConfig(rate=0.5, seed=7), 700, on_judged=check):
        n += 1
        for c in ep["calls"]:
            if c.get("injected"):
                seen[(c["agent"], c["injected"])] += 1
                flagged[(c["agent"], c["injected"])] += 0 if c["verdict"]["correct"] else 1
        if n >= 140 and wanted <= set(seen):
            break
    print(f"\n[fault kinds, rate 0.5, {n} episodes] {dict(sorted(seen.items()))}; "
          f"refined wrong calls by agent {dict(refined_by_agent)}")
    assert wanted == set(seen), f"never injected: {sorted(wanted - set(seen))}"
    assert flagged == seen, {k: (flagged[k], seen[k]) for k in seen if flagged[k] != seen[k]}
    assert set(refined_by_agent) == set(judge_domain.fault_kinds)


@pytest.mark.parametrize("kind", sorted({k for kinds in DealershipDomain.fault_kinds.values() for k in kinds}))
def test_each_fault_kind_alone_is_flagged(judge_domain, kind):
    """Forcing one kind with `mix`: every call it corrupts is flagged, and the episode does not pass silently."""
    types = {"missed_rule": ["complaint", "negotiation", "financing_options"],
             "skipped_identity_check": ["book_test_drive", "list_bookings"],
             "premature_booking": ["book_test_drive"], "hallucinated_vehicle": ["vehicle_details"],
             "wrong_verdict": ["book_test_drive"], "sloppy_reply": ["dealer_hours"]}.get(
        kind, ["book_test_drive", "trade_in_estimate"])
    teacher = ScriptedTeacher(judge_domain, FaultConfig(rate=1.0, seed=3, mix={kind: 1.0}))
    mas, judge = MAS(judge_domain, teacher), Judge(judge_domain)
    injected = 0
    for i, st in enumerate(types * 2):
        sc = judge_domain.make_scenario(st, f"kind:{i}")
        ep = run_episode(f"kind-{i}", sc, mas, ScriptedUser(sc, judge_domain.fallback_reply), teacher)
        j = judge.judge_episode(ep)
        calls = [c for c in ep["calls"] if c.get("injected")]
        assert all(c["injected"] == kind for c in calls)
        assert all(not c["verdict"]["correct"] for c in calls)
        assert j["injected_flagged"] == j["injected"] == len(calls)
        injected += len(calls)
    assert injected > 0


# ------------------------------------------------------------------------------------ episode scores

def test_clean_episodes_pass(judge_domain):
    judge = Judge(judge_domain)
    for st in ("book_test_drive", "dealer_hours", "negotiation"):
        ep = _clean_episode(judge_domain, st)
        j = judge.judge_episode(ep)
        assert j["pass"] and j["end_state"] and j["missing_outputs"] == [] and j["violations"] == []


def _booking(ep: dict[str, Any]) -> dict[str, Any]:
    return next(a for t in ep["turns"] for a in t["actions"] if a["name"] == "book_test_drive")


def test_changed_booking_time_fails_end_state(judge_domain):
    ep = _clean_episode(judge_domain, "book_test_drive")
    booking = _booking(ep)
    date, time = booking["arguments"]["start"].split("T")
    slots = judge_domain.new_world().call_tool("list_test_drive_slots",
                                               {"stock_no": booking["arguments"]["stock_no"], "date": date})
    other = next(s for s in slots["result"]["slots"] if s != time)
    booking["arguments"]["start"] = f"{date}T{other}"
    # keep the record self-consistent: results and world hash are those of the tampered run
    world = judge_domain.new_world()
    for t in ep["turns"]:
        for a in t["actions"]:
            a["result"] = world.call_tool(a["name"], a["arguments"])
    ep["world_hash"] = world.state_hash()
    assert _booking(ep)["result"]["ok"]

    j = Judge(judge_domain).judge_episode(ep)
    assert j["end_state"] is False and j["pass"] is False
    assert j["replay_mismatch"] is False
    assert "R10" in {v["rule_id"] for v in j["violations"]}  # not the time the customer chose


def test_missing_booking_fails_end_state(judge_domain):
    ep = _clean_episode(judge_domain, "book_test_drive")
    for t in ep["turns"]:
        t["actions"] = [a for a in t["actions"] if a["name"] != "book_test_drive"]
    j = Judge(judge_domain).judge_episode(ep)
    assert j["end_state"] is False and j["pass"] is False


def test_missing_required_output_is_listed(judge_domain):
    seed = next(s for s in range(50) if len(judge_domain.make_scenario("dealer_hours", s).required_outputs) >= 2)
    ep = _clean_episode(judge_domain, "dealer_hours", seed)  # one with a follow-up question: two outputs
    required = ep["scenario"]["required_outputs"]
    gone = required[0]
    for t in ep["turns"]:
        t["reply"] = t["reply"].replace(gone, "our usual address")
    j = Judge(judge_domain).judge_episode(ep)
    assert j["missing_outputs"] == [gone]
    assert j["end_state"] is True and j["pass"] is False


def test_required_output_match_ignores_case(judge_domain):
    ep = _clean_episode(judge_domain, "dealer_hours")
    for t in ep["turns"]:
        t["reply"] = t["reply"].upper()
    assert Judge(judge_domain).judge_episode(ep)["missing_outputs"] == []


def test_discount_promise_is_an_r3_violation_at_that_turn(judge_domain):
    ep = _clean_episode(judge_domain, "dealer_hours")
    turn = ep["turns"][1]
    turn["reply"] += " If you buy today I can give you a $500 discount."
    j = Judge(judge_domain).judge_episode(ep)
    assert j["pass"] is False and j["end_state"] is True
    r3 = [v for v in j["violations"] if v["rule_id"] == "R3"]
    assert [v["turn"] for v in r3] == [turn["turn"]]
    # the explainer of that turn is blamed (and only that one)
    wrong = [c for c in ep["calls"] if not c["verdict"]["correct"]]
    assert [(c["agent"], c["turn"]) for c in wrong] == [("explainer", turn["turn"])]
    assert "R3" in wrong[0]["verdict"]["reason"]
    assert wrong[0]["refined"]["completion"] == wrong[0]["completion"]  # y* is the clean reference reply


def test_rejudging_is_deterministic(judge_domain):
    eps = list(_episodes(judge_domain, FaultConfig(rate=0.2, seed=5), 35))
    judge = Judge(judge_domain)
    for ep in eps:
        once = copy.deepcopy(ep)
        twice = copy.deepcopy(ep)
        judge.judge_episode(once)
        judge.judge_episode(twice)
        assert once == twice
        assert once["judgement"] == ep["judgement"]  # same as the first judge's verdicts
        assert [c.get("verdict") for c in once["calls"]] == [c.get("verdict") for c in ep["calls"]]
        # judging an already-judged record again changes nothing
        judge.judge_episode(once)
        assert json.dumps(once, sort_keys=True, default=str) == json.dumps(twice, sort_keys=True, default=str)


def test_judge_call_flags_wrong_executor_arguments(judge_domain):
    ep = _clean_episode(judge_domain, "book_test_drive")
    judge = Judge(judge_domain)
    judge.judge_episode(ep)
    call = next(c for c in ep["calls"] if c["agent"] == "executor" and c["tool_calls"])
    tc = ToolCall.from_openai(call["tool_calls"][0])
    bad = {**call, "tool_calls": [ToolCall(tc.name, {**tc.arguments, "bogus": 1}, tc.id).to_openai()]}
    verdict = judge.judge_call(bad)
    assert not verdict["correct"] and re.search(r"called \w+", verdict["reason"])
    assert verdict["refined"]["tool_calls"] == call["tool_calls"]
    stopped = judge.judge_call({**call, "tool_calls": [], "completion": "DONE"})
    assert not stopped["correct"] and stopped["reason"].startswith("stopped before")


# ------------------------------------------------------------------- malformed calls are judged wrong

class BadModel:
    """The scripted teacher, except that `role`'s answers go through `fn(messages, completion)`."""

    def __init__(self, domain: DealershipDomain, role: str, fn: Any):
        self.teacher, self.role, self.fn, self.name = ScriptedTeacher(domain), role, fn, f"bad-{role}"

    def set_oracle(self, oracle: dict[str, dict[str, Any]]) -> None:
        self.teacher.set_oracle(oracle)

    def complete(self, messages: list[dict[str, Any]], tools: Any = None, **sampling: Any) -> Completion:
        comp = self.teacher.complete(messages, tools=tools, **sampling)
        return self.fn(messages, comp) if role_of(messages[0]["content"]) == self.role else comp


def _doubled(messages, comp):
    if not comp.tool_calls:
        return comp
    extra = ToolCall("escalate_to_human", {"reason": "other", "summary": "x"}, "call_extra")
    return Completion(tool_calls=[comp.tool_calls[0], extra])


def _chatty(messages, comp):
    return comp if comp.tool_calls else Completion(text="All finished, the hours are ready.")


def _moon(messages, comp):
    return Completion(tool_calls=[ToolCall("fly_to_moon", {}, "call_moon")]) if len(messages) == 2 else comp


def _never_done(messages, comp):
    return Completion(tool_calls=[ToolCall("get_dealer_info", {}, f"loop_{len(messages)}")])


def _say(value: str):
    return lambda messages, comp: Completion(text=value)


MALFORMED_CASES = [
    pytest.param("understander", _say("The customer wants our hours."), "dealer_hours", id="understander-prose"),
    pytest.param("planner", _say("x = = 1"), "dealer_hours", id="planner-unparseable"),
    pytest.param("evaluator", _say("Looks fine!"), "book_test_drive", id="evaluator-prose"),
    pytest.param("executor", _moon, "dealer_hours", id="executor-unknown-tool"),
    pytest.param("executor", _never_done, "dealer_hours", id="executor-step-limit"),
    pytest.param("executor", _doubled, "dealer_hours", id="executor-two-tool-calls"),
    pytest.param("executor", _chatty, "dealer_hours", id="executor-prose-instead-of-DONE"),
    pytest.param("explainer", _say(""), "dealer_hours", id="explainer-empty"),
]


@pytest.mark.parametrize("role, fn, scenario_type", MALFORMED_CASES)
def test_malformed_calls_are_judged_wrong(judge_domain, role, fn, scenario_type):
    """A call the runtime records as malformed must never be judged correct: its own output would then be a
    training target. The judge must also survive judging such episodes."""
    backend = BadModel(judge_domain, role, fn)
    sc = judge_domain.make_scenario(scenario_type, 3)
    ep = run_episode("bad", sc, MAS(judge_domain, backend), ScriptedUser(sc, judge_domain.fallback_reply), backend)
    Judge(judge_domain).judge_episode(ep)
    tools = judge_domain.tool_names()
    malformed = [c for c in ep["calls"] if c["malformed"]  # (the runtime does not flag unknown tools yet)
                 or any(tc["function"]["name"] not in tools for tc in c.get("tool_calls") or [])]
    assert malformed and all(c["agent"] == role for c in malformed)
    for c in malformed:
        assert not c["verdict"]["correct"], (c["turn"], c["malformed"], c["completion"], c.get("tool_calls"))
        assert "refined" in c
