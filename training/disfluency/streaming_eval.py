"""The streaming metrics of Chen et al. (NAACL 2022), and the no-wait baseline they are compared with.

Policies (all Sans-I/O: words in, labels out):

* :class:`LookaheadSession`: commit word ``i`` once ``k`` more words exist
  (fixed lookahead; the rule tagger uses it);
* :class:`NoWaitSession`: show the current labels of every word at once. It
  flickers, and breaks the "committed labels never change" contract, so it
  exists only as the evaluation baseline ("restart-incremental, no wait");
* the wait-head policy lives with the model (:class:`services.disfluency.bert.WaitSession`).

Metrics for one utterance fed word by word (:func:`simulate`), all in words:

* **streaming F1**: F1 of the remove class over each word's *first* emitted label;
* **edit overhead** (EO, Baumann et al. 2011): unnecessary edits / all edits,
  where an edit is a word's label appearing or changing between two outputs
  and the necessary edits are one per word;
* **time to detection** (TTD): for words gold-removed and finally removed, the
  words that arrived after it before it was first shown as removed;
* **average wait time** (AWT): words that arrived after a word before its first
  label was shown, averaged over all words. The final ``finish`` call happens
  when the last word arrives, so a word still pending then waits ``n - 1 - i``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.types import TaggedToken
from services.disfluency.base import StreamingTagger, Tagger


class NoWaitSession(StreamingTagger):
    """Evaluation baseline: every word's current label, re-decided on each prefix."""

    def __init__(self, tagger: Tagger) -> None:
        self._tagger = tagger

    def update(self, words: Sequence[str]) -> list[TaggedToken]:
        return self._tagger.tag(words)

    def finish(self, words: Sequence[str]) -> list[TaggedToken]:
        return self._tagger.tag(words)


@dataclass(slots=True)
class StreamTrace:
    """What a streaming session showed for one utterance."""

    first_label: list[bool]  # each word's first emitted remove decision
    first_time: list[int]  # words that had arrived when it was first shown (1-based)
    detect_time: list[int | None]  # first time shown as removed, if ever
    final_label: list[bool]
    edits: int


def simulate(session: StreamingTagger, words: Sequence[str]) -> StreamTrace:
    """Feed ``words`` one at a time, then ``finish``; record what was shown when."""
    n = len(words)
    first_label: list[bool | None] = [None] * n
    first_time = [n] * n
    detect: list[int | None] = [None] * n
    shown: list[bool | None] = [None] * n
    edits = 0
    outputs = [(t, session.update(words[:t])) for t in range(1, n + 1)]
    outputs.append((n, session.finish(words)))
    for t, labels in outputs:
        for i, tok in enumerate(labels):
            if tok.pending:  # not shown yet (an out-of-order policy committed a later word)
                continue
            remove = tok.remove
            if shown[i] != remove:
                edits += 1
            if first_label[i] is None:
                first_label[i] = remove
                first_time[i] = t
            if remove and detect[i] is None:
                detect[i] = t
            shown[i] = remove
        # A label that disappears (shorter output) is not counted as an edit:
        # committed policies never shrink on a growing prefix.
    return StreamTrace([bool(x) for x in first_label], first_time, detect, [bool(x) for x in shown], edits)


@dataclass(slots=True)
class StreamingScores:
    f1: float
    precision: float
    recall: float
    edit_overhead: float
    time_to_detection: float
    average_wait: float
    words: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "streaming_f1": round(self.f1, 4),
            "streaming_precision": round(self.precision, 4),
            "streaming_recall": round(self.recall, 4),
            "edit_overhead": round(self.edit_overhead, 4),
            "time_to_detection_words": round(self.time_to_detection, 3),
            "average_wait_words": round(self.average_wait, 3),
        }


def prf(gold: Sequence[Sequence[bool]], pred: Sequence[Sequence[bool]]) -> tuple[float, float, float]:
    """Precision, recall and F1 of the remove class over all words."""
    tp = fp = fn = 0
    for g_row, p_row in zip(gold, pred, strict=True):
        for g, p in zip(g_row, p_row, strict=True):
            tp += g and p
            fp += p and not g
            fn += g and not p
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def streaming_scores(
    make_session: Callable[[], StreamingTagger],
    utterances: Sequence[Sequence[str]],
    gold: Sequence[Sequence[bool]],
) -> StreamingScores:
    """Run every utterance through a fresh session and aggregate the metrics."""
    firsts, edits, words, waits, ttd = [], 0, 0, 0, []
    for ws, g in zip(utterances, gold, strict=True):
        trace = simulate(make_session(), ws)
        firsts.append(trace.first_label)
        edits += trace.edits
        words += len(ws)
        waits += sum(t - (i + 1) for i, t in enumerate(trace.first_time))
        for i, (gi, fi, di) in enumerate(zip(g, trace.final_label, trace.detect_time, strict=True)):
            if gi and fi and di is not None:
                ttd.append(di - (i + 1))
    p, r, f = prf(gold, firsts)
    return StreamingScores(
        f1=f,
        precision=p,
        recall=r,
        edit_overhead=(edits - words) / edits if edits else 0.0,
        time_to_detection=sum(ttd) / len(ttd) if ttd else 0.0,
        average_wait=waits / words if words else 0.0,
        words=words,
    )
