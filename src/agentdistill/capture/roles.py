"""Which agent made a call: the `X-Agent-Role` header, else the role its system prompt was given when first seen.

A system prompt takes the first role of the user's mapping file whose pattern it matches; one that matches
none is named the first time it is seen, `agent-N` (the next free N), and keeps that name by its fingerprint
(saved in the run, so a restarted proxy names the same agents the same way). A header role is remembered the same way, so a
MAS that labels only some calls still gets every call of that prompt labelled.

Mapping file (YAML or JSON): `role: pattern` or `role: [pattern, ...]`, tried in file order; a pattern is a
substring of the system prompt, or a regular expression when written `re:<expression>`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json
from agentdistill.mas.prompts import prompt_id

Rule = tuple[str, str, "re.Pattern[str] | None"]  # (role, pattern as written, compiled regex or None)
MAX_ROLE_CHARS = 64


def load_mapping(path: str | Path | None) -> list[Rule]:
    """The user's role -> pattern rules, or a one-line UserError naming what is wrong."""
    if path is None:
        return []
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--roles file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # YAML is a superset of JSON
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise UserError(f"--roles file {path} is not valid YAML/JSON{at}") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"--roles file {path} must map role names to patterns, e.g. 'planner: \"You plan\"'")
    rules: list[Rule] = []
    for role, patterns in data.items():
        patterns = patterns if isinstance(patterns, list) else [patterns]
        if not isinstance(role, str) or not role.strip() or not patterns:
            raise UserError(f"--roles file {path}: role {role!r} needs a name and at least one pattern")
        for pattern in patterns:
            if not isinstance(pattern, str) or not pattern:
                raise UserError(f"--roles file {path}: role {role!r} has pattern {pattern!r}; patterns are "
                                "non-empty strings (a substring, or re:<regex>)")
            regex = None
            if pattern.startswith("re:"):
                try:
                    regex = re.compile(pattern[3:], re.S)
                except re.error as exc:
                    raise UserError(f"--roles file {path}: role {role!r} has a bad regex {pattern[3:]!r} ({exc})")\
                        from None
            rules.append((role.strip(), pattern, regex))
    return rules


def match_role(rules: list[Rule], prompt: str) -> str | None:
    for role, pattern, regex in rules:
        if (regex.search(prompt) if regex is not None else pattern in prompt):
            return role
    return None


def clean_role(value: str | None) -> str | None:
    """A header's role name, or None when it is absent or empty (then the prompt decides)."""
    if value is None:
        return None
    value = "".join(ch for ch in value.strip() if ch.isprintable())[:MAX_ROLE_CHARS]
    return value or None


class RoleTagger:
    """Names the agent of each call; `table_path` (JSON: fingerprint -> role) persists what was learned."""

    def __init__(self, rules: list[Rule], table_path: str | Path | None = None):
        self.rules = rules
        self.table_path = Path(table_path) if table_path is not None else None
        self.table: dict[str, str] = {}
        if self.table_path is not None and self.table_path.exists():
            try:
                self.table = {str(k): str(v) for k, v in json.loads(self.table_path.read_text()).items()}
            except (json.JSONDecodeError, AttributeError):
                raise UserError(f"malformed role table {self.table_path}: not a JSON object") from None

    def _next_agent(self) -> str:
        taken = set(self.table.values())
        n = 1
        while f"agent-{n}" in taken:
            n += 1
        return f"agent-{n}"

    def _learn(self, key: str, role: str) -> None:
        self.table[key] = role
        if self.table_path is not None:
            atomic_write_json(self.table_path, self.table)

    def tag(self, prompt: str, header: str | None = None) -> tuple[str, str]:
        """(role, what decided it: "header" | "mapping" | "fingerprint" | "new"). The mapping is consulted on
        every call, so editing the file between restarts renames those agents; the table covers the rest."""
        key = prompt_id(prompt)
        role = clean_role(header)
        if role is not None:
            if key not in self.table:
                self._learn(key, role)
            return role, "header"
        mapped = match_role(self.rules, prompt)
        if mapped is not None:
            if self.table.get(key) != mapped:
                self._learn(key, mapped)
            return mapped, "mapping"
        if key in self.table:
            return self.table[key], "fingerprint"
        self._learn(key, self._next_agent())
        return self.table[key], "new"
