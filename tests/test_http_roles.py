"""Every role over the OpenAI-compatible path, end to end over real HTTP on 127.0.0.1.

The server is tests/fake_openai_server.py; nothing of ours is mocked.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cli_runner import run_cli
from fake_openai_server import FakeOpenAIServer

from agentdistill.backends.openai_backend import OpenAIBackend
from agentdistill.backends.scripted import FaultConfig, ScriptedTeacher
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.errors import EndpointError, UserError
from agentdistill.judge.judge import Judge
from agentdistill.mas.prompts import role_of
from agentdistill.mas.runtime import MAS
from agentdistill.simulate.episode import run_episode
from agentdistill.simulate.store import TraceStore
from agentdistill.simulate.user import EXIT, LLMUser, ScriptedUser

FAST = {"timeout_s": 5.0, "max_retries": 1, "backoff_s": 0.01}


@pytest.fixture(scope="module")
def domain() -> DealershipDomain:
    return DealershipDomain()


def teacher_responder(teacher: ScriptedTeacher):
    """A chat-completions responder that answers as the scripted teacher would."""

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        comp = teacher.complete(request["messages"], tools=request.get("tools"))
        calls = [{"name": tc.name, "arguments": tc.arguments, "id": tc.id} for tc in comp.tool_calls]
        return {"content": comp.text or None, "tool_calls": calls}

    return respond


def oracle_of(scenario) -> dict[str, dict[str, Any]]:
    return {t.text.strip(): {"intents": t.intents, "entities": t.entities} for t in scenario.turns}


# ------------------------------------------------------------------------------------------- teacher
@pytest.mark.parametrize("scenario_type", ["book_test_drive", "dealer_hours", "vehicle_details"])
def test_teacher_over_http_passes_the_judge(domain, scenario_type: str):
    scenario = domain.make_scenario(scenario_type, f"http:{scenario_type}")
    teacher = ScriptedTeacher(domain)
    teacher.set_oracle(oracle_of(scenario))
    with FakeOpenAIServer(responder=teacher_responder(teacher)) as srv:
        backend = OpenAIBackend(srv.url, **FAST)
        mas = MAS(domain, backend)
        user = ScriptedUser(scenario, domain.fallback_reply)
        ep = run_episode(f"http-{scenario_type}", scenario, mas, user)
        backend.close()
        requests = list(srv.requests)
        assert srv.model_requests >= 1  # the model name was resolved from GET /v1/models
    judgement = Judge(domain).judge_episode(ep)
    assert judgement["pass"], judgement
    assert judgement["calls_wrong"] == 0
    assert ep["exit"] == "exit"
    assert ep["teacher"] == backend.name
    assert ep["stats"]["malformed"] == 0 and ep["stats"]["fallbacks"] == 0
    assert len(requests) == ep["stats"]["agent_calls"]
    assert all(r["model"] == "fake-model" for r in requests)
    assert all(c["tokens_in"] > 0 for c in ep["calls"])  # server usage, not the approximation

    roles = [role_of(r["messages"][0]["content"]) for r in requests]
    assert {"understander", "planner", "executor", "explainer"} <= set(roles)
    tool_names = {t.name for t in domain.tools()}
    for role, req in zip(roles, requests, strict=True):
        if role == "executor":
            assert {t["function"]["name"] for t in req["tools"]} == tool_names
        else:
            assert "tools" not in req
    if scenario_type == "book_test_drive":
        assert any(a["name"] == "book_test_drive" for t in ep["turns"] for a in t["actions"])
        # tool results went back to the server as tool messages with the call's id
        tool_msgs = [m for r in requests for m in r["messages"] if m["role"] == "tool"]
        assert tool_msgs and all(m["tool_call_id"] for m in tool_msgs)


def test_cli_simulate_with_http_teacher(domain, tmp_path: Path):
    teacher = ScriptedTeacher(domain)  # no oracle: the Understander falls back to keywords
    with FakeOpenAIServer(responder=teacher_responder(teacher)) as srv:
        out = tmp_path / "http-run"
        res = run_cli("simulate", "--teacher", srv.url, "--episodes", "3", "--scenario", "dealer_hours",
                      "--out", out, "--no-progress", timeout=90)
        assert res.returncode == 0, res.stderr[-3000:]
        assert srv.chat_requests > 0
        n_requests = srv.chat_requests
    eps = list(TraceStore(out).episodes())
    assert sorted(e["episode_id"] for e in eps) == [f"train-0-{i:06d}" for i in range(3)]
    assert all(e["scenario"]["scenario_type"] == "dealer_hours" for e in eps)
    assert sum(e["stats"]["agent_calls"] for e in eps) == n_requests
    assert all(e["teacher"].startswith("openai:http://127.0.0.1:") for e in eps)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3


# ---------------------------------------------------------------------------------------------- user
def test_llm_user_returns_server_text_and_exit(domain):
    scenario = domain.make_scenario("dealer_hours", "user:1")
    with FakeOpenAIServer(responder=[{"content": "  Hi, when are you open?  "}, {"content": EXIT}]) as srv:
        user = LLMUser(OpenAIBackend(srv.url, **FAST), scenario, domain)
        msg = user.next_message([])
        assert msg is not None and msg.text == "Hi, when are you open?" and msg.annotation is None
        history = [{"role": "user", "content": msg.text}, {"role": "assistant", "content": "9 to 5."}]
        assert user.next_message(history) is None
        first, second = srv.requests
    assert first["messages"][0]["role"] == "system" and scenario.goal in first["messages"][0]["content"]
    assert first["temperature"] == 0.7
    # roles are mirrored: the MAS's reply is the simulator's user input
    assert [m["role"] for m in second["messages"][1:]] == ["assistant", "user"]
    assert second["messages"][-1]["content"] == "9 to 5."


def test_episode_with_llm_user_runs_to_exit(domain):
    scenario = domain.make_scenario("dealer_hours", "user:2")
    location = scenario.turns[0].text
    replies = [{"content": location}, {"content": "thanks, bye " + EXIT}]
    with FakeOpenAIServer(responder=replies) as srv:
        user = LLMUser(OpenAIBackend(srv.url, **FAST), scenario, domain)
        teacher = ScriptedTeacher(domain)
        ep = run_episode("llm-user", scenario, MAS(domain, teacher), user, teacher)
        assert srv.chat_requests == 2
    assert ep["exit"] == "exit"
    assert len(ep["turns"]) == 1
    assert ep["turns"][0]["user"] == location and ep["turns"][0]["annotation"] is None
    assert ep["user_sim"].startswith("llm:openai:")
    assert ep["turns"][0]["reply"]
    Judge(domain).judge_episode(ep)  # judging a free-text episode works
    assert "pass" in ep["judgement"]


# --------------------------------------------------------------------------------------------- judge
def test_llm_judge_refiner_is_the_source_of_y_star(domain):
    scenario = domain.make_scenario("book_test_drive", "refine:1")
    teacher = ScriptedTeacher(domain, FaultConfig(rate=1.0, seed=1))  # every call is a fault
    ep = run_episode("refine", scenario, MAS(domain, teacher), ScriptedUser(scenario, domain.fallback_reply),
                     teacher)
    assert ep["stats"]["injected"] > 0
    with FakeOpenAIServer(responder=lambda req: {"content": "CORRECTED OUTPUT"}) as srv:
        url = srv.url
        refiner = OpenAIBackend(url, **FAST)
        judgement = Judge(domain, refiner=refiner).judge_episode(ep)
        requests = list(srv.requests)
    assert judgement["injected_flagged"] > 0
    wrong = [c for c in ep["calls"] if not c["verdict"]["correct"]]
    assert wrong and len(requests) == len(wrong)
    for call in wrong:
        assert call["refined"]["source"] == refiner.name == f"openai:{url}/v1"
        assert call["refined"]["completion"] == "CORRECTED OUTPUT"
    assert all("refined" not in c for c in ep["calls"] if c["verdict"]["correct"])
    for req in requests:
        assert req["temperature"] == 0.0
        assert "strict reviewer" in req["messages"][-1]["content"]
        assert req["messages"][-2]["role"] == "assistant"


# -------------------------------------------------------------------------------------- endpoint down
class StopAfter:
    """Answers as the teacher, and takes the whole server down once it has answered `n` requests."""

    def __init__(self, teacher: ScriptedTeacher, n: int):
        self.respond, self.n, self.count = teacher_responder(teacher), n, 0
        self.server: FakeOpenAIServer | None = None
        self.stopper: threading.Thread | None = None

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        self.count += 1
        if self.count == self.n and self.server is not None:
            self.stopper = threading.Thread(target=self.server.stop, daemon=True)
            self.stopper.start()
        return self.respond(request)


def _server_going_down(domain, n: int) -> tuple[FakeOpenAIServer, StopAfter]:
    stop = StopAfter(ScriptedTeacher(domain), n)
    srv = FakeOpenAIServer(responder=stop).start()
    stop.server = srv
    return srv, stop


def test_teacher_going_down_mid_episode_is_one_clean_error(domain):
    scenario = domain.make_scenario("book_test_drive", "down:1")
    srv, stop = _server_going_down(domain, 4)
    url = srv.url
    try:
        mas = MAS(domain, OpenAIBackend(url, **FAST))
        t0 = time.monotonic()
        with pytest.raises(EndpointError) as err:
            run_episode("down", scenario, mas, ScriptedUser(scenario, domain.fallback_reply))
        assert time.monotonic() - t0 < 30
    finally:
        if stop.stopper is not None:
            stop.stopper.join(timeout=10)
        srv.stop()
    message = str(err.value)
    assert isinstance(err.value, UserError)
    assert "\n" not in message
    assert "127.0.0.1" in message and "unreachable" in message and "2 attempts" in message
    assert stop.count == 4


def _simulate_while_teacher_dies(domain, out: Path, fail_after: int, workers: int):
    """`agentdistill simulate` against a teacher endpoint that stops answering after `fail_after` requests."""
    srv, stop = _server_going_down(domain, fail_after)
    try:
        return run_cli("simulate", "--teacher", srv.url, "--episodes", "20", "--workers", str(workers), "--scenario",
                       "dealer_hours", "--out", out, "--no-progress", timeout=90)
    finally:
        if stop.stopper is not None:
            stop.stopper.join(timeout=10)
        srv.stop()


@pytest.mark.parametrize("workers, fail_after", [(1, 25), (2, 40)])
def test_cli_teacher_going_down_mid_run_exits_2_with_one_line(domain, tmp_path: Path, workers: int, fail_after: int):
    res = _simulate_while_teacher_dies(domain, tmp_path / "down", fail_after, workers)
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "unreachable" in lines[0], res.stderr
