"""Constrained decoding built from the Domain (mas/constraints.py), checked with the xgrammar and vLLM code a server runs.

Grammars and schemas are compiled as vLLM 0.32's xgrammar backend compiles them (`compile_lark` for a Lark grammar,
`compile_json_schema(any_whitespace=True)`, `compile_structural_tag`) and every reference output of the scripted
teacher (simulated episodes of every scenario type and of the stress suite) must be accepted, while the mistakes
the constraints exist for are not. Requests as the MAS sends them are validated by vLLM's own request model.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from fake_openai_server import FakeOpenAIServer

from agentdistill.backends.openai_backend import OpenAIBackend
from agentdistill.backends.scripted import ScriptedTeacher
from agentdistill.config import MASSettings, SimulateConfig
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.errors import EndpointError, UserError
from agentdistill.mas import constraints as C
from agentdistill.mas.plan import parse_plan
from agentdistill.mas.runtime import MAS, MASConfig
from agentdistill.simulate.runner import Worker
from agentdistill.train.chat import TOOL_CALL_END, TOOL_CALL_START

xgr = pytest.importorskip("xgrammar")

DOMAIN = DealershipDomain()
ALL = C.CONSTRAINABLE_ROLES
FAST = {"timeout_s": 5.0, "backoff_s": 0.01, "max_retries": 1}
USER = [{"role": "user", "content": "hello"}]


# ------------------------------------------------------------------------------------------------ helpers
class Accepts:
    """One role's compiled constraint; `ok(text)` = the matcher takes all of it and may stop there."""

    compiler = xgr.GrammarCompiler(xgr.TokenizerInfo([]), cache_enabled=False)

    def __init__(self, payload: dict[str, Any]) -> None:
        (kind, spec), = payload.items()
        if kind == "grammar":
            from vllm.v1.structured_output.utils import grammar_is_likely_lark

            assert grammar_is_likely_lark(spec)  # else vLLM would read it as EBNF
            self.compiled = self.compiler.compile_lark(spec)
        elif kind == "json":
            self.compiled = self.compiler.compile_json_schema(json.dumps(spec), any_whitespace=True)
        else:
            assert kind == "structural_tag" and isinstance(spec, str)
            self.compiled = self.compiler.compile_structural_tag(spec)

    def matcher(self) -> Any:
        return xgr.GrammarMatcher(self.compiled, terminate_without_stop_token=True)

    def ok(self, text: str) -> bool:
        matcher = self.matcher()
        return matcher.accept_string(text) and matcher.is_terminated()


def hermes(name: str, arguments: str) -> str:
    """A tool call as train/chat.py's template renders it (the string vLLM's hermes parser reads)."""
    return f'{TOOL_CALL_START}{{"name": {json.dumps(name)}, "arguments": {arguments}}}{TOOL_CALL_END}'


@pytest.fixture(scope="module")
def constraints() -> dict[str, Accepts]:
    return {role: Accepts(p) for role, p in C.role_constraints(DOMAIN, ALL).items()}


@pytest.fixture(scope="module")
def reference_outputs() -> dict[str, set[str]]:
    """Every role's reference outputs from scripted-teacher episodes: 3 per scenario type and 30 stress ones.

    Faults are on (rate 0.15) so that later roles meet imperfect inputs (a rejected plan, a wrong value) and the
    Evaluator runs on every plan (threshold 0); outputs that are themselves injected faults are left out. The
    MAS runs with every role constrained, so this also drives the constrained path with the scripted teacher.
    """
    outputs: dict[str, set[str]] = {role: set() for role in ALL}
    mas = MASSettings(halstead_threshold=0, constrained_roles=list(ALL))
    n_types = len(DOMAIN.scenario_types())
    for suite, n in (("train", 3 * n_types), ("stress", 30)):
        worker = Worker(SimulateConfig(episodes=n, suite=suite, error_rate=0.15, mas=mas))
        assert worker.mas.config.constrained_roles == ALL
        for i in range(n):
            for call in worker.run(i)["calls"]:
                if call["agent"] not in outputs or call.get("injected"):
                    continue
                if call["agent"] == "executor":
                    calls = call["tool_calls"] or []
                    outputs["executor"] |= {hermes(c["function"]["name"], c["function"]["arguments"]) for c in calls}
                    if not calls:
                        outputs["executor"].add(call["completion"])
                else:
                    outputs[call["agent"]].add(call["completion"])
    return outputs


# ----------------------------------------------------------------------------------- reference acceptance
def test_every_reference_output_is_accepted(constraints: dict[str, Accepts], reference_outputs: dict[str, set[str]]):
    verdicts = {json.loads(t)["verdict"] for t in reference_outputs["evaluator"]}
    assert verdicts == {"approve", "reject"}
    assert "DONE" in reference_outputs["executor"]
    assert any("\n    " in p for p in reference_outputs["planner"])  # plans with if-blocks are in the sample
    for role, texts in reference_outputs.items():
        assert len(texts) >= (5 if role == "evaluator" else 100), (role, len(texts))  # distinct outputs
        rejected = sorted(t for t in texts if not constraints[role].ok(t))
        assert not rejected, f"{role}: {len(rejected)} reference outputs rejected, e.g. {rejected[0]!r}"


def test_prompt_examples_are_accepted(constraints: dict[str, Accepts]):
    """The worked examples in the role prompts (written by the reference) fit the constraints too."""
    example = DOMAIN.prompt_examples()
    und = example["understander"].split("->\n", 1)[1]
    assert constraints["understander"].ok(json.dumps(json.loads(und), sort_keys=True))
    for plan in example["planner"].split("\n\n"):
        assert constraints["planner"].ok(plan.split(":\n", 1)[1])


# ----------------------------------------------------------------------------------------------- planner
GOOD_PLAN = '''veh = get_vehicle(stock_no="A1042")
if veh["status"] != "available" and not len(veh["features"]) >= 2:
    alt = search_inventory(make=veh["make"], model=veh["model"], max_price=-1.5e3)
    reply(topics=["vehicle_unavailable"])
elif "14:00" in ["14:00", 'x', None, True, {"a": veh[0]}]:
    if veh["year"] < 2020:
        if veh["x"] == (1):
            ask(missing=["stock_no", "email"], topics=["ask_missing"])
    else:
        reply(topics=[])
reply(topics=["vehicle_details"])
'''


@pytest.mark.parametrize("plan, why", [
    ('s = search_cars(make="Ford")\nreply(topics=["search_results"])', "unknown tool"),
    ('d = get_vehicle(stock_no="A1042", colour="red")\nreply(topics=["vehicle_details"])', "kwarg of another tool"),
    ('d = get_vehicle(vin="A1042")\nreply(topics=["vehicle_details"])', "unknown kwarg"),
    ('d = get_vehicle("A1042")\nreply(topics=["vehicle_details"])', "positional argument"),
    ('d = get_vehicle(stock_no="A1042")', "no terminal step"),
    ('reply(topics=["a"])\nd = get_vehicle(stock_no="A1042")\nreply(topics=["b"])', "terminal not last"),
    ('ask(missing=["favourite_colour"], topics=["ask_missing"])', "missing slot that is no slot"),
    ('if a:\n    if b:\n        if c:\n            if d:\n                reply(topics=[])\nreply(topics=[])', "depth 4"),
    ('if a:\n  reply(topics=[])\nreply(topics=[])', "2-space indent"),
    ('x = get_vehicle(stock_no="A1")\nprint(x)\nreply(topics=[])', "other call"),
    ('x = get_vehicle(stock_no="A1")\nfor y in x:\n    reply(topics=[])\nreply(topics=[])', "loop"),
    ('```python\nreply(topics=["greeting"])\n```', "markdown fence"),
    ('reply(topics=[f"{x}"])', "f-string"),
])
def test_plan_grammar_rejects(constraints: dict[str, Accepts], plan: str, why: str):
    assert not constraints["planner"].ok(plan), why


def test_plan_grammar_accepts_the_plan_language(constraints: dict[str, Accepts]):
    assert constraints["planner"].ok(GOOD_PLAN)
    parse_plan(GOOD_PLAN, DOMAIN.tool_names())  # and the parser agrees it is a plan
    assert constraints["planner"].ok('i = get_dealer_info()\nf = list_financing_products()\nreply(topics=["x"])')
    assert constraints["planner"].ok('if a:\n    reply(topics=["a"])\nelse:\n    ask(missing=[], topics=["b"])')


def test_plan_grammar_is_generated_from_the_domain_only():
    grammar = C.plan_grammar(DOMAIN)
    for tool in DOMAIN.tools():
        assert json.dumps(tool.name + "(") in grammar or json.dumps(tool.name + "()") in grammar
    source = open(C.__file__).read()
    for name in ("dealership", "get_vehicle", "stock_no", "book_test_drive"):
        assert name not in source


# ------------------------------------------------------------------------------------ understander/evaluator
def test_understander_schema(constraints: dict[str, Accepts]):
    ok = constraints["understander"].ok
    good = {"entities": {"date": "2026-12-03", "stock_no": "A1042"}, "intents": ["book_test_drive"],
            "missing": ["time", "email"]}
    assert ok(json.dumps(good, sort_keys=True)) and ok(json.dumps(good, sort_keys=True, indent=1))
    assert not ok(json.dumps({**good, "intents": ["buy_a_boat"]}, sort_keys=True)), "unknown intent"
    assert not ok(json.dumps({**good, "intents": []}, sort_keys=True)), "no intent"
    assert not ok(json.dumps({**good, "entities": {"shoe_size": 42}}, sort_keys=True)), "unknown entity"
    assert not ok(json.dumps({**good, "missing": ["shoe_size"]}, sort_keys=True)), "unknown missing slot"
    assert not ok(json.dumps({**good, "entities": {"year": "2019"}}, sort_keys=True)), "year is an integer tool param"
    assert not ok(json.dumps({"entities": {}, "intents": ["greeting"]}, sort_keys=True)), "missing is required"
    assert not ok('{"entities": {}, "intents": ["greeting"], "missing": []} trailing words')
    schema = C.understander_schema(DOMAIN)
    assert schema["properties"]["intents"]["items"]["enum"] == [i.name for i in DOMAIN.intents()]
    slots = set(schema["properties"]["entities"]["properties"])
    assert {s for i in DOMAIN.intents() for s in i.slots} | set(DOMAIN.identity_slots) <= slots


def test_evaluator_schema(constraints: dict[str, Accepts]):
    ok = constraints["evaluator"].ok
    assert ok('{"feedback": "", "verdict": "approve"}') and ok('{"feedback": "fix it", "verdict": "reject"}')
    assert not ok('{"feedback": "", "verdict": "maybe"}')
    assert not ok('{"feedback": "", "verdict": "Approve"}')
    assert not ok('{"verdict": "approve"}')
    assert C.evaluator_schema()["required"] == ["feedback", "verdict"]


# ------------------------------------------------------------------------------------------------ executor
def test_executor_constraint(constraints: dict[str, Accepts]):
    ok = constraints["executor"].ok
    assert ok("DONE")
    assert ok(hermes("get_vehicle", '{"stock_no": "A1042"}'))
    assert ok(hermes("list_financing_products", "{}"))
    assert ok('<tool_call>\n{"name": "get_vehicle", "arguments": {"stock_no": "A1042"}}\n</tool_call>')
    assert not ok(hermes("get_car", '{"stock_no": "A1042"}')), "unknown tool"
    assert not ok(hermes("get_vehicle", '{"vin": "A1042"}')), "unknown argument"
    assert not ok(hermes("get_vehicle", "{}")), "required argument missing"
    assert not ok(hermes("estimate_trade_in", '{"make": "Ford", "year": "2019"}')), "wrong type"
    assert not ok(hermes("get_vehicle", '{"stock_no": "A1042"}') + hermes("get_vehicle", '{"stock_no": "A1043"}'))
    assert not ok("done") and not ok("DONE.") and not ok("I will call get_vehicle")
    assert not ok(hermes("get_vehicle", '{"stock_no": "A1042"}').replace(TOOL_CALL_START, "<tool>"))


def test_roles_are_checked():
    assert C.role_constraints(DOMAIN, ()) == {}
    assert set(C.role_constraints(DOMAIN, ["planner", "planner"])) == {"planner"}
    with pytest.raises(ValueError, match="free text"):
        MASConfig(constrained_roles=("explainer",))
    with pytest.raises(ValueError, match="unknown role"):
        C.role_constraints(DOMAIN, ["critic"])
    with pytest.raises(UserError, match="invalid mas.constrained_roles"):
        from agentdistill.config import build

        build(SimulateConfig, {"mas": {"constrained_roles": ["planer"]}})
    assert C.parse_constrained_roles("all") == ALL and C.parse_constrained_roles("") == ()
    assert C.parse_constrained_roles(" planner, executor ") == ("planner", "executor")
    with pytest.raises(UserError, match="unknown role"):
        C.parse_constrained_roles("planner,critic")


# --------------------------------------------------------------------------------- requests over HTTP
def scripted_server(teacher: ScriptedTeacher, **kwargs: Any) -> FakeOpenAIServer:
    """A real HTTP endpoint that answers every role with the scripted teacher (what an ideal model would say)."""

    def respond(req: dict[str, Any]) -> dict[str, Any]:
        comp = teacher.complete(req["messages"])
        return {"content": comp.text or None,
                "tool_calls": [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in comp.tool_calls]}

    return FakeOpenAIServer(responder=respond, **kwargs)


def test_mas_sends_each_role_its_constraint_and_vllm_accepts_the_request():
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.v1.structured_output.backend_xgrammar import validate_xgrammar_grammar

    teacher = ScriptedTeacher(DOMAIN)
    with scripted_server(teacher) as srv:
        backend = OpenAIBackend(srv.url, model="student", **FAST)
        mas = MAS(DOMAIN, backend, MASConfig(constrained_roles=ALL, halstead_threshold=0))
        reference = MAS(DOMAIN, teacher, MASConfig(constrained_roles=ALL, halstead_threshold=0))
        utterance = "Can I test drive A1042 on 2026-12-03 at 14:00? I'm ana.diaz12@example.com, phone ends in 4821."
        result = mas.run_turn(mas.new_session(), utterance)
        expected = reference.run_turn(reference.new_session(), utterance)
        backend.close()
    assert result.reply == expected.reply and not result.fallback  # the scripted teacher ignores the constraint
    roles = [c["agent"] for c in result.calls]
    assert {"understander", "planner", "evaluator", "executor", "explainer"} <= set(roles)
    assert len(srv.requests) == len(roles)
    want = C.role_constraints(DOMAIN, ALL)
    for role, body in zip(roles, srv.requests, strict=True):
        assert body.get("structured_outputs") == want.get(role), role
        assert bool(body.get("tools")) == (role == "executor") and "tool_choice" not in body
        request = ChatCompletionRequest.model_validate(copy.deepcopy(body))  # vLLM's own request checks (they edit)
        params = request.to_sampling_params(max_tokens=64, default_sampling_params={})
        validate_xgrammar_grammar(params)  # what vLLM's xgrammar backend checks before it compiles
        assert (params.structured_outputs is None) == (role == "explainer")


# -------------------------------------------------------------------------------------------- fallback
@pytest.mark.parametrize("status", [400, 422])
def test_rejected_constraint_is_dropped_once_with_one_warning(status: int, caplog: pytest.LogCaptureFixture):
    payload = C.role_constraints(DOMAIN, ["evaluator"])["evaluator"]
    with FakeOpenAIServer(reject_field="structured_outputs", reject_status=status) as srv:
        backend = OpenAIBackend(srv.url, model="m", **FAST)
        with caplog.at_level(logging.WARNING, logger="agentdistill.backends.openai_backend"):
            first = backend.complete(USER, structured_outputs=payload, top_k=5)
            second = backend.complete(USER, structured_outputs=payload)
        backend.close()
    assert first.text == second.text == "hello"
    assert ["structured_outputs" in r for r in srv.requests] == [True, False, False]
    assert srv.requests[1]["top_k"] == 5  # the rest of extra_body travels on
    assert backend.structured_outputs is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "structured_outputs" in warnings[0].getMessage()


def test_rejected_constraint_is_dropped_async(caplog: pytest.LogCaptureFixture):
    import asyncio

    with FakeOpenAIServer(reject_field="structured_outputs") as srv:
        backend = OpenAIBackend(srv.url, model="m", **FAST)

        async def go() -> list[str]:
            outs = [await backend.acomplete(USER, structured_outputs={"choice": ["a"]}) for _ in range(2)]
            await backend.aclose()
            return [o.text for o in outs]

        with caplog.at_level(logging.WARNING, logger="agentdistill.backends.openai_backend"):
            assert asyncio.run(go()) == ["hello", "hello"]
    assert ["structured_outputs" in r for r in srv.requests] == [True, False, False]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_other_client_errors_are_not_retried_without_the_constraint():
    body = {"error": {"message": "This model's maximum context length is 2048 tokens", "type": "BadRequestError"}}
    with FakeOpenAIServer(status_override=400, error_body=body) as srv:
        backend = OpenAIBackend(srv.url, model="m", **FAST)
        with pytest.raises(EndpointError, match="maximum context length"):
            backend.complete(USER, structured_outputs={"choice": ["a"]})
        assert backend.structured_outputs is True and len(srv.requests) == 1
    with FakeOpenAIServer(reject_field="structured_outputs") as srv:  # no constraint sent: nothing to drop
        assert OpenAIBackend(srv.url, model="m", **FAST).complete(USER).text == "hello"
        assert len(srv.requests) == 1
