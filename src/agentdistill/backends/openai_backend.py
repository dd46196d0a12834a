"""Backend for any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, ...).

Used as teacher, judge, user simulator or served student. Retries are done here (the SDK's own retries
are disabled) so that the error a user finally sees is one clear line: unreachable, HTTP 5xx after N
attempts, or the request rejected with the server's message. A request whose vLLM `structured_outputs`
constraint the endpoint refuses is sent again without it (one warning per backend), and later ones go without.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import re
import threading
import time
from typing import Any, Self
from urllib.parse import urlparse

import openai

from agentdistill.errors import EndpointError, UserError
from agentdistill.mas.model_text import LIMITS, bounded_tool_calls, clean_text
from agentdistill.types import Completion, approx_tokens

logger = logging.getLogger(__name__)

# Sampling keys the SDK accepts as named arguments; anything else (top_k, repetition_penalty, min_p, ...)
# is a server extension and travels in the request body via `extra_body`.
_SDK_KEYS = frozenset(
    {
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "stop",
        "n",
        "presence_penalty",
        "frequency_penalty",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "user",
    }
)


# vLLM's structured-output request field (mas/constraints.py). An endpoint that rejects it (another server, an
# older vLLM, a grammar its backend cannot compile) answers 400/422 naming it; the request is then sent without it.
STRUCTURED_KEY = "structured_outputs"
_CONSTRAINT_ERROR = re.compile(r"structured|grammar|schema|structural|lark|xgrammar|guided", re.I)


def normalize_base_url(base_url: str) -> str:
    """`http://host:port`, `.../v1` or `.../v1/chat/completions` -> `http(s)://host:port[/prefix]/v1`."""
    url = (base_url or "").strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"invalid endpoint URL {base_url!r}: must start with http:// or https://")
    url = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/models"):
        if url.endswith(suffix):
            url = url[: -len(suffix)].rstrip("/")
            break
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _connection_reason(exc: BaseException) -> str:
    """The innermost cause of a connection error, e.g. 'Connection refused'."""
    if isinstance(exc, openai.APITimeoutError):
        return "request timed out"
    inner: BaseException = exc
    seen = 0
    while inner.__cause__ is not None and seen < 10:
        inner = inner.__cause__
        seen += 1
    if isinstance(inner, OSError) and inner.strerror:
        return _one_line(inner.strerror)
    text = str(inner) or str(exc) or type(inner).__name__
    # httpx / socket errors read like "[Errno 111] Connection refused": keep the human part.
    if text.startswith("[Errno") and "]" in text:
        text = text.split("]", 1)[1].strip()
    if "timed out" in text.lower():
        return "request timed out"
    return _one_line(text)


def _server_message(exc: openai.APIStatusError) -> str:
    body = getattr(exc, "body", None)
    msg: Any = None
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg is None:
            msg = body.get("message") or body.get("detail")
    elif isinstance(body, str):
        msg = body
    if not msg:
        msg = getattr(exc, "message", "") or str(exc)
    return _one_line(str(msg))


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multi-part content: keep the text parts
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content)


class OpenAIBackend:
    """A chat-completions endpoint as a `Backend`, sync (`complete`) and async (`acomplete`)."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_concurrency: int = 8,
        sampling: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        if max_concurrency < 1:
            raise UserError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise UserError(f"max_retries must be >= 0, got {max_retries}")
        self.api_key = (
            api_key or os.environ.get("AGENTDISTILL_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        )
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_concurrency = int(max_concurrency)
        self.sampling: dict[str, Any] = dict(sampling or {})
        self.name = name or f"openai:{self.base_url}"
        self._model = model
        self._model_lock = threading.Lock()
        self._sem = threading.BoundedSemaphore(self.max_concurrency)
        self.structured_outputs = True  # False once the endpoint rejected a constraint: stop sending them
        self._structured_lock = threading.Lock()
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
        )
        # Async client and semaphore are bound to an event loop: created lazily, per loop.
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._aclient: openai.AsyncOpenAI | None = None
        self._asem: asyncio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self._model!r})"

    # ------------------------------------------------------------------ model / reachability
    @property
    def model(self) -> str:
        """The served model id; resolved from GET /v1/models (first id) when not given."""
        return self.resolve_model()

    def resolve_model(self) -> str:
        if self._model:
            return self._model
        with self._model_lock:
            if not self._model:
                page = self._with_retries(lambda: self._client.models.list())
                ids = [m.id for m in (page.data or [])]
                if not ids:
                    raise EndpointError(f"endpoint {self.base_url} serves no models (GET /models was empty)")
                self._model = ids[0]
        return self._model

    def check_reachable(self) -> None:
        """One quick GET /v1/models; raises a one-line EndpointError when the endpoint is not there."""
        try:
            self._client.models.list(timeout=min(self.timeout_s, 5.0))
        except openai.APIConnectionError as exc:
            raise EndpointError(f"endpoint {self.base_url} unreachable: {_connection_reason(exc)}") from None
        except openai.APIStatusError as exc:
            raise EndpointError(
                f"endpoint {self.base_url} is not an OpenAI-compatible server "
                f"(GET /models returned HTTP {exc.status_code}): {_server_message(exc)}"
            ) from None

    # ------------------------------------------------------------------ retries
    def _sleep_for(self, attempt: int) -> float:
        base = self.backoff_s * (2**attempt)
        return base + random.uniform(0, 0.1 * base + 0.01)

    def _classify(self, exc: Exception, attempts: int) -> tuple[bool, str]:
        """(retryable, final one-line message) for an SDK exception."""
        if isinstance(exc, openai.APITimeoutError):
            return True, (
                f"endpoint {self.base_url} timed out after {attempts} attempts (timeout {self.timeout_s:g}s)"
            )
        if isinstance(exc, openai.APIConnectionError):
            return (
                True,
                f"endpoint {self.base_url} unreachable after {attempts} attempts: {_connection_reason(exc)}",
            )
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            if code == 429 or code >= 500:
                return True, f"endpoint {self.base_url} returned HTTP {code} after {attempts} attempts"
            return (
                False,
                f"endpoint {self.base_url} rejected the request (HTTP {code}): {_server_message(exc)}",
            )
        if isinstance(exc, openai.APIError):
            return False, f"endpoint {self.base_url} sent an invalid response: {_one_line(str(exc))}"
        raise exc

    def _with_retries(self, fn: Any) -> Any:
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                with self._sem:
                    return fn()
            except openai.OpenAIError as exc:
                retryable, message = self._classify(exc, attempts)
                if not retryable or attempt == attempts - 1:
                    raise EndpointError(message) from None
            time.sleep(self._sleep_for(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _async_state(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._aloop is not loop or self._aclient is None or self._asem is None:
            self._aloop = loop
            self._aclient = openai.AsyncOpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout_s, max_retries=0
            )
            self._asem = asyncio.Semaphore(self.max_concurrency)
        return self._aclient, self._asem

    async def _awith_retries(self, fn: Any) -> Any:
        _, sem = self._async_state()
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                async with sem:
                    return await fn()
            except openai.OpenAIError as exc:
                retryable, message = self._classify(exc, attempts)
                if not retryable or attempt == attempts - 1:
                    raise EndpointError(message) from None
            await asyncio.sleep(self._sleep_for(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ completions
    def _request_kwargs(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, sampling: dict
    ) -> dict[str, Any]:
        merged = {**self.sampling, **sampling}
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        extra: dict[str, Any] = {}
        for key, value in merged.items():
            if value is None:
                continue
            if key in _SDK_KEYS:
                kwargs[key] = value
            elif key == "extra_body" and isinstance(value, dict):
                extra.update(value)
            else:
                extra[key] = value
        if not self.structured_outputs:
            extra.pop(STRUCTURED_KEY, None)
        if tools:
            kwargs["tools"] = tools
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    def _parse(self, resp: Any, messages: list[dict[str, Any]], latency_s: float) -> Completion:
        if not getattr(resp, "choices", None):
            raise EndpointError(f"endpoint {self.base_url} returned a response without choices")
        choice = resp.choices[0]
        msg = choice.message
        text, cut = clean_text(msg.content)  # the model-text boundary: no lone surrogates, bounded size
        limits = ["text_truncated"] if cut else []
        raw_calls = [{"id": getattr(tc, "id", "") or "",
                      "function": {"name": getattr(getattr(tc, "function", None), "name", "") or "",
                                   "arguments": getattr(getattr(tc, "function", None), "arguments", None) or "{}"}}
                     for tc in (msg.tool_calls or [])[:LIMITS.max_tool_calls + 1]]  # one more: is anything cut?
        calls, dropped = bounded_tool_calls(raw_calls)
        if dropped:
            limits.append("tool_calls_truncated")
        usage = getattr(resp, "usage", None)
        tokens_in = getattr(usage, "prompt_tokens", None) if usage is not None else None
        tokens_out = getattr(usage, "completion_tokens", None) if usage is not None else None
        if tokens_in is None:
            tokens_in = sum(approx_tokens(_content_text(m.get("content"))) for m in messages)
        if tokens_out is None:
            tokens_out = approx_tokens(text) + sum(
                approx_tokens(json.dumps(c.arguments)) + approx_tokens(c.name) for c in calls
            )
        return Completion(
            text=text,
            tool_calls=calls,
            tokens_in=int(tokens_in),
            tokens_out=int(tokens_out),
            latency_s=latency_s,
            model=getattr(resp, "model", None) or self._model or "",
            meta={"finish_reason": getattr(choice, "finish_reason", None), **({"limits": limits} if limits else {})},
        )

    def _constraint_rejected(self, kwargs: dict[str, Any], exc: openai.APIStatusError) -> bool:
        """Whether `exc` is the endpoint refusing this request's constraint; if so drop it from `kwargs` (and from
        every later request), warning once per backend."""
        extra = kwargs.get("extra_body") or {}
        if STRUCTURED_KEY not in extra or exc.status_code not in (400, 422):
            return False
        body = json.dumps(exc.body, default=str) if exc.body is not None else ""
        if not _CONSTRAINT_ERROR.search(f"{exc.message} {body}"):
            return False
        extra.pop(STRUCTURED_KEY)
        if not extra:
            kwargs.pop("extra_body")
        with self._structured_lock:
            first, self.structured_outputs = self.structured_outputs, False
        if first:
            logger.warning("endpoint %s rejected structured_outputs (HTTP %s: %s); sending requests without "
                           "constraints from now on", self.base_url, exc.status_code, _server_message(exc))
        return True

    def _create(self, kwargs: dict[str, Any]) -> Any:
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            if not self._constraint_rejected(kwargs, exc):
                raise
        return self._client.chat.completions.create(**kwargs)

    async def _acreate(self, client: openai.AsyncOpenAI, kwargs: dict[str, Any]) -> Any:
        try:
            return await client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            if not self._constraint_rejected(kwargs, exc):
                raise
        return await client.chat.completions.create(**kwargs)

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Completion:
        kwargs = self._request_kwargs(self.resolve_model(), messages, tools, sampling)
        t0 = time.perf_counter()
        resp = self._with_retries(lambda: self._create(kwargs))
        return self._parse(resp, messages, time.perf_counter() - t0)

    async def acomplete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Completion:
        model = self._model or await asyncio.to_thread(self.resolve_model)
        kwargs = self._request_kwargs(model, messages, tools, sampling)
        client, _ = self._async_state()
        t0 = time.perf_counter()
        resp = await self._awith_retries(lambda: self._acreate(client, kwargs))
        return self._parse(resp, messages, time.perf_counter() - t0)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close the sync client; drop the async one (its loop may be gone; use `aclose` inside a loop)."""
        with contextlib.suppress(Exception):  # closing must not raise
            self._client.close()
        self._aclient = None
        self._asem = None
        self._aloop = None

    async def aclose(self) -> None:
        if self._aclient is not None and self._aloop is asyncio.get_running_loop():
            await self._aclient.close()
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
