"""Open-ended answers (ScanQA, SQA3D): exact match and the caption metrics ScanQA reports, BLEU-4,
ROUGE-L, METEOR and CIDEr, computed by `pycocoevalcap` (the COCO caption evaluation code the
ScanQA and Spatial-MLLM authors' scripts use), per question type and over all open-ended questions.

    open_ended_metrics(rows) -> {"by_type": {"scanqa": {"questions": 9, "exact_match": 22.2,
        "bleu_4": 10.3, "rouge_l": 31.0, "meteor": 12.9, "cider": 55.1}, ...}, "all": {...},
        "meteor_note": None | "METEOR needs Java (not found on PATH): not computed"}

Every value is x100 (percent for exact match, the scale the papers print for the others). The
answers are lower-cased and their punctuation dropped before scoring, then split on spaces (COCO's
PTB tokenizer needs Java, so it is not used). Exact match is `pipelines.rewards.exact_match` (also
articles dropped) against any accepted answer. METEOR runs Java (pycocoevalcap's meteor-1.5.jar);
without Java it is None and `meteor_note` says why, and the other metrics are still computed.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict

from pipelines.rewards import answer_span, exact_match

_PUNCTUATION = re.compile(r"[^\w\s]")
METRICS = ("exact_match", "bleu_4", "rouge_l", "meteor", "cider")


def caption_tokens(text: str) -> str:
    """Lower case, punctuation dropped, single spaces (what the caption scorers split on)."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def java_missing() -> str | None:
    """Why METEOR cannot run here, or None when it can."""
    return None if shutil.which("java") else "METEOR needs Java (no `java` on PATH): not computed"


def caption_scores(references: dict[str, list[str]], predictions: dict[str, str], meteor_scorer=None) -> dict:
    """BLEU-4, ROUGE-L, METEOR (None without `meteor_scorer`) and CIDEr, x100, of `predictions`
    (id -> one answer) against `references` (id -> accepted answers), all tokenised by
    `caption_tokens`."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {k: [caption_tokens(a) or "_" for a in refs] for k, refs in references.items()}
    res = {k: [caption_tokens(predictions[k]) or "_"] for k in references}  # "_": an empty answer scores 0
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    meteor = None if meteor_scorer is None else meteor_scorer.compute_score(gts, res)[0]
    return {"bleu_4": 100 * float(bleu[3]), "rouge_l": 100 * float(rouge), "cider": 100 * float(cider),
            "meteor": None if meteor is None else 100 * float(meteor)}  # fmt: skip


def open_ended_metrics(rows: list[dict], *, answer_tag: bool = False, meteor: bool = True) -> dict | None:
    """Exact match and caption metrics of the open-ended rows (`problem_type` open_ended; each with
    `id`, `question_type`, `prediction` (None when its video failed: an empty answer), `answers`);
    None when there are none. `answer_tag`: read the <answer> span first (think format).
    `meteor=False` leaves METEOR out (its Java process takes seconds to start: one per call)."""
    chosen = [r for r in rows if r["problem_type"] == "open_ended"]
    if not chosen:
        return None
    note = java_missing() if meteor else "METEOR not asked for"
    scorer = None
    if note is None:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()  # one java subprocess for every group; it ends when the scorer is collected

    def said(row: dict) -> str:
        text = row.get("prediction") or ""
        return answer_span(text).strip() if answer_tag else text.strip()

    def scores(group: list[dict]) -> dict:
        refs = {str(r["id"]): list(r["answers"]) for r in group}
        preds = {str(r["id"]): said(r) for r in group}
        em = sum(exact_match(preds[str(r["id"])], r["answers"]) for r in group) / len(group)
        return {"questions": len(group), "exact_match": 100 * em, **caption_scores(refs, preds, scorer)}

    by_type: dict[str, list[dict]] = defaultdict(list)
    for row in chosen:
        by_type[row["question_type"]].append(row)
    return {
        "by_type": {qtype: scores(group) for qtype, group in sorted(by_type.items())},
        "all": scores(chosen),
        "meteor_note": note,
    }
