"""The five-role MAS runtime: clean episodes, trace records, prompts, the conditional evaluator, bounded
replanning and robustness against malformed model output.

"Bad models" are small hand-written backends that wrap the scripted teacher and replace one role's answer.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

import pytest

from agentdistill.backends.scripted import FaultConfig, ScriptedTeacher
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.judge.judge import Judge
from agentdistill.mas.prompts import ROLE_INPUT_FIELDS, ROLES, focused_input, parse_input, role_of
from agentdistill.mas.runtime import MAS, MASConfig, Session, TurnResult
from agentdistill.simulate.episode import run_episode
from agentdistill.simulate.user import ScriptedUser
from agentdistill.types import Completion, ToolCall, approx_tokens

DESIGN_FIELDS = ("episode_id", "turn", "agent", "messages", "completion", "latency_s", "tokens_in", "tokens_out")
BOOKING_UTTERANCE_TYPE = "book_test_drive"  # turn 2 of this scenario books a test drive with identity given


@pytest.fixture(scope="module")
def mas_domain() -> DealershipDomain:
    return DealershipDomain()


@pytest.fixture(scope="module")
def mas_clean_episodes(mas_domain):
    """One clean, judged episode of every scenario type."""
    teacher = ScriptedTeacher(mas_domain, FaultConfig(rate=0.0))
    mas, judge = MAS(mas_domain, teacher), Judge(mas_domain)
    episodes = []
    for st in mas_domain.scenario_types():
        sc = mas_domain.make_scenario(st.name, 3)
        ep = run_episode(f"ep-{st.name}", sc, mas, ScriptedUser(sc, mas_domain.fallback_reply), teacher)
        judge.judge_episode(ep)
        episodes.append(ep)
    return episodes


# ------------------------------------------------------------------------------------------ helpers

class Sabotage:
    """A bad model: the scripted teacher, except that `role`'s answers go through `fn(messages, completion)`."""

    def __init__(self, teacher: ScriptedTeacher, role: str, fn: Callable[[list[dict], Completion], Completion]):
        self.teacher, self.role, self.fn = teacher, role, fn
        self.name = f"sabotage-{role}"
        self.seen: list[str] = []

    def set_oracle(self, oracle: dict[str, dict[str, Any]]) -> None:
        self.teacher.set_oracle(oracle)

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 **sampling: Any) -> Completion:
        comp = self.teacher.complete(messages, tools=tools, **sampling)
        role = role_of(messages[0]["content"])
        self.seen.append(role)
        return self.fn(messages, comp) if role == self.role else comp


def text(value: str) -> Callable[[list[dict], Completion], Completion]:
    return lambda messages, comp: Completion(text=value, model="bad")


def start(domain: DealershipDomain, backend: Any, config: MASConfig | None = None) -> tuple[MAS, Session, dict]:
    mas = MAS(domain, backend, config)
    oracle: dict[str, dict[str, Any]] = {}
    backend.set_oracle(oracle)
    return mas, mas.new_session(), oracle


def say(mas: MAS, session: Session, oracle: dict, scenario: Any, index: int) -> TurnResult:
    """Run the scenario's `index`-th scripted utterance as the next turn (the teacher reads it via the oracle)."""
    turn = scenario.turns[index]
    oracle[turn.text.strip()] = {"intents": turn.intents, "entities": turn.entities}
    return mas.run_turn(session, turn.text)


def replayed_hash(domain: DealershipDomain, session: Session) -> str:
    """The state hash of a fresh world after replaying the session's recorded actions."""
    world = domain.new_world()
    for a in session.actions:
        assert world.call_tool(a.name, a.arguments) == a.result
    return world.state_hash()


def agents(result: TurnResult) -> list[str]:
    return [c["agent"] for c in result.calls]


# -------------------------------------------------------------------------------------- clean runs

def test_clean_teacher_passes_every_scenario_type(mas_clean_episodes, mas_domain):
    assert len(mas_clean_episodes) == len(mas_domain.scenario_types())
    for ep in mas_clean_episodes:
        j = ep["judgement"]
        assert j["pass"], (ep["scenario"]["scenario_type"], j)
        assert j["end_state"] and not j["missing_outputs"] and not j["violations"]
        assert not j["replay_mismatch"]
        assert j["calls_wrong"] == 0
        assert all(c["verdict"]["correct"] for c in ep["calls"])
        assert not any("refined" in c for c in ep["calls"])
        assert ep["stats"]["malformed"] == 0 and ep["stats"]["fallbacks"] == 0 and ep["stats"]["injected"] == 0
        assert ep["exit"] == "exit"


def test_trace_records_have_design_fields(mas_clean_episodes, mas_domain):
    schemas = [t.openai_schema() for t in mas_domain.tools()]
    for ep in mas_clean_episodes:
        for i, call in enumerate(ep["calls"]):
            for key in DESIGN_FIELDS:
                assert key in call, (key, call["agent"])
            assert call["episode_id"] == ep["episode_id"] and call["call_index"] == i
            assert call["agent"] in ROLES
            assert isinstance(call["completion"], str)
            assert isinstance(call["tokens_in"], int) and call["tokens_in"] > 0
            assert isinstance(call["tokens_out"], int) and call["latency_s"] >= 0
            msgs = call["messages"]
            assert msgs[0]["role"] == "system" and role_of(msgs[0]["content"]) == call["agent"]
            assert msgs[1]["role"] == "user"
            json.dumps(call)  # a trace record is plain JSON
            if call["agent"] != "executor":
                assert "tools" not in call and "tool_calls" not in call
                continue
            assert call["tools"] == schemas
            for tc in call["tool_calls"]:
                assert set(tc) == {"id", "type", "function"} and tc["type"] == "function"
                assert set(tc["function"]) == {"name", "arguments"}
                assert tc["function"]["name"] in mas_domain.tool_names()
                assert isinstance(json.loads(tc["function"]["arguments"]), dict)
            # earlier steps of this turn are fed back as assistant tool_calls + tool results (OpenAI format)
            for m in msgs[2:]:
                assert m["role"] in ("assistant", "tool")
                if m["role"] == "tool":
                    assert m["tool_call_id"] and isinstance(json.loads(m["content"]), dict)
                else:
                    assert len(m["tool_calls"]) == 1


def test_agents_run_in_order_within_each_turn(mas_clean_episodes):
    order = re.compile(r"understander,planner(,evaluator)?(,executor)+,explainer")
    seen_evaluator = False
    for ep in mas_clean_episodes:
        turns = sorted({c["turn"] for c in ep["calls"]})
        assert turns == [t["turn"] for t in ep["turns"]]
        for turn in turns:
            seq = ",".join(c["agent"] for c in ep["calls"] if c["turn"] == turn)
            assert order.fullmatch(seq), seq
            seen_evaluator |= "evaluator" in seq
        # executor calls of a turn = tool calls executed + the final DONE
        for t in ep["turns"]:
            execs = [c for c in ep["calls"] if c["turn"] == t["turn"] and c["agent"] == "executor"]
            assert len(execs) == len(t["actions"]) + 1
            assert execs[-1]["completion"] == "DONE" and execs[-1]["tool_calls"] == []
    assert seen_evaluator


# ------------------------------------------------------------------------------------------ prompts

def test_prompts_share_a_long_prefix_and_name_their_role(mas_domain):
    mas = MAS(mas_domain, ScriptedTeacher(mas_domain))
    system = mas.prompts.system
    assert set(system) == set(ROLES)
    prefix = os.path.commonprefix([system[r] for r in ROLES])
    assert approx_tokens(prefix) >= 1000
    assert approx_tokens(system["planner"]) >= 1000
    for role in ROLES:
        assert role_of(system[role]) == role
        assert system[role].startswith(prefix)
    assert len({mas.prompts.prompt_id(r) for r in ROLES}) == len(ROLES)
    # the shared prefix carries the facts, the policy and every tool
    for name in mas_domain.tool_names():
        assert f'"{name}"' in prefix


def test_compact_prompts_name_role_policy_and_the_domain_derived_view(mas_domain):
    """Short prompts: role, policy version and the role's view (tool signatures or intents) from the Domain,
    within the view budget; the Explainer gets no view."""
    from agentdistill.mas.views import VIEW_CHAR_BUDGET, role_view, tool_signature

    mas = MAS(mas_domain, ScriptedTeacher(mas_domain), MASConfig(prompt_style="compact"))
    for role in ROLES:
        text = mas.prompts.system[role]
        assert role_of(text) == role and "Policy version: v1" in text
        assert len(role_view(mas_domain, role)) <= VIEW_CHAR_BUDGET
    for role in ("planner", "executor", "evaluator"):
        for tool in mas_domain.tools():
            assert tool_signature(tool.name, tool.parameters) in mas.prompts.system[role]
    assert "get_vehicle(stock_no)" in mas.prompts.system["planner"]
    assert "search_inventory(make?," in mas.prompts.system["planner"]
    assert all(i.name in mas.prompts.system["understander"] for i in mas_domain.intents())
    assert "book_test_drive(stock_no, date, time)" in mas.prompts.system["understander"]
    assert approx_tokens(mas.prompts.system["explainer"]) < 30
    with pytest.raises(ValueError, match="prompt style"):
        MAS(mas_domain, ScriptedTeacher(mas_domain), MASConfig(prompt_style="short"))


def test_focused_inputs_are_the_roles_own_fields_and_lose_nothing(mas_domain, mas_clean_episodes):
    """Compact style sends each role only its ROLE_INPUT_FIELDS, `focused_input` turns a full input into the
    compact one byte for byte, and the reference answers every call of every scenario type exactly as it does
    on full inputs (each role's output is a function of its own fields)."""
    teacher = ScriptedTeacher(mas_domain, FaultConfig(rate=0.0))
    mas = MAS(mas_domain, teacher, MASConfig(prompt_style="focused"))
    dropped = set()
    for full in mas_clean_episodes:
        sc = mas_domain.make_scenario(full["scenario"]["scenario_type"], 3)  # as the fixture made it
        ep = run_episode(full["episode_id"], sc, mas, ScriptedUser(sc, mas_domain.fallback_reply), teacher)
        assert [t["reply"] for t in ep["turns"]] == [t["reply"] for t in full["turns"]], full["episode_id"]
        assert len(ep["calls"]) == len(full["calls"])
        for c, f in zip(ep["calls"], full["calls"], strict=True):
            assert (c["agent"], c["completion"], c.get("tool_calls")) == (f["agent"], f["completion"], f.get("tool_calls"))
            sent, whole = parse_input(c["messages"][1]["content"]), parse_input(f["messages"][1]["content"])
            assert set(sent) <= set(ROLE_INPUT_FIELDS[c["agent"]])
            assert focused_input(c["agent"], f["messages"][1]["content"]) == c["messages"][1]["content"]
            assert c["messages"][2:] == f["messages"][2:]  # executor tool turns are the protocol: untouched
            dropped |= set(whole) - set(sent)
    assert {"history", "halstead"} <= dropped
    assert focused_input("planner", "Hello there") == "Hello there"


# ----------------------------------------------------------------------------- conditional evaluator

def _planner_evaluator_pairs(calls: list[dict]) -> list[tuple[dict, dict | None]]:
    out = []
    for i, c in enumerate(calls):
        if c["agent"] == "planner":
            nxt = calls[i + 1] if i + 1 < len(calls) and calls[i + 1]["agent"] == "evaluator" else None
            out.append((c, nxt))
    return out


@pytest.mark.parametrize("threshold, expect", [(0.0, "always"), (1e12, "never")])
def test_evaluator_threshold_extremes(mas_domain, threshold, expect):
    teacher = ScriptedTeacher(mas_domain, FaultConfig(rate=0.0))
    mas = MAS(mas_domain, teacher, MASConfig(halstead_threshold=threshold))
    pairs = []
    for name in ("dealer_hours", "book_test_drive", "complaint", "off_topic"):
        sc = mas_domain.make_scenario(name, 5)
        ep = run_episode(f"thr-{name}", sc, mas, ScriptedUser(sc, mas_domain.fallback_reply), teacher)
        pairs += _planner_evaluator_pairs(ep["calls"])
    assert pairs
    for planner, evaluator in pairs:
        assert not planner.get("rule_violations") and not planner["malformed"]
        assert planner["halstead"]["volume"] > 0
        if expect == "always":
            assert evaluator is not None and evaluator["attempt"] == planner["attempt"]
            payload = json.loads(evaluator["messages"][1]["content"].split("```json\n", 1)[1].rsplit("\n```", 1)[0])
            assert payload["plan"] and payload["halstead"] == planner["halstead"]
        else:
            assert evaluator is None


def test_default_threshold_skips_lookups_and_reviews_bookings(mas_domain):
    teacher = ScriptedTeacher(mas_domain, FaultConfig(rate=0.0))
    threshold = MASConfig().halstead_threshold
    mas, session, oracle = start(mas_domain, teacher)
    hours = mas_domain.make_scenario("dealer_hours", 3)
    lookup = say(mas, session, oracle, hours, 1)  # "Where is Northside Auto and when are you open?"
    assert agents(lookup) == ["understander", "planner", "executor", "executor", "explainer"]
    assert lookup.calls[1]["halstead"]["volume"] <= threshold
    assert [a.name for a in lookup.actions] == ["get_dealer_info"]

    mas, session, oracle = start(mas_domain, teacher)
    booking = say(mas, session, oracle, mas_domain.make_scenario(BOOKING_UTTERANCE_TYPE, 3), 1)
    assert agents(booking)[:3] == ["understander", "planner", "evaluator"]
    assert booking.calls[1]["halstead"]["volume"] > threshold
    assert json.loads(booking.calls[2]["completion"])["verdict"] == "approve"
    assert "book_test_drive" in [a.name for a in booking.actions]
    assert booking.fallback is None


# ------------------------------------------------------------------------------------ replanning

def _sold_stock(domain: DealershipDomain) -> str:
    return domain.new_world().query("SELECT stock_no FROM vehicles WHERE status = 'sold' ORDER BY stock_no")[0][
        "stock_no"]


BAD_PLANS = {
    # books a sold vehicle, unverified, at a time nobody asked for
    "sold_vehicle": 'b = book_test_drive(customer_id="C1001", stock_no="{sold}", start="2026-12-03T11:00")\n'
                    'reply(topics=["booking_confirmed"])',
    # a real write first (it succeeds in the sandbox), then an invented vehicle
    "invented_vehicle": 't = escalate_to_human(reason="other", summary="nothing")\n'
                        'd = get_vehicle(stock_no="A9999")\nreply(topics=["vehicle_details"])',
}


@pytest.mark.parametrize("kind", sorted(BAD_PLANS))
@pytest.mark.parametrize("max_replans", [0, 2, 4])
def test_replanning_is_bounded(mas_domain, kind, max_replans):
    bad = BAD_PLANS[kind].format(sold=_sold_stock(mas_domain))
    backend = Sabotage(ScriptedTeacher(mas_domain), "planner", text(bad))
    mas, session, oracle = start(mas_domain, backend, MASConfig(max_replans=max_replans))
    before = session.world.state_hash()
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)

    planners = [c for c in result.calls if c["agent"] == "planner"]
    assert len(planners) == max_replans + 1
    assert [c["attempt"] for c in planners] == list(range(max_replans + 1))
    assert agents(result) == ["understander"] + ["planner"] * (max_replans + 1)  # no evaluator, no executor
    for c in planners:
        assert c["rule_violations"] and c["malformed"] is None
    rule_ids = {v["rule_id"] for v in planners[0]["rule_violations"]}
    assert ("R4" in rule_ids and "R1" in rule_ids) if kind == "sold_vehicle" else rule_ids == {"R11"}
    # every retry is told why the last plan was rejected
    for c in planners[1:]:
        payload = json.loads(c["messages"][1]["content"].split("```json\n", 1)[1].rsplit("\n```", 1)[0])
        assert payload["feedback"].startswith("rule check failed:") and payload["previous_plan"] == bad
    assert result.fallback == "replanning_exhausted"
    assert result.reply == mas_domain.fallback_reply
    assert result.actions == [] and session.actions == []
    assert session.world.state_hash() == before == mas_domain.new_world().state_hash()
    assert session.conversation[-1] == {"role": "assistant", "content": mas_domain.fallback_reply}


def test_rejected_dry_run_leaves_world_untouched_then_recovers(mas_domain):
    """A rejected plan whose write succeeded in the sandbox changes nothing; the next (good) plan runs."""
    bad = BAD_PLANS["invented_vehicle"]
    teacher = ScriptedTeacher(mas_domain)
    calls = {"n": 0}

    def first_bad(messages, comp):
        calls["n"] += 1
        return Completion(text=bad) if calls["n"] == 1 else comp

    mas, session, oracle = start(mas_domain, Sabotage(teacher, "planner", first_bad))
    before = session.world.state_hash()
    escalations = session.world.query("SELECT COUNT(*) AS n FROM escalations")[0]["n"]
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    assert agents(result) == ["understander", "planner", "planner", "executor", "executor", "explainer"]
    assert result.calls[1]["rule_violations"] and not result.calls[2].get("rule_violations")
    assert result.fallback is None and [a.name for a in result.actions] == ["get_dealer_info"]
    assert session.world.query("SELECT COUNT(*) AS n FROM escalations")[0]["n"] == escalations
    assert session.world.state_hash() == before


# ------------------------------------------------------------------------------- malformed output

def test_understander_non_json(mas_domain):
    backend = Sabotage(ScriptedTeacher(mas_domain), "understander", text("Sure! The customer wants hours."))
    mas, session, oracle = start(mas_domain, backend)
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    assert agents(result) == ["understander"]
    assert result.calls[0]["malformed"] == "invalid_json"
    assert result.fallback == "understander_malformed" and result.reply == mas_domain.fallback_reply
    assert session.actions == [] and session.known_entities == {}


@pytest.mark.parametrize("bad", ['{"intents": "dealer_info"}', '{"intents": ["x"], "entities": [1]}', "[]", ""])
def test_understander_wrong_shape(mas_domain, bad):
    backend = Sabotage(ScriptedTeacher(mas_domain), "understander", text(bad))
    mas, session, oracle = start(mas_domain, backend)
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    assert result.calls[0]["malformed"] == "invalid_json"
    assert result.fallback == "understander_malformed" and result.reply == mas_domain.fallback_reply


def test_unparseable_plan(mas_domain):
    backend = Sabotage(ScriptedTeacher(mas_domain), "planner", text("import os\nos.system('rm -rf /')"))
    mas, session, oracle = start(mas_domain, backend)
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    planners = [c for c in result.calls if c["agent"] == "planner"]
    assert len(planners) == MASConfig().max_replans + 1
    assert all(c["malformed"] == "plan_parse_error" for c in planners)
    payload = json.loads(planners[1]["messages"][1]["content"].split("```json\n", 1)[1].rsplit("\n```", 1)[0])
    assert payload["feedback"].startswith("the plan does not parse")
    assert result.fallback == "replanning_exhausted" and result.reply == mas_domain.fallback_reply
    assert session.actions == []


def test_unparseable_plan_once_then_recovers(mas_domain):
    teacher = ScriptedTeacher(mas_domain)
    n = {"planner": 0}

    def once(messages, comp):
        n["planner"] += 1
        return Completion(text="while True: pass") if n["planner"] == 1 else comp

    mas, session, oracle = start(mas_domain, Sabotage(teacher, "planner", once))
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    assert [c["malformed"] for c in result.calls if c["agent"] == "planner"] == ["plan_parse_error", None]
    assert result.fallback is None and [a.name for a in result.actions] == ["get_dealer_info"]
    assert "4550 N Grand Avenue" in result.reply


def _first_step_unknown_tool(messages, comp):
    if len(messages) == 2:  # the first executor step of the turn
        return Completion(tool_calls=[ToolCall("fly_to_moon", {"destination": "moon"}, "call_moon")])
    return comp


def test_executor_unknown_tool_is_fed_back_as_error(mas_domain):
    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "executor",
                                                      _first_step_unknown_tool))
    before = session.world.state_hash()
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    assert result.actions[0].name == "fly_to_moon"
    err = result.actions[0].result
    assert err["ok"] is False and err["error"]["code"] == "unknown_tool"
    execs = [c for c in result.calls if c["agent"] == "executor"]
    assert execs[0]["tool_calls"][0]["function"]["name"] == "fly_to_moon"
    # the error is the tool message of the next executor step
    fed = execs[1]["messages"][2:]
    assert fed[0]["role"] == "assistant" and fed[0]["tool_calls"][0]["id"] == "call_moon"
    assert fed[1] == {"role": "tool", "tool_call_id": "call_moon", "content": json.dumps(err, sort_keys=True)}
    assert result.reply and result.calls[-1]["agent"] == "explainer"
    assert session.world.state_hash() == before == replayed_hash(mas_domain, session)


def test_executor_unknown_tool_is_recorded_malformed(mas_domain):
    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "executor",
                                                      _first_step_unknown_tool))
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    first = next(c for c in result.calls if c["agent"] == "executor")
    assert first["malformed"]


def test_executor_multiple_tool_calls_runs_only_the_first(mas_domain):
    def doubled(messages, comp):
        if not comp.tool_calls:
            return comp
        tc = comp.tool_calls[0]
        return Completion(tool_calls=[tc, ToolCall("escalate_to_human", {"reason": "other", "summary": "x"},
                                                   "call_extra")])

    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "executor", doubled))
    before = session.world.state_hash()
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    execs = [c for c in result.calls if c["agent"] == "executor"]
    assert execs[0]["malformed"] == "multiple_tool_calls" and len(execs[0]["tool_calls"]) == 2
    assert execs[-1]["malformed"] is None
    assert [a.name for a in result.actions] == ["get_dealer_info"]  # the extra escalation never ran
    assert len(execs[1]["messages"][2]["tool_calls"]) == 1
    assert session.world.state_hash() == before
    assert result.fallback is None and "4550 N Grand Avenue" in result.reply


def test_empty_explainer_reply(mas_domain):
    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "explainer", text("  \n ")))
    sc = mas_domain.make_scenario(BOOKING_UTTERANCE_TYPE, 3)
    result = say(mas, session, oracle, sc, 1)
    assert result.calls[-1]["agent"] == "explainer" and result.calls[-1]["malformed"] == "empty_reply"
    assert result.fallback == "empty_reply" and result.reply == mas_domain.fallback_reply
    # the booking itself happened and is consistent with the recorded actions
    assert "book_test_drive" in [a.name for a in result.actions]
    assert session.actions == result.actions
    assert session.world.state_hash() == replayed_hash(mas_domain, session)
    assert session.conversation[-1]["content"] == mas_domain.fallback_reply


def test_evaluator_not_json_still_runs_the_checked_plan(mas_domain):
    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "evaluator",
                                                      text("Looks fine to me!")))
    result = say(mas, session, oracle, mas_domain.make_scenario(BOOKING_UTTERANCE_TYPE, 3), 1)
    evals = [c for c in result.calls if c["agent"] == "evaluator"]
    assert len(evals) == 1 and evals[0]["malformed"] == "invalid_json"
    assert [c["agent"] for c in result.calls].count("planner") == 1
    assert result.fallback is None and "book_test_drive" in [a.name for a in result.actions]
    assert re.search(r"TD\d{4}", result.reply)


def test_evaluator_always_rejecting_exhausts_replanning(mas_domain):
    reject = text(json.dumps({"verdict": "reject", "feedback": "no"}))
    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "evaluator", reject))
    result = say(mas, session, oracle, mas_domain.make_scenario(BOOKING_UTTERANCE_TYPE, 3), 1)
    assert agents(result)[1:] == ["planner", "evaluator"] * (MASConfig().max_replans + 1)
    assert result.fallback == "replanning_exhausted" and session.actions == []


def test_executor_step_limit(mas_domain):
    def never_done(messages, comp):
        n = sum(1 for m in messages if m["role"] == "tool")
        return Completion(tool_calls=[ToolCall("get_dealer_info", {}, f"loop_{n}")])

    cfg = MASConfig(max_executor_steps=5)
    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "executor", never_done), cfg)
    before = session.world.state_hash()
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    execs = [c for c in result.calls if c["agent"] == "executor"]
    assert len(execs) == cfg.max_executor_steps + 1
    assert [c["malformed"] for c in execs] == [None] * cfg.max_executor_steps + ["executor_step_limit"]
    assert len(result.actions) == cfg.max_executor_steps  # the over-limit call is not executed
    assert result.calls[-1]["agent"] == "explainer" and result.reply
    assert session.world.state_hash() == before == replayed_hash(mas_domain, session)


def test_executor_chatter_instead_of_done(mas_domain):
    def chatty(messages, comp):
        return comp if comp.tool_calls else Completion(text="All finished, the hours are ready.")

    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "executor", chatty))
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    execs = [c for c in result.calls if c["agent"] == "executor"]
    assert execs[-1]["malformed"] == "no_tool_call_or_done"
    assert result.fallback is None and "4550 N Grand Avenue" in result.reply


def test_executor_bad_arguments_never_crash(mas_domain):
    def garbage(messages, comp):
        if not comp.tool_calls:
            return comp
        raw = {"id": "call_raw", "type": "function", "function": {"name": "get_dealer_info", "arguments": "{oops"}}
        return Completion(tool_calls=[ToolCall.from_openai(raw)])

    mas, session, oracle = start(mas_domain, Sabotage(ScriptedTeacher(mas_domain), "executor", garbage),
                                 MASConfig(max_executor_steps=3))
    result = say(mas, session, oracle, mas_domain.make_scenario("dealer_hours", 3), 1)
    assert result.actions and all(a.result["ok"] is False for a in result.actions)
    assert result.reply and result.calls[-1]["agent"] == "explainer"


def test_malformed_turns_do_not_break_the_conversation(mas_domain):
    """After a failed turn the next one works and the session memory is intact."""
    teacher = ScriptedTeacher(mas_domain)
    n = {"u": 0}

    def first_broken(messages, comp):
        n["u"] += 1
        return Completion(text="???") if n["u"] == 1 else comp

    mas, session, oracle = start(mas_domain, Sabotage(teacher, "understander", first_broken))
    sc = mas_domain.make_scenario(BOOKING_UTTERANCE_TYPE, 3)
    assert say(mas, session, oracle, sc, 1).fallback == "understander_malformed"
    again = say(mas, session, oracle, sc, 1)
    assert again.fallback is None and "book_test_drive" in [a.name for a in again.actions]
    assert session.turn == 2 and len(session.conversation) == 4
    assert session.known_entities["stock_no"] == sc.turns[1].entities["stock_no"]


def test_views_fall_back_to_names_then_a_cut_list_for_large_domains(mas_domain):
    from agentdistill.domain.base import ToolSpec
    from agentdistill.mas.views import VIEW_CHAR_BUDGET, tools_view

    class Big:
        def __init__(self, n: int, n_args: int):
            props = {f"argument_{j}": {"type": "string"} for j in range(n_args)}
            self._tools = [ToolSpec(f"tool_{i:03d}", "", {"type": "object", "properties": props}) for i in range(n)]

        def tools(self):
            return self._tools

    names_only = tools_view(Big(40, 8))
    assert "tool_039" in names_only and "argument_0" not in names_only and len(names_only) <= VIEW_CHAR_BUDGET
    cut = tools_view(Big(400, 1))
    assert len(cut) <= VIEW_CHAR_BUDGET and "; ..." in cut and cut.endswith("ask(missing, topics)")
