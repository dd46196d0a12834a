"""The `Domain` interface: everything the MAS, the simulator and the judge need from a business.

Nothing outside `domain/` knows a particular business: a user's own domain implements these objects and the
rest of the pipeline runs unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
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

    def describe(self) -> dict[str, Any]:
        """What `agentdistill domain` shows about the world (tables and row counts)."""


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


class Business(Protocol):
    """What the MAS runtime, the simulator, the datasets and the student's prompts need: the world, the tools,
    the versioned policy with its rule checks, the intents, the scenario catalogue and the knowledge base."""

    name: str
    policy_versions: tuple[str, ...]
    policy_version: str  # the version this instance runs under
    today: str  # ISO date the world and the scenarios are anchored to
    identity_slots: tuple[str, ...]  # what the Understander lists as missing before identity is verified

    def new_world(self) -> World:
        """A fresh copy of the base world (one per episode)."""

    def tools(self) -> list[ToolSpec]: ...

    def tool_names(self) -> frozenset[str]: ...

    def policy_text(self, version: str | None = None) -> str: ...

    def rules(self, version: str | None = None) -> list[Any]:
        """The policy's checked rules (domain/rules.py `Rule`) for a version (default: this instance's)."""

    def policy_params(self, version: str | None = None) -> dict[str, Any]:
        """The numbers the rules are parameterised by (limits, horizons), which change between versions."""

    def intents(self) -> list[IntentDef]: ...

    def knowledge(self) -> str:
        """Static facts every role of the teacher sees in its prompt prefix."""

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

    # privacy: what the leak check (judge/leaks.py) needs, and nothing about the business
    def private_values(self, world: World | None = None) -> dict[str, dict[str, list[str]]]:
        """{customer: {kind: [values]}}: each customer's data that must never reach another customer, as it
        appears in text; only values distinctive enough that finding one is evidence of a leak."""

    def scenario_customer(self, scenario: dict[str, Any]) -> str | None:
        """Which customer (a key of private_values) plays this scenario."""

    # data for the student (data/)
    def cpt_documents(self, seed: int) -> list[dict[str, Any]]:
        """The knowledge base in prose for continued pre-training (data/cpt_domain.py `cpt_doc` records);
        the policy and tool documents are added for every domain, so these are the world's facts."""

    def hard_negatives_path(self) -> Path | None:
        """The domain's curated DPO cases (JSONL, data/curated.py checks the format), or None."""


class Reference(Protocol):
    """The reference behaviour: what the scripted teacher answers, how the judge compares an output with it,
    the faults it injects and the hard-negative mutators. A domain without a scripted teacher still needs
    `reply_facts`, `plan_signature` and `session_facts` for the judge and the runtime."""

    fallback_reply: str  # the runtime's reply when a turn cannot be answered
    free_text_arguments: frozenset[str]  # tool arguments the judge compares loosely (free text)
    fault_kinds: dict[str, tuple[str, ...]]  # role -> fault kinds the scripted teacher can inject

    def reference_understand(self, inp: dict[str, Any], oracle: dict[str, dict[str, Any]]) -> dict[str, Any]: ...

    def reference_plan(self, inp: dict[str, Any]) -> str: ...

    def reference_evaluate(self, inp: dict[str, Any]) -> dict[str, Any]: ...

    def reference_explain(self, inp: dict[str, Any]) -> str: ...

    def plan_signature(self, plan_obj: Any) -> list[tuple]:
        """What two plans must share to count as the same plan (the judge's plan comparison)."""

    def session_facts(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The session state the roles see (verified identity, bookings made) from this session's actions."""

    def reply_facts(self, text: str) -> set[str]:
        """The checkable facts (ids, figures) a reply states: the judge's unsupported-claim check."""

    def inject_fault(self, role: str, kind: str, output: str, inp: dict[str, Any], rng: Any) -> str | None: ...

    def mutate_tool_call(self, arguments: dict[str, Any], rng: Any) -> dict[str, Any] | None: ...

    def mutators(self) -> dict[str, Any]:
        """Hard-negative mutators by name (data/mutators.py `Mutator`): one per rule and argument error type,
        each turning a correct call into a plausible but wrong one (DPO pairs, evaluator rejects)."""

    def prompt_examples(self) -> dict[str, str]:
        """One worked example per role for the teacher's full prompts ({} for none)."""


class Domain(Business, Reference, Protocol):
    """A business as the whole pipeline sees it. Nothing outside domain/ knows more of a domain than this."""


def protocol_members(proto: type) -> list[str]:
    """The attributes and methods a protocol declares, its bases' included (typing has no public way on 3.11)."""
    names: list[str] = []
    for cls in reversed(proto.__mro__):
        if cls is object or cls is Protocol or getattr(cls, "_is_protocol", False) is False:
            continue
        for name in [*getattr(cls, "__annotations__", {}), *vars(cls)]:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return names


class IndexedSuites:
    """The stress and injection suites of a domain that builds their scenarios one index at a time: a domain
    class inherits these and implements only `stress_scenario` and `injection_scenario`."""

    def stress_suite(self, n: int = 120, seed: int = 0) -> list[Scenario]:
        return [self.stress_scenario(i, seed) for i in range(n)]  # type: ignore[attr-defined]

    def injection_suite(self, n: int = 60, seed: int = 0) -> list[Scenario]:
        """Adversarial customers: attacks mixed with ordinary requests."""
        return [self.injection_scenario(i, seed) for i in range(n)]  # type: ignore[attr-defined]
