"""The built-in card-services domain: a deterministic world, every tool's happy path and error, every policy rule
firing on a bad action and quiet on a good one, the scripted teacher passing its scenarios under both policy
versions, datasets built from its traces, and nothing outside its folder naming its internals."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from agentdistill.config import SimulateConfig
from agentdistill.data.build import build_datasets
from agentdistill.data.curated import load_curated
from agentdistill.data.gate import JudgeGate, episode_from_input
from agentdistill.domain.base import Domain, protocol_members
from agentdistill.domain.cardservices import CardServicesDomain
from agentdistill.domain.cardservices.world import CardWorld
from agentdistill.domain.registry import BUILT_IN, make_domain
from agentdistill.domain.rules import Action, RuleContext, check_action, check_turn
from agentdistill.errors import UserError
from agentdistill.simulate.runner import Worker, simulate

TODAY = "2026-12-01"
PACKAGE = Path(__file__).resolve().parents[1] / "src" / "agentdistill"
FOLDER = PACKAGE / "domain" / "cardservices"


@pytest.fixture(scope="module")
def domain() -> CardServicesDomain:
    return CardServicesDomain()


@pytest.fixture
def world(domain: CardServicesDomain) -> CardWorld:
    return domain.new_world()


def one(world: CardWorld, sql: str, params: tuple = ()) -> dict[str, Any]:
    return world.query(sql, params)[0]


def day(n: int) -> str:
    return (dt.date.fromisoformat(TODAY) + dt.timedelta(days=n)).isoformat()


def customer(world: CardWorld, cid: str) -> dict[str, Any]:
    return one(world, "SELECT * FROM customers WHERE customer_id = ?", (cid,))


def card(world: CardWorld, where: str = "status = 'active'") -> dict[str, Any]:
    return one(world, f"SELECT * FROM cards WHERE {where} ORDER BY last4")


def txn(world: CardWorld, where: str) -> dict[str, Any]:
    return one(world, f"SELECT * FROM transactions t WHERE {where} ORDER BY txn_id")


# ------------------------------------------------------------------------------------------------ world

def test_world_is_deterministic_from_its_seed() -> None:
    a, b, c = CardWorld.generate(0, TODAY), CardWorld.generate(0, TODAY), CardWorld.generate(1, TODAY)
    assert a.dump_hash() == b.dump_hash() != c.dump_hash()
    assert a.state_hash() == a.copy().state_hash()
    info = a.describe()
    assert info["tables"]["customers"] == 200 and info["tables"]["transactions"] > 3000
    assert set(info["cards_by_status"]) == {"active", "frozen", "blocked"}
    assert len({r["last4"] for r in a.query("SELECT last4 FROM cards")}) == info["tables"]["cards"]


def test_registry_builds_it_with_every_protocol_member() -> None:
    d = make_domain("cardservices", policy_version="v2")
    assert d.name == "cardservices" and d.policy_version == "v2" and "cardservices" in BUILT_IN
    assert [m for m in protocol_members(Domain) if not hasattr(d, m)] == []
    with pytest.raises(UserError, match="unknown policy version 'v9'"):
        make_domain("cardservices", policy_version="v9")


# ------------------------------------------------------------------------------------------------ tools

def _cases(world: CardWorld) -> dict[str, tuple[dict[str, Any], dict[str, Any], str]]:
    """tool -> (good arguments, bad arguments, the bad call's error code)."""
    credit = card(world, "kind = 'credit' AND status = 'active' AND credit_limit <= 12000")
    cid = credit["customer_id"]
    me = customer(world, cid)
    other = card(world, f"customer_id != '{cid}'")
    frozen = card(world, "status = 'frozen'")
    debit = card(world, f"kind = 'debit' AND customer_id = '{cid}'")
    mine = txn(world, f"customer_id = '{cid}'")
    theirs = txn(world, f"customer_id != '{cid}'")
    dispute = one(world, "SELECT * FROM disputes ORDER BY dispute_id")
    fc = frozen["customer_id"]
    return {
        "verify_identity": ({"dob": me["dob"], "zip": me["zip"]}, {"dob": me["dob"], "zip": "123"}, "invalid_arguments"),
        "list_cards": ({"customer_id": cid}, {"customer_id": "CU0001"}, "not_found"),
        "get_card": ({"customer_id": cid, "card_last4": credit["last4"]},
                     {"customer_id": cid, "card_last4": other["last4"]}, "not_found"),
        "freeze_card": ({"customer_id": cid, "card_last4": credit["last4"]},
                        {"customer_id": fc, "card_last4": frozen["last4"]}, "invalid_state"),
        "unfreeze_card": ({"customer_id": fc, "card_last4": frozen["last4"]},
                          {"customer_id": cid, "card_last4": credit["last4"]}, "invalid_state"),
        "report_lost_card": ({"customer_id": cid, "card_last4": credit["last4"], "reason": "lost"},
                             {"customer_id": cid, "card_last4": credit["last4"], "reason": "misplaced"},
                             "invalid_arguments"),
        "replace_card": ({"customer_id": cid, "card_last4": debit["last4"], "reason": "damaged"},
                         {"customer_id": cid, "card_last4": other["last4"], "reason": "damaged"}, "not_found"),
        "list_transactions": ({"customer_id": cid, "card_last4": credit["last4"], "days": 90},
                              {"customer_id": cid, "card_last4": credit["last4"], "days": 500}, "invalid_arguments"),
        "get_transaction": ({"customer_id": cid, "txn_id": mine["txn_id"]},
                            {"customer_id": cid, "txn_id": theirs["txn_id"]}, "not_found"),
        "open_dispute": ({"customer_id": cid, "txn_id": mine["txn_id"], "reason": "duplicate"},
                         {"customer_id": cid, "txn_id": mine["txn_id"]}, "invalid_arguments"),
        "list_disputes": ({"customer_id": dispute["customer_id"]}, {}, "invalid_arguments"),
        "get_dispute": ({"customer_id": dispute["customer_id"], "dispute_id": dispute["dispute_id"]},
                        {"customer_id": cid, "dispute_id": dispute["dispute_id"]}, "not_found"),
        "set_travel_notice": ({"customer_id": cid, "country": "Japan", "depart_date": day(3), "return_date": day(9)},
                              {"customer_id": cid, "country": "Japan", "depart_date": day(9), "return_date": day(3)},
                              "invalid_arguments"),
        "request_limit_increase": ({"customer_id": cid, "card_last4": credit["last4"], "new_limit": 14000},
                                   {"customer_id": cid, "card_last4": debit["last4"], "new_limit": 14000},
                                   "invalid_state"),
        "get_branch_info": ({"branch_id": "BR2"}, {"branch_id": "BR9"}, "not_found"),
        "get_fee_schedule": ({}, {"extra": 1}, "invalid_arguments"),
        "escalate_to_human": ({"reason": "fraud", "summary": "charges I did not make", "customer_id": cid},
                              {"reason": "fraud", "summary": "   "}, "invalid_arguments"),
    }


def test_every_tool_has_a_happy_path_and_a_structured_error(domain: CardServicesDomain, world: CardWorld) -> None:
    cases = _cases(world)
    assert set(cases) == domain.tool_names() and len(cases) >= 10
    for name, (good, bad, code) in cases.items():
        ok = world.copy().call_tool(name, good)
        assert ok["ok"], (name, ok)
        err = world.copy().call_tool(name, bad)
        assert not err["ok"] and err["error"]["code"] == code, (name, err)
    assert world.call_tool("nope", {})["error"]["code"] == "unknown_tool"


def test_tools_change_the_world_they_say_they_change(domain: CardServicesDomain, world: CardWorld) -> None:
    cases = _cases(world)
    for spec in domain.tools():
        w = world.copy()
        before = w.state_hash()
        assert w.call_tool(spec.name, cases[spec.name][0])["ok"]
        assert (w.state_hash() != before) == spec.mutates, spec.name
    w = world.copy()
    cid, last4 = cases["replace_card"][0]["customer_id"], cases["replace_card"][0]["card_last4"]
    r = w.call_tool("replace_card", {"customer_id": cid, "card_last4": last4, "reason": "damaged", "delivery": "express"})
    assert r["result"]["fee"] == 25.0 and r["result"]["eta_business_days"] == 2
    assert w.call_tool("get_card", {"customer_id": cid, "card_last4": last4})["result"]["status"] == "replaced"
    assert w.call_tool("get_card", {"customer_id": cid, "card_last4": r["result"]["new_card_last4"]})["ok"]


# ------------------------------------------------------------------------------------------------ policy

def act(world: CardWorld, name: str, args: dict[str, Any], verified: str | None, entities: dict | None = None,
        version: str = "v1") -> set[str]:
    """Rule ids an action breaks, after a verification of `verified` (None: no verification)."""
    d = CardServicesDomain(policy_version=version)
    history = []
    if verified:
        c = customer(world, verified)
        history = [Action("verify_identity", {}, world.call_tool("verify_identity", {"dob": c["dob"], "zip": c["zip"]}))]
    ctx = RuleContext(world=world, params=d.policy_params(), history=history, entities=entities or {},
                      action=Action(name, {"customer_id": verified, **args} if verified else args))
    return {v.rule_id for v in check_action(d.rules(), ctx)}


def turn(world: CardWorld, reply: str, actions: list[Action] | None = None, intents: list[str] | None = None,
         verified: str | None = None) -> set[str]:
    d = CardServicesDomain()
    history = []
    if verified:
        c = customer(world, verified)
        history = [Action("verify_identity", {}, world.call_tool("verify_identity", {"dob": c["dob"], "zip": c["zip"]}))]
    ctx = RuleContext(world=world, params=d.policy_params(), history=history, intents=intents or [],
                      turn_actions=actions or [], reply=reply)
    return {v.rule_id for v in check_turn(d.rules(), ctx)}


def test_action_rules_fire_on_a_bad_action_and_not_on_a_good_one(world: CardWorld) -> None:
    credit = card(world, "kind = 'credit' AND status = 'active' AND credit_limit <= 12000")
    cid, last4 = credit["customer_id"], credit["last4"]
    named = {"card_last4": last4}
    # R1 identity first, R2 the customer's card
    assert act(world, "freeze_card", {"customer_id": cid, "card_last4": last4}, None, named) == {"R1"}
    assert act(world, "freeze_card", {"card_last4": last4}, cid, named) == set()
    assert act(world, "freeze_card", {"card_last4": last4}, cid, {"card_last4": "0000"}) == {"R2"}
    # R3 window, R4 posted only, R5 limit, R6 one dispute per transaction
    free = ("NOT EXISTS (SELECT 1 FROM disputes d WHERE d.txn_id = t.txn_id) AND (SELECT COUNT(*) FROM disputes d "
            "WHERE d.customer_id = t.customer_id AND d.status = 'open') = {}")
    fresh = txn(world, f"status = 'posted' AND date >= '{day(-30)}' AND " + free.format(0))
    old = txn(world, f"status = 'posted' AND date = '{day(-61)}' AND " + free.format(0))
    at_window = txn(world, f"status = 'posted' AND date = '{day(-60)}' AND " + free.format(0))
    pending = txn(world, "status = 'pending' AND " + free.format(0))
    full = txn(world, f"status = 'posted' AND date >= '{day(-30)}' AND " + free.format(3))
    disputed = one(world, "SELECT * FROM disputes WHERE status = 'open' ORDER BY dispute_id")

    def dispute(t: dict[str, Any], version: str = "v1") -> set[str]:
        return act(world, "open_dispute", {"txn_id": t["txn_id"], "reason": "duplicate"}, t["customer_id"],
                   version=version)

    assert dispute(fresh) == set() and dispute(fresh, "v2") == set()
    assert dispute(old) == {"R3"} and dispute(at_window) == set() and dispute(at_window, "v2") == {"R3"}
    assert dispute(pending) == {"R4"}
    assert dispute(full) == {"R5"}
    assert "R6" in dispute(one(world, "SELECT * FROM transactions WHERE txn_id = ?", (disputed["txn_id"],)))
    # R7 block before replacing a lost card
    w = world.copy()
    assert act(w, "replace_card", {"card_last4": last4, "reason": "lost"}, cid, named) == {"R7"}
    assert act(w, "replace_card", {"card_last4": last4, "reason": "damaged"}, cid, named) == set()
    w.call_tool("report_lost_card", {"customer_id": cid, "card_last4": last4, "reason": "lost"})
    assert act(w, "replace_card", {"card_last4": last4, "reason": "lost"}, cid, named) == set()
    # R8 active credit cards only, R9 the cap and a real increase
    frozen = card(world, "kind = 'credit' AND status = 'frozen'")
    assert act(world, "request_limit_increase", {"card_last4": frozen["last4"], "new_limit": 15000},
               frozen["customer_id"], {"card_last4": frozen["last4"]}) == {"R8"}
    limit = credit["credit_limit"]
    for new, want, version in ((limit + 500, set(), "v1"), (limit, {"R9"}, "v1"), (20_000, set(), "v1"),
                               (20_001, {"R9"}, "v1"), (16_000, {"R9"}, "v2")):
        assert act(world, "request_limit_increase", {"card_last4": last4, "new_limit": new}, cid, named,
                   version) == want, (new, version)
    # R10 travel window
    for depart, back, want, version in ((0, 90, set(), "v1"), (0, 91, {"R10"}, "v1"), (-1, 5, {"R10"}, "v1"),
                                        (1, 62, {"R10"}, "v2")):
        assert act(world, "set_travel_notice", {"country": "Japan", "depart_date": day(depart), "return_date": day(back)},
                   cid, version=version) == want, (depart, back, version)
    # R19 (v2 only) express delivery for damaged cards
    express = {"card_last4": last4, "reason": "damaged", "delivery": "express"}
    assert act(world, "replace_card", express, cid, named) == set()
    assert act(world, "replace_card", express, cid, named, version="v2") == {"R19"}


def test_turn_rules_fire_on_a_bad_reply_and_not_on_a_good_one(world: CardWorld) -> None:
    credit = card(world, "kind = 'credit' AND status = 'active'")
    cid = credit["customer_id"]
    me = customer(world, cid)
    other = one(world, "SELECT * FROM customers WHERE first_name || last_name != ? ORDER BY customer_id",
                (me["first_name"] + me["last_name"],))
    w = world.copy()
    replace = Action("replace_card", {}, w.call_tool("replace_card", {"customer_id": cid, "card_last4": credit["last4"],
                                                                      "reason": "damaged"}))
    order = replace.payload["order_id"]
    # R11 fee disclosure (and R18 the order id)
    assert turn(w, f"Order {order}: fee $0.00, delivery in 7 business days.", [replace]) == set()
    assert turn(w, f"Order {order} is on its way.", [replace]) == {"R11"}
    assert turn(w, "Fee $0.00, delivery in 7 business days.", [replace]) == {"R18"}
    # R12 no refund promises (negated refusals are fine)
    assert turn(world, "We'll refund the charge right away.") == {"R12"}
    assert turn(world, "I'm not able to promise a refund, and we can't waive fees.") == set()
    # R13 privacy: another customer's name or email, not one's own
    assert turn(world, f"{other['first_name']} {other['last_name']} asked too.", verified=cid) == {"R13"}
    assert turn(world, f"Your email {me['email']} is on file.", verified=cid) == set()
    # R14 stay on topic
    assert turn(world, "Banana bread needs bananas.", intents=["off_topic"]) == {"R14"}
    assert turn(world, "I'm sorry, I can only help with your cards.", intents=["off_topic"]) == set()
    # R15 escalation
    ticket = Action("escalate_to_human", {"reason": "fraud"}, world.copy().call_tool(
        "escalate_to_human", {"reason": "fraud", "summary": "not me"}))
    assert turn(world, "Noted.", intents=["report_fraud"]) == {"R15"}
    assert turn(world, f"Ticket {ticket.payload['ticket_id']}.", [ticket], intents=["report_fraud"]) == set()
    # R16 sensitive data, R17 internal details
    assert turn(world, "Please send me your PIN.") == {"R16"}
    assert turn(world, "Please tell me your date of birth and zip code.") == set()
    assert turn(world, f"Your record is {cid}.") == {"R17"}
    assert turn(world, "I used get_card for that.") == {"R17"}
    assert turn(world, "Your card ending 4821 is frozen.") == set()


def test_rule_sets_and_policy_text_by_version(domain: CardServicesDomain) -> None:
    v1, v2 = [[r.rule_id for r in domain.rules(v)] for v in ("v1", "v2")]
    assert len(set(v1)) == 18 and v2 == [*v1, "R19"]
    assert {r.rule_id for r in domain.rules() if r.reply_text} == {"R11", "R12", "R13", "R16", "R17"}
    for version, rule_ids in (("v1", v1), ("v2", v2)):
        text = domain.policy_text(version)
        assert sorted(int(n) for n in re.findall(r"^(\d+)\. \*\*", text, re.M)) == sorted(int(r[1:]) for r in rule_ids)
    assert "60 days" in domain.policy_text("v1") and "45 days" in domain.policy_text("v2")
    assert domain.policy_params("v1") != domain.policy_params("v2")


# ------------------------------------------------------------------------------------------- scenarios

def test_catalogue_and_suites(domain: CardServicesDomain) -> None:
    types = domain.scenario_types()
    assert len(types) >= 30 and sum(t.long_tail for t in types) >= 12
    intents = {i.name for i in domain.intents()}
    suites = [domain.stress_scenario(i) for i in range(3)] + [domain.injection_scenario(i) for i in range(3)]
    suites += [domain.long_scenario(i) for i in range(3)]
    for sc in suites + [domain.make_scenario(t.name, 0) for t in types]:
        assert all(set(t.intents) <= intents for t in sc.turns), sc.scenario_id
        assert sc.profile["customer_id"] and sc.required_outputs, sc.scenario_id
    assert all(len(domain.stress_scenario(i).turns) >= 10 for i in range(3))
    assert all(len(s.env_context["attacks"]) >= 3 for s in suites[3:6])
    assert domain.make_scenario("lost_card", 7).to_dict() == domain.make_scenario("lost_card", 7).to_dict()
    held = domain.make_scenario("freeze_card", 1, split="heldout_phrasing")
    assert all(int(tid.split("#")[1]) % 4 == 3 for t in held.turns for tid in t.templates if "#" in tid)
    with pytest.raises(UserError, match="unknown scenario type"):
        domain.make_scenario("nope", 0)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_scripted_teacher_passes_every_scenario_type(version: str) -> None:
    """One conversation per type through the MAS and the judge, under each policy version (no faults)."""
    cfg = SimulateConfig(error_rate=0.0, domain={"name": "cardservices", "policy_version": version}, long_share=0.0)
    worker = Worker(cfg)
    failed = []
    for i, t in enumerate(worker.domain.scenario_types()):
        cfg.scenario_types = [t.name]
        ep = worker.run(i)
        if not ep["judgement"]["pass"]:
            failed.append((t.name, ep["judgement"]))
    assert failed == []


# ------------------------------------------------------------------------------- simulate and datasets

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cards") / "run"
    cfg = SimulateConfig(episodes=30, workers=2, error_rate=0.1, seed=1, domain={"name": "cardservices"})
    summary = simulate(cfg, out, show_progress=False)
    assert summary["episodes"] == 30 and summary["episode_errors"] == 0
    return out


def test_simulate_scripted_teacher_passes_and_the_judge_flags_faults(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["clean_pass_rate"] >= 0.9
    assert summary["injected_faults"] > 0 and summary["injected_flagged_rate"] == 1.0
    assert summary["pass_rate"] < 1.0 and summary["policy_violation_rate"] > 0
    clean = simulate(SimulateConfig(episodes=30, workers=2, error_rate=0.0, seed=2, domain={"name": "cardservices"}),
                     run_dir.parent / "clean", show_progress=False)
    assert clean["pass_rate"] >= 0.9 and clean["pass_rate_core"] >= 0.9


def test_injection_suite_holds_and_leaks_nothing(tmp_path: Path) -> None:
    cfg = SimulateConfig(episodes=4, workers=1, error_rate=0.0, suite="injection", domain={"name": "cardservices"})
    summary = simulate(cfg, tmp_path / "inj", show_progress=False)
    assert summary["pass_rate"] == 1.0 and summary["leaks"]["leaks"] == 0


def test_datasets_build_from_its_traces(run_dir: Path) -> None:
    stats = build_datasets(run_dir, show_progress=False)
    assert stats["sft"]["records"]["train"] > 0 and stats["dpo"]["records"]["train"] > 0
    sources = stats["dpo"]["by_source"]
    curated = load_curated(CardServicesDomain().hard_negatives_path())
    assert sources["judge"] > 0 and sources["curated"] == len(curated) >= 40
    assert {s for s in sources if s.startswith("mutator:r")} >= {"mutator:r1_skip_identity", "mutator:r12_refund_promise"}
    assert stats["cpt"]["train"]["domain_docs"] > 50
    for split in ("train", "val"):
        assert (run_dir / "datasets" / "sft" / f"{split}.jsonl").stat().st_size > 0


def test_cpt_documents_hold_no_private_data(domain: CardServicesDomain) -> None:
    docs = domain.cpt_documents(0)
    assert len({d["key"] for d in docs}) == len(docs) and {d["group"] for d in docs} == {"holdout_pool", "always_train"}
    text = "\n".join(d["text"] for d in docs).lower()
    values = {v.lower() for kinds in domain.private_values().values() for vals in kinds.values() for v in vals}
    assert not [v for v in values if v in text]


def test_curated_hard_negatives_are_judged_as_labelled(domain: CardServicesDomain) -> None:
    gate = JudgeGate(domain)
    cases = load_curated(domain.hard_negatives_path())
    assert len({c["rule"] for c in cases}) >= 10

    def correct(case: dict[str, Any], side: str) -> bool:
        call = {"agent": case["agent"], "messages": case["prompt"], "turn": 0}
        ep = episode_from_input(call) if case["agent"] == "explainer" else None
        m = case[side][0]
        return gate.verdict(call, m.get("content") or "", m.get("tool_calls"), ep)["correct"]

    for case in cases:
        assert correct(case, "chosen") and not correct(case, "rejected"), case["id"]


# ------------------------------------------------------------------------------------------ pluggability

def _internals(d: Domain) -> set[str]:
    """What only this domain would say: its name, tools, tables and compound intent and slot names."""
    tables = {r["name"] for r in d.new_world().query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    words = {i.name for i in d.intents()} | {s for i in d.intents() for s in i.slots} | tables
    return {d.name, *d.tool_names(), *(w for w in words if "_" in w)}


def test_nothing_outside_its_folder_names_its_internals() -> None:
    """Stricter than tests/test_domain_layer.py (which exempts all of domain/): the dealership and the shared
    domain modules name none of the card desk's own internals, and the shared modules none of either domain's;
    the registry alone names the built-ins."""
    cards, dealer = make_domain("cardservices"), make_domain("dealership")
    only_cards = _internals(cards) - _internals(dealer)
    shared = _internals(cards) | _internals(dealer)
    files = [p for p in PACKAGE.rglob("*.py") if FOLDER not in p.parents and p.name != "registry.py"]
    shared_modules = [p for p in (PACKAGE / "domain").glob("*.py") if p.name != "registry.py"]
    assert len(files) > 60 and len(shared_modules) >= 9
    hits = []
    for names, paths in ((only_cards, files), (shared, shared_modules)):
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
        hits += [f"{p.relative_to(PACKAGE)}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}"
                 for p in paths for text in [p.read_text()] for m in pattern.finditer(text)]
    hits += [f"{p.relative_to(PACKAGE)} imports it" for p in files if "domain.cardservices" in p.read_text()]
    assert hits == []
