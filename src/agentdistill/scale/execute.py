"""Run a launch plan on this node: servers in their own process groups, stages as subprocesses, done steps skipped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from agentdistill.errors import UserError
from agentdistill.scale.plan import Step


def _wait_ready(step: Step, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + step.startup_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError(f"{step.name}: server exited with code {proc.returncode} during start-up (log: {log})")
        try:
            if httpx.get(step.health_url or "", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(5)
    raise UserError(f"{step.name}: not ready after {step.startup_timeout_s:.0f} s (log: {log})")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def execute_plan(steps: list[Step], log_dir: Path, echo: Callable[[str], object] = print) -> list[str]:
    """Run each step in order; returns the names of the steps that ran (the rest were already done)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    servers: dict[str, subprocess.Popen[bytes]] = {}
    ran: list[str] = []
    try:
        for step in steps:
            if step.done_when is not None and step.done_when.exists():
                echo(f"== {step.name}: done ({step.done_when})")
                continue
            echo(f"== {step.name}")
            if step.kind == "stop":
                if (proc := servers.pop(step.stops or "", None)) is not None:
                    _stop(proc)
                continue
            if step.kind == "server" and not _needed(steps, step):
                echo("   skipped: every step that uses it is done")
                continue
            log = log_dir / (step.name.replace(" ", "_") + ".log")
            with log.open("ab") as out:
                proc = subprocess.Popen(step.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            if step.kind == "server":
                servers[step.name] = proc
                _wait_ready(step, proc, log)
            elif proc.wait() != 0:
                raise UserError(f"{step.name} failed with exit code {proc.returncode} (log: {log})")
            ran.append(step.name)
    finally:
        for proc in servers.values():
            _stop(proc)
    return ran


def _needed(steps: list[Step], server: Step) -> bool:
    """A server is started only if a step between it and its stop still has work to do."""
    after = steps[steps.index(server) + 1:]
    for step in after:
        if step.kind == "stop" and step.stops == server.name:
            return False
        if step.kind == "command" and (step.done_when is None or not step.done_when.exists()):
            return True
    return False
