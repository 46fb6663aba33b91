"""The Batch tab's work: every row of an uploaded file through the batched forward, bad rows isolated."""
from __future__ import annotations

import json

from .experiment import SCOPE_VERDICT
from .inputs import CUT_NOTE, InputError, clean_text
from .serving import BATCH_SIZE, Failure, forward


def predict_rows(spec: str, texts: list[str], threshold: float, progress=None) -> list[dict]:
    """Run the pipeline over rows in batches; a bad row gets an error note instead of failing the file."""
    rows = []
    for start in range(0, len(texts), BATCH_SIZE):
        if progress is not None:
            progress(start / len(texts), desc=f"rows {start + 1}–{min(start + BATCH_SIZE, len(texts))} of {len(texts)}")
        chunk = []
        for k, t in enumerate(texts[start : start + BATCH_SIZE], start + 1):
            row = {"row": k, "text": t if isinstance(t, str) else json.dumps(t), "note": ""}
            try:
                row["text"], notes = clean_text(t)
                row["note"] = " ".join(notes)
                chunk.append(row)
            except InputError:
                row["note"] = "error: empty text"
            rows.append(row)
        outcomes = forward(spec, [([r["text"]], None) for r in chunk]) if chunk else []  # one request per row
        for r, out in zip(chunk, outcomes):
            if isinstance(out, Failure):  # isolated: the other rows keep their predictions
                r["note"] = f"error: {out.message}"
                continue
            p = out[0]
            conf = (p.p_final or p.p_rectified)[p.labels.index(p.answer)]
            flags = []
            if p.step_prob is not None and p.step_prob < threshold:
                flags.append("low step prob")
            if conf < threshold:
                flags.append("low answer confidence")
            if p.out_of_scope:  # the checkpoint's fitted out-of-scope signal flags it: said in words in the note
                flags.append("out of scope")
                r["note"] = "; ".join(filter(None, [SCOPE_VERDICT, r["note"]]))
            if p.truncated:
                r["note"] = "; ".join(filter(None, [r["note"], CUT_NOTE]))
            r.update(step=p.step_words, step_prob=p.step_prob, answer=p.answer, confidence=conf, flag="⚠ " + ", ".join(flags) if flags else "")
    if progress is not None:
        progress(1.0, desc="done")
    return rows
