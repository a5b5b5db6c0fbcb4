"""One Whisper decode of a short audio window, with the loop guards.

Whisper is trained on 30 s windows. Decoding a window cut to the utterance is
~6x cheaper here but makes the decoder loop (repeat its transcript until the
length limit). Three guards keep the cheap window safe; each was measured on
real recordings (`quickturn bench asr`, docs/experiments/asr.md):

1. *Minimum window*: audio is zero-padded to ``min_window_s`` so the decoder
   sees trailing silence and emits end-of-text.
2. *Duration cap*: at most ``tokens_per_second * speech_s + floor`` tokens.
3. *Rate-checked loop cut*: a block of words repeated at the end is cut only
   when the transcript speaks faster than a person can (words per second of
   audio above ``max_words_per_s``). Real repeats such as "five five" keep a
   plausible rate and survive, unlike a naive n-gram cut.
4. *Timestamp-checked cut* (``timestamp_cut``): the final short-window decode
   is made with Whisper's timestamp tokens, and every segment that starts after
   the real audio ended (plus ``TIMESTAMP_MARGIN_S``) is dropped: it was
   decoded from the zero padding.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
import tokenizers
from faster_whisper.feature_extractor import FeatureExtractor

from core.text import normalize_transcript
from core.types import Hypothesis

SAMPLE_RATE_HZ = 16000
_PUNCT = re.compile(r"[^\w\s']")


MAX_WORDS_PER_S = 4.5
"""Fastest plausible speaking rate: above it, repeated words are the decoder's, not the speaker's."""


def _faster_than_speech(n_words: int, speech_s: float, max_words_per_s: float) -> bool:
    """True when ``n_words`` over ``speech_s`` seconds of audio is above ``max_words_per_s``."""
    return n_words / max(speech_s, 0.5) > max_words_per_s


def looks_looped(words: list[str], speech_s: float | None = None, max_words_per_s: float = MAX_WORDS_PER_S) -> bool:
    """True when the transcript ends with a block repeated back to back, restarts, or repeats a 3-word phrase.

    All three are the signature of Whisper looping on a short window; all also
    occur (rarely) in real speech, which is why a suspicious result is
    re-decoded on the long window rather than cut. A repeated 3-word phrase is
    ordinary in longer requests ("a little bit of soy milk and a little bit of
    brown sugar"), so with ``speech_s`` given it counts only when the words come
    faster than ``max_words_per_s``: a loop invents words, a speaker takes time.
    """
    n = len(words)
    if any(words[n - size :] == words[n - 2 * size : n - size] for size in range(1, n // 2 + 1)):
        return True
    # The transcript restarts: its last words are its first words ("what time is it what").
    if n >= 3 and any(words[n - size :] == words[:size] for size in range(1, n // 2 + 1)):
        return True
    if speech_s is not None and not _faster_than_speech(n, speech_s, max_words_per_s):
        return False
    trigrams = [tuple(words[i : i + 3]) for i in range(n - 2)]
    return len(set(trigrams)) < len(trigrams)


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def cut_restart(raw_text: str) -> list[str] | None:
    """The words without a truncated restart, or None when the raw text does not end in one.

    The commonest short-window loop here is a *restart*: Whisper finishes the
    sentence, then begins it again until the token cap stops it ("Set a timer
    for five minutes. Set a"). The restart follows a sentence end and is a
    strict prefix of the first sentence, so it can be cut without the 30 s
    re-decode; a full repeat ("Play some jazz. Play some jazz") or a repeat
    without a sentence end ("5 5 5 5") is left to the long-window decode,
    because either may be real speech.
    """
    sentences = [s for s in _SENTENCE_END.split(raw_text.strip()) if s]
    if len(sentences) < 2:
        return None
    first = normalize_transcript(sentences[0]).split()
    tail = normalize_transcript(sentences[-1]).split()
    if not tail or len(tail) >= len(first) or first[: len(tail)] != tail:
        return None
    return normalize_transcript(" ".join(sentences[:-1])).split()


def cut_periodic(words: list[str], speech_s: float, max_words_per_s: float = MAX_WORDS_PER_S) -> list[str] | None:
    """One copy of a transcript that only repeats itself, when nobody could say it that fast.

    With the duration cap at its intended size, a looping short-window decode runs
    on past a truncated restart into whole copies ("set a timer for five minutes set
    a timer for five minutes", "wake me up at seven thirty wake me up at seven
    thirty wake me up at seven"): 27 % of the generated finals looked looped instead
    of 6 % (`quickturn bench asr`). Such a transcript is a prefix of one phrase
    repeated; if its word rate over the audio is above ``max_words_per_s`` the
    repeats are the decoder's, and the first copy is kept without a re-decode. At a
    plausible rate the words may be real speech ("play some jazz play some jazz"),
    so None is returned and the long-window re-decode decides.
    """
    n = len(words)
    if not _faster_than_speech(n, speech_s, max_words_per_s):
        return None
    for period in range(1, n // 2 + 1):
        if all(words[i] == words[i - period] for i in range(period, n)):
            return words[:period]
    return None


def cut_loops(words: list[str], speech_s: float, max_words_per_s: float = MAX_WORDS_PER_S) -> tuple[list[str], bool]:
    """Remove trailing repeated blocks only while the word rate is implausible.

    Args:
        words: decoded words.
        speech_s: seconds of (unpadded) audio they came from.
        max_words_per_s: fastest plausible speaking rate.

    Returns:
        The words and whether anything was cut.
    """
    limit = max(2, int(max_words_per_s * max(speech_s, 0.5)) + 1)
    cut = False
    while len(words) > limit:
        n = len(words)
        found = False
        for size in range(1, n // 2 + 1):
            if words[n - size :] == words[n - 2 * size : n - size]:
                words = words[: n - size]
                found = cut = True
                break
        if not found:
            words = words[:limit]
            cut = True
            break
    return words, cut


def fallback_windows(first_s: float, speech_s: float, last_s: float = 30.0) -> list[float]:
    """The re-decode windows to try, in order, for a looped-looking short-window result.

    A 10 s window costs about a third of Whisper's native 30 s window here and
    un-loops almost every short command the 30 s window does (`quickturn bench
    asr`), so it is tried first; the 30 s window stays as the last resort when
    the 10 s result still looks looped. A window no longer than the speech
    itself would decode the same audio as the short window, so it is skipped.
    """
    windows = [w for w in (first_s, last_s) if w > speech_s and w <= last_s]
    return sorted(set(windows)) or [last_s]


TIMESTAMP_S = 0.02
"""Whisper's timestamp tokens ``<|0.00|>``, ``<|0.02|>``, ... step by 20 ms."""

TIMESTAMP_MARGIN_S = 0.4
"""A segment starting this long after the audio's end is the padding's, not the speaker's."""


@dataclass(frozen=True, slots=True)
class Segment:
    """Text tokens between two Whisper timestamps; ``end_s`` is None when the decode stopped inside it."""

    start_s: float
    end_s: float | None
    ids: tuple[int, ...]


def parse_segments(ids: list[int], timestamp_begin: int) -> list[Segment]:
    """Whisper's timestamped output as segments.

    ``ids`` are the generated tokens (no prompt); ids at or above ``timestamp_begin``
    (``<|0.00|>``, the id after ``<|notimestamps|>``) are timestamps. A segment is
    ``<|start|> text <|end|>``; the end of one segment is usually followed by the
    start of the next. Text before any timestamp gets start 0.0, a start
    timestamp with no text after it (the closing timestamp) makes no segment.
    """
    segments: list[Segment] = []
    start: float | None = None
    text: list[int] = []
    for i in ids:
        if i >= timestamp_begin:
            t = (i - timestamp_begin) * TIMESTAMP_S
            if text:
                segments.append(Segment(0.0 if start is None else start, t, tuple(text)))
                text, start = [], None
            else:
                start = t
        else:
            text.append(i)
    if text:
        segments.append(Segment(0.0 if start is None else start, None, tuple(text)))
    return segments


def cut_after_speech(segments: list[Segment], speech_s: float, margin_s: float = TIMESTAMP_MARGIN_S) -> list[Segment]:
    """The segments that start before the audio ended (``speech_s`` plus ``margin_s``).

    The window is the utterance zero-padded to ``min_window_s``; a segment
    starting in the padding was invented by the decoder (typically the
    utterance again: "set a timer for five minutes" x3). Segments are cut from
    the first one that starts late on: timestamps only increase.
    """
    kept = []
    for seg in segments:
        if seg.start_s > speech_s + margin_s:
            break
        kept.append(seg)
    return kept


def timestamped_text(
    generated: list[int],
    timestamp_begin: int,
    eot: int,
    speech_s: float,
    margin_s: float = TIMESTAMP_MARGIN_S,
    has_words: Callable[[list[int]], bool] | None = None,
) -> tuple[list[int], bool]:
    """The text token ids of a timestamped decode without the segments in the padding, and whether any was cut.

    With ``has_words``, trailing segments without a word are dropped too: Whisper
    sometimes fills the rest of a short window with "... ... ..." until the token
    cap, which would otherwise send a complete transcript to the re-decode.
    """
    segments = parse_segments([i for i in generated if i < eot or i >= timestamp_begin], timestamp_begin)
    kept = cut_after_speech(segments, speech_s, margin_s)
    while has_words is not None and kept and not has_words(list(kept[-1].ids)):
        kept.pop()
    return [i for seg in kept for i in seg.ids], len(kept) < len(segments)


WHISPER_TEXT_CTX = 448
"""Whisper's decoder context (prompt + generated tokens)."""


def whisper_max_length(prompt_len: int, max_tokens: int) -> int:
    """ctranslate2's ``max_length`` that lets Whisper generate ``max_tokens`` tokens after the prompt.

    ctranslate2 follows OpenAI's decoding here: it stops at ``max_length`` tokens in
    all, the prompt but its last token included, *and* generates at most
    ``max_length // 2`` (OpenAI's ``sample_len = n_text_ctx // 2``). Passing
    ``prompt_len + max_tokens`` therefore capped a prompt-less decode at half the intended tokens: measured on the
    generated coffee orders (4-6 s, ~4.5 tokens/s), 21 of 60 finals lost their last
    words ("...and a lot of" for "...and a lot of cream") and the cap check never
    fired. Both limits must allow ``max_tokens``.
    """
    return min(WHISPER_TEXT_CTX, max(2 * max_tokens, prompt_len - 1 + max_tokens))


@dataclass(frozen=True, slots=True)
class _Window:
    """One request's encoder input and decode limits."""

    mel: np.ndarray
    prompt: list[str]
    max_tokens: int
    gen_tokens: int


class WhisperDecoder:
    """Thread-safe single-window Whisper decoder on CTranslate2 (int8, CPU)."""

    def __init__(
        self,
        model_dir: Path,
        *,
        threads: int = 2,
        min_window_s: float = 8.0,
        fallback_window_s: float = 10.0,
        tokens_per_second: float = 6.0,
        beam_size: int = 1,
        final_beam_size: int | None = None,
        english_only: bool = True,
        timestamp_cut: bool = False,
    ) -> None:
        self.model = ctranslate2.models.Whisper(
            str(model_dir), device="cpu", compute_type="int8", intra_threads=threads, inter_threads=1
        )
        self.tokenizer = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self.min_window_s = min_window_s
        self.loop_guard = True  # rate-checked loop cut + fallback; off only to measure its effect
        self.fallback_window_s = fallback_window_s
        self.tokens_per_second = tokens_per_second
        self.beam_size = beam_size
        self.final_beam_size = final_beam_size or beam_size
        self.timestamp_cut = timestamp_cut
        """Final short-window decodes with timestamps; segments starting in the padding are dropped."""
        self.n_best = 1
        """Hypotheses a final beam decode returns (the top one and ``n_best - 1`` alternatives)."""
        self.timestamp_margin_s = TIMESTAMP_MARGIN_S
        self.batch_redos = 0
        """Batched beam-search results decoded again alone (they hit their token cap; see decode_batch)."""
        self._lock = threading.Lock()
        tid = self.tokenizer.token_to_id
        sot = [tid("<|startoftranscript|>")]
        if not english_only:
            sot += [tid("<|en|>"), tid("<|transcribe|>")]
        self._sot_ts = sot
        self._sot = sot + [tid("<|notimestamps|>")]
        self._timestamp_begin = tid("<|notimestamps|>") + 1
        self._prev = tid("<|startofprev|>")
        self._eot = tid("<|endoftext|>")

    def _has_words(self, ids: list[int]) -> bool:
        return bool(normalize_transcript(self.tokenizer.decode(ids)))

    def prompt_tokens(self, hint_words: list[str] | None, *, timestamps: bool = False) -> list[str]:
        ids: list[int] = []
        if hint_words:
            ids = [self._prev] + self.tokenizer.encode(" " + " ".join(hint_words), add_special_tokens=False).ids[-100:]
        return [self.tokenizer.id_to_token(i) for i in ids + (self._sot_ts if timestamps else self._sot)]

    def decode(self, pcm: np.ndarray, hint_words: list[str] | None = None, *, final: bool = False) -> Hypothesis:
        """Decode one window of int16 (or float) 16 kHz audio.

        Args:
            pcm: the utterance audio so far.
            hint_words: words expected in the answer (dialog state), given as Whisper's previous-text prompt.
            final: a final (or speculative final) decode: uses ``final_beam_size`` (beam search costs
                ~1.7x greedy here and cuts WER; partials stay greedy to keep up with speech).
        """
        beam = self.final_beam_size if final else self.beam_size
        audio = pcm.astype(np.float32) / 32768.0 if pcm.dtype == np.int16 else pcm.astype(np.float32)
        speech_s = len(audio) / SAMPLE_RATE_HZ
        timestamps = final and self.loop_guard and self.timestamp_cut
        n_best = self._n_best(beam, final, timestamps)
        hyp, suspicious = self._decode_window(audio, speech_s, self.min_window_s, hint_words, beam, timestamps, n_best)
        return self._fallback(hyp, suspicious, audio, speech_s, hint_words, beam, final)

    def _n_best(self, beam: int, final: bool, timestamps: bool) -> int:
        """Alternatives come from final beam decodes without timestamps (their tokens are plain text)."""
        return min(self.n_best, beam) if final and not timestamps else 1

    def _fallback(self, hyp: Hypothesis, suspicious: bool, audio: np.ndarray, speech_s: float,
                  hint_words: list[str] | None, beam: int, final: bool) -> Hypothesis:
        """Re-decode a looped-looking final on longer windows (one at a time: rare, and never batched)."""
        if suspicious and final and self.loop_guard and self.fallback_window_s > self.min_window_s:
            # The short window looks looped: pay for a longer-window decode, which
            # loops far less, instead of guessing which repeats are real. Partials
            # skip it: they are superseded within 300 ms, and a long decode would
            # hold the model lock while the speculative final waits behind it.
            for window in fallback_windows(self.fallback_window_s, speech_s):
                hyp, suspicious = self._decode_window(audio, speech_s, window, hint_words, beam, False,
                                                      self._n_best(beam, final, False))
                hyp = Hypothesis(hyp.text, hyp.raw_text, hyp.avg_logprob, loop_cut=hyp.loop_cut, fallback=True,
                                 fallback_window_s=window, alternatives=hyp.alternatives)
                if not suspicious:
                    break
        return hyp

    # ------------------------------------------------------------------ batches

    def batch_key(self, n_samples: int, hint_words: list[str] | None, *, final: bool) -> tuple[int, int, int, bool]:
        """Requests with equal keys can share one ``generate`` call and still decode exactly as alone.

        CTranslate2 needs every prompt's ``<|startoftranscript|>`` at the same position
        (so equal prompt lengths), one beam size per call, and one mel length per
        encoder batch. Keying on the request's own window length (not padding a short
        window to its batch's longest) keeps each stream's encoder input what it would
        be unbatched: utterances shorter than ``min_window_s`` (the usual command) all
        share the ``min_window_s`` window.
        """
        beam = self.final_beam_size if final else self.beam_size
        timestamps = final and self.loop_guard and self.timestamp_cut
        speech_s = n_samples / SAMPLE_RATE_HZ
        frames = self._frames(max(speech_s, self.min_window_s))
        return beam, len(self.prompt_tokens(hint_words, timestamps=timestamps)), frames, timestamps

    @staticmethod
    def _frames(window_s: float) -> int:
        """Mel frames of a window (10 ms hops, even, at most Whisper's 3000)."""
        n = int(min(window_s, 30.0) * SAMPLE_RATE_HZ) // 160 + 1
        return min(3000, n - n % 2)

    def decode_batch(self, requests: list[tuple[np.ndarray, list[str] | None]], *, final: bool) -> list[Hypothesis]:
        """Decode several streams' windows in one encoder and one ``generate`` call.

        Every request must have the same :meth:`batch_key` (the scheduler groups them):
        then each result is the one :meth:`decode` gives alone, up to the int8 batched
        matrix products' rounding (measured on real recordings in the tests and by
        ``quickturn bench batch``). Looped-looking finals are re-decoded on longer
        windows one by one afterwards, as in :meth:`decode`.
        """
        if len(requests) == 1:
            return [self.decode(requests[0][0], requests[0][1], final=final)]
        beam = self.final_beam_size if final else self.beam_size
        timestamps = final and self.loop_guard and self.timestamp_cut
        audios = [pcm.astype(np.float32) / 32768.0 if pcm.dtype == np.int16 else pcm.astype(np.float32)
                  for pcm, _ in requests]
        speech = [len(a) / SAMPLE_RATE_HZ for a in audios]
        windows = [self.window(a, s, self.min_window_s, hints, timestamps)
                   for a, s, (_, hints) in zip(audios, speech, requests, strict=True)]
        results = self.generate(windows, beam, self._n_best(beam, final, timestamps))
        out = []
        for a, s, (pcm, hints), w, (generated, score, alts) in zip(audios, speech, requests, windows, results,
                                                                    strict=True):
            hyp, suspicious = self._finish(generated, score, s, w.max_tokens, w.gen_tokens, timestamps, alts)
            hit_cap = sum(1 for i in generated if i < self._eot) >= w.max_tokens - 1
            if beam > 1 and hit_cap and not suspicious:
                # The batch's one max_length lets a beam search run on past this stream's own
                # token cap, so a capped result's winning beam can differ from the one it gets
                # alone (4 of 292 real finals differed, all capped and loop-cut ones). A suspicious
                # result is re-decoded alone on the long window anyway (none differed); a capped
                # one is decoded again alone, so batching never changes a transcript.
                self.batch_redos += 1
                out.append(self.decode(pcm, hints, final=final))
                continue
            out.append(self._fallback(hyp, suspicious, a, s, hints, beam, final))
        return out

    def _decode_window(
        self,
        audio: np.ndarray,
        speech_s: float,
        window_s: float,
        hint_words: list[str] | None,
        beam: int,
        timestamps: bool = False,
        n_best: int = 1,
    ) -> tuple[Hypothesis, bool]:
        w = self.window(audio, speech_s, window_s, hint_words, timestamps)
        generated, score, alts = self.generate([w], beam, n_best)[0]
        return self._finish(generated, score, speech_s, w.max_tokens, w.gen_tokens, timestamps, alts)

    def window(self, audio: np.ndarray, speech_s: float, window_s: float, hint_words: list[str] | None,
                timestamps: bool) -> _Window:
        min_len = int(window_s * SAMPLE_RATE_HZ)
        if len(audio) < min_len:
            audio = np.concatenate([audio, np.zeros(min_len - len(audio), np.float32)])
        # Round up to whole 10 ms hops plus a little silence for the encoder.
        audio = audio[: 30 * SAMPLE_RATE_HZ]
        mel = self.features(audio)
        n_frames = min(3000, mel.shape[-1] - (mel.shape[-1] % 2))
        mel = np.ascontiguousarray(mel[:, :n_frames], dtype=np.float32)
        max_tokens = int(self.tokens_per_second * speech_s) + 6
        # Timestamped: room for the timestamp pairs of a few segments beyond the text cap.
        gen_tokens = max_tokens + 8 if timestamps else max_tokens
        return _Window(mel, self.prompt_tokens(hint_words, timestamps=timestamps), max_tokens, gen_tokens)

    def generate(self, windows: list[_Window], beam: int,
                 n_best: int = 1) -> list[tuple[list[int], float, list[list[int]]]]:
        """Encode and decode windows of one mel length and one prompt length in one call.

        ``max_length`` is one value per call: the batch uses the largest, and each
        sequence is cut back to the tokens its own limit allows, which is what it
        would have generated alone (greedy exactly; a beam that ran into the cap
        may differ, and such a result is suspicious and re-decoded anyway). Each result
        is the top sequence, its score and the next ``n_best - 1`` sequences of the beam.
        """
        limits = [whisper_max_length(len(w.prompt), w.gen_tokens) for w in windows]
        mel = np.ascontiguousarray(np.stack([w.mel for w in windows]), dtype=np.float32)
        with self._lock:
            enc = self.model.encode(ctranslate2.StorageView.from_array(mel), to_cpu=False)
            results = self.model.generate(
                enc,
                [w.prompt for w in windows],
                beam_size=beam,
                num_hypotheses=max(1, min(n_best, beam)),
                max_length=max(limits),
                return_scores=True,
                suppress_blank=True,
                return_no_speech_prob=False,
            )
        out = []
        for w, limit, result in zip(windows, limits, results, strict=True):
            seqs = [list(ids) for ids in result.sequences_ids]
            if limit < max(limits):
                seqs = [ids[: min(limit - (len(w.prompt) - 1), limit // 2)] for ids in seqs]
            out.append((seqs[0], float(result.scores[0]) if result.scores else 0.0, seqs[1:]))
        return out

    def _alternatives(self, seqs: list[list[int]], top: str, speech_s: float) -> tuple[str, ...]:
        """The beam's other sequences as normalized texts, loops cut, without repeats or the top."""
        out: dict[str, None] = {}
        for ids in seqs:
            words = normalize_transcript(self.tokenizer.decode([i for i in ids if i < self._eot])).split()
            words, _ = cut_loops(words, speech_s)
            text = " ".join(words)
            if text and text != top and not looks_looped(words, speech_s):
                out[text] = None
        return tuple(out)

    def _finish(self, generated: list[int], score: float, speech_s: float, max_tokens: int, gen_tokens: int,
                timestamps: bool, alternatives: list[list[int]] | None = None) -> tuple[Hypothesis, bool]:
        """The hypothesis of one decoded window and whether it looks looped (the loop guards)."""
        ids = [i for i in generated if i < self._eot]
        n_tok = max(1, len(ids))
        hit_cap = len(ids) >= max_tokens - 1 or (timestamps and len(generated) >= gen_tokens - 1)
        padding_cut = False
        if timestamps:
            ids, padding_cut = timestamped_text(generated, self._timestamp_begin, self._eot, speech_s,
                                                self.timestamp_margin_s, self._has_words)
            hit_cap = hit_cap and not padding_cut  # a cap hit in the padding's segments is gone with them
        raw = self.tokenizer.decode(ids).strip()
        words = normalize_transcript(raw).split()
        if not self.loop_guard:
            return Hypothesis(text=" ".join(words), raw_text=raw, avg_logprob=score / n_tok,
                              alternatives=self._alternatives(alternatives or [], " ".join(words), speech_s)), False
        suspicious = hit_cap or looks_looped(words, speech_s)
        restart_cut = False
        if suspicious and (kept := cut_restart(raw)) is not None:
            words, restart_cut = kept, True
            suspicious = looks_looped(words, speech_s)
        if suspicious and (kept := cut_periodic(words, speech_s)) is not None:
            words, restart_cut = kept, True
            suspicious = looks_looped(words, speech_s)
        words, cut = cut_loops(words, speech_s)
        cut = cut or restart_cut or padding_cut
        hyp = Hypothesis(text=" ".join(words), raw_text=raw, avg_logprob=score / n_tok, loop_cut=cut,
                         alternatives=self._alternatives(alternatives or [], " ".join(words), speech_s))
        return hyp, suspicious
