"""One simulated conversation: the user simulator drives the MAS until EXIT or the turn cap."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from agentdistill.domain.base import Scenario
from agentdistill.errors import UserError
from agentdistill.mas.runtime import MAS, TurnFailed, action_dict
from agentdistill.simulate.user import UserSimulator


@dataclass(frozen=True)
class EpisodeLimits:
    """Per-episode bounds (docs/how-it-works.md): a conversation stops after max_calls agent calls or max_seconds,
    checked between turns (a turn is itself bounded by replans and executor steps); `exit` says which fired."""

    max_calls: int = 600
    max_seconds: float = 900.0


def failure(exc: BaseException, stage: str, turn: int) -> dict[str, Any]:
    """What failed, where: the exception's type and message and its innermost frame in our code."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "agentdistill" in f.filename]
    where = f"{frames[-1].filename.rsplit('agentdistill/', 1)[-1]}:{frames[-1].lineno} {frames[-1].name}" \
        if frames else ""
    return {"stage": stage, "turn": turn, "type": type(exc).__name__, "message": str(exc)[:300], "where": where}


def run_episode(episode_id: str, scenario: Scenario, mas: MAS, user: UserSimulator,
                teacher: Any | None = None, limits: EpisodeLimits = EpisodeLimits(),
                fail_fast: bool = False) -> dict[str, Any]:
    """Run the conversation and return the episode record (calls included, not yet judged).

    An unexpected exception in a turn or in the user simulator ends this episode only: it is recorded under
    "error" with the calls made so far, and the judge fails the episode. `fail_fast` re-raises it instead.
    """
    session = mas.new_session()
    oracle: dict[str, dict[str, Any]] = {}
    if teacher is not None and hasattr(teacher, "set_oracle"):
        teacher.set_oracle(oracle)  # filled as the user speaks: the Understander's gold reading
    turns: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    error: dict[str, Any] | None = None
    exit_reason = "max_turns"
    t0 = time.monotonic()

    def keep(new_calls: list[dict[str, Any]]) -> None:
        for c in new_calls:
            c["episode_id"] = episode_id
            c["call_index"] = len(calls)
            calls.append(c)

    for _ in range(scenario.max_turns):
        if len(calls) >= limits.max_calls or time.monotonic() - t0 >= limits.max_seconds:
            exit_reason = "call_limit" if len(calls) >= limits.max_calls else "time_limit"
            break
        stage = "user_simulator"
        try:
            msg = user.next_message(session.conversation)
            if msg is None:
                exit_reason = "exit"
                break
            if msg.annotation is not None:
                oracle[msg.text.strip()] = msg.annotation
            stage = "mas"
            result = mas.run_turn(session, msg.text)
        except UserError:
            raise  # the endpoint went away: the run stops and resumes later, this episode is not written
        except TurnFailed as exc:
            if fail_fast:
                raise exc.cause from None
            keep(exc.calls)
            error, exit_reason = failure(exc.cause, stage, session.turn), "error"
            break
        except Exception as exc:
            if fail_fast:
                raise
            error, exit_reason = failure(exc, stage, session.turn), "error"
            break
        keep(result.calls)
        turns.append({"turn": session.turn, "user": msg.text, "annotation": msg.annotation, "reply": result.reply,
                      "fallback": result.fallback, "understanding": result.understanding,
                      "actions": [action_dict(a) for a in result.actions]})
    record = _record(episode_id, scenario, mas, user, session, turns, calls, exit_reason)
    if error is not None:
        record["error"] = error
    return record


def _record(episode_id: str, scenario: Scenario, mas: MAS, user: UserSimulator, session: Any,
            turns: list[dict[str, Any]], calls: list[dict[str, Any]], exit_reason: str) -> dict[str, Any]:
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
