"""Capture (issue 17 part 3): `agentdistill proxy` records an unmodified MAS (examples/openai_mas) in front of a real
local OpenAI-compatible server, streamed and not, with tool calls; `import-logs` converts existing logs; both
write traces that TraceStore reads back and that verify --verifier and datasets accept. Everything on 127.0.0.1."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_runner import run_cli
from fake_openai_server import FakeOpenAIServer
from test_simulate_cli import assert_one_line_error, closed_port

from agentdistill.capture.streaming import StreamAssembler
from agentdistill.simulate.store import TraceStore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "openai_mas" / "mas.py"
ROLES_FILE = ROOT / "examples" / "openai_mas" / "roles.yaml"


# ------------------------------------------------------------------------------------ the upstream
def shop(request: dict[str, Any]) -> dict[str, Any]:
    """The example MAS's three agents, answered by their system prompts (the order agent calls tools)."""
    system = request["messages"][0]["content"]
    last = request["messages"][-1]
    if "router" in system:
        return {"content": "orders" if "order" in last["content"].lower() else "chat"}
    if "order agent" in system:
        if last["role"] == "tool":
            return {"content": f"Order facts: {last['content']}"}
        order = re.search(r"A\d+", request["messages"][1]["content"])
        tool = "refund_order" if "refund" in request["messages"][1]["content"] else "lookup_order"
        return {"tool_calls": [{"name": tool, "arguments": {"order_id": order.group(0) if order else "?"}}]}
    return {"content": "Thanks for asking: " + json.loads(last["content"])["customer"][:40]}


class StreamingServer(FakeOpenAIServer):
    """tests/fake_openai_server.py, plus `stream: true` answered as server-sent events in small deltas."""

    def _handle_post(self, h: Any) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        h.rfile = io.BytesIO(raw)
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            request = {}
        if not request.get("stream"):
            return super()._handle_post(h)
        with self._lock:
            self.requests.append(request)
            self.chat_requests += 1
            index = self.chat_requests
        full = self._format(request, self._reply_for(request), index)
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for chunk in sse_chunks(full, (request.get("stream_options") or {}).get("include_usage")):
            h.wfile.write(chunk)
            h.wfile.flush()


def sse_chunks(full: dict[str, Any], include_usage: bool) -> Iterator[bytes]:
    message, base = full["choices"][0]["message"], {"id": full["id"], "object": "chat.completion.chunk",
                                                    "model": full["model"]}

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n".encode()

    yield event({"role": "assistant", "content": ""})
    text = message.get("content") or ""
    for i in range(0, len(text), 3):
        yield event({"content": text[i:i + 3]})
    for n, tc in enumerate(message.get("tool_calls") or []):
        yield event({"tool_calls": [{"index": n, "id": tc["id"], "type": "function",
                                     "function": {"name": tc["function"]["name"], "arguments": ""}}]})
        args = tc["function"]["arguments"]
        for i in range(0, len(args), 5):
            yield event({"tool_calls": [{"index": n, "function": {"arguments": args[i:i + 5]}}]})
    yield event({}, full["choices"][0]["finish_reason"])
    if include_usage:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': full['usage']})}\n\n".encode()
    yield b"data: [DONE]\n\n"


@pytest.fixture(scope="module")
def upstream() -> Iterator[StreamingServer]:
    with StreamingServer(shop, models=["shop-model"]) as srv:
        yield srv


# --------------------------------------------------------------------------------------- helpers
@contextmanager
def proxy(run: Path, upstream_url: str, *extra: str, stop: int = signal.SIGINT) -> Iterator[str]:
    """`agentdistill proxy` as a user runs it, on a free port; stopped with Ctrl-C (or `stop`) on exit, cleanly."""
    proc = subprocess.Popen(["agentdistill", "proxy", "--upstream", upstream_url + "/v1", "--run", str(run),
                             "--port", "0", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        while line.startswith("recovered"):
            line = proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)/v1", line)
        assert found, (line, proc.stderr.read() if proc.poll() is not None else "")
        yield found.group(0)
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
        try:
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0 and not err.strip(), (proc.returncode, err[-2000:])
    assert "recorded" in out


def mas(url: str, *args: str) -> list[dict[str, Any]]:
    res = subprocess.run([sys.executable, str(EXAMPLE), "--base-url", url, *args], capture_output=True, text=True,
                         timeout=60, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return [json.loads(line) for line in res.stdout.splitlines()]


def episodes(run: Path) -> list[dict[str, Any]]:
    return list(TraceStore(run).episodes())


def answer(call: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    return call["completion"], [(t["function"]["name"], t["function"]["arguments"]) for t in call.get("tool_calls", [])]


# ------------------------------------------------------------------------------------------ tests
VERIFIER = """
from agentdistill.judge.user_verifier import CallVerdict, Verdict


def verify(episode):
    # house rule: the first order-agent call is corrected to look the order up under its canonical id
    first = next((i for i, c in enumerate(episode["calls"]) if c["agent"] == "order_agent"), None)
    if first is None:
        return Verdict(True, "no orders")
    fix = [{"id": "call_fix", "type": "function", "function": {"name": "lookup_order",
                                                               "arguments": '{"order_id": "FIXED"}'}}]
    return Verdict(False, "house rule", {first: CallVerdict(False, "canonical id", {"tool_calls": fix})})
"""


def test_example_mas_recorded_by_header_streamed_and_not_then_verified_and_turned_into_sft(
        upstream: StreamingServer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    before = upstream.chat_requests
    with proxy(run, upstream.url) as url:
        plain = mas(url, "--headers", "--conversations", "2")
        streamed = mas(url, "--headers", "--conversations", "2", "--stream")
    assert plain == streamed and len(plain) == 4  # the MAS got the same answers through the stream
    eps = episodes(run)
    calls = [c for ep in eps for c in ep["calls"]]
    assert len(calls) == upstream.chat_requests - before == 2 * 12  # every call recorded once, none invented
    assert len(eps) == 4 and all(ep["episode_id"].startswith("conv-") and ep["source"] == "capture" for ep in eps)
    assert {c["agent"] for c in calls} == {"router", "order_agent", "explainer"}
    assert {c["role_source"] for c in calls} == {"header"}
    by_mode = {True: [e for e in eps if e["calls"][0]["stream"]], False: [e for e in eps if not e["calls"][0]["stream"]]}
    assert len(by_mode[True]) == len(by_mode[False]) == 2
    for s_ep, p_ep in zip(by_mode[True], by_mode[False], strict=True):  # same conversations, same order
        assert [answer(c) for c in s_ep["calls"]] == [answer(c) for c in p_ep["calls"]]
        assert [t["user"] for t in s_ep["turns"]] == [t["user"] for t in p_ep["turns"]]
    first = by_mode[False][0]
    assert [t["turn"] for t in first["turns"]] == [1, 2] and [c["turn"] for c in first["calls"]] == [1, 1, 1, 1, 2, 2]
    assert [c["agent"] for c in first["calls"]] == ["router", "order_agent", "order_agent", "explainer", "router",
                                                    "explainer"]
    tool_step, after_tool = first["calls"][1], first["calls"][2]
    assert tool_step["tool_calls"][0]["function"] == {"name": "lookup_order", "arguments": '{"order_id": "A100"}'}
    assert tool_step["tools"][0]["function"]["name"] == "lookup_order"  # expanded from prompts.json
    assert after_tool["messages"][-1]["role"] == "tool" and after_tool["completion"].startswith("Order facts")
    assert first["turns"][0]["actions"] == [{"name": "lookup_order", "arguments": {"order_id": "A100"},
                                             "result": {"order_id": "A100", "status": "shipped",
                                                        "delivery": "2025-06-03"}}]
    assert all(c["tokens_in"] > 0 for c in first["calls"])
    s_call = by_mode[True][0]["calls"][1]
    assert s_call["usage_missing"] and s_call["ttft_s"] <= s_call["latency_s"]  # no include_usage: not invented
    raw = (run / "traces" / "episodes-000.jsonl").read_text()
    assert "@prompt:" in raw and "@tools:" in raw and "You are the router" not in raw  # stored once

    assert_one_line_error(run_cli("verify", run), "captured", "--verifier")
    (tmp_path / "shop_checks.py").write_text(textwrap.dedent(VERIFIER))
    res = run_cli("verify", run, "--verifier", "shop_checks:verify", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["user_verifier"] == {"episodes": 4, "passed": 0,
                                                                                 "errors": 0}
    res = run_cli("datasets", run, "--no-progress", "--val-fraction", "0", timeout=120)
    assert res.returncode == 0, res.stderr
    sft = [json.loads(x) for x in (run / "datasets" / "sft" / "train.jsonl").read_text().splitlines()]
    refined = [r for r in sft if r["target_source"] == "refined"]  # streamed conversations repeat plain ones: deduplicated
    assert len(refined) == 2 and all(r["agent"] == "order_agent" for r in refined)
    assert refined[0]["messages"][-1]["tool_calls"][0]["function"] == {"name": "lookup_order",
                                                                      "arguments": '{"order_id": "FIXED"}'}
    assert refined[0]["messages"][0]["content"].startswith("You are Bike Barn's order agent")  # not restyled
    teacher_tools = [r for r in sft if r["agent"] == "order_agent" and r["target_source"] == "teacher"]
    assert all(r["messages"][-1].get("content") for r in teacher_tools)  # the order agent's final summaries
    assert {r["agent"] for r in sft} == {"router", "order_agent", "explainer"}


def test_roles_by_fingerprint_and_mapping_episodes_by_idle_gap_and_passthrough(upstream: StreamingServer,
                                                                               tmp_path: Path) -> None:
    run, mapped = tmp_path / "fingerprint", tmp_path / "mapped"
    with proxy(run, upstream.url, "--idle-gap-s", "1.5") as url:
        mas(url, "--conversations", "1")
        time.sleep(2.5)  # longer than the gap: the next conversation is a new episode
        mas(url, "--conversations", "2", "--stream")
        models = httpx.get(url + "/models").json()
        missing = httpx.post(url + "/embeddings", json={"input": "x"})
    assert [m["id"] for m in models["data"]] == ["shop-model"]
    assert missing.status_code == 404 and "no route" in missing.json()["error"]["message"]  # the upstream's answer
    eps = episodes(run)
    assert len(eps) == 2 and all(ep["capture"]["grouped_by"] == "idle_gap" for ep in eps)
    assert [ep["stats"]["agent_calls"] for ep in eps] == [6, 6 + 6]  # 2 conversations within the gap: merged
    assert eps[0]["exit"] == "idle"
    agents = [c["agent"] for c in eps[0]["calls"]]
    assert agents[:4] == ["agent-1", "agent-2", "agent-2", "agent-3"]  # named in the order first seen
    assert [c["role_source"] for c in eps[0]["calls"][:2]] == ["new", "new"]
    assert {c["role_source"] for c in eps[1]["calls"]} == {"fingerprint"}
    assert set(json.loads((run / "capture" / "roles.json").read_text()).values()) == {"agent-1", "agent-2", "agent-3"}

    with proxy(mapped, upstream.url, "--roles", str(ROLES_FILE), stop=signal.SIGTERM) as url:
        mas(url, "--conversations", "1")
        mas(url, "--conversations", "1", "--headers")
    eps = episodes(mapped)
    assert len(eps) == 2  # one header episode, one idle-gap episode still open at shutdown
    headerless = next(ep for ep in eps if ep["capture"]["grouped_by"] == "idle_gap")
    assert [c["agent"] for c in headerless["calls"]] == ["router", "order_agent", "order_agent", "explainer",
                                                         "router", "explainer"]
    assert {c["role_source"] for c in headerless["calls"]} == {"mapping"}


def test_a_killed_proxy_loses_no_finished_call(upstream: StreamingServer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen(["agentdistill", "proxy", "--upstream", upstream.url, "--run", str(run), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/v1", proc.stdout.readline()).group(0)
        body = {"model": "shop-model", "messages": [{"role": "system", "content": "You are the router."},
                                                    {"role": "user", "content": "order A1?"}]}
        reply = httpx.post(url + "/chat/completions", json=body, headers={"X-Episode-Id": "kept", "X-Turn": "3"})
        assert reply.json()["choices"][0]["message"]["content"] == "orders"
        proc.kill()  # SIGKILL: no shutdown hook runs
        proc.wait(timeout=10)
    finally:
        proc.stdout.close()
        proc.stderr.close()
    assert not (run / "traces" / "episodes-000.jsonl").read_text()  # the episode was still open
    with proxy(run, upstream.url) as url:
        pass  # the next start writes the journalled episode before it accepts calls
    [ep] = episodes(run)
    assert ep["episode_id"] == "kept" and ep["exit"] == "recovered"
    assert ep["calls"][0]["completion"] == "orders" and ep["calls"][0]["turn"] == 3
    assert not (run / "capture" / "pending.jsonl").read_text()


def test_stream_reassembly_across_arbitrary_byte_boundaries() -> None:
    full = {"id": "x", "model": "m", "usage": {"prompt_tokens": 3, "completion_tokens": 4},
            "choices": [{"finish_reason": "tool_calls", "message": {"content": "checking", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "A1"}'}},
                {"id": "c2", "type": "function", "function": {"name": "refund_order", "arguments": '{"x": [1, 2]}'}}]}}]}
    data = b"".join(sse_chunks(full, True))
    asm = StreamAssembler()
    for i in range(0, len(data), 7):  # cuts lines and JSON in the middle
        asm.feed(data[i:i + 7])
    out = asm.completion()
    assert out["choices"][0]["message"] == {"role": "assistant", **full["choices"][0]["message"]}
    assert out["choices"][0]["finish_reason"] == "tool_calls" and out["usage"] == full["usage"]


LOG = [
    {"messages": [{"role": "system", "content": "You are the router of Bike Barn."},
                  {"role": "user", "content": "where is A100"}],
     "response": "orders", "metadata": {"episode_id": "log-1"}},
    {"messages": [{"role": "system", "content": "You are Bike Barn's order agent."},
                  {"role": "user", "content": "where is A100"}],
     "tools": [{"type": "function", "function": {"name": "lookup_order", "parameters": {"type": "object"}}}],
     "response": {"role": "assistant", "content": None, "tool_calls": [
         {"id": "t1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "A100"}'}}]},
     "metadata": {"episode_id": "log-1", "role": "order_agent"}},
    {"messages": [{"role": "system", "content": [{"type": "text", "text": "You are Bike Barn's explainer."}]},
                  {"role": "user", "content": "notes: shipped"}],
     "choices": [{"index": 0, "message": {"role": "assistant", "content": "It has shipped."}, "finish_reason": "stop"}],
     "usage": {"prompt_tokens": 7, "completion_tokens": 3}, "metadata": {"episode_id": "log-1"}},
    {"messages": [{"role": "user", "content": "hello"}],
     "response": {"id": "r", "model": "m", "choices": [{"message": {"role": "assistant", "content": "hi"}}],
                  "usage": {"prompt_tokens": 1, "completion_tokens": 1}}},
]


def test_import_logs_writes_the_same_trace_format(tmp_path: Path) -> None:
    log, run = tmp_path / "calls.jsonl", tmp_path / "run"
    log.write_text("".join(json.dumps(x) + "\n" for x in LOG))
    res = run_cli("import-logs", log, "--run", run, "--roles", ROLES_FILE)
    assert res.returncode == 0, res.stderr
    assert "imported 2 episode(s), 4 call(s)" in res.stdout
    eps = {ep["episode_id"]: ep for ep in episodes(run)}
    assert set(eps) == {"log-1", "calls-000004"}
    calls = eps["log-1"]["calls"]
    assert [(c["agent"], c["role_source"]) for c in calls] == [("router", "mapping"), ("order_agent", "header"),
                                                               ("explainer", "mapping")]
    assert calls[1]["tool_calls"][0]["function"]["name"] == "lookup_order" and calls[1]["tools"] == LOG[1]["tools"]
    assert calls[2]["messages"][0]["content"] == "You are Bike Barn's explainer." and calls[2]["tokens_in"] == 7
    assert eps["calls-000004"]["calls"][0]["agent"] == "agent-1"  # no system prompt, no mapping: named
    again = run_cli("import-logs", log, "--run", run)
    assert again.returncode == 0 and "imported 0 episode(s)" in again.stdout and "2 already there" in again.stdout
    assert len(episodes(run)) == 2


def test_bad_input_is_a_one_line_error(upstream: StreamingServer, tmp_path: Path) -> None:
    run = tmp_path / "run"
    bad_yaml, bad_regex, not_a_map = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.json"
    bad_yaml.write_text("router: [unclosed\n")
    bad_regex.write_text('router: "re:(["\n')
    not_a_map.write_text('["router"]')
    base = ("proxy", "--run", run, "--port", "0")
    assert_one_line_error(run_cli(*base, "--upstream", "localhost:8000"), "--upstream", "http")
    assert_one_line_error(run_cli(*base, "--upstream", upstream.url, "--idle-gap-s", "0"), "--idle-gap-s")
    assert_one_line_error(run_cli(*base, "--upstream", upstream.url, "--roles", tmp_path / "nope.yaml"),
                          "does not exist")
    assert_one_line_error(run_cli(*base, "--upstream", upstream.url, "--roles", bad_yaml), "not valid YAML")
    assert_one_line_error(run_cli(*base, "--upstream", upstream.url, "--roles", bad_regex), "bad regex")
    assert_one_line_error(run_cli(*base, "--upstream", upstream.url, "--roles", not_a_map), "must map role names")
    assert_one_line_error(run_cli("proxy", "--run", run, "--upstream", upstream.url, "--port",
                                  str(upstream.port)), f"--port {upstream.port}")
    assert_one_line_error(run_cli("proxy", "--run", run), "--upstream")

    log = tmp_path / "log.jsonl"
    assert_one_line_error(run_cli("import-logs", log, "--run", run), "does not exist")
    for lines, needle in (([LOG[0], "{not json"], "line 2: not valid JSON"),
                          ([{"messages": []}], "line 1: \"messages\""),
                          ([{"messages": LOG[0]["messages"]}], "line 1: no answer")):
        log.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
        assert_one_line_error(run_cli("import-logs", log, "--run", run), needle)
    assert not episodes_text(run)  # every line is checked before anything is written


def episodes_text(run: Path) -> str:
    return "".join(p.read_text() for p in (run / "traces").glob("episodes-*.jsonl"))


def test_an_unreachable_upstream_is_a_502_and_nothing_is_recorded(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with proxy(run, f"http://127.0.0.1:{closed_port()}") as url:
        res = httpx.post(url + "/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert res.status_code == 502 and "upstream" in res.json()["error"]["message"]
    assert not episodes_text(run)
