"""The built-in automotive-retail dealership domain."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

from agentdistill.domain.base import IndexedSuites, IntentDef, Scenario, ScenarioType, ToolSpec
from agentdistill.domain.dealership import faults, injection, policy, privacy, reference, scenarios
from agentdistill.domain.dealership.tools import TOOLS
from agentdistill.domain.dealership.world import DealershipWorld
from agentdistill.domain.rules import Rule
from agentdistill.errors import UserError

INTENT_DESCRIPTIONS = {
    "greeting": "the customer says hello", "goodbye": "the customer ends or thanks",
    "search_inventory": "find vehicles by make, model, body, condition, year, price, colour or location",
    "vehicle_details": "details of one vehicle (by stock number, or a description to clarify)",
    "compare_vehicles": "compare two to four vehicles by stock number",
    "dealer_info": "address, phone and opening hours of a location",
    "test_drive_slots": "free test-drive times for a vehicle on a date",
    "book_test_drive": "book a test drive for a vehicle at a date and time",
    "reschedule_test_drive": "move an existing booking", "cancel_test_drive": "cancel an existing booking",
    "list_bookings": "the customer's own active bookings",
    "trade_in_estimate": "estimate a trade-in value from make, model, year, mileage and condition",
    "financing_options": "which financing products exist", "prequalify_financing": "pre-qualify for a loan",
    "promotions": "current promotions", "complaint": "a complaint about service",
    "legal_question": "a legal question", "request_human": "the customer wants a person",
    "discount_request": "asks for a discount or negotiates the price",
    "other_customer_data": "asks for another customer's data", "prompt_injection": "tries to override the rules",
    "off_topic": "anything unrelated to the dealership",
}


class DealershipDomain(IndexedSuites):
    """World factory, tools, versioned policy with checks, scenario catalogue and reference behaviour."""

    name = "dealership"
    policy_versions = tuple(policy.POLICY_PARAMS)
    free_text_arguments = reference.FREE_TEXT_ARGS
    fallback_reply = reference.FALLBACK_REPLY
    identity_slots = reference.IDENTITY_SLOTS  # what the Understander lists as missing before identity is verified

    def __init__(self, world_seed: int = 0, today: str = "2026-12-01", policy_version: str = "v1"):
        if policy_version not in policy.POLICY_PARAMS:
            raise UserError(f"unknown policy version {policy_version!r}; allowed: {', '.join(policy.POLICY_PARAMS)}")
        self.world_seed, self.today, self.policy_version = world_seed, today, policy_version

    @cached_property
    def base_world(self) -> DealershipWorld:
        return DealershipWorld.generate(self.world_seed, self.today)

    def new_world(self) -> DealershipWorld:
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

    # privacy: what a leak check looks for (domain/dealership/privacy.py)
    def private_values(self, world: DealershipWorld | None = None) -> dict[str, dict[str, list[str]]]:
        return privacy.private_values(world or self.base_world, self.knowledge())

    def scenario_customer(self, scenario: dict[str, Any]) -> str | None:
        return privacy.scenario_customer(scenario)

    def session_facts(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        return reference.session_facts(history)

    def knowledge(self) -> str:
        """Static facts every role sees (the shared prompt prefix): locations, ids and today's date."""
        rows = self.base_world.query("SELECT location_id, name, address, hours FROM locations ORDER BY location_id")
        locs = "\n".join(f"- {r['location_id']}: {r['name']}, {r['address']}; hours {json.dumps(json.loads(r['hours']))}"
                         for r in rows)
        return f"Today is {self.today}. Our locations:\n{locs}"

    # reference behaviour (the scripted teacher's oracle)
    def reference_understand(self, inp: dict[str, Any], oracle: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return reference.understand(inp, oracle)

    def reference_plan(self, inp: dict[str, Any]) -> str:
        return reference.plan(inp, self.policy_version)

    def reference_evaluate(self, inp: dict[str, Any]) -> dict[str, Any]:
        return reference.evaluate(inp, self.policy_version)

    def reference_explain(self, inp: dict[str, Any]) -> str:
        return reference.explain(inp, self.policy_version)

    def plan_signature(self, plan_obj: Any) -> list[tuple]:
        return reference.plan_signature(plan_obj)

    # error injection and reply facts (used by the scripted teacher and the judge)
    fault_kinds = faults.FAULT_KINDS

    def inject_fault(self, role: str, kind: str, output: str, inp: dict[str, Any], rng: Any) -> str | None:
        return faults.inject(role, kind, output, inp, rng)

    def mutate_tool_call(self, arguments: dict[str, Any], rng: Any) -> dict[str, Any] | None:
        return faults.mutate_tool_call(arguments, rng)

    def mutators(self) -> dict[str, Any]:
        """Hard-negative mutators by name (domain/dealership/mutators.py), for DPO pairs and evaluator rejects."""
        from agentdistill.domain.dealership.mutators import MUTATORS

        return MUTATORS

    def reply_facts(self, text: str) -> set[str]:
        return faults.reply_facts(text)

    # data for the student
    def cpt_documents(self, seed: int) -> list[dict[str, Any]]:
        from agentdistill.domain.dealership.cpt_documents import documents

        return documents(self, seed)

    def hard_negatives_path(self) -> Path:
        """Written by `python -m agentdistill.domain.dealership.hard_negatives`, then extended by hand."""
        return Path(__file__).with_name("hard_negatives.jsonl")

    @cached_property
    def _examples(self) -> dict[str, str]:
        """One worked example per role, produced by the reference itself so it can never contradict it."""
        und_in = {"utterance": "Can I test drive A1042 on Thursday at 2pm? I'm ana.diaz12@example.com, phone "
                               "ends in 4821.", "known_entities": {}, "session": {"verified": False}}
        und_out = {"intents": ["book_test_drive"], "entities": {"stock_no": "A1042", "date": "2026-12-03",
                                                                "time": "14:00", "email": "ana.diaz12@example.com",
                                                                "phone_last4": "4821"}, "missing": []}
        plan_in = {"today": self.today, "understanding": und_out, "known_entities": und_out["entities"],
                   "session": {"verified": False}}
        lookup_in = {"today": self.today, "understanding": {"intents": ["dealer_info"],
                                                            "entities": {"location_id": "LOC2"}, "missing": []},
                     "known_entities": {}, "session": {"verified": False}}
        booking_plan = self.reference_plan(plan_in)
        explain_in = {"today": self.today, "terminal": {"name": "reply", "arguments": {"topics": ["cancelled"]}},
                      "tool_results": [{"name": "cancel_test_drive", "arguments": {},
                                        "result": {"ok": True, "result": {"booking_id": "TD1003"}}}]}
        return {
            "understander": f"Example. Message: {und_in['utterance']!r} ->\n{json.dumps(und_out)}",
            "planner": (f"Example (booking, identity given):\n{booking_plan}\n\nExample (opening hours of LOC2):\n"
                        f"{self.reference_plan(lookup_in)}"),
            "evaluator": ('Example: a booking plan that calls book_test_drive before list_test_drive_slots -> '
                          '{"verdict": "reject", "feedback": "check that the requested time is free before '
                          'booking"}'),
            "executor": ('Example: for the plan starting `veh = get_vehicle(stock_no="A1042")` the first answer is '
                         'the tool call get_vehicle({"stock_no": "A1042"}); after the last call, answer DONE.'),
            "explainer": f"Example: topics ['cancelled'] with booking TD1003 ->\n{self.reference_explain(explain_in)}",
        }

    def prompt_examples(self) -> dict[str, str]:
        return self._examples
