"""An LLM judge with the user's rubric: `agentdistill verify RUN --judge URL --rubric FILE`.

For a MAS we did not write there is no reference of ours to compare a call with; what the user has is a rubric
(what each agent must and must not do, in their words). Each captured call is sent with the rubric to an
OpenAI-compatible endpoint, which answers one JSON object:

    {"ok": true | false, "reason": "...", "corrected_output": null | "text" |
     {"content": "text", "tool_calls": [{"name": "...", "arguments": {...}}]}}

`ok` becomes the call's verdict and `corrected_output` its y* (`refined`), where the user verifier's go
(judge/user_verifier.py), so the SFT and DPO builders use them the same way. A judge answer that cannot be read
(not JSON, no boolean `ok`, after one re-ask naming the problem) or an endpoint that keeps failing (its retries
and timeouts are OpenAIBackend's) makes the call "unjudged": a verdict with the reason and no `correct`, which
the builders treat like a call nobody judged. It never stops the run.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agentdistill.errors import EndpointError, UserError

MAX_RUBRIC_CHARS = 64_000
ATTEMPTS = 2  # one re-ask when the answer cannot be read
INSTRUCTIONS = """You review one call of one agent in a multi-agent system, against the rubric below.
You get the agent's name, the input it was given (its messages and the tools it could call) and the output it
produced. Decide whether the output is correct under the rubric.

Answer with one JSON object and nothing else:
{"ok": true or false, "reason": "one sentence", "corrected_output": null or "the text the agent should have
answered" or {"content": "text", "tool_calls": [{"name": "tool name", "arguments": {...}}]}}
Give corrected_output when ok is false and you can write the correct output; use tool_calls only with tools the
agent was given.

Rubric:
"""


class JudgeOutputError(ValueError):
    """The judge's answer is not the JSON verdict asked for."""


def load_rubric(path: str | Path) -> str:
    """The rubric text, or a one-line UserError naming what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--rubric file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise UserError(f"--rubric file {path} is not UTF-8 text") from None
    if not text:
        raise UserError(f"--rubric file {path} is empty; write what a correct call of each agent does")
    if len(text) > MAX_RUBRIC_CHARS:
        raise UserError(f"--rubric file {path} has {len(text):,} characters; at most {MAX_RUBRIC_CHARS:,}")
    return text


def _json_object(text: str) -> dict[str, Any]:
    """The first JSON object in the text (code fences and prose around it are tolerated)."""
    body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    candidates = [body]
    if "{" in body and "}" in body:
        candidates.append(body[body.index("{"):body.rindex("}") + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise JudgeOutputError(f"not a JSON object: {' '.join(text.split())[:120]!r}")


def _tool_call(raw: Any, index: int, tools: set[str]) -> dict[str, Any]:
    fn = raw.get("function", raw) if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise JudgeOutputError(f"tool_calls[{index}] has no name")
    if fn["name"] not in tools:
        raise JudgeOutputError(f"tool_calls[{index}] names {fn['name']!r}, not a tool the agent was given")
    args = fn.get("arguments", {})
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except json.JSONDecodeError:
            raise JudgeOutputError(f"tool_calls[{index}] arguments are not JSON") from None
    if not isinstance(args, dict):
        raise JudgeOutputError(f"tool_calls[{index}] arguments are not an object")
    return {"id": f"call_judge_{index}", "type": "function",
            "function": {"name": fn["name"], "arguments": json.dumps(args, sort_keys=True)}}


def refined_output(corrected: Any, tools: set[str], source: str) -> dict[str, Any] | None:
    """y* in the trace format ({"completion", "tool_calls", "source"}) from the judge's corrected_output."""
    if corrected is None:
        return None
    if isinstance(corrected, str):
        return {"completion": corrected, "tool_calls": [], "source": source} if corrected.strip() else None
    if isinstance(corrected, list):
        corrected = {"tool_calls": corrected}
    if not isinstance(corrected, dict):
        raise JudgeOutputError("corrected_output must be null, a string or an object")
    content = corrected.get("content") or ""
    if not isinstance(content, str):
        raise JudgeOutputError("corrected_output.content must be a string")
    calls = corrected.get("tool_calls") or []
    if not isinstance(calls, list):
        raise JudgeOutputError("corrected_output.tool_calls must be a list")
    tool_calls = [_tool_call(tc, i, tools) for i, tc in enumerate(calls)]
    if not content.strip() and not tool_calls:
        return None
    return {"completion": content, "tool_calls": tool_calls, "source": source}


def parse_judgement(text: str, tools: set[str], source: str) -> tuple[bool, str, dict[str, Any] | None, str]:
    """(ok, reason, y* or None, note on an unusable corrected_output) from the judge's answer text."""
    data = _json_object(text)
    ok = data.get("ok")
    if not isinstance(ok, bool):
        raise JudgeOutputError(f"\"ok\" must be true or false, got {ok!r}")
    reason = data.get("reason")
    reason = reason if isinstance(reason, str) else "" if reason is None else json.dumps(reason)
    if ok:
        return True, reason, None, ""
    try:
        return False, reason, refined_output(data.get("corrected_output"), tools, source), ""
    except JudgeOutputError as exc:  # the verdict stands; only its correction is unusable
        return False, reason, None, f"corrected_output unusable: {exc}"


def tool_names(call: dict[str, Any]) -> set[str]:
    names = set()
    for tool in call.get("tools") or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            names.add(fn["name"])
    return names


def call_view(call: dict[str, Any]) -> dict[str, Any]:
    """What the judge reads about one call: agent, input messages, tools, output."""
    output: dict[str, Any] = {"content": call.get("completion") or ""}
    if call.get("tool_calls"):
        output["tool_calls"] = [{"name": (tc.get("function") or {}).get("name"),
                                 "arguments": (tc.get("function") or {}).get("arguments")}
                                for tc in call["tool_calls"]]
    view: dict[str, Any] = {"agent": call.get("agent"), "input": call.get("messages") or []}
    if call.get("tools"):
        view["tools"] = call["tools"]
    view["output"] = output
    return view


class RubricJudge:
    """Judges calls with `backend` (an OpenAIBackend: retries, timeouts, one-line endpoint errors) and a rubric."""

    def __init__(self, backend: Any, rubric: str, rubric_path: str, max_tokens: int = 1024):
        self.backend, self.rubric, self.rubric_path, self.max_tokens = backend, rubric, rubric_path, max_tokens
        self.workers = max(1, int(getattr(backend, "max_concurrency", 4)))

    @property
    def source(self) -> str:
        try:
            return f"llm_judge:{self.backend.resolve_model()}"
        except EndpointError:
            return "llm_judge"

    def judge_call(self, call: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(verdict, y* or None) for one call; never raises for what the judge or its endpoint does."""
        source, tools = self.source, tool_names(call)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": INSTRUCTIONS + self.rubric},
            {"role": "user", "content": json.dumps(call_view(call), ensure_ascii=False)}]
        problem = ""
        for _ in range(ATTEMPTS):
            try:
                text = self.backend.complete(messages, temperature=0.0, max_tokens=self.max_tokens).text
            except EndpointError as exc:
                return {"unjudged": True, "reason": f"judge endpoint failed: {exc}", "source": source}, None
            try:
                ok, reason, refined, note = parse_judgement(text, tools, source)
            except JudgeOutputError as exc:
                problem = str(exc)
                messages = [*messages, {"role": "assistant", "content": text},
                            {"role": "user", "content": f"That answer cannot be used ({problem}). Answer with the "
                                                        "JSON object only."}]
                continue
            verdict = {"correct": ok, "reason": "; ".join(x for x in (reason, note) if x), "source": source}
            return verdict, refined
        return {"unjudged": True, "reason": f"judge output unusable after {ATTEMPTS} attempts: {problem}",
                "source": source}, None

    def apply(self, ep: dict[str, Any]) -> None:
        """Judge every call of the episode; fold the verdicts into the calls and the episode's judgement."""
        calls = ep.get("calls") or []
        with ThreadPoolExecutor(max_workers=min(self.workers, max(len(calls), 1))) as pool:
            results = list(pool.map(self.judge_call, calls))
        wrong = unjudged = 0
        for call, (verdict, refined) in zip(calls, results, strict=True):
            call["verdict"] = verdict
            if verdict.get("correct") is False and refined is not None:
                call["refined"] = refined
            else:
                call.pop("refined", None)
            wrong += verdict.get("correct") is False
            unjudged += bool(verdict.get("unjudged"))
        judgement = ep.setdefault("judgement", {"pass": True})
        passed = wrong == 0
        judgement["pass"] = bool(judgement.get("pass", True)) and passed
        judgement["llm_judge"] = {"name": self.source, "rubric": self.rubric_path, "pass": passed,
                                  "calls_judged": len(calls) - unjudged, "calls_wrong": wrong, "unjudged": unjudged}
