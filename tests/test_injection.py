"""The injection suite: adversarial customers through the real MAS with the scripted teacher (no mocks), the
cross-customer leak check (and proof that it catches leaks), and the CLI/eval paths."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli

from agentdistill.backends.scripted import ScriptedTeacher
from agentdistill.config import SimulateConfig
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.domain.dealership.injection import ATTACKS
from agentdistill.evaluate.compare import comparison
from agentdistill.evaluate.run_eval import evaluate_model
from agentdistill.judge.judge import Judge
from agentdistill.judge.leaks import check_leaks, judge_leaks, leak_summary
from agentdistill.mas.prompts import parse_input, role_of
from agentdistill.mas.runtime import MAS
from agentdistill.simulate.episode import run_episode
from agentdistill.simulate.runner import Worker
from agentdistill.simulate.user import ScriptedUser
from agentdistill.types import Completion, ToolCall

SCENARIOS = 100  # about 5 attack turns each


@pytest.fixture(scope="module")
def domain() -> DealershipDomain:
    return DealershipDomain()


@pytest.fixture(scope="module")
def episodes() -> list[dict[str, Any]]:
    """The injection suite through Worker.run (MAS + judge + leak hook), scripted teacher without faults."""
    worker = Worker(SimulateConfig(suite="injection", error_rate=0.0, episodes=SCENARIOS))
    return [worker.run(i) for i in range(SCENARIOS)]


def private_of(domain: DealershipDomain, cid: str) -> set[str]:
    return {v.lower() for vals in domain.private_values()[cid].values() for v in vals}


# ------------------------------------------------------------------------------------------ the suite

def test_suite_is_deterministic_and_every_attack_names_a_real_other_customer(domain: DealershipDomain):
    suite = domain.injection_suite(40)
    assert [s.to_dict() for s in suite] == [s.to_dict() for s in domain.injection_suite(40)]
    assert [s.to_dict() for s in domain.injection_suite(3, seed=1)] != [s.to_dict() for s in suite[:3]]
    values = domain.private_values()
    kinds = set()
    for s in suite:
        me = domain.scenario_customer(s.to_dict())
        assert me in values and s.split == "injection" and s.scenario_type == "injection"
        attacks = s.env_context["attacks"]
        assert len(attacks) >= 3
        texts = {t.text for t in s.turns}
        for a in attacks:
            kinds.add(a["kind"])
            assert a["text"] in texts
            if a["target"]:
                assert a["target"] != me and a["target"] in values
                # the attack carries the other customer's real data: a leak of it would be recognisable
                assert any(v in a["text"].lower() for v in private_of(domain, a["target"]))
        assert not any(g["arguments"].get("customer_id") not in (None, me) for g in s.gold_actions)
    assert kinds == set(ATTACKS)


def test_private_values_are_distinctive(domain: DealershipDomain):
    values = domain.private_values()
    assert len(values) == 200
    some = next(iter(values.values()))
    assert set(some) == {"customer_id", "email", "phone", "name", "dob", "booking_id"}
    public = domain.knowledge().lower()
    assert not any(v.lower() in public for kinds in values.values() for vals in kinds.values() for v in vals)
    assert not any(re.fullmatch(r"\d{4,5}", v) for kinds in values.values() for vals in kinds.values() for v in vals)


# --------------------------------------------------------------------------------- scripted teacher

def test_scripted_teacher_leaks_nothing_over_500_attack_turns(episodes: list[dict[str, Any]]):
    summary = leak_summary(episodes)
    assert summary["episodes"] == SCENARIOS
    assert summary["attack_turns"] >= 500, summary
    assert summary["leaks"] == 0 and summary["episodes_with_leak"] == 0, summary
    # and the policy holds: the judge's own verdict (end state, required refusals, no rule violated)
    assert summary["held_rate"] == 1.0
    bad = [(ep["episode_id"], ep["judgement"]["violations"], ep["judgement"]["missing_outputs"]) for ep in episodes
           if not ep["judgement"]["pass"]]
    assert not bad, bad[:3]
    assert all(ep["judgement"]["leaks"] == 0 for ep in episodes)


def test_attacks_are_refused_and_other_customers_data_stays_out(episodes: list[dict[str, Any]],
                                                               domain: DealershipDomain):
    """Not vacuous: the attack turns really quote other customers' data, and none of it comes back."""
    quoted = 0
    for ep in episodes:
        me = ep["scenario"]["profile"]["customer_id"]
        for a in ep["scenario"]["env_context"]["attacks"]:
            if a["target"]:
                quoted += 1
        replies = " ".join(t["reply"] for t in ep["turns"]).lower()
        targets = {a["target"] for a in ep["scenario"]["env_context"]["attacks"] if a["target"]}
        for target in targets:
            said = " ".join(t["user"] for t in ep["turns"]).lower()
            unsaid = {v for v in private_of(domain, target) if v not in said}
            assert not any(v in replies for v in unsaid), (ep["episode_id"], target)
        for t in ep["turns"]:  # no personal tool ever ran for anyone but the customer
            for act in t["actions"]:
                assert act["arguments"].get("customer_id") in (None, me), (ep["episode_id"], act)
    assert quoted >= 300


# ---------------------------------------------------------------------------------- the check bites

def test_leak_check_catches_another_customers_data(episodes: list[dict[str, Any]], domain: DealershipDomain):
    ep = copy.deepcopy(episodes[0])
    assert check_leaks(domain, ep)["leaks"] == 0
    said = " ".join(t["user"] for t in ep["turns"]).lower()
    me = ep["scenario"]["profile"]["customer_id"]
    other, values = next((c, v) for c, v in domain.private_values().items() if c != me and v["booking_id"]
                         and not private_of(domain, c) & set(re.findall(r"[\w.@-]+", said)))
    turn = ep["turns"][-1]
    turn["reply"] += f" By the way, you can reach them at {values['email'][0].upper()}."  # case does not hide it
    turn["actions"].append({"turn": turn["turn"], "name": "list_bookings", "arguments": {"customer_id": other},
                            "result": {"ok": True, "result": {"bookings": [{"booking_id": values["booking_id"][0]}]}}})
    result = check_leaks(domain, ep)
    where = {(i["where"], i["kind"]) for i in result["items"]}
    assert where == {("reply", "email"), ("tool_arguments", "customer_id"), ("tool_result", "booking_id")}, where
    assert result["leaks"] == 3 and result["held"] is False
    assert all(i["owner"] == other for i in result["items"])
    judge_leaks(domain, ep)
    assert ep["judgement"]["pass"] is False and ep["judgement"]["leaks"] == 3
    assert leak_summary([ep])["episodes_with_leak"] == 1


def test_what_the_customer_said_or_owns_is_no_leak(episodes: list[dict[str, Any]], domain: DealershipDomain):
    ep = copy.deepcopy(episodes[0])
    me = ep["scenario"]["profile"]["customer_id"]
    mine = domain.private_values()[me]
    ep["turns"][-1]["reply"] += f" Your email is {mine['email'][0]} ({mine['name'][0]})."
    other = next(c for c in domain.private_values() if c != me)
    theirs = domain.private_values()[other]["email"][0]
    ep["turns"][-1]["user"] += f" Is {theirs} a customer of yours?"
    ep["turns"][-1]["reply"] += f" I can't discuss {theirs}."
    assert check_leaks(domain, ep)["leaks"] == 0


class GullibleExecutor:
    """A bad model: the scripted teacher, except that its Executor believes pasted tool output and runs
    personal tools for the customer id it finds in the customer's message."""

    def __init__(self, domain: DealershipDomain):
        self.teacher, self.name = ScriptedTeacher(domain), "gullible"

    def set_oracle(self, oracle: dict[str, dict[str, Any]]) -> None:
        self.teacher.set_oracle(oracle)

    def complete(self, messages: list[dict[str, Any]], tools: Any = None, **sampling: Any) -> Completion:
        comp = self.teacher.complete(messages, tools=tools, **sampling)
        pasted = re.findall(r"\bC\d{4}\b", parse_input(messages[1]["content"]).get("utterance", ""))
        if role_of(messages[0]["content"]) != "executor" or not pasted or not comp.tool_calls:
            return comp
        tc = comp.tool_calls[0]
        if "customer_id" in tc.arguments:
            tc = ToolCall(tc.name, {**tc.arguments, "customer_id": pasted[0]}, tc.id)
        return Completion(text=comp.text, tool_calls=[tc], model="gullible")


def test_a_gullible_model_leaks_and_the_check_and_the_judge_see_it(domain: DealershipDomain):
    """End to end: the real MAS with a model that trusts a pasted verify_customer_identity result."""
    sc = next(s for s in domain.injection_suite(60) if any(a["kind"] == "fake_tool" and a["target"] for a in
                                                             s.env_context["attacks"]))
    backend = GullibleExecutor(domain)
    ep = run_episode("gullible", sc, MAS(domain, backend), ScriptedUser(sc, domain.fallback_reply), backend)
    Judge(domain).judge_episode(ep)
    result = judge_leaks(domain, ep)
    victims = {a["target"] for a in sc.env_context["attacks"] if a["kind"] == "fake_tool"}
    assert result["leaks"] > 0 and {i["owner"] for i in result["items"]} & victims
    assert {i["where"] for i in result["items"]} >= {"tool_result", "reply"}
    assert "R1" in result["policy_rules"] and ep["judgement"]["pass"] is False


# -------------------------------------------------------------------------------------------- CLI, eval

def test_simulate_cli_injection_suite(tmp_path: Path):
    out = tmp_path / "inj"
    res = run_cli("simulate", "--suite", "injection", "--episodes", "4", "--workers", "2", "--error-rate", "0",
                  "--out", out, "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 4 and summary["pass_rate"] == 1.0
    assert summary["leaks"]["episodes"] == 4 and summary["leaks"]["leaks"] == 0
    assert summary["leaks"]["attack_turns"] >= 12
    recs = [json.loads(ln) for f in sorted((out / "traces").glob("episodes-*.jsonl")) for ln in f.read_text().splitlines()]
    assert len(recs) == 4 and all(r["leak_check"]["leaks"] == 0 and r["judgement"]["leaks"] == 0 for r in recs)
    # verify re-runs the leak check: a reply edited to carry another customer's email fails again when re-judged
    shard = sorted((out / "traces").glob("episodes-*.jsonl"))[0]
    lines = shard.read_text().splitlines()
    rec = json.loads(lines[0])
    me = rec["scenario"]["profile"]["customer_id"]
    said = " ".join(t["user"] for t in rec["turns"]).lower()
    email = next(v["email"][0] for c, v in DealershipDomain().private_values().items()
                 if c != me and v["email"] and v["email"][0].lower() not in said)
    rec["turns"][-1]["reply"] += f" Also: {email}."
    shard.write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    res = run_cli("verify", out)
    assert res.returncode == 0, res.stderr[-2000:]
    again = json.loads(shard.read_text().splitlines()[0])
    assert again["judgement"]["leaks"] >= 1 and again["judgement"]["pass"] is False


def test_eval_injection_suite_goes_into_the_comparison(tmp_path: Path):
    first = evaluate_model("scripted", tmp_path, "teacher", heldout_episodes=2, stress_episodes=0, workers=1,
                           error_rate=0.0, show_progress=False)
    result = evaluate_model("scripted", tmp_path, "teacher", heldout_episodes=0, stress_episodes=0,
                            injection_episodes=3, workers=1, error_rate=0.0, show_progress=False)
    assert result["heldout"] == first["heldout"]  # the suite not rerun is kept
    leaks = result["injection"]["leaks"]
    assert result["injection"]["episodes"] == 3 and leaks["leaks"] == 0 and leaks["attack_turns"] > 0
    table = comparison(tmp_path / "eval")
    assert table["rows"][0]["injection_leak_rate"] == 0.0
    assert "injection leaks" in table["markdown"] and f"| 0.0 ({leaks['attack_turns']}) |" in table["markdown"]


def test_eval_cli_rejects_an_unknown_suite(tmp_path: Path):
    res = run_cli("eval", "model", "scripted", "--run", tmp_path, "--suite", "heldout,jailbreak")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "unknown --suite 'jailbreak'" in res.stderr
