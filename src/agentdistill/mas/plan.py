"""Plans as programs: the Planner's restricted-Python plan language.

The Planner writes its plan as a short program in a small subset of Python. The plan is parsed with
:mod:`ast` and validated here; it is NEVER executed as Python. What this module offers:

* :func:`parse_plan` validates the program against the grammar below and returns a :class:`Plan`.
* :func:`halstead` measures its Halstead complexity (the Evaluator's cheap gate).
* :func:`implied_calls` / :func:`terminal_calls` list the call sites statically (for rule checks).
* :func:`render_call` writes one plan line (used by a scripted planner).
* :func:`next_step` / :func:`run_plan` interpret the plan one tool call at a time, given the results
  of the calls already made (used by the scripted reference executor).

Grammar (anything else raises :class:`PlanError` with a line number):

* statements: ``NAME = tool(k=expr, ...)``, ``tool(k=expr, ...)``, ``if expr:`` / ``elif`` / ``else:``
  (if-nesting depth at most 3), and the terminals ``reply(...)`` / ``ask(...)``;
* calls take keyword arguments only; the callee is a bare tool name or a terminal; ``len(expr)`` is the
  only call allowed inside expressions; at most 12 tool call sites per plan;
* expressions: str/int/float/bool/None constants, list/tuple/dict literals, names assigned earlier on
  every path, subscripts with a constant index or key, comparisons (``== != < <= > >= in not in``),
  ``and``/``or``/``not`` and ``len(expr)``;
* every execution path ends with exactly one terminal, and a terminal is the last statement of its block.
"""

from __future__ import annotations

import ast
import copy
import json
import math
import operator
import re
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "MAX_TOOL_CALLS",
    "TERMINALS",
    "HalsteadMetrics",
    "Plan",
    "PlanError",
    "PlannedCall",
    "Ref",
    "Step",
    "halstead",
    "implied_calls",
    "next_step",
    "parse_plan",
    "render_call",
    "run_plan",
    "terminal_calls",
]

TERMINALS = ("reply", "ask")
MAX_TOOL_CALLS = 12
MAX_DEPTH = 3


class PlanError(ValueError):
    """A plan that is not in the plan language, or that cannot be followed; the message is one line."""


@dataclass
class Plan:
    """A validated plan. ``source`` is the program that was parsed (any markdown fence removed)."""

    source: str
    tree: ast.Module

    def canonical(self) -> str:
        """Formatting-insensitive form of the plan, for equality checks."""
        return ast.unparse(self.tree)


# --------------------------------------------------------------------------------------------- parsing

_FORBIDDEN_STMT: dict[type, str] = {
    ast.Import: "imports are",
    ast.ImportFrom: "imports are",
    ast.FunctionDef: "function definitions are",
    ast.AsyncFunctionDef: "function definitions are",
    ast.ClassDef: "class definitions are",
    ast.For: "loops are",
    ast.AsyncFor: "loops are",
    ast.While: "while loops are",
    ast.Break: "loops are",
    ast.Continue: "loops are",
    ast.With: "with statements are",
    ast.AsyncWith: "with statements are",
    ast.Try: "try statements are",
    ast.AugAssign: "augmented assignments are",
    ast.AnnAssign: "annotated assignments are",
    ast.Return: "return statements are",
    ast.Global: "global statements are",
    ast.Nonlocal: "nonlocal statements are",
    ast.Delete: "del statements are",
    ast.Assert: "assert statements are",
    ast.Raise: "raise statements are",
    ast.Pass: "pass statements are",
    ast.Match: "match statements are",
}
if hasattr(ast, "TryStar"):
    _FORBIDDEN_STMT[ast.TryStar] = "try statements are"

_FORBIDDEN_EXPR: dict[type, str] = {
    ast.Lambda: "lambdas are",
    ast.Attribute: "attribute access is",
    ast.JoinedStr: "f-strings are",
    ast.FormattedValue: "f-strings are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.Starred: "star expressions are",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
    ast.Await: "await is",
    ast.NamedExpr: "walrus assignments (:=) are",
    ast.BinOp: "arithmetic operators are",
    ast.IfExp: "conditional expressions are",
    ast.Set: "set literals are",
    ast.Slice: "slices are",
}

_CMP_SYMBOL: dict[type, str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}

_FENCE = re.compile(r"\A\s*```[\w+.-]*[ \t]*\r?\n(.*?)\r?\n?[ \t]*```\s*\Z", re.DOTALL)


def _err(node: ast.AST | None, message: str) -> PlanError:
    line = getattr(node, "lineno", None)
    return PlanError(f"line {line}: {message}" if line else message)


def _strip_fence(source: str) -> str:
    match = _FENCE.match(source)
    if match:
        source = match.group(1)
    return textwrap.dedent(source).strip("\n")


def _call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        raise _err(func, "attribute access is not allowed")
    raise _err(call, "only tools, reply(...) and ask(...) may be called")


class _Validator:
    def __init__(self, tool_names: frozenset[str]) -> None:
        self.tools = tool_names
        self.callables = tool_names | set(TERMINALS) | {"len"}
        self.tool_calls = 0

    # statements ---------------------------------------------------------------------------------
    def block(
        self, stmts: list[ast.stmt], assigned: frozenset[str], depth: int
    ) -> tuple[frozenset[str], bool]:
        """Validate a block; return (names definitely assigned after it, whether every path terminates)."""
        terminated_by: ast.stmt | None = None
        for stmt in stmts:
            if terminated_by is not None:
                if isinstance(terminated_by, ast.If):
                    raise _err(stmt, "unreachable statement: every branch of the if above ends the plan")
                name = _call_name(terminated_by.value)  # type: ignore[attr-defined]
                raise _err(terminated_by, f"{name}(...) must be the last statement of its block")
            assigned, terminates = self.stmt(stmt, assigned, depth)
            if terminates:
                terminated_by = stmt
        return assigned, terminated_by is not None

    def stmt(self, stmt: ast.stmt, assigned: frozenset[str], depth: int) -> tuple[frozenset[str], bool]:
        kind = type(stmt)
        if kind in _FORBIDDEN_STMT:
            raise _err(stmt, f"{_FORBIDDEN_STMT[kind]} not allowed")
        if isinstance(stmt, ast.If):
            if depth >= MAX_DEPTH:
                raise _err(stmt, f"if statements nested deeper than {MAX_DEPTH} levels are not allowed")
            self.expr(stmt.test, assigned)
            after_body, body_ends = self.block(stmt.body, assigned, depth + 1)
            if stmt.orelse:
                # an elif (or an else holding only an if) stays at the same depth
                elif_chain = len(stmt.orelse) == 1 and isinstance(stmt.orelse[0], ast.If)
                after_else, else_ends = self.block(stmt.orelse, assigned, depth if elif_chain else depth + 1)
            else:
                after_else, else_ends = assigned, False
            open_paths = [
                names for names, ends in ((after_body, body_ends), (after_else, else_ends)) if not ends
            ]
            if not open_paths:
                return assigned, True
            return frozenset.intersection(*open_paths), False
        if isinstance(stmt, ast.Assign):
            if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], ast.Name):
                target = stmt.targets[-1] if len(stmt.targets) == 1 else stmt.targets[1]
                if isinstance(target, ast.Attribute):
                    raise _err(stmt, "attribute access is not allowed")
                if isinstance(target, ast.Subscript):
                    raise _err(stmt, "assignments to subscripts are not allowed")
                raise _err(stmt, "multiple assignment targets are not allowed")
            target = stmt.targets[0].id
            if target in self.callables:
                raise _err(stmt, f"cannot assign to '{target}': it names a tool")
            value = stmt.value
            if not isinstance(value, ast.Call):
                self._scan_forbidden(value)
                raise _err(stmt, "an assignment must bind the result of a tool call")
            name = self.call(value, assigned)
            if name in TERMINALS:
                raise _err(stmt, f"the result of {name}(...) cannot be assigned")
            return assigned | {target}, False
        if isinstance(stmt, ast.Expr):
            value = stmt.value
            if not isinstance(value, ast.Call):
                self._scan_forbidden(value)
                raise _err(
                    stmt, "bare expressions are not allowed; write a tool call, reply(...) or ask(...)"
                )
            name = self.call(value, assigned)
            return assigned, name in TERMINALS
        raise _err(stmt, f"{type(stmt).__name__} statements are not allowed")

    def call(self, call: ast.Call, assigned: frozenset[str]) -> str:
        """Validate a statement-level call; return the callee name."""
        name = _call_name(call)
        if name == "len":
            raise _err(call, "len(...) is only allowed inside expressions")
        if name not in self.callables:
            raise _err(call, f"unknown tool '{name}'")
        for arg in call.args:
            if isinstance(arg, ast.Starred):
                raise _err(arg, "star expressions are not allowed")
        if call.args:
            raise _err(call, f"{name}(...) takes keyword arguments only")
        for kw in call.keywords:
            if kw.arg is None:
                raise _err(kw.value, "** arguments are not allowed")
            self.expr(kw.value, assigned)
        if name not in TERMINALS:
            self.tool_calls += 1
            if self.tool_calls > MAX_TOOL_CALLS:
                raise _err(call, f"a plan may have at most {MAX_TOOL_CALLS} tool calls")
        return name

    # expressions --------------------------------------------------------------------------------
    def _scan_forbidden(self, node: ast.AST) -> None:
        for sub in ast.walk(node):
            if type(sub) in _FORBIDDEN_EXPR:
                raise _err(sub, f"{_FORBIDDEN_EXPR[type(sub)]} not allowed")

    def expr(self, node: ast.expr, assigned: frozenset[str]) -> None:
        kind = type(node)
        if kind in _FORBIDDEN_EXPR:
            raise _err(node, f"{_FORBIDDEN_EXPR[kind]} not allowed")
        if isinstance(node, ast.Constant):
            if node.value is not None and not isinstance(node.value, (str, int, float)):
                raise _err(node, f"constants of type {type(node.value).__name__} are not allowed")
        elif isinstance(node, ast.Name):
            if node.id not in assigned:
                raise _err(node, f"name '{node.id}' is used before assignment")
        elif isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self.expr(elt, assigned)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=False):
                if key is None:
                    raise _err(value, "** in dict literals is not allowed")
                self.expr(key, assigned)
                self.expr(value, assigned)
        elif isinstance(node, ast.Subscript):
            if isinstance(node.slice, ast.Slice):
                raise _err(node, "slices are not allowed")
            if _constant_key(node.slice) is _NO_KEY:
                raise _err(node, "subscripts must use a constant index or key")
            self.expr(node.value, assigned)
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _CMP_SYMBOL:
                    symbol = "is not" if isinstance(op, ast.IsNot) else "is"
                    raise _err(node, f"'{symbol}' comparisons are not allowed; use == or !=")
            self.expr(node.left, assigned)
            for comparator in node.comparators:
                self.expr(comparator, assigned)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.expr(value, assigned)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                self.expr(node.operand, assigned)
            elif not _is_negative_number(node):
                raise _err(node, "unary operators other than 'not' are not allowed")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name != "len":
                if name in self.tools or name in TERMINALS:
                    raise _err(node, f"{name}(...) may only be called as a statement")
                raise _err(node, f"calling '{name}' is not allowed")
            if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
                raise _err(node, "len(...) takes exactly one positional argument")
            self.expr(node.args[0], assigned)
        else:
            raise _err(node, f"{type(node).__name__} expressions are not allowed")


_NO_KEY = object()


def _is_negative_number(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and type(node.operand.value) in (int, float)
    )


def _constant_key(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, str):
        return node.value
    if _is_negative_number(node) and type(node.operand.value) is int:  # type: ignore[attr-defined]
        return -node.operand.value  # type: ignore[attr-defined]
    return _NO_KEY


# CPython 3.11 can fail `ast.parse` with "SystemError: AST constructor recursion depth mismatch" when threads
# parse at once (the evaluation runs conversations in threads); one parse at a time avoids it.
_PARSE_LOCK = threading.Lock()


def parse_plan(source: str, tool_names: set[str] | frozenset[str]) -> Plan:
    """Parse and validate a plan (a surrounding markdown code fence is stripped first).

    Whatever text a model emits ends in a Plan or a PlanError, never another exception: deeply nested
    garbage makes CPython raise RecursionError or MemoryError instead of SyntaxError.
    """
    from agentdistill.mas.model_text import ModelTextError, check_size

    try:
        code = _strip_fence(check_size(source))
    except ModelTextError as exc:
        raise PlanError(str(exc)) from None
    try:
        with _PARSE_LOCK:
            tree = ast.parse(code, mode="exec")
    except SyntaxError as exc:
        raise PlanError(f"line {exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # Python 3.11: "source code string cannot contain null bytes"
        raise PlanError(f"plan is not parseable: {exc}") from None
    except (RecursionError, MemoryError, SystemError) as exc:
        raise PlanError(f"plan is not parseable ({type(exc).__name__}: nested too deeply)") from None
    if not tree.body:
        raise PlanError("plan is empty")
    validator = _Validator(frozenset(tool_names))
    _, terminates = validator.block(tree.body, frozenset(), 0)
    if not terminates:
        last = tree.body[-1]
        raise PlanError(f"line {last.end_lineno or last.lineno}: plan must end with reply(...) or ask(...)")
    return Plan(source=code, tree=tree)


# -------------------------------------------------------------------------------------------- halstead


@dataclass
class HalsteadMetrics:
    n1: int
    n2: int
    N1: int
    N2: int
    vocabulary: int
    length: int
    volume: float
    difficulty: float
    effort: float


def _halstead_tokens(plan: Plan) -> tuple[Counter[str], Counter[str]]:
    ops: Counter[str] = Counter()
    opnds: Counter[str] = Counter()

    def expr(node: ast.expr) -> None:
        if isinstance(node, ast.Constant):
            opnds[repr(node.value)] += 1
        elif _is_negative_number(node):
            opnds[repr(-node.operand.value)] += 1  # type: ignore[attr-defined]
        elif isinstance(node, ast.Name):
            opnds[node.id] += 1
        elif isinstance(node, ast.Subscript):
            ops["[]"] += 1
            expr(node.value)
            expr(node.slice)
        elif isinstance(node, ast.Compare):
            expr(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=False):
                ops[_CMP_SYMBOL[type(op)]] += 1
                expr(comparator)
        elif isinstance(node, ast.BoolOp):
            ops["and" if isinstance(node.op, ast.And) else "or"] += len(node.values) - 1
            for value in node.values:
                expr(value)
        elif isinstance(node, ast.UnaryOp):
            ops["not"] += 1
            expr(node.operand)
        elif isinstance(node, ast.Call):
            call(node)
        elif isinstance(node, ast.List):
            ops["[...]"] += 1
            for elt in node.elts:
                expr(elt)
        elif isinstance(node, ast.Tuple):
            ops["(...)"] += 1
            for elt in node.elts:
                expr(elt)
        elif isinstance(node, ast.Dict):
            ops["{...}"] += 1
            for key, value in zip(node.keys, node.values, strict=False):
                if key is not None:
                    expr(key)
                expr(value)

    def call(node: ast.Call) -> None:
        ops[_call_name(node)] += 1
        for arg in node.args:
            expr(arg)
        for kw in node.keywords:
            ops["kw="] += 1
            opnds[kw.arg or "**"] += 1
            expr(kw.value)

    def block(stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                ops["if"] += 1
                expr(stmt.test)
                block(stmt.body)
                if stmt.orelse:
                    ops["else"] += 1
                    block(stmt.orelse)
            elif isinstance(stmt, ast.Assign):
                ops["="] += 1
                for target in stmt.targets:
                    expr(target)
                expr(stmt.value)
            elif isinstance(stmt, ast.Expr):
                expr(stmt.value)

    block(plan.tree.body)
    return ops, opnds


def halstead(plan: Plan) -> HalsteadMetrics:
    """Halstead complexity of a plan.

    Operators: each callee name (tool, ``reply``/``ask``, ``len``; the name itself is the operator),
    ``=`` per assignment, ``kw=`` once per keyword argument, ``if`` per if/elif, ``else`` per else/elif,
    each comparison operator (``==``, ``not in`` ...), ``and``/``or`` (one per joined operand after the
    first), ``not``, ``[]`` per subscript, ``[...]`` per list literal, ``(...)`` per tuple literal and
    ``{...}`` per dict literal.
    Operands: variable names (where bound and where used), keyword names, and constants keyed by
    ``repr`` (so the string ``'v'`` and the variable ``v`` differ, while a keyword ``topic`` and a
    variable ``topic`` are the same operand). Subscript keys/indexes and dict keys are constants.

    vocabulary = n1 + n2, length = N1 + N2, volume = length * log2(vocabulary) (0 if vocabulary < 2),
    difficulty = (n1 / 2) * (N2 / n2) (0 if n2 == 0), effort = difficulty * volume.
    """
    ops, opnds = _halstead_tokens(plan)
    n1, n2 = len(ops), len(opnds)
    big_n1, big_n2 = sum(ops.values()), sum(opnds.values())
    vocabulary, length = n1 + n2, big_n1 + big_n2
    volume = length * math.log2(vocabulary) if vocabulary >= 2 else 0.0
    difficulty = (n1 / 2) * (big_n2 / n2) if n2 else 0.0
    return HalsteadMetrics(
        n1=n1,
        n2=n2,
        N1=big_n1,
        N2=big_n2,
        vocabulary=vocabulary,
        length=length,
        volume=float(volume),
        difficulty=float(difficulty),
        effort=float(difficulty * volume),
    )


# ------------------------------------------------------------------------------------ static call view


@dataclass(frozen=True)
class Ref:
    """An argument value that depends on an earlier result; ``expr`` is its plan source text."""

    expr: str

    def __repr__(self) -> str:
        return self.expr


@dataclass
class PlannedCall:
    name: str
    arguments: dict
    conditional: bool
    line: int
    target: str | None = field(default=None)


def _source_text(plan: Plan, node: ast.expr) -> str:
    text = ast.get_source_segment(plan.source, node)
    if text is None or "\n" in text:
        text = ast.unparse(node)
    return text


def _static_value(plan: Plan, node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if _is_negative_number(node):
        return -node.operand.value  # type: ignore[attr-defined]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_static_value(plan, elt) for elt in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _static_value(plan, key): _static_value(plan, value)
            for key, value in zip(node.keys, node.values, strict=False)
            if key is not None
        }
    return Ref(_source_text(plan, node))


def _call_sites(plan: Plan) -> Iterator[PlannedCall]:
    def block(stmts: list[ast.stmt], conditional: bool) -> Iterator[PlannedCall]:
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                yield from block(stmt.body, True)
                yield from block(stmt.orelse, True)
                continue
            target = None
            if isinstance(stmt, ast.Assign):
                target = stmt.targets[0].id  # type: ignore[attr-defined]
            call = stmt.value  # type: ignore[attr-defined]
            arguments = {kw.arg: _static_value(plan, kw.value) for kw in call.keywords}
            yield PlannedCall(_call_name(call), arguments, conditional, stmt.lineno, target)

    yield from block(plan.tree.body, False)


def implied_calls(plan: Plan) -> list[PlannedCall]:
    """Every tool call site in source order (all branches; reply/ask excluded)."""
    return [c for c in _call_sites(plan) if c.name not in TERMINALS]


def terminal_calls(plan: Plan) -> list[PlannedCall]:
    """Every reply(...)/ask(...) site in source order."""
    return [c for c in _call_sites(plan) if c.name in TERMINALS]


def _render_value(value: Any) -> str:
    if isinstance(value, Ref):
        return value.expr
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot render non-finite float {value!r} in a plan")
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_render_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_render_value(k)}: {_render_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot render a value of type {type(value).__name__} in a plan")


def render_call(name: str, arguments: dict, target: str | None = None) -> str:
    """One line of plan source: ``target = name(k=v, ...)`` with keys in the given order."""
    args = ", ".join(f"{key}={_render_value(value)}" for key, value in arguments.items())
    line = f"{name}({args})"
    return f"{target} = {line}" if target else line


# ------------------------------------------------------------------------------------------ interpreter


@dataclass
class Step:
    kind: str  # "tool" | "terminal"
    name: str
    arguments: dict


class _Found(Exception):
    def __init__(self, step: Step) -> None:
        super().__init__(step.name)
        self.step = step


def _payload(result: Any) -> Any:
    if isinstance(result, dict) and "ok" in result:
        if result["ok"]:
            return result.get("result")
        return {"error": result.get("error")}
    return result


_CMP_FUNC: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


def _evaluate(node: ast.expr, env: dict[str, Any]) -> Any:
    """Lenient evaluation: missing keys/indexes give None, comparisons that would raise give False."""
    if isinstance(node, ast.Constant):
        return node.value
    if _is_negative_number(node):
        return -node.operand.value  # type: ignore[attr-defined]
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.Subscript):
        base = _evaluate(node.value, env)
        key = _constant_key(node.slice)
        if isinstance(base, dict):
            return base.get(key) if isinstance(key, (str, int)) else None
        if isinstance(base, (list, tuple, str)) and type(key) is int:
            return base[key] if -len(base) <= key < len(base) else None
        return None
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=False):
            right = _evaluate(comparator, env)
            try:
                ok = bool(_CMP_FUNC[type(op)](left, right))
            except TypeError:
                ok = False
            if not ok:
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        value: Any = None
        for sub in node.values:
            value = _evaluate(sub, env)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value
    if isinstance(node, ast.UnaryOp):  # only `not` survives validation
        return not _evaluate(node.operand, env)
    if isinstance(node, ast.Call):  # only len(...) survives validation
        try:
            return len(_evaluate(node.args[0], env))
        except TypeError:
            return 0
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(elt, env) for elt in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _evaluate(key, env): _evaluate(value, env)
            for key, value in zip(node.keys, node.values, strict=False)
            if key is not None
        }
    raise PlanError(f"line {getattr(node, 'lineno', '?')}: cannot evaluate {type(node).__name__}")


def next_step(plan: Plan, done: list[tuple[str, dict, dict]]) -> Step:
    """The next call the plan makes, given the tool calls already executed as (name, arguments, result).

    The i-th tool call site reached binds its variable to done[i]'s payload (``result`` when ok, else
    ``{"error": error}``); the call site reached at index len(done) is returned as a "tool" step with its
    arguments evaluated; a reply/ask reached is returned as a "terminal" step.
    """
    env: dict[str, Any] = {}
    index = 0

    def args_of(call: ast.Call) -> dict:
        return {kw.arg: copy.deepcopy(_evaluate(kw.value, env)) for kw in call.keywords}

    def block(stmts: list[ast.stmt]) -> None:
        nonlocal index
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                block(stmt.body if _evaluate(stmt.test, env) else stmt.orelse)
                continue
            call: ast.Call = stmt.value  # type: ignore[attr-defined]
            name = _call_name(call)
            if name in TERMINALS:
                if index != len(done):
                    raise PlanError(f"executed calls diverge from the plan at step {index}")
                raise _Found(Step("terminal", name, args_of(call)))
            if index == len(done):
                raise _Found(Step("tool", name, args_of(call)))
            if done[index][0] != name:
                raise PlanError(f"executed calls diverge from the plan at step {index}")
            if isinstance(stmt, ast.Assign):
                env[stmt.targets[0].id] = _payload(done[index][2])  # type: ignore[attr-defined]
            index += 1

    try:
        block(plan.tree.body)
    except _Found as found:
        return found.step
    raise PlanError("plan must end with reply(...) or ask(...)")


def run_plan(
    plan: Plan, call_tool: Callable[[str, dict], dict], max_steps: int = 12
) -> tuple[list[tuple[str, dict, dict]], Step]:
    """Follow the plan to its terminal, calling ``call_tool(name, arguments)`` for each tool step."""
    done: list[tuple[str, dict, dict]] = []
    while True:
        step = next_step(plan, done)
        if step.kind == "terminal":
            return done, step
        if len(done) >= max_steps:
            raise PlanError(f"plan exceeded {max_steps} tool calls")
        done.append((step.name, step.arguments, call_tool(step.name, step.arguments)))
