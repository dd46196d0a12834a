"""`agentdistill eval`: run the MAS with one model on held-out conversations and on the stress suite.

The model is the scripted teacher (with its default error injection), any OpenAI-compatible URL, or a
checkpoint directory that is served with vLLM for the duration of the evaluation. Scores come from the judge:

- per-role scores = share of that role's calls the judge marks correct:
  Understander: intents (as a set) and entities equal the reference reading;
  Planner: the plan implies the same tool calls (names, constant arguments, conditional or not) and the same
  final step as the reference plan for the same input; Evaluator: same verdict; Executor: same tool name and
  arguments (free-text arguments ignored) or DONE at the same point; Explainer: every fact (amount, rate,
  stock number, reference, time, date) of the reference reply is present, none is invented, and the reply
  breaks no reply-level rule;
- end-to-end pass = end state equals gold, every required output said, no policy violation;
- held-out phrasing (optional): held-out conversations worded only with paraphrase templates and slot formats
  that training never uses, so its pass rate beside the held-out one shows how far the student generalises;
- pass^k over k trials (tau-bench), policy-violation rate, malformed-output rate; perplexities;
- injection suite (adversarial customers, optional): the same scores plus cross-customer leaks
  (judge/leaks.py): conversations where another customer's data reached a reply, a tool call or a tool result.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from pathlib import Path
from typing import Any

from agentdistill.config import MASSettings, SimulateConfig
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json
from agentdistill.paths import RunPaths

SUITE_KEYS = ("episodes", "pass_rate", "end_state_rate", "policy_violation_rate", "malformed_rate", "role_scores",
              "pass_hat_k", "pass_rate_core", "pass_rate_long_tail", "fallback_turns", "agent_calls_per_episode",
              "leaks", "user_verifier")
SUITES = ("heldout", "heldout_phrasing", "stress", "injection")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def endpoint_for(model: str, max_model_len: int = 8192, enforce_eager: bool = False):
    """Yield a teacher setting for SimulateConfig: 'scripted', the URL itself, or a vLLM server we start
    (enforce_eager: no torch.compile warm-up, for evaluations too short to repay it)."""
    if model == "scripted" or model.startswith(("http://", "https://")):
        yield model
        return
    if not Path(model).is_dir():
        raise UserError(f"model {model!r} is neither 'scripted', an http(s) URL nor a checkpoint directory")
    from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

    with VLLMServer(ServeConfig(model=Path(model), port=free_port(), max_model_len=max_model_len,
                                enforce_eager=enforce_eager)) as server:
        yield server.url


class ServedCheckpoints(contextlib.ExitStack):
    """One live vLLM server, kept across consecutive evaluations of the same checkpoint (its constrained and
    unconstrained runs): a vLLM start costs about a minute here. A different checkpoint replaces it."""

    def __init__(self, enforce_eager: bool = False):
        super().__init__()
        self.enforce_eager = enforce_eager
        self.model: str | None = None
        self.url: str | None = None

    def url_for(self, model: str) -> str | None:
        """The URL serving this checkpoint directory; None for 'scripted' and URLs (nothing to serve)."""
        if model == "scripted" or model.startswith(("http://", "https://")):
            return None
        if model != self.model:
            self.close()  # the previous checkpoint's server
            self.url = self.enter_context(endpoint_for(model, enforce_eager=self.enforce_eager))
            self.model = model
        return self.url


def model_prompt_style(model: str) -> str:
    """The prompt style a checkpoint was fine-tuned with (its train_summary.json); "full" for anything else."""
    if not Path(model).is_dir():
        return "full"
    from agentdistill.train.trainers import SUMMARY_NAME  # heavy (transformers): only for checkpoint dirs

    summary = Path(model) / SUMMARY_NAME
    if not summary.is_file():
        return "full"
    try:
        return json.loads(summary.read_text()).get("prompt_style") or "full"
    except (json.JSONDecodeError, AttributeError):
        return "full"


def _previous(out: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The suites (and perplexity) an earlier evaluation of the same model under the same settings measured,
    kept when only some suites are rerun, e.g. `eval model --suite injection` after the pipeline's evaluation."""
    try:
        old = json.loads((out / "summary.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    same = all(old.get(k) == result.get(k) for k in ("model", "prompt_style", "constrained_roles"))
    return {k: old[k] for k in (*SUITES, "perplexity") if k in old} if same else {}


def evaluate_model(model: str, run_dir: str | Path, name: str, heldout_episodes: int = 70, stress_episodes: int = 120,
                   trials: int = 1, workers: int = 8, temperature: float = 0.0, error_rate: float = 0.03,
                   seed: int = 0, show_progress: bool = True, prompt_style: str | None = None,
                   constrained_roles: tuple[str, ...] = (), injection_episodes: int = 0,
                   perplexity: dict[str, float] | bool = True, phrasing_episodes: int = 0,
                   served_at: str | None = None, verifier: str | None = None, mas_command: str | None = None,
                   enforce_eager: bool = False) -> dict[str, Any]:
    """`prompt_style` None = the style the checkpoint was trained with ("full" for scripted and URLs);
    `constrained_roles` are decoded under structured-output constraints (mas/constraints.py). A suite with 0
    episodes is not run; its earlier result for the same model and settings, if any, is kept. `perplexity`: True
    measures it (minutes on CPU), False skips it, a dict is a measurement of the same weights to reuse.
    `served_at`: the URL of a server already serving `model` (one server for a checkpoint's constrained and
    unconstrained evaluations, ServedCheckpoints); otherwise a checkpoint is served for this call.
    `verifier`: a user's module:function applied to every suite's episodes after the judge (judge/user_verifier.py).
    A captured run (the user's own MAS, capture/) is evaluated by running `mas_command` against the model and
    scoring what it does with `verifier` instead (evaluate/captured.py); the suites above do not apply to it.
    `enforce_eager`: a checkpoint served here skips torch.compile (short evaluations)."""
    from agentdistill.capture.runs import captured_run
    from agentdistill.simulate.runner import saved_config, simulate

    if captured_run(run_dir):
        from agentdistill.evaluate.captured import evaluate_captured

        return evaluate_captured(model, run_dir, name, mas_command, verifier, show_progress=show_progress,
                                 perplexity=perplexity, served_at=served_at, enforce_eager=enforce_eager)
    if mas_command:
        raise UserError("--mas runs your own MAS, for a run captured from it (agentdistill proxy / import-logs); "
                        f"{run_dir} was simulated with a built-in domain")

    if verifier:
        from agentdistill.judge.user_verifier import load_verifier

        load_verifier(verifier)  # a bad name fails before a model is served
    paths = RunPaths(Path(run_dir))
    domain = saved_config(paths.root).domain  # the run's own domain, world and policy version
    out = paths.eval / name
    style = prompt_style or model_prompt_style(model)
    result: dict[str, Any] = {"name": name, "model": model, "prompt_style": style, "domain": domain.name}
    if constrained_roles:
        result["constrained_roles"] = list(constrained_roles)
    result.update(_previous(out, result))
    with endpoint_for(served_at or model, enforce_eager=enforce_eager) as teacher:
        for suite, n in (("heldout", heldout_episodes), ("heldout_phrasing", phrasing_episodes),
                         ("stress", stress_episodes), ("injection", injection_episodes)):
            if n <= 0:
                continue
            cfg = SimulateConfig(episodes=n * trials, trials=trials, suite=suite, teacher=teacher, seed=seed, domain=domain,
                                 workers=workers if teacher != "scripted" else min(workers, 2),
                                 temperature=temperature, error_rate=error_rate,
                                 mas=MASSettings(prompt_style=style, constrained_roles=list(constrained_roles)))
            shutil.rmtree(out / suite, ignore_errors=True)  # a measurement is taken whole, never half-resumed
            summary = simulate(cfg, out / suite, show_progress=show_progress)
            if verifier:
                from agentdistill.judge.verify import verify_run

                summary = verify_run(out / suite, verifier=verifier, show_progress=show_progress)
            result[suite] = {k: summary[k] for k in SUITE_KEYS if k in summary}
    if isinstance(perplexity, dict):
        result["perplexity"] = perplexity
    elif perplexity and Path(model).is_dir() and (paths.datasets / "ppl").is_dir():
        from agentdistill.evaluate.perplexity import perplexities

        result["perplexity"] = perplexities(model, paths.datasets / "ppl")
    atomic_write_json(out / "summary.json", result)
    return result
