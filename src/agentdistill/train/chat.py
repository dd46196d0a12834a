"""The chat format every student model uses: ChatML turns, hermes-style tool calls, generation markers.

- `{% generation %}` marks the assistant tokens, so TRL's `assistant_only_loss` trains on exactly them.
- Tool calls render as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, the format vLLM's
  `hermes` tool parser reads back into OpenAI `tool_calls` (serve with
  `--enable-auto-tool-choice --tool-call-parser hermes`).
- The `tools` list is not rendered: our role prompts already carry the tool schemas in the system message.
- `arguments` may arrive as a JSON string (OpenAI wire format, what our traces hold) or as a dict (what some
  servers pass to templates); both render to the same text.
"""

from __future__ import annotations

BOS = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
PAD = "<|pad|>"
TOOL_CALL_START = "<tool_call>"
TOOL_CALL_END = "</tool_call>"
SPECIAL_TOKENS = [BOS, IM_START, IM_END, PAD, TOOL_CALL_START, TOOL_CALL_END]

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}"
    "{%- if message.get('tool_calls') -%}"
    "{%- for tc in message['tool_calls'] -%}"
    "{%- set fn = tc['function'] if tc.get('function') else tc -%}"
    "{{ '<tool_call>{\"name\": ' ~ (fn['name'] | tojson) ~ ', \"arguments\": ' }}"
    "{%- if fn['arguments'] is string -%}{{ fn['arguments'] }}{%- else -%}{{ fn['arguments'] | tojson }}{%- endif -%}"
    "{{ '}</tool_call>' }}"
    "{%- endfor -%}"
    "{%- else -%}{{ message['content'] if message['content'] is string else '' }}{%- endif -%}"
    "{{ '<|im_end|>' }}"
    "{% endgeneration %}"
    "{{ '\\n' }}"
    "{%- elif message['role'] == 'tool' -%}"
    "{{ '<|im_start|>tool\\n' ~ message['content'] ~ '<|im_end|>\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' ~ message['role'] ~ '\\n' ~ message['content'] ~ '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
