"""Public text for replay during CPT: chitchat-dataset (MIT) conversations, one document each.

Mixing general conversation back in keeps the student's general language from drifting while it absorbs
the domain (the paper's public-data replay). Read straight from the JSON file the package ships.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError

STOPWORDS = frozenset(
    "about after again also always because been before being could didn doing does dont from going good have "
    "just know like make more much only really should some that thats their them then there they thing things "
    "think this what when where which while with would your yeah well were will into than very pretty sure "
    "right okay want even still back time been here cool nice lol haha yes great".split())


MIN_CHARS = 100


@cache
def load_conversations() -> list[tuple[str, str]]:
    """(conversation id, dialogue text) sorted by id; speakers alternate as A/B.

    Exact duplicate texts and near-empty conversations ("A: Hello?") are dropped, so a held-out
    perplexity text can never also sit in the training mix.
    """
    try:
        import chitchat_dataset
    except ImportError:
        raise UserError("chitchat-dataset is not installed (pip install chitchat-dataset)") from None
    path = Path(chitchat_dataset.__file__).parent / "dataset.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    out, seen = [], set()
    for cid in sorted(data):
        lines = []
        for i, group in enumerate(data[cid].get("messages") or []):
            said = " ".join(str(m.get("text", "")).strip() for m in group if str(m.get("text", "")).strip())
            if said:
                lines.append(f"{'AB'[i % 2]}: {said}")
        text = "\n".join(lines)
        if len(lines) >= 2 and len(text) >= MIN_CHARS and text not in seen:
            seen.add(text)
            out.append((cid, text))
    return out


def topic_words(text: str, n: int = 3) -> list[str]:
    words = [w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in STOPWORDS]
    return [w for w, _ in sorted(Counter(words).items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def public_doc(cid: str, text: str) -> dict[str, Any]:
    topics = ", ".join(topic_words(text)) or "small talk"
    return {"key": f"chitchat:{cid}", "kind": "chitchat", "context": f"[public conversation | {topics}]", "text": text}
