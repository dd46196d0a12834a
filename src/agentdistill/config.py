"""Pydantic configs of the stages; YAML in, YAML out. A run directory keeps its resolved config.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from agentdistill.domain.registry import DEFAULT as DEFAULT_DOMAIN
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_text


class DomainConfig(BaseModel):
    name: str = DEFAULT_DOMAIN  # built-in, an entry point, or module:attr (domain/registry.py)
    world_seed: int = Field(0, ge=0)
    today: str = "2026-12-01"
    policy_version: str = "v1"

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from agentdistill.domain.registry import check_domain_name

        return check_domain_name(v)


class MASSettings(BaseModel):
    halstead_metric: Literal["volume", "difficulty", "effort"] = "volume"
    halstead_threshold: float = Field(150.0, ge=0)
    max_replans: int = Field(2, ge=0, le=10)
    prompt_style: Literal["full", "compact", "focused"] = "full"  # a fine-tuned student's style (mas/prompts.py)
    # roles decoded under a vLLM structured_outputs constraint built from the domain (mas/constraints.py)
    constrained_roles: list[str] = Field(default_factory=list)

    @field_validator("constrained_roles")
    @classmethod
    def _roles(cls, v: list[str]) -> list[str]:
        from agentdistill.mas.constraints import check_constrained_roles

        return list(check_constrained_roles(v))


class SimulateConfig(BaseModel):
    """`agentdistill simulate`: who plays the teacher and the user, how many conversations, where to."""

    episodes: int = Field(200, ge=1)
    workers: int = Field(1, ge=1, le=64)
    seed: int = Field(0, ge=0)
    # heldout_phrasing: held-out conversations worded only with templates "train" never uses;
    # injection: adversarial customers
    suite: Literal["train", "heldout", "heldout_phrasing", "stress", "injection"] = "train"
    scenario_types: list[str] = Field(default_factory=list)  # empty = every type
    # share of long conversations (Domain.long_scenario) in the train and held-out mixes; with scenario_types
    # set, only those types are played
    long_share: float = Field(0.55, ge=0.0, le=1.0)
    teacher: str = "scripted"  # "scripted" or an OpenAI-compatible URL
    teacher_model: str | None = None
    user_sim: str = "scripted"  # "scripted" or a URL
    user_sim_model: str | None = None
    judge: str = "scripted"  # where y* comes from: "scripted" reference or a URL
    judge_model: str | None = None
    trials: int = Field(1, ge=1, le=32)  # k trials per scenario, for pass^k
    temperature: float = Field(0.0, ge=0.0, le=2.0)  # sampling of an endpoint teacher/student
    max_tokens: int = Field(384, ge=16)  # per agent call, for an endpoint (plans are ~100 tokens here)
    error_rate: float = Field(0.03, ge=0.0, le=1.0)
    error_mix: dict[str, float] = Field(default_factory=dict)
    domain: DomainConfig = Field(default_factory=DomainConfig)
    mas: MASSettings = Field(default_factory=MASSettings)
    fail_fast: bool = False  # re-raise an episode's unexpected exception instead of recording it (debugging)

    @field_validator("teacher", "user_sim", "judge")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        if v != "scripted" and not v.startswith(("http://", "https://")):
            raise ValueError(f"must be 'scripted' or an http(s):// URL, got {v!r}")
        return v

    def identity(self) -> dict[str, Any]:
        """Settings that must not change when a run is resumed (episode count and workers may)."""
        return self.model_dump(exclude={"episodes", "workers", "fail_fast"})


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"config file {path} not found") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping")
    return data


def build(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate, turning pydantic's report into one line that names the bad value and what is allowed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        raise UserError(f"invalid {where}: {err['msg']} (got {err.get('input')!r})") from None


def save_yaml(path: str | Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
