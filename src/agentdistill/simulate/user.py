"""User simulators: each turn sees the history, the intent definitions (N), a seed topic (I) and the
environment context (E: inventory facts and a customer profile), and ends the session with an EXIT token.

The scripted simulator follows the scenario's script and reacts to the assistant (gives identity when
asked, repeats itself once after a failed answer); the LLM simulator asks a backend for the next message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Protocol

from agentdistill.domain.base import Scenario
from agentdistill.types import Backend

EXIT = "<EXIT>"
_ASKS_IDENTITY = re.compile(r"verify your identity|email address (?:on file|and)", re.I)


@dataclass
class UserMessage:
    text: str
    annotation: dict[str, Any] | None  # gold reading (scripted) or None (free text)


class UserSimulator(Protocol):
    name: str

    def next_message(self, history: list[dict[str, str]]) -> UserMessage | None:
        """The next customer message, or None for EXIT."""


class ScriptedUser:
    name = "scripted"

    def __init__(self, scenario: Scenario, fallback_reply: str = ""):
        self.scenario, self.fallback_reply = scenario, fallback_reply
        self.position = 0
        self.last: UserMessage | None = None
        self.repeated = False

    def next_message(self, history: list[dict[str, str]]) -> UserMessage | None:
        last_reply = history[-1]["content"] if history and history[-1]["role"] == "assistant" else ""
        if self.last and self.fallback_reply and last_reply == self.fallback_reply and not self.repeated:
            self.repeated = True  # a real customer tries once more after a failed answer
            return self.last
        turns = self.scenario.turns
        while self.position < len(turns):
            turn = turns[self.position]
            self.position += 1
            if turn.when == "if_asked_identity" and not _ASKS_IDENTITY.search(last_reply):
                continue
            self.last = UserMessage(turn.text, {"intents": turn.intents, "entities": turn.entities})
            self.repeated = False
            return self.last
        return None


USER_SIM_PROMPT = """\
You play a customer chatting with a {domain} assistant. Write only the customer's next message, in the
customer's voice: short, natural, sometimes informal. Pursue the goal step by step; give details (such as
your email and the last four digits of your phone) only when they are needed or asked for. When the goal is
met, or clearly cannot be met, answer with exactly {exit}.

What the business supports (intents):
{intents}

Seed topic: {seed_topic}
Your goal: {goal}
Environment (inventory facts and your profile):
{env}
"""


class LLMUser:
    """User simulator driven by an OpenAI-compatible endpoint."""

    def __init__(self, backend: Backend, scenario: Scenario, domain: Any, sampling: dict[str, Any] | None = None):
        self.backend, self.scenario, self.domain = backend, scenario, domain
        self.sampling = sampling or {"temperature": 0.7, "max_tokens": 200}
        self.name = f"llm:{getattr(backend, 'name', 'backend')}"
        intents = "\n".join(f"- {i.name}: {i.description}" for i in domain.intents())
        env = {"profile": scenario.profile, "context": scenario.env_context,
               "script_hint": [t.text for t in scenario.turns]}
        self.system = USER_SIM_PROMPT.format(domain=domain.name, exit=EXIT, intents=intents,
                                             seed_topic=scenario.seed_topic, goal=scenario.goal,
                                             env=json.dumps(env, indent=1))

    def next_message(self, history: list[dict[str, str]]) -> UserMessage | None:
        # roles are mirrored: the simulator is the "assistant", the MAS's replies are its "user" input
        flipped = [{"role": "assistant" if m["role"] == "user" else "user", "content": m["content"]}
                   for m in history]
        if not flipped:
            flipped = [{"role": "user", "content": "(The conversation starts. Write your first message.)"}]
        comp = self.backend.complete([{"role": "system", "content": self.system}, *flipped], **self.sampling)
        text = comp.text.strip()
        if not text or EXIT in text:
            return None
        return UserMessage(text, None)
