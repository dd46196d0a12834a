"""GPU scale-out: the pipeline as launch commands for existing engines (vLLM with tensor parallelism and FP8,
accelerate with FSDP), generated from one YAML; no engine or training loop of our own."""

from agentdistill.scale.config import ScaleConfig, load_scale_config
from agentdistill.scale.plan import Step, launch_plan, render_script

__all__ = ["ScaleConfig", "Step", "launch_plan", "load_scale_config", "render_script"]
