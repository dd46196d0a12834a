"""The domain layer is pluggable: the registry finds domains by name, entry point or module:attr, checks them
against the `Domain` protocol, and no module outside domain/ names a domain's internals."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from agentdistill.data.cpt_domain import domain_documents
from agentdistill.domain.base import Domain, protocol_members
from agentdistill.domain.registry import BUILT_IN, ENTRY_POINT_GROUP, make_domain
from agentdistill.errors import UserError

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "agentdistill"
USER_DOMAIN = """
from agentdistill.domain.dealership import DealershipDomain


class DeskDomain(DealershipDomain):
    name = "desk"


class Incomplete:
    name = "broken"

    def __init__(self, **settings):
        pass
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_desk.py").write_text(textwrap.dedent(USER_DOMAIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_desk"


def test_built_in_domain_declares_every_protocol_member() -> None:
    members = protocol_members(Domain)
    assert {"new_world", "reference_plan", "cpt_documents", "hard_negatives_path", "mutators"} <= set(members)
    for name in BUILT_IN:
        domain = make_domain(name)
        assert [m for m in members if not hasattr(domain, m)] == []


def test_module_attr_and_entry_point_find_a_user_domain(user_module: str, tmp_path: Path) -> None:
    assert make_domain(f"{user_module}:DeskDomain", policy_version="v2").name == "desk"
    dist = tmp_path / "my_desk-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-desk\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ndesk = {user_module}:DeskDomain\n")
    assert make_domain("desk").name == "desk"


def test_bad_domains_are_one_line_user_errors(user_module: str) -> None:
    with pytest.raises(UserError, match="unknown domain 'nope'"):
        make_domain("nope")
    with pytest.raises(UserError, match="cannot be loaded"):
        make_domain(f"{user_module}:Missing")
    with pytest.raises(UserError, match=r"lacks what the Domain protocol .* declares: .*new_world"):
        make_domain(f"{user_module}:Incomplete")


def _names_of(domain: Domain) -> set[str]:
    """What only this domain would say: its name, tools, tables and the compound intent and slot names."""
    tables = {r["name"] for r in domain.new_world().query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    words = {i.name for i in domain.intents()} | {s for i in domain.intents() for s in i.slots} | tables
    return {domain.name, *domain.tool_names(), *(w for w in words if "_" in w)}


def test_no_module_outside_domain_names_a_domains_internals() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if "domain" not in p.relative_to(PACKAGE).parts]
    assert len(outside) > 30
    for name in BUILT_IN:
        domain = make_domain(name)
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(_names_of(domain)))) + r")\b")
        hits = [f"{p.relative_to(PACKAGE)}:{text[:m.start()].count(chr(10)) + 1}: {m.group(0)}"
                for p in outside for text in [p.read_text()] for m in pattern.finditer(text)]
        hits += [f"{p.relative_to(PACKAGE)} imports agentdistill.domain.{name}" for p in outside
                 if f"agentdistill.domain.{name}" in p.read_text()]
        assert hits == [], "domain internals outside domain/:\n" + "\n".join(hits)


def test_cpt_documents_are_the_domains_plus_policy_and_tools() -> None:
    domain = make_domain()
    own = domain.cpt_documents(0)
    docs = domain_documents(domain, 0)
    assert docs[:len(own)] == own and len(docs) > len(own)
    kinds = {d["kind"] for d in docs[len(own):]}
    assert kinds == {"policy", "tool"}
    assert all(d["context"].startswith(f"[{domain.name} knowledge base | ") for d in docs)
    assert len({d["key"] for d in docs}) == len(docs)
    assert {d["group"] for d in docs} == {"holdout_pool", "always_train"}
