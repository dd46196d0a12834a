"""One simulated conversation: the user simulator drives the MAS until EXIT or the turn cap."""

from __future__ import annotations

from typing import Any

from agentdistill.domain.base import Scenario
from agentdistill.mas.runtime import MAS, action_dict
from agentdistill.simulate.user import UserSimulator


def run_episode(episode_id: str, scenario: Scenario, mas: MAS, user: UserSimulator,
                teacher: Any | None = None) -> dict[str, Any]:
    """Run the conversation and return the episode record (calls included, not yet judged)."""
    session = mas.new_session()
    oracle: dict[str, dict[str, Any]] = {}
    if teacher is not None and hasattr(teacher, "set_oracle"):
        teacher.set_oracle(oracle)  # filled as the user speaks: the Understander's gold reading
    turns: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    exit_reason = "max_turns"
    for _ in range(scenario.max_turns):
        msg = user.next_message(session.conversation)
        if msg is None:
            exit_reason = "exit"
            break
        if msg.annotation is not None:
            oracle[msg.text.strip()] = msg.annotation
        result = mas.run_turn(session, msg.text)
        for c in result.calls:
            c["episode_id"] = episode_id
            c["call_index"] = len(calls)
            calls.append(c)
        turns.append({"turn": session.turn, "user": msg.text, "annotation": msg.annotation, "reply": result.reply,
                      "fallback": result.fallback, "understanding": result.understanding,
                      "actions": [action_dict(a) for a in result.actions]})
    return {
        "episode_id": episode_id,
        "scenario": scenario.to_dict(),
        "policy_version": mas.policy_version,
        "teacher": getattr(mas.backend, "name", "backend"),
        "user_sim": user.name,
        "turns": turns,
        "calls": calls,
        "world_hash": session.world.state_hash(),
        "exit": exit_reason,
        "stats": {
            "agent_calls": len(calls),
            "tokens_in": sum(c["tokens_in"] for c in calls),
            "tokens_out": sum(c["tokens_out"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 6),
            "malformed": sum(1 for c in calls if c.get("malformed")),
            "fallbacks": sum(1 for t in turns if t["fallback"]),
            "injected": sum(1 for c in calls if c.get("injected")),
        },
    }
