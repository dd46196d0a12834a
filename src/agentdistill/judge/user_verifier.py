"""A user's own verifier: `verify(episode) -> Verdict`, given as `module:function`.

Our judge checks what a domain's rules can check; a user's MAS has its own notion of success. The verifier
reads one episode as it is stored (scenario, turns, calls) and returns a `Verdict`. It is applied after the
judge: the episode passes only if both pass, and a call the verifier names takes the verifier's verdict and,
when wrong, its corrected output y*, which the SFT and DPO builders use exactly as they use the judge's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agentdistill.errors import UserError
from agentdistill.plugins import load_object


@dataclass
class CallVerdict:
    """One agent call judged by the user. `refined` is y* for a wrong call: {"completion": text} and/or
    {"tool_calls": [OpenAI tool calls]}; a wrong call without it keeps the teacher output out of SFT targets."""

    correct: bool
    reason: str = ""
    refined: dict[str, Any] | None = None


@dataclass
class Verdict:
    passed: bool
    reason: str = ""
    calls: dict[int, CallVerdict] = field(default_factory=dict)  # index into episode["calls"] -> verdict


Verifier = Callable[[dict[str, Any]], Verdict]


def load_verifier(spec: str) -> Verifier:
    fn = load_object(spec, "--verifier")
    if not callable(fn):
        raise UserError(f"--verifier {spec!r} is not a function")
    return fn


def apply_verdict(ep: dict[str, Any], verifier: Verifier, name: str) -> None:
    """Run the verifier on a judged episode and fold its verdict into the judgement and the calls.

    A verifier that raises fails the episode (recorded, the run goes on); one that returns something other
    than a `Verdict`, or names a call that does not exist, is a user mistake and stops the run."""
    judgement = ep.setdefault("judgement", {"pass": True})
    try:
        verdict = verifier(ep)
    except Exception as exc:  # the user's code failing on one episode must not lose the others
        judgement["pass"] = False
        judgement["user_verifier"] = {"name": name, "pass": False, "error": f"{type(exc).__name__}: {exc}"}
        return
    if not isinstance(verdict, Verdict):
        raise UserError(f"--verifier {name} returned {type(verdict).__name__}, not a Verdict "
                        "(agentdistill.judge.user_verifier.Verdict)")
    calls = ep.get("calls") or []
    for index, cv in verdict.calls.items():
        if not isinstance(index, int) or not 0 <= index < len(calls) or not isinstance(cv, CallVerdict):
            raise UserError(f"--verifier {name}: calls must map call indexes 0..{len(calls) - 1} to CallVerdict, "
                            f"got {index!r}: {type(cv).__name__} in {ep.get('episode_id')}")
        call = calls[index]
        call["verdict"] = {"correct": cv.correct, "reason": cv.reason, "source": f"verifier:{name}"}
        if cv.correct:
            call.pop("refined", None)
        elif cv.refined is not None:
            call["refined"] = dict(cv.refined)
        else:
            call.pop("refined", None)
    judgement["pass"] = bool(judgement.get("pass", True)) and verdict.passed
    judgement["user_verifier"] = {"name": name, "pass": verdict.passed, "reason": verdict.reason,
                                  "calls_judged": len(verdict.calls)}
