"""User code named as `module:attr` (a domain class, a verifier function): imported on demand, one-line errors."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from agentdistill.errors import UserError


def load_object(spec: str, what: str) -> Any:
    """The object `spec` names, importable from the working directory or an installed package."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise UserError(f"{what} must be given as module:attr, got {spec!r}")
    if os.getcwd() not in sys.path:  # a console script does not put the working directory on the path
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"{what} {spec!r} cannot be loaded: {exc}") from None
