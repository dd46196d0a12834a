"""OpenAIBackend against a real local HTTP server (tests/fake_openai_server.py)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
from fake_openai_server import FakeOpenAIServer

from agentdistill.backends.openai_backend import OpenAIBackend, normalize_base_url
from agentdistill.errors import EndpointError, UserError
from agentdistill.types import Backend, Completion

FAST = {"timeout_s": 5.0, "backoff_s": 0.01}
USER = [{"role": "user", "content": "hello there"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "look something up",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }
]


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_plain_text_completion_with_usage():
    with FakeOpenAIServer() as srv:
        be = OpenAIBackend(srv.url, model="m1", **FAST)
        assert isinstance(be, Backend)
        out = be.complete(USER)
        assert isinstance(out, Completion)
        assert out.text == "hello there"
        assert out.tool_calls == []
        assert out.tokens_in == 2 and out.tokens_out == 2
        assert out.model == "m1"
        assert out.meta["finish_reason"] == "stop"
        assert out.latency_s > 0
        assert be.name == f"openai:{srv.url}/v1"
        assert "tools" not in srv.requests[0]
        be.close()


def test_usage_missing_falls_back_to_approx_tokens():
    with FakeOpenAIServer(responder=lambda req: {"content": "one two three", "usage": None}) as srv:
        out = OpenAIBackend(srv.url, model="m", **FAST).complete(USER)
        assert out.tokens_in == 2 and out.tokens_out == 3


def test_tool_calls_parsed_including_malformed_arguments():
    reply = {
        "content": None,
        "tool_calls": [
            {"name": "lookup", "arguments": {"q": "civic"}, "id": "c1"},
            {"name": "broken", "arguments": "{not json"},
        ],
    }
    with FakeOpenAIServer(responder=lambda req: reply) as srv:
        out = OpenAIBackend(srv.url, model="m", **FAST).complete(USER, tools=TOOLS)
        assert out.text == ""
        assert [c.name for c in out.tool_calls] == ["lookup", "broken"]
        assert out.tool_calls[0].arguments == {"q": "civic"}
        assert out.tool_calls[0].id == "c1"
        assert out.tool_calls[1].arguments == {"__raw__": "{not json"}
        assert out.meta["finish_reason"] == "tool_calls"


def test_tools_and_sampling_passed_through():
    with FakeOpenAIServer() as srv:
        be = OpenAIBackend(srv.url, model="m", sampling={"temperature": 0.7, "max_tokens": 64}, **FAST)
        be.complete(USER, tools=TOOLS, temperature=0.0, seed=7, stop=["END"], top_k=20)
        req = srv.requests[0]
        assert req["model"] == "m"
        assert req["messages"] == USER
        assert req["tools"] == TOOLS
        assert req["temperature"] == 0.0  # per-call overrides the backend default
        assert req["max_tokens"] == 64
        assert req["seed"] == 7 and req["stop"] == ["END"]
        assert req["top_k"] == 20  # server extension travels in the body


def test_model_auto_resolved_from_models_endpoint_and_cached():
    with FakeOpenAIServer(models=["served-student", "other"]) as srv:
        be = OpenAIBackend(srv.url, **FAST)
        out = be.complete(USER)
        be.complete(USER)
        assert srv.requests[0]["model"] == "served-student"
        assert out.model == "served-student"
        assert srv.model_requests == 1


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
def test_base_url_with_and_without_v1(suffix):
    with FakeOpenAIServer() as srv:
        be = OpenAIBackend(srv.url + suffix, model="m", **FAST)
        assert be.base_url == srv.url + "/v1"
        assert be.complete(USER).text == "hello there"


def test_normalize_base_url():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("https://api.x.com/v1/") == "https://api.x.com/v1"
    assert normalize_base_url("http://h:8000/v1/chat/completions") == "http://h:8000/v1"


def test_invalid_scheme_is_user_error():
    for bad in ["ftp://host:1", "localhost:8000", "", "http://"]:
        with pytest.raises(UserError, match="must start with http:// or https://"):
            OpenAIBackend(bad, model="m")


def test_api_key_from_env(monkeypatch):
    monkeypatch.delenv("AGENTDISTILL_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert OpenAIBackend("http://h:1", model="m").api_key == "EMPTY"
    monkeypatch.setenv("OPENAI_API_KEY", "k2")
    assert OpenAIBackend("http://h:1", model="m").api_key == "k2"
    monkeypatch.setenv("AGENTDISTILL_API_KEY", "k1")
    assert OpenAIBackend("http://h:1", model="m").api_key == "k1"
    assert OpenAIBackend("http://h:1", model="m", api_key="k0").api_key == "k0"


def test_retries_succeed_after_transient_500s():
    with FakeOpenAIServer(fail_first=2) as srv:
        out = OpenAIBackend(srv.url, model="m", max_retries=3, **FAST).complete(USER)
        assert out.text == "hello there"
        assert len(srv.requests) == 3


def test_gives_up_after_too_many_500s():
    with FakeOpenAIServer(fail_first=100) as srv:
        be = OpenAIBackend(srv.url, model="m", max_retries=3, **FAST)
        with pytest.raises(EndpointError) as ei:
            be.complete(USER)
        msg = str(ei.value)
        assert "\n" not in msg
        assert "HTTP 500" in msg and "after 4 attempts" in msg
        assert len(srv.requests) == 4


def test_429_is_retried():
    with FakeOpenAIServer(status_override=429) as srv:
        with pytest.raises(EndpointError, match="HTTP 429 after 2 attempts"):
            OpenAIBackend(srv.url, model="m", max_retries=1, **FAST).complete(USER)
        assert len(srv.requests) == 2


def test_400_not_retried_and_message_from_server():
    body = {"error": {"message": "max_tokens is too large", "type": "BadRequestError"}}
    with FakeOpenAIServer(status_override=400, error_body=body) as srv:
        be = OpenAIBackend(srv.url, model="m", max_retries=3, **FAST)
        with pytest.raises(EndpointError) as ei:
            be.complete(USER)
        msg = str(ei.value)
        assert "\n" not in msg
        assert "rejected the request (HTTP 400)" in msg and "max_tokens is too large" in msg
        assert len(srv.requests) == 1


def test_unreachable_endpoint_fails_fast():
    url = f"http://127.0.0.1:{_free_port()}"
    be = OpenAIBackend(url, model="m", timeout_s=1.0, backoff_s=0.01, max_retries=3)
    t0 = time.perf_counter()
    with pytest.raises(EndpointError) as ei:
        be.complete(USER)
    assert time.perf_counter() - t0 < 5
    msg = str(ei.value)
    assert "\n" not in msg
    assert msg.startswith(f"endpoint {url}/v1 unreachable after 4 attempts")
    with pytest.raises(EndpointError, match="unreachable"):
        be.check_reachable()
    # model auto-resolution against a dead endpoint is an EndpointError too
    with pytest.raises(EndpointError, match="unreachable"):
        OpenAIBackend(url, timeout_s=1.0, backoff_s=0.01, max_retries=1).complete(USER)


def test_check_reachable_ok():
    with FakeOpenAIServer() as srv:
        OpenAIBackend(srv.url, model="m", **FAST).check_reachable()
        assert srv.model_requests == 1


def test_sync_concurrency_limit():
    with FakeOpenAIServer(delay_s=0.2) as srv:
        be = OpenAIBackend(srv.url, model="m", max_concurrency=2, **FAST)
        results: list[Completion] = []
        threads = [threading.Thread(target=lambda: results.append(be.complete(USER))) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 6
        assert srv.max_in_flight == 2


def test_async_concurrency_limit():
    with FakeOpenAIServer(delay_s=0.2) as srv:
        be = OpenAIBackend(srv.url, model="m", max_concurrency=2, **FAST)

        async def main():
            outs = await asyncio.gather(*[be.acomplete(USER, temperature=0.1) for _ in range(6)])
            await be.aclose()
            return outs

        outs = asyncio.run(main())
        assert [o.text for o in outs] == ["hello there"] * 6
        assert srv.max_in_flight == 2
        assert all(r["temperature"] == 0.1 for r in srv.requests)
        # a second event loop gets a fresh client and semaphore
        assert asyncio.run(be.acomplete(USER)).text == "hello there"


def test_async_errors_and_model_resolution():
    with FakeOpenAIServer(fail_first=1, models=["auto"]) as srv:
        be = OpenAIBackend(srv.url, max_retries=1, **FAST)
        out = asyncio.run(be.acomplete(USER))
        assert out.model == "auto" and len(srv.requests) == 2
    with FakeOpenAIServer(status_override=400) as srv:
        be = OpenAIBackend(srv.url, model="m", **FAST)
        with pytest.raises(EndpointError, match=r"HTTP 400"):
            asyncio.run(be.acomplete(USER))
        assert len(srv.requests) == 1


def test_scripted_responses_list():
    script = [{"content": "first"}, {"content": "second"}]
    with FakeOpenAIServer(responder=script) as srv:
        be = OpenAIBackend(srv.url, model="m", **FAST)
        assert [be.complete(USER).text for _ in range(3)] == ["first", "second", "second"]
