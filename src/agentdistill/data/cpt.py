"""The CPT mix: domain documents plus public replay at a target share of characters, and perplexity sets.

A seeded share of the domain's documents (catalogue entries, FAQs) never enters training and forms
`ppl/domain`, so domain perplexity measures knowledge transfer to unseen entries rather than memorisation;
`ppl/public` is a set of chitchat conversations kept out of the mix, to measure forgetting of general language.
"""

from __future__ import annotations

import random
from typing import Any

from agentdistill.data.cpt_domain import domain_documents
from agentdistill.data.cpt_public import load_conversations, public_doc
from agentdistill.data.splits import hash_unit

PPL_DOMAIN_FRACTION = 0.1
PPL_PUBLIC_DOCS = 300


def _record(doc: dict[str, Any], source: str) -> dict[str, Any]:
    return {"context": doc["context"], "text": doc["text"], "source": source, "kind": doc["kind"]}


def _fill_public(domain_chars: int, pool: list[tuple[str, str]], ratio: float) -> list[dict[str, Any]]:
    """Take public conversations in order until they make up `ratio` of the characters."""
    if ratio <= 0:
        return []
    target = ratio / (1 - ratio) * domain_chars
    out, chars = [], 0
    for cid, text in pool:
        if chars >= target:
            break
        # skip a conversation that would overshoot by more than it undershoots
        if chars + len(text) - target > target - chars and out:
            continue
        out.append(public_doc(cid, text))
        chars += len(text)
    return out


def build_cpt(domain: Any, public_ratio: float, val_fraction: float, seed: int) -> tuple[dict[str, list], dict[str, Any]]:
    """({"train", "val", "ppl_domain", "ppl_public"} -> records, stats). `domain` None (a captured run): no
    domain documents, hence no public replay either (it is sized against them); ppl_public is still drawn."""
    docs = domain_documents(domain, seed) if domain is not None else []
    ppl_domain = [d for d in docs if d["group"] == "holdout_pool" and hash_unit("ppl:" + d["key"], seed)
                  < PPL_DOMAIN_FRACTION]
    held = {d["key"] for d in ppl_domain}
    domain_split: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    for d in docs:
        if d["key"] in held:
            continue
        val = d["group"] == "holdout_pool" and hash_unit("cpt:" + d["key"], seed) < val_fraction
        domain_split["val" if val else "train"].append(d)

    conversations = load_conversations()
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    n_ppl = min(PPL_PUBLIC_DOCS, len(order) // 10)
    ppl_public = [conversations[i][1] for i in order[:n_ppl]]
    pool = [conversations[i] for i in order[n_ppl:]]
    val_pool = [c for c in pool if hash_unit("cpt:" + c[0], seed) < max(val_fraction, 0.05)]
    train_pool = [c for c in pool if hash_unit("cpt:" + c[0], seed) >= max(val_fraction, 0.05)]

    out: dict[str, list[dict[str, Any]]] = {}
    stats: dict[str, Any] = {"public_ratio_target": public_ratio,
                             **({} if domain is not None else {"note": "captured run: no domain documents"})}
    for split, pub_pool in (("train", train_pool), ("val", val_pool)):
        dom = domain_split[split]
        dom_chars = sum(len(d["text"]) for d in dom)
        pub = _fill_public(dom_chars, pub_pool, public_ratio)
        pub_chars = sum(len(d["text"]) for d in pub)
        records = [_record(d, "domain") for d in dom] + [_record(d, "public") for d in pub]
        random.Random(f"{seed}:{split}").shuffle(records)
        out[split] = records
        total = dom_chars + pub_chars
        stats[split] = {"records": len(records), "domain_docs": len(dom), "public_docs": len(pub),
                        "chars": {"domain": dom_chars, "public": pub_chars},
                        "public_ratio": round(pub_chars / total, 4) if total else 0.0}
    out["ppl_domain"] = [{"text": d["text"]} for d in ppl_domain]
    out["ppl_public"] = [{"text": t} for t in ppl_public]
    stats["by_kind"] = {k: sum(1 for r in out["train"] + out["val"] if r["kind"] == k)
                        for k in sorted({r["kind"] for r in out["train"] + out["val"]})}
    stats["ppl"] = {"domain": len(out["ppl_domain"]), "public": len(out["ppl_public"])}
    return out, stats
