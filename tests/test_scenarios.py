"""Tests for the dealership scenario catalogue and the 10-turn stress suite, generated on the real seeded world
and replayed on real world copies (no mocks)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from agentdistill.domain.base import Scenario, UserTurn
from agentdistill.domain.dealership import DealershipDomain, scenarios
from agentdistill.domain.dealership.policy import PERSONAL_TOOLS
from agentdistill.domain.rules import Action, RuleContext, check_action
from agentdistill.errors import UserError

SEEDS = range(5)
SPLITS = ("train", "heldout")


@pytest.fixture(scope="module")
def domain() -> DealershipDomain:
    return DealershipDomain()


@pytest.fixture(scope="module")
def intent_names(domain: DealershipDomain) -> set[str]:
    return {i.name for i in domain.intents()}


@pytest.fixture(scope="module")
def stress(domain: DealershipDomain) -> list[Scenario]:
    return domain.stress_suite(120)


TYPE_NAMES = [t.name for t in DealershipDomain().scenario_types()]


def replay(domain: DealershipDomain, sc: Scenario) -> tuple[str, str, list[dict[str, Any]]]:
    """Run the gold actions on a fresh world copy: (hash before, hash after, results)."""
    world = domain.new_world()
    before = world.state_hash()
    results = [world.call_tool(a["name"], a["arguments"]) for a in sc.gold_actions]
    return before, world.state_hash(), results


# ------------------------------------------------------------------------------------------ catalogue


def test_catalogue_size_and_long_tail(domain: DealershipDomain):
    types = domain.scenario_types()
    names = [t.name for t in types]
    assert len(types) >= 30
    assert len(set(names)) == len(names)
    assert sum(t.long_tail for t in types) >= 10
    assert sum(not t.long_tail for t in types) >= 10
    assert all(t.description for t in types)


def test_scenario_types_returns_a_copy(domain: DealershipDomain):
    types = domain.scenario_types()
    types.clear()
    assert len(domain.scenario_types()) >= 30


def test_unknown_type_is_a_user_error(domain: DealershipDomain):
    with pytest.raises(UserError, match="no_such_type"):
        domain.make_scenario("no_such_type", 0)


def test_unknown_policy_version_is_a_user_error():
    with pytest.raises(UserError, match="v9"):
        DealershipDomain(policy_version="v9")


# ------------------------------------------------------------------------------------------ every type


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_type_generates_deterministically(domain: DealershipDomain, intent_names: set[str], name: str):
    long_tail = {t.name: t.long_tail for t in domain.scenario_types()}[name]
    for split in SPLITS:
        for seed in SEEDS:
            sc = domain.make_scenario(name, seed, split)
            again = domain.make_scenario(name, seed, split)
            assert sc.to_dict() == again.to_dict(), (name, split, seed)
            assert sc.scenario_type == name and sc.split == split
            assert sc.scenario_id == f"{split}-{name}-{seed}"
            assert sc.long_tail is long_tail
            assert sc.turns, (name, seed)
            assert sc.max_turns >= len(sc.turns)
            assert sc.env_context["today"] == domain.today
            for turn in sc.turns:
                assert isinstance(turn, UserTurn) and turn.text.strip()
                assert turn.intents and set(turn.intents) <= intent_names, turn
                assert turn.when in ("always", "if_asked_identity")
            assert sc.profile["customer_id"] and sc.profile["email"] and len(sc.profile["phone_last4"]) == 4


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_seeds_and_splits_vary(domain: DealershipDomain, name: str):
    dicts = [domain.make_scenario(name, s, "train").to_dict() for s in SEEDS]
    texts = {tuple(t["text"] for t in d["turns"]) for d in dicts}
    assert len(texts) >= 2, name  # five seeds are not all the same conversation
    held = domain.make_scenario(name, 0, "heldout")
    assert held.scenario_id != dicts[0]["scenario_id"]


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_gold_actions_replay(domain: DealershipDomain, name: str):
    tools = domain.tool_names()
    for split in SPLITS:
        for seed in SEEDS:
            sc = domain.make_scenario(name, seed, split)
            before, after, results = replay(domain, sc)
            assert all(a["name"] in tools for a in sc.gold_actions)
            assert all(r["ok"] for r in results), (name, seed, results)
            assert (after != before) == bool(sc.gold_actions), (name, split, seed)
            # the replay is itself deterministic, and leaves the base world untouched
            assert replay(domain, sc)[1] == after
            assert domain.base_world.state_hash() == before


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_gold_actions_are_policy_compliant(domain: DealershipDomain, name: str):
    """Gold actions obey every action rule under both policy versions, given the customer's identity and what
    the customer asked for in some prefix of the conversation (R10)."""
    for seed in SEEDS:
        sc = domain.make_scenario(name, seed, "train")
        world = domain.new_world()
        verify = Action("verify_customer_identity", {"email": sc.profile["email"],
                                                     "phone_last4": sc.profile["phone_last4"]})
        verify.result = world.call_tool("verify_customer_identity", verify.arguments)
        assert verify.payload.get("customer_id") == sc.profile["customer_id"]
        snapshots: list[dict[str, Any]] = []
        ents: dict[str, Any] = {}
        for turn in sc.turns:
            ents = {**ents, **turn.entities}
            snapshots.append(dict(ents))
        intents = [i for t in sc.turns for i in t.intents]
        history = [verify]
        for gold in sc.gold_actions:
            action = Action(gold["name"], gold["arguments"])
            for version in domain.policy_versions:
                for snap in snapshots:
                    ctx = RuleContext(world, domain.policy_params(version), history, intents, snap, action=action)
                    if not check_action(domain.rules(version), ctx):
                        break
                else:
                    ctx = RuleContext(world, domain.policy_params(version), history, intents, ents, action=action)
                    got = [v.to_dict() for v in check_action(domain.rules(version), ctx)]
                    pytest.fail(f"{sc.scenario_id} {version}: gold {gold} violates {got}")
            action.result = world.call_tool(action.name, action.arguments)
            assert action.ok
            history.append(action)


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_personal_gold_actions_have_identity_in_turns(domain: DealershipDomain, name: str):
    for seed in SEEDS:
        sc = domain.make_scenario(name, seed, "train")
        if not any(a["name"] in PERSONAL_TOOLS for a in sc.gold_actions):
            continue
        said: dict[str, Any] = {}
        for turn in sc.turns:  # what the customer has said by the end (a later correction wins)
            said.update(turn.entities)
        assert said.get("email") == sc.profile["email"], sc.scenario_id
        assert said.get("phone_last4") == sc.profile["phone_last4"], sc.scenario_id
        assert all(a["arguments"]["customer_id"] == sc.profile["customer_id"] for a in sc.gold_actions
                   if a["name"] in PERSONAL_TOOLS)


def test_required_outputs_for_most_types(domain: DealershipDomain):
    with_outputs = 0
    total = 0
    for name in TYPE_NAMES:
        for seed in SEEDS:
            sc = domain.make_scenario(name, seed, "train")
            total += 1
            with_outputs += bool(sc.required_outputs)
            assert len(sc.required_outputs) == len(set(sc.required_outputs)), sc.scenario_id
            assert all(isinstance(s, str) and s for s in sc.required_outputs)
    assert with_outputs >= 0.9 * total


def test_required_outputs_contain_gold_references(domain: DealershipDomain):
    for name in ("book_test_drive", "book_identity_on_ask", "cancel_test_drive", "reschedule_test_drive",
                 "complaint", "legal_question", "request_human", "vehicle_just_sold"):
        for seed in SEEDS:
            sc = domain.make_scenario(name, seed, "train")
            _, _, results = replay(domain, sc)
            refs = [r["result"].get("booking_id") or r["result"].get("ticket_id") for r in results]
            assert refs and all(ref in sc.required_outputs for ref in refs), (sc.scenario_id, refs)


def test_specific_types_shape(domain: DealershipDomain):
    for seed in SEEDS:
        neg = domain.make_scenario("negotiation", seed)
        assert neg.gold_actions == [] and "as listed" in neg.required_outputs
        assert any("discount_request" in t.intents for t in neg.turns)
        lim = domain.make_scenario("booking_limit", seed)
        assert lim.gold_actions == [] and "limit" in lim.required_outputs
        active = domain.base_world.query("SELECT COUNT(*) AS n FROM bookings WHERE customer_id = ? AND "
                                         "status = 'active'", (lim.profile["customer_id"],))[0]["n"]
        assert active == 2
        off = domain.make_scenario("off_topic", seed)
        assert any(t.intents == ["off_topic"] for t in off.turns)
        comp = domain.make_scenario("complaint", seed)
        assert [a["name"] for a in comp.gold_actions] == ["escalate_to_human"]
        assert comp.gold_actions[0]["arguments"]["reason"] == "complaint"


# ------------------------------------------------------------------------------------------ serialisation


@pytest.mark.parametrize("name", ["book_identity_on_ask", "multi_intent", "change_of_mind", "complaint"])
def test_to_dict_from_dict_round_trip(domain: DealershipDomain, name: str):
    sc = domain.make_scenario(name, 3, "heldout")
    d = sc.to_dict()
    assert isinstance(d["turns"][0], dict)
    back = Scenario.from_dict(d)
    assert back == sc
    assert back.to_dict() == d
    assert all(isinstance(t, UserTurn) for t in back.turns)
    assert d == sc.to_dict()  # from_dict did not mutate its input


def test_long_tail_flags_match_catalogue(domain: DealershipDomain):
    flags = {t.name: t.long_tail for t in domain.scenario_types()}
    assert flags == {row[0]: row[2] for row in scenarios.CATALOGUE}
    for name, lt in flags.items():
        assert domain.make_scenario(name, 1).long_tail is lt


# ------------------------------------------------------------------------------------------ stress suite


def test_stress_suite_shape(stress: list[Scenario], intent_names: set[str]):
    assert len(stress) == 120
    assert len({s.scenario_id for s in stress}) == 120
    for s in stress:
        assert len(s.turns) == 10, s.scenario_id
        assert s.split == "stress" and s.long_tail is True
        assert len(s.env_context["segments"]) == 10
        distinct = {i for t in s.turns for i in t.intents}
        assert len(distinct) >= 3, (s.scenario_id, distinct)  # the conversation keeps switching business
        assert distinct <= intent_names
        segs = s.env_context["segments"]
        assert all(a != b for a, b in itertools.pairwise(segs)), segs


def test_stress_suite_deterministic(domain: DealershipDomain, stress: list[Scenario]):
    again = domain.stress_suite(120)
    assert [s.to_dict() for s in again] == [s.to_dict() for s in stress]
    other = domain.stress_suite(5, seed=1)
    assert [s.to_dict() for s in other] != [s.to_dict() for s in stress[:5]]
    assert [s.to_dict() for s in domain.stress_suite(5)] == [s.to_dict() for s in stress[:5]]


def test_stress_ids_disjoint_from_train(domain: DealershipDomain, stress: list[Scenario]):
    stress_ids = {s.scenario_id for s in stress}
    train_ids = {domain.make_scenario(name, seed, "train").scenario_id for name in TYPE_NAMES for seed in SEEDS}
    held_ids = {domain.make_scenario(name, seed, "heldout").scenario_id for name in TYPE_NAMES for seed in SEEDS}
    assert not stress_ids & train_ids
    assert not stress_ids & held_ids
    assert not train_ids & held_ids


def test_stress_gold_actions_replay(domain: DealershipDomain, stress: list[Scenario]):
    for s in stress:
        before, after, results = replay(domain, s)
        assert all(r["ok"] for r in results), (s.scenario_id, results)
        assert (after != before) == bool(s.gold_actions), s.scenario_id
    assert sum(bool(s.gold_actions) for s in stress) >= 60  # most stress conversations change the world
