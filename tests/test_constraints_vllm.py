"""Constrained roles against a real vLLM server (tiny random Llama of test_serve.py, our chat template, hermes parser).

A random model writes garbage unless the server enforces the constraint, so every answer must be in its role's
shape: a prefix the constraint accepts when the answer ran into max_tokens (random text rarely closes a string),
and a whole valid answer when it stopped on its own (JSON the schema accepts, a plan mas/plan.py parses, one tool
call of a domain tool or DONE). About a minute, most of it vLLM's start-up.
"""

from __future__ import annotations

import json

import pytest
from test_constraints import DOMAIN, Accepts
from test_serve import build_tiny_model, free_port

from agentdistill.mas import constraints as C
from agentdistill.mas.plan import PlanError, parse_plan
from agentdistill.mas.prompts import build_prompts, render_input
from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

pytest.importorskip("vllm")

INPUTS = {
    "understander": {"today": "2026-12-01", "utterance": "Can I test drive A1042 on Thursday at 2pm?",
                     "known_entities": {}, "session": {"verified": False}},
    "planner": {"today": "2026-12-01", "understanding": {"intents": ["dealer_info"], "entities": {}, "missing": []},
                "known_entities": {}, "session": {"verified": False}},
    "evaluator": {"today": "2026-12-01", "plan": 'i = get_dealer_info()\nreply(topics=["dealer_info"])'},
    "executor": {"plan": 'i = get_dealer_info()\nreply(topics=["dealer_info"])'},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = build_tiny_model(tmp_path_factory.mktemp("tiny") / "student")
    log = tmp_path_factory.mktemp("log") / "vllm.log"
    with VLLMServer(ServeConfig(model=model, port=free_port(), enforce_eager=True, max_model_len=2048,
                                log_path=log, startup_timeout_s=240)) as srv:
        yield srv


def test_each_constrained_role_answers_in_its_shape(server: VLLMServer):
    prompts = build_prompts(DOMAIN, style="compact")
    payloads = C.role_constraints(DOMAIN, C.CONSTRAINABLE_ROLES)
    tools = [t.openai_schema() for t in DOMAIN.tools()]
    backend = server.backend(timeout_s=120, max_retries=0)
    finished: dict[str, int] = {}
    for role, payload in payloads.items():
        accepts = Accepts(payload)
        messages = [{"role": "system", "content": prompts.system[role]},
                    {"role": "user", "content": render_input(INPUTS[role])}]
        for seed in range(4):
            comp = backend.complete(messages, tools=tools if role == "executor" else None, structured_outputs=payload,
                                    max_tokens=160, temperature=1.0, seed=seed)
            text = comp.text
            if comp.tool_calls:  # the hermes parser took the call out of the text: put it back as the model wrote it
                assert role == "executor" and len(comp.tool_calls) == 1 and not text.strip(), comp
                call = comp.tool_calls[0]
                assert call.name in DOMAIN.tool_names() and "__raw__" not in call.arguments, call
                text = ('<tool_call>{"name": ' + json.dumps(call.name) + ', "arguments": '
                        + json.dumps(call.arguments, sort_keys=True) + "}</tool_call>")
            stopped = comp.meta["finish_reason"] != "length"
            assert accepts.matcher().accept_string(text), f"{role} seed {seed}: not in the constraint's language: {text!r}"
            if not stopped:
                continue
            finished[role] = finished.get(role, 0) + 1
            assert accepts.ok(text), f"{role} seed {seed} stopped before the end of its shape: {text!r}"
            if role in ("understander", "evaluator"):
                assert isinstance(json.loads(text), dict)
            elif role == "planner":
                try:
                    parse_plan(text, DOMAIN.tool_names())
                except PlanError as exc:  # what a context-free grammar leaves to the parser (mas/constraints.py)
                    assert any(k in str(exc) for k in C.PARSER_ONLY), (exc, text)
            else:
                assert comp.tool_calls or text == C.DONE, text
    backend.close()
    print("finished answers per role:", finished)
