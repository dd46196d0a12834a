"""Judging what we did not write (issue 17 part 4): the LLM judge with a rubric (`verify --judge URL --rubric`)
against a scripted OpenAI-compatible server on 127.0.0.1, and the hard negatives made from a captured MAS's own
tool schemas (data/schema_mutators.py), on calls recorded by the real proxy; a captured run's datasets hold only
what was captured."""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli
from fake_openai_server import FakeOpenAIServer
from test_capture import EXAMPLE, StreamingServer, mas, proxy, shop
from test_simulate_cli import assert_one_line_error, closed_port

from agentdistill.data.mutators import MutationInput
from agentdistill.data.schema_mutators import KEEPS_REQUIRED, SCHEMA_MUTATORS, arguments, evidence, tool_schemas
from agentdistill.judge.llm_judge import INSTRUCTIONS
from agentdistill.simulate.store import TraceStore

RUBRIC = EXAMPLE.parent / "rubric.md"
FIX = {"name": "lookup_order", "arguments": {"order_id": "A100"}}


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two conversations of the example MAS recorded through the proxy (order lookups, a refund, tool results)."""
    run = tmp_path_factory.mktemp("judging") / "run"
    with StreamingServer(shop, models=["shop-model"]) as upstream, proxy(run, upstream.url) as url:
        mas(url, "--headers", "--conversations", "2")
    yield run


def copy_of(run: Path, tmp_path: Path) -> Path:
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


# ------------------------------------------------------------------------------------------ the LLM judge
def judge_responder(request: dict[str, Any]) -> dict[str, Any]:
    """The judge: routers are fine, a first order-agent step gets a correction, an order-agent summary names a
    tool the agent does not have, and explainers get garbage (also when re-asked)."""
    assert request["messages"][0]["content"].startswith(INSTRUCTIONS)
    view = json.loads(request["messages"][1]["content"])
    agent, last = view["agent"], view["input"][-1]
    if agent == "router":
        return {"content": '```json\n{"ok": true, "reason": "one word"}\n```'}
    if agent == "order_agent" and last["role"] == "user":
        return {"content": json.dumps({"ok": False, "reason": "use the canonical id",
                                       "corrected_output": {"content": "", "tool_calls": [FIX]}})}
    if agent == "order_agent":
        return {"content": json.dumps({"ok": False, "reason": "too terse",
                                       "corrected_output": {"tool_calls": [{"name": "cancel_order"}]}})}
    return {"content": "Looks good to me!"}


def verdicts(run: Path) -> list[tuple[str, str, dict[str, Any], dict[str, Any] | None]]:
    return [(c["agent"], c["messages"][-1]["role"], c["verdict"], c.get("refined"))
            for ep in TraceStore(run).episodes() for c in ep["calls"]]


def test_llm_judge_verdicts_corrections_and_garbage_feed_datasets(captured: Path, tmp_path: Path) -> None:
    run = copy_of(captured, tmp_path)
    with FakeOpenAIServer(judge_responder, models=["judge-model"]) as judge:
        res = run_cli("verify", run, "--judge", judge.url, "--rubric", RUBRIC, timeout=120)
        assert res.returncode == 0, res.stderr
        rubric_text = RUBRIC.read_text().strip()
        assert all(r["messages"][0]["content"].endswith(rubric_text) for r in judge.requests)
        assert all(r["temperature"] == 0.0 for r in judge.requests)
        explainer_asks = [r for r in judge.requests if json.loads(r["messages"][1]["content"])["agent"] == "explainer"]
    calls = verdicts(run)
    assert len(calls) == 12 and len(explainer_asks) == 2 * 4  # 4 explainer calls, each asked twice (one re-ask)
    assert {len(r["messages"]) for r in explainer_asks} == {2, 4}  # the re-ask carries the bad answer and why
    source = "llm_judge:judge-model"
    for agent, last, verdict, refined in calls:
        assert verdict["source"] == source
        if agent == "router":
            assert verdict == {"correct": True, "reason": "one word", "source": source} and refined is None
        elif agent == "order_agent" and last == "user":
            assert verdict["correct"] is False and verdict["reason"] == "use the canonical id"
            assert refined["tool_calls"][0]["function"] == {"name": "lookup_order",
                                                            "arguments": '{"order_id": "A100"}'}
        elif agent == "order_agent":  # the verdict stands, the correction naming an unknown tool is dropped
            assert verdict["correct"] is False and "not a tool the agent was given" in verdict["reason"]
            assert refined is None
        else:
            assert verdict["unjudged"] is True and "correct" not in verdict and refined is None
            assert "unusable after 2 attempts" in verdict["reason"] and "not a JSON object" in verdict["reason"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["llm_judge"] == {"episodes": 2, "passed": 0, "calls_judged": 8, "calls_wrong": 4, "unjudged": 4}
    assert summary["role_scores"]["router"] == 1.0 and summary["role_scores"]["order_agent"] == 0.0

    res = run_cli("datasets", run, "--no-progress", "--val-fraction", "0", timeout=120)
    assert res.returncode == 0, res.stderr
    sft = [json.loads(x) for x in (run / "datasets" / "sft" / "train.jsonl").read_text().splitlines()]
    refined = [r for r in sft if r["target_source"] == "refined"]
    assert len(refined) == 2 and all(r["agent"] == "order_agent" for r in refined)
    assert refined[0]["messages"][-1]["tool_calls"][0]["function"]["arguments"] == '{"order_id": "A100"}'
    dpo = [json.loads(x) for x in (run / "datasets" / "dpo" / "train.jsonl").read_text().splitlines()]
    judged = [p for p in dpo if p["source"] == "judge"]
    assert len(judged) == 2 and all(p["chosen"][0]["tool_calls"][0]["function"]["name"] == "lookup_order"
                                    for p in judged)


def test_llm_judge_and_user_verifier_together_the_verifier_last(captured: Path, tmp_path: Path) -> None:
    run = copy_of(captured, tmp_path)
    with FakeOpenAIServer(judge_responder, models=["judge-model"]) as judge:
        res = run_cli("verify", run, "--judge", judge.url, "--rubric", RUBRIC, "--verifier",
                      "examples.openai_mas.checks:verify", cwd=EXAMPLE.parents[2], timeout=120)
    assert res.returncode == 0, res.stderr
    for ep in TraceStore(run).episodes():
        assert set(ep["judgement"]) >= {"llm_judge", "user_verifier"}
        for call in ep["calls"]:  # the verifier checks every call of this MAS: its verdicts replace the judge's
            assert call["verdict"]["source"] == "verifier:examples.openai_mas.checks:verify"


def test_llm_judge_mistakes_are_one_line_errors(captured: Path, tmp_path: Path) -> None:
    run = copy_of(captured, tmp_path)
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    assert_one_line_error(run_cli("verify", run, "--rubric", RUBRIC), "--rubric needs an LLM judge")
    with FakeOpenAIServer(judge_responder) as judge:
        assert_one_line_error(run_cli("verify", run, "--judge", judge.url, "--rubric", tmp_path / "no.md"),
                              "does not exist")
        assert_one_line_error(run_cli("verify", run, "--judge", judge.url, "--rubric", empty), "is empty")
    assert_one_line_error(run_cli("verify", run, "--judge", f"http://127.0.0.1:{closed_port()}", "--rubric", RUBRIC),
                          "unreachable")
    assert_one_line_error(run_cli("verify", run), "--verifier", "--rubric")


def test_a_judge_that_fails_mid_run_leaves_calls_unjudged(captured: Path, tmp_path: Path) -> None:
    run = copy_of(captured, tmp_path)
    with FakeOpenAIServer(judge_responder, status_override=503) as judge:  # /v1/models answers, chat does not
        res = run_cli("verify", run, "--judge", judge.url, "--rubric", RUBRIC, timeout=180)
    assert res.returncode == 0, res.stderr
    calls = verdicts(run)
    assert all(v["unjudged"] and "judge endpoint failed" in v["reason"] and "503" in v["reason"]
               for _, _, v, _ in calls)


# ------------------------------------------------------------------------------------ schema mutators
def recorded(run: Path) -> list[dict[str, Any]]:
    return [c for ep in TraceStore(run).episodes() for c in ep["calls"]]


def mutate(name: str, call: dict[str, Any], seed: int = 0) -> tuple[str, list[dict[str, Any]]] | None:
    return SCHEMA_MUTATORS[name](MutationInput(call, None, None, random.Random(seed)))


def check_tool_calls(call: dict[str, Any], out: list[dict[str, Any]], keep_required: bool) -> None:
    schemas = tool_schemas(call)
    for tc in out:
        args = json.loads(tc["function"]["arguments"])  # valid JSON
        assert isinstance(args, dict) and tc["function"]["name"] in schemas
        if keep_required:
            assert set(schemas[tc["function"]["name"]].get("required") or []) <= set(args)


def test_schema_mutators_on_recorded_calls(captured: Path) -> None:
    calls = recorded(captured)
    steps = [c for c in calls if c["agent"] == "order_agent" and c.get("tool_calls")]
    finals = [c for c in calls if c["agent"] == "order_agent" and not c.get("tool_calls")]
    assert steps and finals and all(c["tools"] for c in steps)
    for call in steps:
        for seed in range(5):
            text, out = mutate("wrong_argument", call, seed)
            assert out != call["tool_calls"] and len(out) == len(call["tool_calls"])
            check_tool_calls(call, out, "wrong_argument" in KEEPS_REQUIRED)
            new, old = arguments(out[0]), arguments(call["tool_calls"][0])
            changed = [k for k in old if new[k] != old[k]]
            assert len(changed) == 1 and type(new[changed[0]]) is type(old[changed[0]])
            assert new[changed[0]] not in evidence(call)  # another order, not one the customer named
        text, out = mutate("skipped_tool", call)
        assert out == [] and text.startswith("Done:") and call["tool_calls"][0]["function"]["name"].replace(
            "_", " ") in text
        assert mutate("unsupported_claim", call) is None  # not a final answer
    for call in finals:
        text, out = mutate("unsupported_claim", call)
        said = evidence(call)
        assert out == [] and text != call["completion"]
        unsupported = [t for t in re.findall(r"[\w\-]*\d[\w\-]*", text) if t not in said]
        assert unsupported, (text, said)
        assert mutate("wrong_argument", call) is None and mutate("skipped_tool", call) is None


def test_wrong_argument_follows_the_schema_types() -> None:
    tools = [{"type": "function", "function": {"name": "order_parts", "parameters": {
        "type": "object", "required": ["size", "qty", "express"],
        "properties": {"size": {"type": "string", "enum": ["S", "M", "L"]}, "qty": {"type": "integer", "minimum": 1,
                                                                                   "maximum": 3},
                       "express": {"type": "boolean"}, "note": {"type": "string"}}}}}]
    args = {"size": "M", "qty": 1, "express": False, "note": "please leave it at the back door of the shop"}
    call = {"agent": "buyer", "messages": [{"role": "system", "content": "You buy parts."},
                                           {"role": "user", "content": "The usual parts, please."}],
            "tools": tools, "completion": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "order_parts", "arguments": json.dumps(args)}}]}
    seen = set()
    for seed in range(30):
        _, out = mutate("wrong_argument", call, seed)
        check_tool_calls(call, out, True)
        new = arguments(out[0])
        [key] = [k for k in args if new[k] != args[k]]
        assert key != "note"  # free text is left alone
        assert (key, new[key]) in {("size", "S"), ("size", "L"), ("qty", 2), ("qty", 3), ("express", True)}
        seen.add(key)
    assert seen == {"size", "qty", "express"}
    call["messages"][1]["content"] = "One M, please."  # a value the input states is the one a wrong copy changes
    assert {arguments(mutate("wrong_argument", call, seed)[1][0])["size"] != "M" for seed in range(10)} == {True}


def test_a_captured_runs_datasets_hold_only_what_was_captured(captured: Path, tmp_path: Path) -> None:
    run = copy_of(captured, tmp_path)
    res = run_cli("verify", run, "--verifier", "examples.openai_mas.checks:verify", cwd=EXAMPLE.parents[2])
    assert res.returncode == 0, res.stderr
    res = run_cli("datasets", run, "--no-progress", "--val-fraction", "0", timeout=120)
    assert res.returncode == 0, res.stderr
    stats = json.loads((run / "datasets" / "stats.json").read_text())
    assert stats["settings"]["captured"] is True and stats["settings"]["prompt_style"] == "as captured"
    assert stats["cpt"]["train"]["records"] == stats["cpt"]["val"]["records"] == 0  # no domain documents
    assert stats["cpt"]["ppl"]["domain"] == 0 and stats["cpt"]["ppl"]["public"] > 0
    dpo = [json.loads(x) for x in (run / "datasets" / "dpo" / "train.jsonl").read_text().splitlines()]
    sources = {p["source"] for p in dpo}
    assert "curated" not in sources
    assert {"mutator:wrong_argument", "mutator:skipped_tool", "mutator:unsupported_claim"} <= sources
    prompts = {m["content"] for p in dpo for m in p["prompt"] if m["role"] == "system"}
    sft = [json.loads(x) for x in (run / "datasets" / "sft" / "train.jsonl").read_text().splitlines()]
    prompts |= {r["messages"][0]["content"] for r in sft}
    assert prompts and all(p.startswith("You are Bike Barn's") or p.startswith("You are the router of Bike Barn")
                           for p in prompts)  # nothing but the MAS's own agents
    for p in dpo:
        assert p["chosen"] != p["rejected"]
        for tc in p["rejected"][0].get("tool_calls") or []:
            json.loads(tc["function"]["arguments"])
