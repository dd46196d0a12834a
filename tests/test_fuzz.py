"""Hostile model output never crashes a parser, a role, the judge or a run (issue 18).

Property-based tests (hypothesis) over every model-text parser, the hostile generators of bench/hostile.py
through every role of the MAS, and a fuzzing OpenAI-compatible endpoint on 127.0.0.1 driving `simulate`.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from cli_runner import run_cli
from fake_openai_server import FakeOpenAIServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentdistill.backends.scripted import ScriptedTeacher
from agentdistill.bench.fuzz import fuzz_episodes
from agentdistill.bench.hostile import KINDS, HostileBackend, hostile_answer, openai_message
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.judge.judge import Judge
from agentdistill.mas import model_text
from agentdistill.mas.model_text import ModelTextError
from agentdistill.mas.plan import PlanError, parse_plan
from agentdistill.mas.prompts import ROLES
from agentdistill.mas.runtime import MAS, MASConfig
from agentdistill.simulate.episode import run_episode
from agentdistill.simulate.store import TraceStore
from agentdistill.simulate.user import ScriptedUser

DOMAIN = DealershipDomain()
TOOLS = sorted(DOMAIN.tool_names())
FAST = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
nested = st.builds(lambda n, o, close: o * n + (o.translate(str.maketrans("[{(", "]})")) * n if close else ""),
                   st.integers(1, 6_000), st.sampled_from(["[", "{", "(", "[{", "f("]), st.booleans())
junk = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)  # surrogates included
model_texts = (st.text(max_size=400) | junk | nested | json_values.map(json.dumps)
               | st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape"))
               | st.builds(lambda r: hostile_answer(r, TOOLS)[1], st.randoms(use_true_random=False)))

PARSERS = [model_text.json_object, model_text.understanding, model_text.verdict, model_text.json_value,
           model_text.check_size, lambda t: parse_plan(t, TOOLS)]


@pytest.mark.parametrize("parse", PARSERS, ids=["json_object", "understanding", "verdict", "json_value",
                                                 "check_size", "plan"])
@FAST
@given(text=model_texts)
def test_every_parser_returns_a_value_or_its_typed_error(parse, text):
    try:
        parse(text)
    except (ModelTextError, PlanError):
        pass


@FAST
@given(raw=st.one_of(model_texts, json_values, st.dictionaries(st.text(max_size=5), json_values, max_size=4)))
def test_tool_arguments_always_give_a_dict(raw):
    assert isinstance(model_text.tool_arguments(raw), dict)


@FAST
@given(raw=st.lists(st.one_of(json_values, st.fixed_dictionaries(
    {"id": json_values, "function": st.fixed_dictionaries({"name": json_values, "arguments": json_values})})),
    max_size=12))
def test_tool_calls_give_tool_calls_or_the_too_many_error(raw):
    try:
        calls = model_text.tool_calls(raw)
    except ModelTextError as exc:
        assert exc.kind == "too_many_calls" and len(raw) > model_text.LIMITS.max_tool_calls
        return
    assert all(isinstance(c.name, str) and isinstance(c.arguments, dict) for c in calls)


def test_the_2000_bracket_answer_and_its_cousins():
    for text in ["[" * 2_000 + "]" * 2_000, "{\"a\":" * 2_000 + "1" + "}" * 2_000, "[" * 100_000]:
        with pytest.raises(ModelTextError) as err:
            model_text.json_object(text)
        assert err.value.kind in ("too_deep", "too_long")
        assert model_text.extract_json_object(text) is None
        with pytest.raises(PlanError):
            parse_plan(text, TOOLS)
    assert model_text.understanding('```json\n{"intents": ["x"], "entities": {"stock_nos": ["a", "b"]}}\n```') \
        == {"intents": ["x"], "entities": {"stock_nos": ["a", "b"]}, "missing": []}


@pytest.mark.parametrize("role", ROLES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31))
def test_every_role_survives_hostile_answers(role, seed):
    """Each role in turn answers hostile outputs (the others the reference), with the evaluator always on:
    every episode ends without an exception, is judged, and its trace serializes."""
    backend = HostileBackend(DOMAIN, seed=seed, roles=(role,), rate=0.7)
    mas = MAS(DOMAIN, backend, MASConfig(halstead_threshold=0.0))
    types = [s.name for s in DOMAIN.scenario_types()]
    sc = DOMAIN.make_scenario(types[seed % len(types)], f"fuzz-role:{seed}")
    ep = run_episode(f"fuzz-{role}-{seed}", sc, mas, ScriptedUser(sc, DOMAIN.fallback_reply), backend)
    assert "error" not in ep, ep.get("error")
    Judge(DOMAIN).judge_episode(ep)
    TraceStore.write(io.StringIO(), ep)
    if sum(backend.counts[role].values()):
        assert ep["stats"]["malformed"] or ep["calls"]  # the hostile calls are in the trace


def test_thousands_of_hostile_outputs_through_every_role():
    result = fuzz_episodes(DOMAIN, 1_200, seed=7)
    assert result["hostile_outputs"] >= 1_200
    assert result["crashes"] == 0 and result["episode_errors"] == 0, result["crash_examples"] or \
        result["episode_errors_by_kind"]
    assert all(result["by_role"][r] > 0 for r in ROLES), result["by_role"]
    assert {k for kinds in result["by_role_and_kind"].values() for k in kinds} == set(KINDS)


def test_an_unexpected_exception_fails_one_episode_not_the_run():
    """A bug (here: a backend that raises KeyError on its 4th call) is recorded in the episode's trace with the
    calls made before it; --fail-fast re-raises it."""
    class Buggy(ScriptedTeacher):
        def complete(self, messages, tools=None, **sampling):
            self.n = getattr(self, "n", 0) + 1
            if self.n == 4:
                raise KeyError("bug")
            return super().complete(messages, tools, **sampling)

    sc = DOMAIN.make_scenario("book_test_drive", "crash")
    ep = run_episode("crash", sc, MAS(DOMAIN, Buggy(DOMAIN)), ScriptedUser(sc, DOMAIN.fallback_reply))
    assert ep["exit"] == "error" and ep["error"]["type"] == "KeyError", ep.get("error")
    assert ep["error"]["stage"] == "mas" and "runtime.py" in ep["error"]["where"]
    assert len(ep["calls"]) == 3, "the calls made before the exception are kept"
    assert Judge(DOMAIN).judge_episode(ep)["pass"] is False
    with pytest.raises(KeyError):
        run_episode("crash", sc, MAS(DOMAIN, Buggy(DOMAIN)), ScriptedUser(sc, DOMAIN.fallback_reply),
                    fail_fast=True)


def _fuzz_server(seed: int) -> FakeOpenAIServer:
    rng = random.Random(seed)
    lock = __import__("threading").Lock()

    def answer(request: dict) -> dict:
        with lock:
            msg = openai_message(rng, TOOLS)
        calls = [{"name": c["function"]["name"] if isinstance(c["function"]["name"], str) else "",
                  "arguments": c["function"]["arguments"] if isinstance(c["function"]["arguments"], str)
                  else json.dumps(c["function"]["arguments"])} for c in msg["tool_calls"] or []]
        return {"content": msg["content"], "tool_calls": calls or None}
    return FakeOpenAIServer(responder=answer)


def test_simulate_against_a_garbage_endpoint_writes_every_episode(tmp_path: Path):
    """Teacher, user simulator and judge all answer hostile outputs over HTTP: exit 0, every episode written,
    failures counted and classified."""
    with _fuzz_server(3) as teacher, _fuzz_server(4) as user:
        res = run_cli("simulate", "--out", tmp_path / "run", "--episodes", "24", "--workers", "2",
                      "--teacher", teacher.url, "--user-sim", user.url, "--judge", teacher.url, "--no-progress",
                      timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["episodes"] == 24 and summary["episode_errors"] == 0
    assert summary["malformed_rate"] > 0.5 and summary["malformed"], summary
    lines = sum(p.read_text(encoding="utf-8").count("\n") for p in (tmp_path / "run" / "traces").glob("ep*.jsonl"))
    assert lines == 24  # (str.splitlines would also split on the U+2028 that hostile replies carry)


def test_the_2000_bracket_teacher_no_longer_kills_the_run(tmp_path: Path):
    with FakeOpenAIServer(responder=lambda req: {"content": "[" * 2_000 + "]" * 2_000}) as srv:
        res = run_cli("simulate", "--out", tmp_path / "run", "--episodes", "6", "--teacher", srv.url,
                      "--no-progress", timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["episodes"] == 6 and summary["malformed"].get("invalid_json", 0) >= 6


def test_bench_fuzz_cli_writes_its_counts(tmp_path: Path):
    out = tmp_path / "fuzz.json"
    res = run_cli("bench", "fuzz", "--outputs", "60", "--seed", "3", "--out", out, "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["hostile_outputs"] >= 60 and data["crashes"] == 0 and data["episode_errors"] == 0
    assert {"amx_bf16", "cpus"} <= set(data["machine"]) and set(data["slowest_parse_ms"]) >= {"plan", "verdict"}
