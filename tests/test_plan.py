from __future__ import annotations

import pytest

from agentdistill.mas.plan import (
    TERMINALS,
    Plan,
    PlanError,
    Ref,
    halstead,
    implied_calls,
    next_step,
    parse_plan,
    render_call,
    run_plan,
    terminal_calls,
)

TOOLS = frozenset(
    {"verify_customer_identity", "book_test_drive", "search_inventory", "compare_vehicles", "lookup"}
)

BOOKING = """\
v = verify_customer_identity(email="ana.diaz12@example.com", phone_last4="4821")
if v["verified"]:
    b = book_test_drive(customer_id=v["customer_id"], stock_no="A1042", start="2026-12-03T14:00")
    reply(topic="booking_confirmed")
else:
    reply(topic="identity_failed")
"""

COMPARE = """\
s = search_inventory(make="Toyota", model="RAV4", max_price=32000)
if s["count"] == 0:
    reply(topic="no_match")
else:
    c = compare_vehicles(stock_nos=[s["vehicles"][0]["stock_no"], s["vehicles"][1]["stock_no"]])
    reply(topic="comparison")
"""

ASK = 'ask(missing=["email", "phone_last4"], topic="identity_needed")\n'


def ok(result: dict) -> dict:
    return {"ok": True, "result": result}


def test_terminals_constant() -> None:
    assert TERMINALS == ("reply", "ask")


@pytest.mark.parametrize("source", [BOOKING, COMPARE, ASK])
def test_examples_parse(source: str) -> None:
    plan = parse_plan(source, TOOLS)
    assert isinstance(plan, Plan)
    assert plan.canonical() == parse_plan(source.replace('"', "'"), TOOLS).canonical()


def test_fenced_input() -> None:
    for fence in ("```python\n", "```\n"):
        plan = parse_plan(fence + BOOKING + "```", TOOLS)
        assert plan.canonical() == parse_plan(BOOKING, TOOLS).canonical()
        assert not plan.source.startswith("```")


def test_elif_and_nesting_allowed() -> None:
    src = """\
v = lookup(id=1)
if v["a"] and not v["b"]:
    if v["c"] in ["x", "y"]:
        if len(v["items"]) >= 2:
            reply(topic="deep")
        else:
            ask(topic="more")
    else:
        reply(topic="c")
elif v["a"] != -1 or v["d"] not in {"k": 1}:
    reply(topic="e")
else:
    reply(topic="f")
"""
    parse_plan(src, TOOLS)


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("import os", 1, "imports"),
        ("from os import path", 1, "imports"),
        ("def f():\n    pass", 1, "function definitions"),
        ("class C:\n    pass", 1, "class definitions"),
        ("v = lookup(id=1)\nf = lambda: 1", 2, "lambdas"),
        ("v = lookup(id=1)\nfor x in v:\n    lookup(id=x)", 2, "loops"),
        ("while True:\n    lookup(id=1)", 1, "while"),
        ("with lookup(id=1):\n    lookup(id=1)", 1, "with"),
        ("try:\n    lookup(id=1)\nexcept Exception:\n    lookup(id=2)", 1, "try"),
        ("v = lookup(id=1)\nlookup(id=v.x)", 2, "attribute access"),
        ("v = lookup(id=1)\nlookup(id=f'{v}')", 2, "f-strings"),
        ("v = lookup(id=1)\nlookup(id=[x for x in v])", 2, "comprehensions"),
        ("v = lookup(id=1)\nv += 1", 2, "augmented"),
        ("a = b = lookup(id=1)", 1, "multiple"),
        ("a, b = lookup(id=1)", 1, "multiple"),
        ("v = lookup(id=1)\nlookup(id=[*v])", 2, "star"),
        ("v = lookup(id=1)\nlookup(*v)", 2, "star"),
        ("v = lookup(id=1)\nlookup(**v)", 2, "**"),
        ("lookup(1)", 1, "keyword arguments only"),
        ("v = lookup(id=1)\nlookup(id=str(v))", 2, "calling 'str'"),
        ("v = lookup(id=1)\nlookup(id=lookup(id=2))", 2, "only be called as a statement"),
        ("return 1", 1, "return"),
        ("global x", 1, "global"),
        ("v = lookup(id=1)\ndel v", 2, "del"),
        ("assert True", 1, "assert"),
        ("raise ValueError", 1, "raise"),
        ("v = lookup(id=1)\nlookup(id=(w := 2))", 2, "walrus"),
        ("v = lookup(id=1)\nlookup(id=v['a'] + 1)", 2, "arithmetic"),
        ("v = lookup(id=1)\nlookup(id=v[1:2])", 2, "slices"),
        ("v = lookup(id=1)\nlookup(id=v[v])", 2, "constant index"),
        ("v = lookup(id=1)\nlookup(id=v is None)", 2, "'is'"),
        ("v = lookup(id=1)\nos.system(cmd='x')", 2, "attribute access"),
        ("x = 5", 1, "tool call"),
        ("v = lookup(id=1)\nv", 2, "bare expressions"),
        ("v = lookup(id=1)\nx = len(v)", 2, "only allowed inside expressions"),
        ("r = reply(topic='x')", 1, "cannot be assigned"),
        ("lookup = lookup(id=1)", 1, "cannot assign"),
        ("lookup(id=b'x')", 1, "bytes"),
        ("foo(id=1)", 1, "unknown tool 'foo'"),
        (
            "v = lookup(id=1)\nif v:\n    if v:\n        if v:\n            if v:\n                lookup(id=1)",
            5,
            "nested deeper",
        ),
    ],
)
def test_forbidden_constructs(body: str, line: int, fragment: str) -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(body + "\nreply(topic='x')\n", TOOLS)
    message = str(info.value)
    assert message.startswith(f"line {line}:"), message
    assert fragment in message, message
    assert "\n" not in message


def test_syntax_error_has_line() -> None:
    with pytest.raises(PlanError, match=r"^line 2: syntax error"):
        parse_plan("v = lookup(id=1)\nif v[:\n", TOOLS)


def test_deeply_nested_garbage_is_a_plan_error() -> None:
    """A small model can emit anything: CPython's RecursionError/MemoryError must not escape the parser."""
    for src in ("x = " + "1+" * 200_000 + "1\nreply(topics=[])", "x = " + "-" * 100_000 + "1"):
        with pytest.raises(PlanError, match="limit 32,000"):  # the size limit refuses it before ast runs
            parse_plan(src, TOOLS)
    with pytest.raises(PlanError, match="not parseable"):  # under the size limit: CPython's own recursion limit
        parse_plan("x = " + "-" * 30_000 + "1", TOOLS)


def test_plans_parse_from_many_threads_at_once() -> None:
    """The evaluation judges conversations in threads; concurrent parses must neither fail nor interfere."""
    from concurrent.futures import ThreadPoolExecutor

    good = "v = lookup(id=1)\nif v[\"ok\"]:\n    reply(topics=[\"a\"])\nreply(topics=[\"b\"])"
    bad = "x = " + "(" * 150 + "1" + ")" * 150 + "\nreply(topics=[])"

    def one(i: int) -> str:
        try:
            parse_plan(good if i % 2 else bad, TOOLS)
            return "ok"
        except PlanError:
            return "error"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(400)))
    assert results == ["error" if i % 2 == 0 else "ok" for i in range(400)]


def test_empty_plan() -> None:
    for src in ("", "   \n", "# just a comment\n", "```python\n```"):
        with pytest.raises(PlanError, match="empty"):
            parse_plan(src, TOOLS)


def test_use_before_assignment() -> None:
    with pytest.raises(PlanError, match=r"^line 1: name 'v' is used before assignment"):
        parse_plan("lookup(id=v['x'])\nreply(topic='x')", TOOLS)
    only_one_branch = """\
v = lookup(id=1)
if v["a"]:
    w = lookup(id=2)
else:
    lookup(id=3)
reply(topic=w["t"])
"""
    with pytest.raises(PlanError, match=r"^line 6: name 'w' is used before assignment"):
        parse_plan(only_one_branch, TOOLS)
    both_branches = only_one_branch.replace("    lookup(id=3)", "    w = lookup(id=3)")
    parse_plan(both_branches, TOOLS)
    # a branch that ends the plan does not need to bind the name
    terminating = only_one_branch.replace("    lookup(id=3)", "    reply(topic='no')")
    parse_plan(terminating, TOOLS)


def test_missing_terminal() -> None:
    with pytest.raises(PlanError, match=r"plan must end with reply\(\.\.\.\) or ask\(\.\.\.\)"):
        parse_plan("lookup(id=1)\n", TOOLS)
    with pytest.raises(PlanError, match=r"^line 3: plan must end with reply"):
        parse_plan("v = lookup(id=1)\nif v:\n    reply(topic='x')\n", TOOLS)


def test_terminal_not_last() -> None:
    with pytest.raises(PlanError, match=r"^line 1: reply\(\.\.\.\) must be the last statement"):
        parse_plan("reply(topic='a')\nlookup(id=1)\nreply(topic='b')", TOOLS)
    with pytest.raises(PlanError, match=r"^line 3: ask\(\.\.\.\) must be the last statement"):
        parse_plan(
            "v = lookup(id=1)\nif v:\n    ask(topic='a')\n    reply(topic='b')\nreply(topic='c')", TOOLS
        )
    with pytest.raises(PlanError, match=r"^line 6: unreachable"):
        parse_plan(
            "v = lookup(id=1)\nif v:\n    ask(topic='a')\nelse:\n    reply(topic='b')\nreply(topic='c')",
            TOOLS,
        )


def test_too_many_tool_calls() -> None:
    src = "".join(f"lookup(id={i})\n" for i in range(13)) + "reply(topic='x')"
    with pytest.raises(PlanError, match=r"^line 13: .*at most 12"):
        parse_plan(src, TOOLS)
    parse_plan("".join(f"lookup(id={i})\n" for i in range(12)) + "reply(topic='x')", TOOLS)


def test_halstead_hand_counted() -> None:
    m = halstead(parse_plan('v = lookup(id=7)\nreply(topic="done", ref=v)', TOOLS))
    # operators: lookup, =, kw= x3, reply -> distinct {lookup, =, kw=, reply}
    assert (m.n1, m.N1) == (4, 6)
    # operands: v x2, id, 7, topic, 'done', ref -> distinct {v, id, 7, topic, 'done', ref}
    assert (m.n2, m.N2) == (6, 7)
    assert m.vocabulary == 10 and m.length == 13
    assert m.volume == pytest.approx(13 * 3.321928094887362)
    assert m.difficulty == pytest.approx((4 / 2) * (7 / 6))
    assert m.effort == pytest.approx(m.difficulty * m.volume)


def test_halstead_subscripts_and_compare() -> None:
    m = halstead(
        parse_plan('v = lookup(id=1)\nif v["n"] == 0:\n    reply(t=1)\nelse:\n    reply(t=[2])', TOOLS)
    )
    # operators: =, lookup, kw= x3, if, [], ==, reply x2, else, [...]
    assert (m.n1, m.N1) == (9, 12)
    # operands: v x2, id, 1 x2, 'n', 0, t x2, 2
    assert (m.n2, m.N2) == (7, 10)


def test_halstead_orders_simple_below_complex() -> None:
    simple = halstead(parse_plan(ASK, TOOLS))
    for src in (BOOKING, COMPARE):
        complex_ = halstead(parse_plan(src, TOOLS))
        assert simple.volume < complex_.volume
        assert simple.effort * 2 < complex_.effort


def test_implied_and_terminal_calls() -> None:
    calls = implied_calls(parse_plan(BOOKING, TOOLS))
    assert [(c.name, c.conditional, c.line) for c in calls] == [
        ("verify_customer_identity", False, 1),
        ("book_test_drive", True, 3),
    ]
    assert calls[0].arguments == {"email": "ana.diaz12@example.com", "phone_last4": "4821"}
    assert calls[1].arguments == {
        "customer_id": Ref('v["customer_id"]'),
        "stock_no": "A1042",
        "start": "2026-12-03T14:00",
    }
    assert repr(calls[1].arguments["customer_id"]) == 'v["customer_id"]'
    compare = implied_calls(parse_plan(COMPARE, TOOLS))[1]
    assert compare.arguments == {
        "stock_nos": [Ref('s["vehicles"][0]["stock_no"]'), Ref('s["vehicles"][1]["stock_no"]')]
    }
    terms = terminal_calls(parse_plan(BOOKING, TOOLS))
    assert [(t.name, t.arguments, t.conditional) for t in terms] == [
        ("reply", {"topic": "booking_confirmed"}, True),
        ("reply", {"topic": "identity_failed"}, True),
    ]
    ask = terminal_calls(parse_plan(ASK, TOOLS))
    assert ask[0].arguments == {"missing": ["email", "phone_last4"], "topic": "identity_needed"}
    assert ask[0].conditional is False
    assert implied_calls(parse_plan(ASK, TOOLS)) == []


def test_render_call_round_trip() -> None:
    args = {
        "s": 'say "hi" \u00e9',
        "n": -3,
        "f": 1.5,
        "b": True,
        "z": None,
        "l": [1, "a", [Ref('v["x"]')]],
        "d": {"k": {"n": Ref("v")}},
        "r": Ref('v["items"][0]'),
    }
    line = render_call("lookup", args, target="w")
    assert line.startswith(
        'w = lookup(s="say \\"hi\\" \u00e9", n=-3, f=1.5, b=True, z=None, l=[1, "a", [v["x"]]]'
    )
    assert "\n" not in line
    plan = parse_plan("v = lookup(id=1)\n" + line + "\n" + render_call("reply", {"topic": "x"}), TOOLS)
    calls = implied_calls(plan)
    assert calls[1].name == "lookup" and calls[1].target == "w"
    assert calls[1].arguments == args
    assert list(calls[1].arguments) == list(args)
    assert render_call("ask", {}) == "ask()"


def fake_tools(verified: bool):
    log: list[tuple[str, dict]] = []

    def call(name: str, arguments: dict) -> dict:
        log.append((name, arguments))
        if name == "verify_customer_identity":
            return ok({"verified": verified, "customer_id": "C7" if verified else None})
        if name == "book_test_drive":
            return ok({"booking_id": "B1"})
        raise AssertionError(name)

    return call, log


def test_run_plan_both_branches() -> None:
    plan = parse_plan(BOOKING, TOOLS)
    call, log = fake_tools(True)
    done, terminal = run_plan(plan, call)
    assert [d[0] for d in done] == ["verify_customer_identity", "book_test_drive"]
    assert log[1] == (
        "book_test_drive",
        {"customer_id": "C7", "stock_no": "A1042", "start": "2026-12-03T14:00"},
    )
    assert (terminal.kind, terminal.name, terminal.arguments) == (
        "terminal",
        "reply",
        {"topic": "booking_confirmed"},
    )

    call, log = fake_tools(False)
    done, terminal = run_plan(plan, call)
    assert [d[0] for d in done] == ["verify_customer_identity"]
    assert terminal.arguments == {"topic": "identity_failed"}


def test_next_step_incremental() -> None:
    plan = parse_plan(BOOKING, TOOLS)
    first = next_step(plan, [])
    assert (first.kind, first.name) == ("tool", "verify_customer_identity")
    assert first.arguments == {"email": "ana.diaz12@example.com", "phone_last4": "4821"}
    done = [(first.name, first.arguments, ok({"verified": True, "customer_id": "C9"}))]
    second = next_step(plan, done)
    assert (second.kind, second.name, second.arguments["customer_id"]) == ("tool", "book_test_drive", "C9")
    assert next_step(parse_plan(ASK, TOOLS), []).kind == "terminal"


def test_error_result_binds_error() -> None:
    src = """\
v = lookup(id=1)
if v["error"]:
    reply(topic="failed", code=v["error"]["code"], missing=v["customer_id"])
else:
    reply(topic="fine")
"""
    plan = parse_plan(src, TOOLS)
    step = next_step(plan, [("lookup", {"id": 1}, {"ok": False, "error": {"code": "not_found"}})])
    assert step == next_step(plan, [("lookup", {}, {"ok": False, "error": {"code": "not_found"}})])
    assert (step.kind, step.arguments) == (
        "terminal",
        {"topic": "failed", "code": "not_found", "missing": None},
    )
    assert next_step(plan, [("lookup", {}, ok({"x": 1}))]).arguments == {"topic": "fine"}


def test_lenient_evaluation() -> None:
    src = """\
s = search_inventory(make="Kia")
if s["count"] > 0 and s["vehicles"][5]["stock_no"] == None:
    reply(topic="a", n=len(s["vehicles"]), m=len(s["nope"]), k="x" in s["nope"], q=s["count"][0])
elif len(s["vehicles"]) == 0 or s["count"] < 1:
    reply(topic="b", neg=s["vehicles"][-1], miss=s["missing"]["deeper"][0])
else:
    reply(topic="c")
"""
    plan = parse_plan(src, TOOLS)
    step = next_step(plan, [("search_inventory", {}, ok({"count": 2, "vehicles": [{"stock_no": "A"}, {}]}))])
    assert step.arguments == {"topic": "a", "n": 2, "m": 0, "k": False, "q": None}
    step = next_step(plan, [("search_inventory", {}, ok({"count": None, "vehicles": []}))])
    # None > 0 and None < 1 would raise in Python: both yield False
    assert step.arguments == {"topic": "b", "neg": None, "miss": None}
    step = next_step(plan, [("search_inventory", {}, ok({"count": None, "vehicles": [1]}))])
    assert step.arguments == {"topic": "c"}


def test_divergence() -> None:
    plan = parse_plan(BOOKING, TOOLS)
    with pytest.raises(PlanError, match="diverge from the plan at step 0"):
        next_step(plan, [("book_test_drive", {}, ok({}))])
    two = [("verify_customer_identity", {}, ok({"verified": False})), ("book_test_drive", {}, ok({}))]
    with pytest.raises(PlanError, match="diverge from the plan at step 1"):
        next_step(plan, two)


def test_run_plan_max_steps() -> None:
    plan = parse_plan("lookup(id=1)\nlookup(id=2)\nreply(topic='x')", TOOLS)
    with pytest.raises(PlanError, match="exceeded 1"):
        run_plan(plan, lambda name, args: ok({}), max_steps=1)
