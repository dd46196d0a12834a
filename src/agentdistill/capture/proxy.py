"""`agentdistill proxy`: an OpenAI-compatible recording proxy in front of any endpoint.

Every request is forwarded unchanged (body, query and headers, less hop-by-hop ones) with httpx and its answer
relayed unchanged, streamed or not; only successful /v1/chat/completions calls are also recorded, after the
MAS has its answer, so recording never changes what the MAS sees. Starlette routes, uvicorn serves.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx

from agentdistill.capture.episodes import EpisodeBook, OpenEpisode
from agentdistill.capture.records import call_record, system_prompt
from agentdistill.capture.roles import RoleTagger, Rule, load_mapping
from agentdistill.capture.streaming import StreamAssembler
from agentdistill.capture.writer import TraceWriter
from agentdistill.errors import UserError

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te",
              "trailer", "upgrade", "content-encoding"}
ROLE_HEADER, EPISODE_HEADER, TURN_HEADER = "x-agent-role", "x-episode-id", "x-turn"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def upstream_base(url: str) -> str:
    """The upstream's root URL (a trailing /v1 is accepted and dropped: request paths keep theirs)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise UserError(f"--upstream must be an http(s):// URL, got {url!r}")
    return url[:-3].rstrip("/") if url.endswith("/v1") else url


def _headers(items: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in items if k.lower() not in HOP_BY_HOP]


def _turn(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class Recorder:
    """What the proxy keeps: role tagging and episode grouping, shared by every request."""

    def __init__(self, book: EpisodeBook, tagger: RoleTagger):
        self.book, self.tagger = book, tagger

    def start(self, headers: Any, payload: dict[str, Any]) -> tuple[OpenEpisode, str, str]:
        role, source = self.tagger.tag(system_prompt(payload["messages"]), headers.get(ROLE_HEADER))
        return self.book.begin(headers.get(EPISODE_HEADER)), role, source


def build_app(upstream: str, recorder: Recorder, idle_gap_s: float, on_start: Any = None,
              on_shutdown: Any = None) -> Any:
    """The Starlette app: /v1/chat/completions recorded, every other path forwarded as is."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    base = upstream_base(upstream)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state["client"] = httpx.AsyncClient(timeout=httpx.Timeout(None, connect=30.0),
                                            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64))
        reaper = asyncio.create_task(_reap())
        if on_start is not None:
            on_start()  # from here on a signal reaches uvicorn's handler: a graceful shutdown
        try:
            yield
        finally:
            reaper.cancel()
            recorder.book.close_all("shutdown")
            await state["client"].aclose()
            if on_shutdown is not None:
                on_shutdown()

    async def _reap() -> None:
        while True:
            await asyncio.sleep(max(0.05, min(1.0, idle_gap_s / 4)))
            recorder.book.close_idle()

    def _bad_gateway(exc: Exception) -> Response:
        msg = f"agentdistill proxy: upstream {base} failed: {type(exc).__name__}: {exc}"
        return JSONResponse({"error": {"message": msg, "type": "upstream_error", "code": 502}}, status_code=502)

    async def _send(request: Request, body: bytes) -> httpx.Response:
        url = base + request.url.path + (f"?{request.url.query}" if request.url.query else "")
        req = state["client"].build_request(request.method, url, headers=_headers(request.headers.items()),
                                            content=body)
        return await state["client"].send(req, stream=True)

    async def forward(request: Request) -> Response:
        body = await request.body()
        try:
            resp = await _send(request, body)
        except httpx.HTTPError as exc:
            return _bad_gateway(exc)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in resp.aiter_bytes():
                    yield chunk
            finally:
                await resp.aclose()

        return StreamingResponse(relay(), status_code=resp.status_code, headers=dict(_headers(resp.headers.items())))

    async def chat(request: Request) -> Response:
        body = await request.body()
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            return await forward_body(request, body)  # the upstream answers a bad request its own way
        ep, role, source = recorder.start(request.headers, payload)
        turn = _turn(request.headers.get(TURN_HEADER))
        t0, started_at = time.perf_counter(), time.time()
        try:
            resp = await _send(request, body)
        except httpx.HTTPError as exc:
            recorder.book.finish(ep, None)
            return _bad_gateway(exc)
        headers = dict(_headers(resp.headers.items()))
        if not payload.get("stream"):
            try:
                data = await resp.aread()
            except httpx.HTTPError as exc:
                recorder.book.finish(ep, None)
                return _bad_gateway(exc)
            finally:
                await resp.aclose()
            record = None
            if resp.status_code == 200:
                try:
                    answer = json.loads(data)
                    record = call_record(payload, answer, agent=role, role_source=source, turn=turn,
                                         latency_s=time.perf_counter() - t0, started_at=started_at)
                except Exception:  # not a chat completion: relayed, not recorded (recording never breaks a call)
                    record = None
            recorder.book.finish(ep, record)
            return Response(content=data, status_code=resp.status_code, headers=headers)

        async def relay_stream() -> AsyncIterator[bytes]:
            assembler, complete = StreamAssembler(t0), False
            try:
                async for chunk in resp.aiter_bytes():
                    assembler.feed(chunk)
                    yield chunk
                complete = True
            finally:
                record = None
                try:
                    if resp.status_code == 200 and assembler.chunks:
                        record = call_record(payload, assembler.completion(), agent=role, role_source=source,
                                             turn=turn, latency_s=time.perf_counter() - t0, started_at=started_at,
                                             ttft_s=assembler.ttft_s, stream=True, interrupted=not complete)
                except Exception:  # an answer we cannot read is relayed, not recorded
                    record = None
                recorder.book.finish(ep, record)
                await resp.aclose()

        return StreamingResponse(relay_stream(), status_code=resp.status_code, headers=headers)

    async def forward_body(request: Request, body: bytes) -> Response:
        try:
            resp = await _send(request, body)
            data = await resp.aread()
            await resp.aclose()
        except httpx.HTTPError as exc:
            return _bad_gateway(exc)
        return Response(content=data, status_code=resp.status_code, headers=dict(_headers(resp.headers.items())))

    routes = [Route("/v1/chat/completions", chat, methods=["POST"]),
              Route("/{path:path}", forward, methods=METHODS)]
    return Starlette(routes=routes, lifespan=lifespan)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is a one-line error, not a uvicorn log and exit 1."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"--port {port} on {host} cannot be used ({exc.strerror or exc})") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _recorder(writer: TraceWriter, base: str, idle_gap_s: float, rules: list[Rule]) -> tuple[Recorder, int]:
    """What both doors record with: episodes grouped in `writer` (those a stopped proxy had in flight recovered:
    their count is returned) and roles tagged by `rules`, then the run's capture/roles.json."""
    book = EpisodeBook(writer, idle_gap_s, {"via": "proxy", "upstream": base, "idle_gap_s": idle_gap_s})
    recovered = book.recover()
    return Recorder(book, RoleTagger(rules, writer.root / "capture" / "roles.json")), recovered


def _server_config(app: Any) -> Any:
    import uvicorn

    return uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10, access_log=False)


def serve_proxy(upstream: str, run_dir: str | Path, port: int = 8100, host: str = "127.0.0.1",
                roles: str | Path | None = None, idle_gap_s: float = 30.0, log: Any = print) -> dict[str, int]:
    """Record until interrupted (Ctrl-C / SIGTERM flush every open episode); returns what was written."""
    try:
        import uvicorn
    except ImportError:
        raise UserError("agentdistill proxy needs uvicorn and starlette (pip install uvicorn starlette; both come "
                        "with vLLM)") from None
    base = upstream_base(upstream)
    if not idle_gap_s > 0:
        raise UserError(f"--idle-gap-s must be > 0 seconds, got {idle_gap_s}")
    if not 0 <= port <= 65535:
        raise UserError(f"--port must be in 0..65535, got {port}")
    rules = load_mapping(roles)
    with TraceWriter(run_dir) as writer:
        recorder, recovered = _recorder(writer, base, idle_gap_s, rules)
        if recovered:
            log(f"recovered {recovered} episode(s) a stopped proxy had in flight")
        sock = bind(host, port)

        def done() -> None:
            log(f"recorded {writer.written['episodes']} episode(s), {writer.written['calls']} call(s) into "
                f"{writer.store.traces}")

        def started() -> None:
            log(f"recording proxy on http://{host}:{sock.getsockname()[1]}/v1 -> {base}/v1; traces in "
                f"{writer.store.traces}")

        app = build_app(base, recorder, idle_gap_s, on_start=started, on_shutdown=done)
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            uvicorn.Server(_server_config(app)).run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # Ctrl-C is how a proxy is stopped: uvicorn shut down cleanly and re-raised it
        finally:
            sock.close()
            signal.signal(signal.SIGTERM, previous)
        return dict(writer.written)


@contextmanager
def recording_proxy(upstream: str, run_dir: str | Path, roles_table: str | Path | None = None,
                    idle_gap_s: float = 30.0, host: str = "127.0.0.1") -> Iterator[str]:
    """The same proxy in a background thread of this process, on a free port; yields its /v1 URL and, on exit,
    stops it (every open episode written). `roles_table`: a captured run's capture/roles.json, so agents met
    again are named as they were when that run was recorded (`agentdistill eval` of a captured run)."""
    import threading

    import uvicorn

    base = upstream_base(upstream)
    with TraceWriter(run_dir) as writer:
        table = writer.root / "capture" / "roles.json"
        if roles_table is not None and Path(roles_table).is_file() and not table.exists():
            table.parent.mkdir(parents=True, exist_ok=True)
            table.write_text(Path(roles_table).read_text(encoding="utf-8"), encoding="utf-8")
        recorder, _ = _recorder(writer, base, idle_gap_s, [])
        sock = bind(host, 0)
        ready = threading.Event()
        server = uvicorn.Server(_server_config(build_app(base, recorder, idle_gap_s, on_start=ready.set)))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="recording-proxy",
                                  daemon=True)
        thread.start()
        try:
            if not ready.wait(30) or not thread.is_alive():
                raise UserError("the recording proxy did not start")
            yield f"http://{host}:{sock.getsockname()[1]}/v1"
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            sock.close()


def _stop(signum: int, frame: Any) -> None:
    """SIGTERM after uvicorn's graceful shutdown (it re-raises the signal it caught): a clean exit."""
    raise SystemExit(0)
