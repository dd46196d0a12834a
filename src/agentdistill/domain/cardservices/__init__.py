"""The built-in bank card-services desk: cards, transactions, disputes, travel notices and credit limits.

The second built-in domain, unlike the dealership: identity by date of birth and zip code, cards named by their
last four digits, multi-step preconditions (a dispute checks the transaction's status, date and the open
disputes), and a policy about money (fee disclosure, no refund promises, caps that change between versions).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from agentdistill.domain.base import IndexedSuites, IntentDef, Scenario, ScenarioType, ToolSpec
from agentdistill.domain.rules import Rule
from agentdistill.errors import UserError

from . import faults, injection, policy, privacy, reference, replies, scenarios
from .tools import TOOLS
from .world import CardWorld

INTENT_DESCRIPTIONS = {
    "greeting": "the customer says hello", "goodbye": "the customer ends or thanks",
    "list_cards": "which cards the customer holds", "card_details": "balance, limit and status of one card",
    "freeze_card": "temporarily freeze a card", "unfreeze_card": "unfreeze a frozen card",
    "report_lost_card": "report a card lost or stolen (it is blocked)",
    "replace_card": "a replacement card (lost, stolen or damaged; delivery standard or express)",
    "recent_transactions": "a card's recent transactions", "dispute_transaction": "dispute a transaction",
    "dispute_status": "the status of a dispute", "travel_notice": "tell the bank about a trip abroad",
    "limit_increase": "a higher credit limit on a credit card", "branch_info": "address and hours of a branch",
    "fees": "the card fee schedule", "report_fraud": "suspected fraud on the account",
    "complaint": "a complaint about service", "request_human": "the customer wants a person",
    "refund_demand": "demands a refund or a fee waiver outside a dispute",
    "other_customer_data": "asks for another customer's data", "prompt_injection": "tries to override the rules",
    "off_topic": "anything unrelated to card services",
}


class CardServicesDomain(IndexedSuites):
    """World factory, tools, versioned policy with checks, scenario catalogue and reference behaviour."""

    name = "cardservices"
    policy_versions = tuple(policy.POLICY_PARAMS)
    free_text_arguments = reference.FREE_TEXT_ARGS
    fallback_reply = replies.FALLBACK_REPLY
    identity_slots = reference.IDENTITY_SLOTS
    fault_kinds = faults.FAULT_KINDS

    def __init__(self, world_seed: int = 0, today: str = "2026-12-01", policy_version: str = "v1"):
        if policy_version not in policy.POLICY_PARAMS:
            raise UserError(f"unknown policy version {policy_version!r}; allowed: {', '.join(policy.POLICY_PARAMS)}")
        self.world_seed, self.today, self.policy_version = world_seed, today, policy_version

    @cached_property
    def base_world(self) -> CardWorld:
        return CardWorld.generate(self.world_seed, self.today)

    def new_world(self) -> CardWorld:
        return self.base_world.copy()

    def tools(self) -> list[ToolSpec]:
        return list(TOOLS.values())

    def tool_names(self) -> frozenset[str]:
        return frozenset(TOOLS)

    def policy_text(self, version: str | None = None) -> str:
        return policy.policy_text(version or self.policy_version)

    def rules(self, version: str | None = None) -> list[Rule]:
        return policy.rules(version or self.policy_version)

    def policy_params(self, version: str | None = None) -> dict[str, Any]:
        return policy.POLICY_PARAMS[version or self.policy_version]

    def intents(self) -> list[IntentDef]:
        return [IntentDef(n, d, reference.INTENT_SLOTS.get(n, ())) for n, d in INTENT_DESCRIPTIONS.items()]

    def knowledge(self) -> str:
        """Static facts every role sees (the shared prompt prefix): today, branches and the fee schedule."""
        world = self.base_world
        branches = "\n".join(f"- {r['branch_id']}: {r['name']}, {r['address']}; hours {json.dumps(json.loads(r['hours']))}"
                             for r in world.query("SELECT * FROM branches ORDER BY branch_id"))
        fees = "; ".join(f"{r['name']} {replies.fee_amount(r)}" for r in world.query("SELECT * FROM fees ORDER BY 1"))
        return f"Today is {self.today}. Bank: {replies.BANK}. Our branches:\n{branches}\nCard fees: {fees}."

    # scenarios
    def scenario_types(self) -> list[ScenarioType]:
        return list(scenarios.SCENARIO_TYPES)

    def make_scenario(self, scenario_type: str, seed: int | str, split: str = "train") -> Scenario:
        return scenarios.make_scenario(self.base_world, scenario_type, seed, split)

    def long_scenario(self, index: int, seed: int = 0, split: str = "train") -> Scenario:
        return scenarios.make_long_scenario(self.base_world, index, seed, split)

    def stress_scenario(self, index: int, seed: int = 0) -> Scenario:
        return scenarios.make_stress_scenario(self.base_world, index, seed)

    def injection_scenario(self, index: int, seed: int = 0) -> Scenario:
        return injection.make_injection_scenario(self.base_world, index, seed)

    # privacy (what judge/leaks.py looks for)
    def private_values(self, world: CardWorld | None = None) -> dict[str, dict[str, list[str]]]:
        return privacy.private_values(world or self.base_world, self.knowledge())

    def scenario_customer(self, scenario: dict[str, Any]) -> str | None:
        return privacy.scenario_customer(scenario)

    # reference behaviour (the scripted teacher's oracle and the judge's y*)
    def session_facts(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        return reference.session_facts(history)

    def reference_understand(self, inp: dict[str, Any], oracle: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return reference.understand(inp, oracle)

    def reference_plan(self, inp: dict[str, Any]) -> str:
        return reference.plan(inp, self.policy_version)

    def reference_evaluate(self, inp: dict[str, Any]) -> dict[str, Any]:
        return reference.evaluate(inp, self.policy_version)

    def reference_explain(self, inp: dict[str, Any]) -> str:
        return replies.explain(inp, self.policy_version)

    def plan_signature(self, plan_obj: Any) -> list[tuple]:
        return reference.plan_signature(plan_obj)

    def inject_fault(self, role: str, kind: str, output: str, inp: dict[str, Any], rng: Any) -> str | None:
        return faults.inject(role, kind, output, inp, rng)

    def mutate_tool_call(self, arguments: dict[str, Any], rng: Any) -> dict[str, Any] | None:
        return faults.mutate_tool_call(arguments, rng)

    def reply_facts(self, text: str) -> set[str]:
        return faults.reply_facts(text)

    def mutators(self) -> dict[str, Any]:
        """Hard-negative mutators by name (mutators.py), for DPO pairs and evaluator rejects."""
        from .mutators import MUTATORS

        return MUTATORS

    # data for the student
    def cpt_documents(self, seed: int) -> list[dict[str, Any]]:
        from .cpt_documents import documents

        return documents(self, seed)

    def hard_negatives_path(self) -> Path | None:
        """Written by `python -m agentdistill.domain.cardservices.hard_negatives` (None where not shipped)."""
        path = Path(__file__).with_name("hard_negatives.jsonl")
        return path if path.exists() else None

    @cached_property
    def _examples(self) -> dict[str, str]:
        """One worked example per role, produced by the reference itself so it can never contradict it."""
        und = {"intents": ["freeze_card"], "entities": {"card_last4": "4821", "dob": "1984-03-12", "zip": "62704"},
               "missing": []}
        plan_in = {"today": self.today, "understanding": und, "known_entities": und["entities"],
                   "session": {"verified": False}}
        fees_in = {"today": self.today, "understanding": {"intents": ["fees"], "entities": {}, "missing": []},
                   "known_entities": {}, "session": {"verified": False}}
        explain_in = {"today": self.today, "terminal": {"name": "reply", "arguments": {"topics": ["frozen"]}},
                      "tool_results": [{"name": "freeze_card", "arguments": {}, "result": {
                          "ok": True, "result": {"card_last4": "4821", "status": "frozen"}}}]}
        return {
            "understander": ("Example. Message: 'Please freeze my card ending 4821. DOB March 12, 1984, zip 62704.' "
                             f"->\n{json.dumps(und)}"),
            "planner": (f"Example (freeze, identity given):\n{self.reference_plan(plan_in)}\n\nExample (card fees):\n"
                        f"{self.reference_plan(fees_in)}"),
            "evaluator": ('Example: a dispute plan that calls open_dispute without get_transaction and list_disputes '
                          '-> {"verdict": "reject", "feedback": "check the transaction and the open disputes before '
                          'opening a dispute"}'),
            "executor": ('Example: for the plan starting `c = get_card(customer_id="CU1042", card_last4="4821")` the '
                         'first answer is the tool call get_card({"customer_id": "CU1042", "card_last4": "4821"}); '
                         'after the last call, answer DONE.'),
            "explainer": f"Example: topics ['frozen'] for the card ending 4821 ->\n{self.reference_explain(explain_in)}",
        }

    def prompt_examples(self) -> dict[str, str]:
        return self._examples
