"""A real local OpenAI-compatible HTTP server for tests (stdlib only).

    with FakeOpenAIServer(responder=lambda req: {"content": "hi"}) as srv:
        backend = OpenAIBackend(srv.url)

Implements GET /v1/models and POST /v1/chat/completions (non-streaming) with `usage`. Programmable:

- responder(request_json) -> {"content": str | None,
                              "tool_calls": [{"name": ..., "arguments": dict | str, "id"?: ...}] | None,
                              "finish_reason"?: str, "usage"?: dict | None, "model"?: str}
  (or a list of such dicts, served in order, the last one repeated); default echoes the last user message.
  String `arguments` are sent verbatim (to test malformed JSON); `"usage": None` omits usage.
- fail_first: the first N chat requests get HTTP 500.
- status_override / error_body: every chat request gets that status (e.g. 400) with that error body.
- delay_s: sleep before answering a chat request (in-flight while sleeping).
- reject_field / reject_status: a chat request carrying that top-level field gets that status (default 400) with
  a vLLM-like message naming it (e.g. "structured_outputs", to test a server without constrained decoding).
- requests: every chat request JSON received; max_in_flight: the peak of concurrent chat requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

Responder = Callable[[dict[str, Any]], dict[str, Any]]


def echo_responder(request: dict[str, Any]) -> dict[str, Any]:
    """Reply with the content of the last user message."""
    for msg in reversed(request.get("messages") or []):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return {"content": str(content or "")}
    return {"content": ""}


def _count_tokens(text: str) -> int:
    return len(str(text).split())


class FakeOpenAIServer:
    def __init__(
        self,
        responder: Responder | list[dict[str, Any]] | None = None,
        *,
        fail_first: int = 0,
        status_override: int | None = None,
        error_body: dict[str, Any] | None = None,
        delay_s: float = 0.0,
        models: list[str] | None = None,
        reject_field: str | None = None,
        reject_status: int = 400,
    ) -> None:
        self.responder = responder if responder is not None else echo_responder
        self.fail_first = fail_first
        self.status_override = status_override
        self.error_body = error_body
        self.delay_s = delay_s
        self.models = list(models) if models is not None else ["fake-model"]
        self.reject_field = reject_field
        self.reject_status = reject_status
        self.requests: list[dict[str, Any]] = []
        self.model_requests = 0
        self.chat_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._script_index = 0
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """Base URL without /v1, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._handle_get(self)

            def do_POST(self) -> None:
                server._handle_post(self)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ handlers
    @staticmethod
    def _send_json(handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handle_get(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0].rstrip("/")
        if path == "/v1/models":
            with self._lock:
                self.model_requests += 1
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
            self._send_json(h, 200, {"object": "list", "data": data})
        else:
            self._send_json(h, 404, {"error": {"message": f"no route {h.path}", "type": "not_found"}})

    def _handle_post(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0].rstrip("/")
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if path != "/v1/chat/completions":
            self._send_json(h, 404, {"error": {"message": f"no route {h.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(h, 400, {"error": {"message": "invalid JSON body", "type": "invalid_request"}})
            return
        with self._lock:
            self.requests.append(request)
            self.chat_requests += 1
            index = self.chat_requests
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.status_override is not None:
                body = self.error_body or {
                    "error": {
                        "message": f"fake error {self.status_override}",
                        "type": "invalid_request_error",
                    }
                }
                self._send_json(h, self.status_override, body)
                return
            if self.reject_field is not None and self.reject_field in request:
                message = f"Invalid {self.reject_field}: this server cannot compile the grammar"
                self._send_json(h, self.reject_status, {"error": {"message": message, "type": "BadRequestError"}})
                return
            if index <= self.fail_first:
                self._send_json(h, 500, {"error": {"message": "fake internal error", "type": "server_error"}})
                return
            try:
                reply = self._reply_for(request)
            except Exception as exc:  # noqa: BLE001 - a broken responder is a 500, visible in the test
                self._send_json(
                    h, 500, {"error": {"message": f"responder failed: {exc}", "type": "server_error"}}
                )
                return
            self._send_json(h, 200, self._format(request, reply, index))
        finally:
            with self._lock:
                self.in_flight -= 1

    def _reply_for(self, request: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.responder, list):
            with self._lock:
                i = min(self._script_index, len(self.responder) - 1)
                self._script_index += 1
            return dict(self.responder[i])
        return dict(self.responder(request) or {})

    def _format(self, request: dict[str, Any], reply: dict[str, Any], index: int) -> dict[str, Any]:
        content = reply.get("content")
        tool_calls = []
        for i, tc in enumerate(reply.get("tool_calls") or []):
            args = tc.get("arguments", {})
            tool_calls.append(
                {
                    "id": tc.get("id") or f"call_{index}_{i}",
                    "type": "function",
                    "function": {
                        "name": tc["name"],
                        "arguments": args if isinstance(args, str) else json.dumps(args),
                    },
                }
            )
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        finish = reply.get("finish_reason") or ("tool_calls" if tool_calls else "stop")
        prompt_tokens = sum(_count_tokens(m.get("content") or "") for m in request.get("messages") or [])
        completion_tokens = _count_tokens(content or "") + sum(
            _count_tokens(t["function"]["arguments"]) for t in tool_calls
        )
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake-{index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.get("model") or request.get("model") or self.models[0],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        }
        if "usage" in reply:
            if reply["usage"] is not None:
                out["usage"] = reply["usage"]
        else:
            out["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        return out
