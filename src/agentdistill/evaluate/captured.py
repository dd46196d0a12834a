"""`agentdistill eval` of a captured run: the user's own MAS, run again with the model, scored by their verifier.

A captured run has no scenarios of ours to simulate, so the evaluation does what `eval` does for the built-in
MAS with the user's pieces instead: the model is served (or a URL is taken as is), a recording proxy sits in
front of it, the user's MAS command runs against the proxy (`{base_url}` in the command, and OPENAI_BASE_URL,
name its /v1 URL), and the recorded episodes are verified with the user's verifier exactly as `agentdistill
verify` does. Which conversations the MAS runs is the command's business: give it ones the capture did not
include. Agents keep the names they had in the capture (its capture/roles.json seeds the new recording).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json
from agentdistill.paths import RunPaths

SUITE = "captured"
KEYS = ("episodes", "pass_rate", "role_scores", "wrong_calls_by_agent", "calls_by_agent", "agent_calls_per_episode",
        "malformed_rate", "user_verifier", "llm_judge")
TAIL_CHARS = 2000


def mas_argv(command: str, base_url: str) -> list[str]:
    """The user's command with `{base_url}` filled in, split as a shell would (it is not run by a shell)."""
    try:
        argv = shlex.split(command.replace("{base_url}", base_url))
    except ValueError as exc:
        raise UserError(f"--mas {command!r} cannot be parsed: {exc}") from None
    if not argv:
        raise UserError("--mas is empty; give the command that runs your MAS, e.g. 'python mas.py --base-url "
                        "{base_url}'")
    return argv


def run_mas(command: str, base_url: str, log: Path, timeout_s: float | None) -> dict[str, Any]:
    """Run the MAS once against `base_url`; its output goes to `log`. A command that cannot start is a user
    error; one that exits non-zero is recorded (a model can make a MAS fail: that is a result)."""
    argv = mas_argv(command, base_url)
    env = {**os.environ, "OPENAI_BASE_URL": base_url}
    env.setdefault("OPENAI_API_KEY", "EMPTY")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        try:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                  timeout=timeout_s, check=False)
        except FileNotFoundError:
            raise UserError(f"--mas: command {argv[0]!r} not found") from None
        except subprocess.TimeoutExpired:
            return {"command": command, "exit_code": None, "timed_out": True, "log": str(log)}
    return {"command": command, "exit_code": proc.returncode, "log": str(log)}


def evaluate_captured(model: str, run_dir: str | Path, name: str, mas_command: str | None, verifier: str | None,
                      show_progress: bool = True, perplexity: dict[str, float] | bool = True,
                      served_at: str | None = None, enforce_eager: bool = False,
                      mas_timeout_s: float | None = None) -> dict[str, Any]:
    """Write RUN/eval/NAME/summary.json with the `captured` suite (and public perplexity); returns it."""
    from agentdistill.capture.proxy import recording_proxy
    from agentdistill.evaluate.run_eval import endpoint_for
    from agentdistill.judge.user_verifier import load_verifier
    from agentdistill.judge.verify import verify_run
    from agentdistill.simulate.store import TraceStore

    paths = RunPaths(Path(run_dir))
    if not mas_command:
        raise UserError(f"{paths.root} was captured from your own MAS: eval runs it again with the model; give "
                        "--mas 'COMMAND' ({base_url} in it is the model's /v1 URL) and --verifier module:function")
    if not verifier:
        raise UserError(f"{paths.root} was captured from your own MAS: only your verifier can score it; pass "
                        "--verifier module:function")
    load_verifier(verifier)  # a bad name fails before a model is served
    if model == "scripted":
        raise UserError("the scripted teacher plays the built-in MAS only; for a captured run give a checkpoint "
                        "directory or an OpenAI-compatible URL")
    mas_argv(mas_command, "http://127.0.0.1:0/v1")  # a command that cannot be parsed fails before serving too
    out = paths.eval / name
    record = out / SUITE
    shutil.rmtree(record, ignore_errors=True)  # a measurement is taken whole, never half-resumed
    with endpoint_for(served_at or model, enforce_eager=enforce_eager) as url, \
            recording_proxy(url, record, roles_table=paths.root / "capture" / "roles.json") as proxy_url:
        mas = run_mas(mas_command, proxy_url, out / "mas.log", mas_timeout_s)
    store = TraceStore(record)
    if not store.shards() or next(store.episodes(expand=False), None) is None:
        tail = (out / "mas.log").read_text(errors="replace")[-300:].strip().replace("\n", " | ")
        raise UserError(f"your MAS made no model call through the proxy (exit code {mas['exit_code']}; "
                        f"log {out / 'mas.log'}: {tail})")
    summary = verify_run(record, verifier=verifier, show_progress=show_progress)
    result: dict[str, Any] = {"name": name, "model": model, "prompt_style": "as captured",
                              SUITE: {k: summary[k] for k in KEYS if k in summary}, "mas": mas}
    if isinstance(perplexity, dict):
        result["perplexity"] = perplexity
    elif perplexity and Path(model).is_dir() and paths.dataset("ppl", "public").is_file():
        from agentdistill.evaluate.perplexity import perplexities

        result["perplexity"] = perplexities(model, paths.datasets / "ppl", sets=("public",))
    atomic_write_json(out / "summary.json", result)
    return result
