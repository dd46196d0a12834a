"""vLLM's OpenAI server started and stopped by `agentdistill.serve`: a real vLLM on 127.0.0.1 with a tiny random Llama.

The tiny checkpoint is built here (byte-level BPE + LlamaForCausalLM) so these tests depend on no other new module.
vLLM CPU's attention supports head sizes >= 32 only, hence head_dim=32 with hidden 64 and 4 heads.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from cli_runner import run_cli

from agentdistill.errors import UserError
from agentdistill.serve.vllm_server import ServeConfig, VLLMServer, last_error_line, parse_prometheus
from agentdistill.train.chat import CHAT_TEMPLATE
from agentdistill.types import Completion

TOOLS = [{"type": "function", "function": {
    "name": "get_vehicle", "description": "Look up one vehicle by stock number.",
    "parameters": {"type": "object", "properties": {"stock_no": {"type": "string"}}, "required": ["stock_no"]}}}]
TOOL_TEXT = '<tool_call>{"name": "get_vehicle", "arguments": {"stock_no": "A1001"}}</tool_call>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def corpus() -> list[str]:
    words = ("vehicle stock number price customer dealership financing trade appraisal warranty service appointment "
             "the a to of and is for with you your we can i would like please thanks sure let me check").split()
    lines = [TOOL_TEXT, "hello, how can I help you today?", '{"name": "get_vehicle", "arguments": {}}']
    lines += [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12)) + f" A{1000 + i}" for i in range(400)]
    return lines


def build_tiny_model(out: Path) -> Path:
    """A ~100k-parameter Llama with our ChatML template and `<tool_call>` tokens, saved as bf16 safetensors."""
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in ("<tool_call>", "</tool_call>")])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                   pad_token="<|pad|>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=32, intermediate_size=128, max_position_embeddings=2048,
                      bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "student")


@pytest.fixture()
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def assert_one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    return msg


# ------------------------------------------------------------------------------------------- live vLLM
def test_serves_tool_chat_and_metrics_then_stops(tiny_model: Path, tmp_path: Path):
    port = free_port()
    cfg = ServeConfig(model=tiny_model, port=port, enforce_eager=True, max_model_len=2048,
                      log_path=tmp_path / "vllm.log", startup_timeout_s=180)
    server = VLLMServer(cfg)
    argv = server.command()
    assert argv[argv.index("--model") + 1] == str(tiny_model)
    for flag in ("--enable-auto-tool-choice", "--enable-prefix-caching", "--enforce-eager"):
        assert flag in argv
    assert argv[argv.index("--tool-call-parser") + 1] == "hermes"
    with server:
        assert server.url == f"http://127.0.0.1:{port}"
        pgid = server.proc.pid
        models = httpx.get(f"{server.url}/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["student"]
        before = server.metrics()
        backend = server.backend(timeout_s=60, max_retries=0)
        done = backend.complete([{"role": "user", "content": "Is A1001 available?"}], tools=TOOLS, max_tokens=16)
        assert isinstance(done, Completion)
        assert done.model == "student" and 0 < done.tokens_out <= 16 and done.tokens_in > 0
        after = server.metrics()
        assert after["vllm:prompt_tokens_total"] >= before.get("vllm:prompt_tokens_total", 0) + done.tokens_in
        assert after["vllm:generation_tokens_total"] >= done.tokens_out > 0
        assert "vllm:prefix_cache_queries_total" in after and "vllm:num_requests_running" in after
        backend.close()
    assert server.proc is None and not server.running
    assert not group_alive(pgid), "vLLM processes outlived stop()"
    assert port_is_free(port)
    server.stop()  # idempotent


def test_corrupt_weights_fail_start_with_one_line_naming_the_log(tiny_model: Path, tmp_path: Path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tiny_model.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "model.safetensors").write_bytes(b"\x00garbage, not a safetensors file" * 4)
    log = tmp_path / "bad.log"
    server = VLLMServer(ServeConfig(model=bad, port=free_port(), enforce_eager=True, max_model_len=2048,
                                    log_path=log, startup_timeout_s=150))
    t0 = time.monotonic()
    with pytest.raises(UserError) as exc:
        server.start()
    assert time.monotonic() - t0 < 150
    msg = assert_one_line(exc, "vLLM exited with code", f"(log: {log})")
    assert "Error" in msg, msg  # the exception line from the log, not only "see above"
    assert not server.running


# ------------------------------------------------------------------------------- fast checks, no vLLM
def test_missing_or_incomplete_checkpoints_are_one_line_errors(tiny_model: Path, tmp_path: Path):
    def start(path: Path) -> pytest.ExceptionInfo:
        with pytest.raises(UserError) as exc:
            VLLMServer(ServeConfig(model=path, port=free_port(), log_path=tmp_path / "x.log")).start()
        return exc

    assert_one_line(start(tmp_path / "nope"), "does not exist")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line(start(empty), "no config.json")
    (empty / "config.json").write_text("{not json")
    assert_one_line(start(empty), "config.json is corrupt")
    (empty / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert_one_line(start(empty), "no weights")
    (empty / "model.safetensors").write_bytes((tiny_model / "model.safetensors").read_bytes())
    assert_one_line(start(empty), "no tokenizer")


def test_busy_port_is_one_line_error(tiny_model: Path, busy_port: int, tmp_path: Path):
    server = VLLMServer(ServeConfig(model=tiny_model, port=busy_port, log_path=tmp_path / "x.log"))
    with pytest.raises(UserError) as exc:
        server.start()
    assert_one_line(exc, f"port {busy_port} on 127.0.0.1 is already in use")
    assert server.proc is None


def test_command_carries_optional_flags(tiny_model: Path):
    spec = {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}
    cfg = ServeConfig(model=tiny_model, max_num_seqs=32, speculative_config=spec, quantization="compressed-tensors",
                      chat_template="t.jinja", enable_prefix_caching=False, tool_parser=None, extra_args=["--seed", 1],
                      env={"VLLM_CPU_KVCACHE_SPACE": "3"})
    server = VLLMServer(cfg)
    argv = server.command()
    assert json.loads(argv[argv.index("--speculative-config") + 1]) == spec
    assert argv[argv.index("--max-num-seqs") + 1] == "32"
    assert argv[argv.index("--quantization") + 1] == "compressed-tensors"
    assert argv[argv.index("--chat-template") + 1] == "t.jinja"
    assert "--no-enable-prefix-caching" in argv and "--enable-auto-tool-choice" not in argv
    assert argv[-2:] == ["--seed", "1"]
    assert server.environment()["VLLM_CPU_KVCACHE_SPACE"] == "3"


def test_dtype_follows_the_hardware_and_dummy_weights_need_no_weight_files(tiny_model: Path, tmp_path: Path,
                                                                           monkeypatch):
    from agentdistill import hardware
    from agentdistill.serve.vllm_server import check_checkpoint

    monkeypatch.setattr(hardware, "native_bf16", lambda: False)
    argv = VLLMServer(ServeConfig(model=tiny_model)).command()
    assert argv[argv.index("--dtype") + 1] == "float32"  # bf16 is emulated without bf16 units
    monkeypatch.setattr(hardware, "native_bf16", lambda: True)
    argv = VLLMServer(ServeConfig(model=tiny_model, load_format="dummy")).command()
    assert argv[argv.index("--dtype") + 1] == "auto" and argv[argv.index("--load-format") + 1] == "dummy"
    argv = VLLMServer(ServeConfig(model=tiny_model, dtype="bfloat16")).command()
    assert argv[argv.index("--dtype") + 1] == "bfloat16"
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (config_only / name).write_text((tiny_model / name).read_text())
    with pytest.raises(UserError, match="no weights"):
        check_checkpoint(config_only)
    assert check_checkpoint(config_only, weights=False) == config_only


def test_parse_prometheus_sums_label_sets():
    text = ('# HELP vllm:x x\n# TYPE vllm:x counter\nvllm:prompt_tokens_total{engine="0",model_name="s"} 12.0\n'
            'vllm:prompt_tokens_total{engine="1",model_name="a b"} 3\nvllm:num_requests_running 1.0\n'
            'process_cpu_seconds_total 4.5 1700000000\n')
    assert parse_prometheus(text) == {"vllm:prompt_tokens_total": 15.0, "vllm:num_requests_running": 1.0,
                                      "process_cpu_seconds_total": 4.5}


def test_last_error_line_prefers_the_cause_over_wrappers():
    log = ("(EngineCore pid=5) ERROR 11-25 08:28:32 [core.py:1] Traceback (most recent call last):\n"
           "(EngineCore pid=5) ERROR 11-25 08:28:32 [core.py:1] safetensors_rust.SafetensorError: "
           "Error while deserializing header: header too large\n"
           "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}\n")
    assert last_error_line(log) == "safetensors_rust.SafetensorError: Error while deserializing header: header too large"
    assert last_error_line("INFO all fine\n") == ""


def test_hermes_parser_reads_our_tool_call_format(tiny_model: Path):
    """The text our chat template renders comes back from vLLM's hermes parser as OpenAI tool_calls."""
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.tokenizers import get_tokenizer
    from vllm.tool_parsers import ToolParserManager

    tokenizer = get_tokenizer(str(tiny_model))
    assert len(tokenizer.encode("<tool_call>", add_special_tokens=False)) == 1  # one token, not special
    parser = ToolParserManager.get_tool_parser("hermes")(tokenizer)
    request = parser.adjust_request(ChatCompletionRequest(model="student", tools=TOOLS,
                                                          messages=[{"role": "user", "content": "A1001?"}]))
    assert request.skip_special_tokens is False  # the parser sees <tool_call> even if a tokenizer marks it special
    ids = tokenizer.encode(TOOL_TEXT, add_special_tokens=False)
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded == TOOL_TEXT  # non-special added tokens survive the default decode too
    info = parser.extract_tool_calls(decoded, request)
    assert info.tools_called and info.content is None
    (call,) = info.tool_calls
    assert call.function.name == "get_vehicle" and json.loads(call.function.arguments) == {"stock_no": "A1001"}


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_serve_missing_checkpoint_exits_2_one_line():
    res = run_cli("serve", "/nonexistent/student", timeout=60)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "does not exist" in lines[0], res.stderr


def test_cli_serve_busy_port_exits_2(tiny_model: Path, busy_port: int):
    res = run_cli("serve", tiny_model, "--port", str(busy_port), timeout=60)
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"port {busy_port}" in lines[0] and "Traceback" not in res.stderr, res.stderr


@pytest.mark.skipif(os.environ.get("AGENTDISTILL_SLOW_TESTS") != "1",
                    reason="a third vLLM start-up (~60 s) would push this file past 4 min; set AGENTDISTILL_SLOW_TESTS=1")
def test_cli_serve_answers_then_stops_on_ctrl_c(tiny_model: Path):
    port = free_port()
    proc = subprocess.Popen(["agentdistill", "serve", str(tiny_model), "--port", str(port), "--enforce-eager",
                             "--max-model-len", "2048", "--timeout", "180"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any(ln.startswith("curl ") for ln in lines):
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read() if proc.poll() is not None else "")
            lines.append(line)
        assert f"http://127.0.0.1:{port}/v1" in "".join(lines)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"][0]["id"] == "student"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert port_is_free(port)
