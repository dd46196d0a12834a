"""Where domains meet: callers outside domain/ get a domain by name here and never import one.

A name is a built-in domain, an installed entry point in the `agentdistill.domains` group, or `module:attr`
(a user's own class, importable from the working directory or an installed package).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from agentdistill.domain.base import Domain, protocol_members
from agentdistill.errors import UserError
from agentdistill.plugins import load_object

BUILT_IN = {"dealership": "agentdistill.domain.dealership:DealershipDomain",
            "cardservices": "agentdistill.domain.cardservices:CardServicesDomain"}
ENTRY_POINT_GROUP = "agentdistill.domains"
DEFAULT = "dealership"


def _target(name: str) -> str | None:
    if name in BUILT_IN:
        return BUILT_IN[name]
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep.value
    return name if ":" in name else None


def _unknown(name: str) -> str:
    return (f"unknown domain {name!r}; built in: {', '.join(BUILT_IN)}; or an installed '{ENTRY_POINT_GROUP}' "
            f"entry point, or module:attr")


def check_domain_name(name: str) -> str:
    """The name itself if it can name a domain (the module is imported only when the domain is made)."""
    if _target(name) is None:
        raise ValueError(_unknown(name))
    return name


def make_domain(name: str = DEFAULT, **settings: Any) -> Domain:
    """An instance of the named domain, built with its own settings (world seed, date, policy version...)."""
    target = _target(name)
    if target is None:
        raise UserError(_unknown(name))
    cls = load_object(target, f"domain {name!r} from")
    domain = cls(**settings)
    missing = [m for m in protocol_members(Domain) if not hasattr(domain, m)]
    if missing:
        raise UserError(f"domain {name!r} ({target}) lacks what the Domain protocol (domain/base.py) declares: "
                        f"{', '.join(missing)}")
    return domain
