"""`agentdistill run --config FILE`: our own fields for a multi-GPU run; engine flags pass through as lists."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from agentdistill.config import build, load_yaml
from agentdistill.domain.registry import DEFAULT as DEFAULT_DOMAIN
from agentdistill.domain.registry import check_domain_name


class Serving(BaseModel):
    """`vllm serve` settings of one model; engine flags we do not name pass through `extra_args`."""

    served_model_name: str = "student"
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    tensor_parallel_size: int = Field(1, ge=1)
    quantization: str | None = None  # fp8 (W8A8 on Hopper/Ada), or a compressed-tensors checkpoint's own scheme
    max_num_seqs: int | None = Field(None, ge=1)
    max_model_len: int = Field(8192, ge=256)
    dtype: str = "bfloat16"
    tool_parser: str | None = "hermes"
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    extra_args: list[str] = Field(default_factory=list)  # any other `vllm serve` flags, passed as given
    startup_timeout_s: float = Field(1800.0, gt=0)
    url: str | None = None

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return self.url or f"http://{host}:{self.port}/v1"


class Endpoint(Serving):
    """The teacher: a model served with vLLM here (`model`), or an OpenAI-compatible endpoint already running
    (`url`, e.g. http://teacher:8000/v1), for which nothing is started."""

    model: str | None = None  # HF id or local dir, as `vllm serve` takes it
    served_model_name: str = "teacher"

    @model_validator(mode="after")
    def _one_source(self) -> Endpoint:
        if (self.model is None) == (self.url is None):
            raise ValueError("give exactly one of model (served here) or url (already running)")
        return self


class SimulateSettings(BaseModel):
    episodes: int = Field(7172, ge=1)
    workers: int = Field(64, ge=1)  # conversations in flight against the teacher endpoint
    long_share: float | None = Field(None, ge=0, le=1)


class TrainLaunch(BaseModel):
    """accelerate launch settings and the per-stage hyper-parameter YAMLs (StageConfig fields, TRL's names)."""

    accelerate_config: Path = Path("configs/accelerate/fsdp.yaml")
    num_processes: int = Field(8, ge=1)
    num_machines: int = Field(1, ge=1)
    expand_every: int = Field(4, ge=0)  # LLaMA-Pro block expansion (8B -> 10B at 4); 0 = none
    cpt: Path = Path("configs/train/paper-cpt.yaml")
    sft: Path = Path("configs/train/paper-sft.yaml")
    dpo: Path = Path("configs/train/paper-dpo.yaml")
    prompt_style: Literal["compact", "focused", "full"] = "focused"


class EvalSettings(BaseModel):
    heldout: int = Field(140, ge=1)
    stress: int = Field(120, ge=0)
    workers: int = Field(32, ge=1)
    constrain: str = "all"
    bench_concurrency: list[int] = Field(default_factory=lambda: [1, 16, 64])
    bench_conversations: int = Field(64, ge=1)


class ScaleConfig(BaseModel):
    run_dir: Path
    domain: str = DEFAULT_DOMAIN  # built-in, an entry point or module:attr (domain/registry.py)
    base: Path  # a local HF checkpoint of the student's base (e.g. `hf download ... --local-dir`)
    teacher: Endpoint
    student: Serving = Field(default_factory=lambda: Serving(port=8001, quantization="fp8"))  # serves models/dpo
    simulate: SimulateSettings = Field(default_factory=SimulateSettings)
    train: TrainLaunch = Field(default_factory=TrainLaunch)
    eval: EvalSettings = Field(default_factory=EvalSettings)

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, v: str) -> str:
        return check_domain_name(v)

    @model_validator(mode="after")
    def _student_served_here(self) -> ScaleConfig:
        if self.student.url is not None:
            raise ValueError("student.url: the trained student is served here; give its serving flags, not a url")
        return self


def load_scale_config(path: Path) -> ScaleConfig:
    """Read and validate a scale-out YAML; a bad file is one line naming the field (config.py's loaders)."""
    return build(ScaleConfig, load_yaml(path))
