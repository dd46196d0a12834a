"""Writing scripted scenarios, for any domain: user turns with their gold reading, gold mutating actions replayed
on a copy of the world (so later turns and required outputs can use their real results), and required outputs.

A domain's scenario generator subclasses `ScriptBuilder` with its own picks (customers, items, free slots) and
composes segments of a few turns each; the gold end state and outputs are exact because they come from replay.
"""

from __future__ import annotations

import random
from typing import Any

from agentdistill.domain.base import Scenario, UserTurn
from agentdistill.domain.phrasing import Phraser


class ScriptBuilder:
    """What a scenario generator works with: the base world (read-only), a seeded rng and the split's phrasing."""

    def __init__(self, world: Any, rng: random.Random, phrase: Phraser):
        self.world, self.rng = world, rng
        self.phrase = phrase
        self.templates: list[str] = []  # template ids of the turn being written
        self.replay = world.copy()  # gold actions run here, in order, to learn their results
        self.turns: list[UserTurn] = []
        self.gold: list[dict[str, Any]] = []
        self.required: list[str] = []
        self.verified = False

    def q(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        return self.world.query(sql, params)

    # --- phrasing ------------------------------------------------------------------------------------
    def say(self, key: str, **fields: Any) -> str:
        text, template = self.phrase.say(key, **fields)
        self.templates.append(template)
        return text

    def say_date(self, date: str) -> str:
        return self.phrase.date(date)

    def say_time(self, time: str) -> str:
        return self.phrase.time(time)

    # --- building ------------------------------------------------------------------------------------
    def user(self, text: str, intents: list[str], when: str = "always", **entities: Any) -> None:
        self.turns.append(UserTurn(text=text, intents=intents, entities=entities, when=when,
                                   templates=self.templates))
        self.templates = []

    def act(self, name: str, **arguments: Any) -> dict[str, Any]:
        """A gold mutating action: recorded, and replayed so that later turns can refer to its result."""
        self.gold.append({"name": name, "arguments": arguments})
        res = self.replay.call_tool(name, arguments)
        if not res["ok"]:
            raise RuntimeError(f"gold action {name} failed: {res['error']}")
        return res["result"]

    def look(self, name: str, **arguments: Any) -> dict[str, Any]:
        """A read-only call on the replay world, to know what the replies must contain."""
        res = self.replay.call_tool(name, arguments)
        if not res["ok"]:
            raise RuntimeError(f"lookup {name} failed: {res['error']}")
        return res["result"]

    def need(self, *strings: Any) -> None:
        self.required += [str(s) for s in strings]

    def bye(self) -> None:
        self.user(self.say("bye"), ["goodbye"])

    def scenario(self, scenario_id: str, scenario_type: str, long_tail: bool, seed_topic: str, goal: str,
                 profile: dict[str, Any], split: str, **env: Any) -> Scenario:
        """The scenario written so far (turn cap: its turns plus four, for asks and retries)."""
        return Scenario(
            scenario_id=scenario_id, scenario_type=scenario_type, long_tail=long_tail, seed_topic=seed_topic,
            goal=goal, profile=profile, turns=self.turns, gold_actions=self.gold,
            required_outputs=list(dict.fromkeys(self.required)), split=split, max_turns=len(self.turns) + 4,
            env_context={"today": self.world.today, **env},
        )
