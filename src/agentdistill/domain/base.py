"""The `Domain` interface: everything the MAS, the simulator and the judge need from a business.

Nothing outside `domain/` knows dealerships: a user's own domain implements these few objects and the
rest of the pipeline runs unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it (OpenAI function schema) plus two facts the rules need."""

    name: str
    description: str
    parameters: dict[str, Any]
    mutates: bool = False  # changes the world (its effect counts for the end-state hash)
    personal: bool = False  # touches a customer's own data: identity must be verified first

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


class World(Protocol):
    """A mutable business state that tools act on."""

    def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Run a tool; never raises: {"ok": True, "result": ...} or {"ok": False, "error": {code, message}}."""

    def state_hash(self) -> str:
        """Hash of the state that matters for success (tau-bench style end-state comparison)."""

    def copy(self) -> World: ...

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        """Read-only lookup for rule checks."""


@dataclass
class UserTurn:
    """One scripted user turn: the text and its gold reading (the oracle the scripted teacher uses)."""

    text: str
    intents: list[str]
    entities: dict[str, Any] = field(default_factory=dict)
    # Shown only when the assistant asked for identity and the customer has not yet given it.
    when: str = "always"  # "always" | "if_asked_identity"
    templates: list[str] = field(default_factory=list)  # paraphrase templates the text came from (diversity)


@dataclass
class Scenario:
    """A conversation goal with its gold end state, as in tau-bench: gold actions + required outputs."""

    scenario_id: str
    scenario_type: str
    long_tail: bool
    seed_topic: str
    goal: str
    profile: dict[str, Any]
    turns: list[UserTurn]
    gold_actions: list[dict[str, Any]]  # [{"name": tool, "arguments": {...}}] mutating calls in order
    required_outputs: list[str]  # strings that must appear in some reply
    env_context: dict[str, Any] = field(default_factory=dict)
    split: str = "train"
    max_turns: int = 12

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scenario:
        d = dict(d)
        d["turns"] = [UserTurn(**t) for t in d["turns"]]
        return cls(**d)


@dataclass(frozen=True)
class IntentDef:
    name: str
    description: str
    slots: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScenarioType:
    name: str
    description: str
    long_tail: bool


class Domain(Protocol):
    """World factory, tools, versioned policy with rule checks, and the scenario catalogue."""

    name: str
    policy_versions: tuple[str, ...]

    def new_world(self) -> World: ...

    def tools(self) -> list[ToolSpec]: ...

    def policy_text(self, version: str) -> str: ...

    def rules(self, version: str) -> list[Any]: ...

    def intents(self) -> list[IntentDef]: ...

    def scenario_types(self) -> list[ScenarioType]: ...

    def make_scenario(self, scenario_type: str, seed: int, split: str = "train") -> Scenario:
        """split: "train", "heldout" or "heldout_phrasing" (wording that "train" never uses)."""

    def long_scenario(self, index: int, seed: int = 0, split: str = "train") -> Scenario:
        """A long conversation (6 to 12 turns) that switches business, returns to an earlier goal, corrects
        itself and repeats requests: the training mix's long share. Seeded apart from the stress suite."""

    def stress_suite(self, n: int = 120, seed: int = 10_000) -> list[Scenario]: ...

    def stress_scenario(self, index: int, seed: int = 0) -> Scenario:
        """The stress suite's index-th scenario (what `simulate --suite stress` runs)."""

    def injection_suite(self, n: int = 60, seed: int = 0) -> list[Scenario]: ...

    def injection_scenario(self, index: int, seed: int = 0) -> Scenario:
        """An adversarial customer: attacks (instruction overrides, other customers' data, fake tool output,
        discount demands) mixed with ordinary requests; env_context["attacks"] lists the attack turns as
        {kind, text, target}."""

    def mutators(self) -> dict[str, Any]:
        """Hard-negative mutators by name (data/mutators.py `Mutator`): one per rule and argument error type,
        each turning a correct call into a plausible but wrong one (DPO pairs, evaluator rejects)."""

    # privacy: what the leak check (judge/leaks.py) needs, and nothing about the business
    def private_values(self, world: World | None = None) -> dict[str, dict[str, list[str]]]:
        """{customer: {kind: [values]}}: each customer's data that must never reach another customer, as it
        appears in text; only values distinctive enough that finding one is evidence of a leak."""

    def scenario_customer(self, scenario: dict[str, Any]) -> str | None:
        """Which customer (a key of private_values) plays this scenario."""
