"""Real household requests (SLURP devel) as fluent and disfluent disfluency-tagger text.

The issue's household scenarios (alarms, volume, calendar and reminders, date and time, lights,
plugs, lists, music, weather) come from :func:`training.slurp.requests`, whose fixed hash split
says which requests may be trained and tuned on (``tune``) and which are kept for the report
(``report``). Each part gives:

* the **fluent** requests: the distinct texts, normalised like ASR output
  (:func:`core.text.normalize_transcript`: "ok" -> "okay", digits spelled); wake words ("olly",
  "hey google", "alexa") are fluent words and stay;
* **disfluent** variants of the same texts from the LARD-style generator
  (:func:`training.disfluency.generate.generate`: fillers, repetitions, repairs with editing
  phrases, restarts), with the built-in domains' same-slot word groups for repairs. A leading
  wake word (:data:`WAKE_WORDS`) is set aside first and put back in front, kept: people say it
  once, before the request, and it is never part of a disfluency. The seed is
  offset per part, so the two parts never share an RNG stream.

Nothing is copied into the repository: the sets are built from ``shared_dir`` when needed.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from core.text import normalize_transcript
from training.disfluency.align import Labelled
from training.disfluency.generate import domain_texts, generate
from training.slurp import PARTS, TUNE, requests

#: Offset of the disfluent sets' RNG seed (``seed + offset + part index``).
DISFLUENT_SEED_OFFSET = 5000


#: Wake words a speaker may say first ("olly", SLURP's assistant, and the common ones): fluent words.
WAKE_WORDS = ["olly", "hey olly", "okay olly", "alexa", "hey alexa", "google", "hey google", "okay google", "siri", "hey siri"]
#: Share of the training items that get one in front (when they do not start with one already).
WAKE_SHARE = 0.15




def split_wake(text: str) -> tuple[list[str], list[str]]:
    """``(wake words, the rest)`` of a request: the longest :data:`WAKE_WORDS` entry it starts with."""
    words = text.split()
    for wake in sorted(WAKE_WORDS, key=lambda w: -len(w.split())):
        n = len(wake.split())
        if words[:n] == wake.split() and len(words) > n:
            return words[:n], words[n:]
    return [], words


def _with_wake(items: list[Labelled], wakes: list[list[str]]) -> list[Labelled]:
    """Put each request's wake words back in front of its generated item, as fluent words."""
    out = []
    for wake, item in zip(wakes, items, strict=True):
        n = len(wake)
        out.append(Labelled(wake + item.words, [False] * n + item.remove, [None] * n + item.kinds, item.source))
    return out


def _generate_after_wake(
    texts: list[str], rng: random.Random, fluent_share: float, groups: list[list[str]]
) -> list[Labelled]:
    """The generator on each request without its wake words (no restart, repair or repetition
    takes a wake word in), the wake words then put back in front."""
    split = [split_wake(t) for t in texts]
    rests = [" ".join(rest) for _, rest in split]
    items = generate(rests, rng, fluent_share=fluent_share, source="household", groups=groups)
    return _with_wake(items, [wake for wake, _ in split])


def household_texts(shared_dir: Path, part: str) -> list[str]:
    """The distinct household requests of one part, normalised like ASR output, sorted."""
    texts = {normalize_transcript(r.text) for r in requests(shared_dir, part) if r.household}
    return sorted(t for t in texts if t)


#: One tune request in this many (by a hash of its text) is never trained on: the tagger's
#: removal threshold is chosen on it (``household_tunedev_*`` sets), not on what it was trained on.
TUNE_DEV_MODULUS = 4


def tune_dev(text: str) -> bool:
    """Whether a ``tune`` request is kept out of training, for choosing thresholds (seed-free hash)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) % TUNE_DEV_MODULUS == 0


def household_disfluent(
    texts: list[str], seed: int, part: str, *, fluent_share: float = 0.0, groups: list[list[str]] | None = None
) -> list[Labelled]:
    """Disfluent (and, with ``fluent_share``, some fluent) variants of ``texts`` from the generator."""
    if groups is None:
        _, groups = domain_texts(seed)
    rng = random.Random(seed + DISFLUENT_SEED_OFFSET + PARTS.index(part))
    return _generate_after_wake(texts, rng, fluent_share, groups)


def household_sets(shared_dir: Path, part: str, seed: int) -> tuple[list[str], list[Labelled]]:
    """Fluent household requests of ``part`` and one disfluent variant of each."""
    texts = household_texts(shared_dir, part)
    return texts, household_disfluent(texts, seed, part)


def household_training(shared_dir: Path, seed: int, count: int, fluent_share: float) -> list[Labelled]:
    """``count`` training items from the household requests of the ``tune`` part only, without
    the :func:`tune_dev` quarter.

    The requests are cycled through (shuffled each round), a share :data:`WAKE_SHARE` gets a wake
    word in front, and the generator leaves ``fluent_share`` of them fluent and injects
    disfluencies into the rest (fresh ones each round; the domains' same-slot groups for repairs).
    """
    texts = [t for t in household_texts(shared_dir, TUNE) if not tune_dev(t)]
    if not texts or count <= 0:
        return []
    rng = random.Random(seed + 6007)
    _, groups = domain_texts(seed)
    pool: list[str] = []
    while len(pool) < count:
        round_ = list(texts)
        rng.shuffle(round_)
        pool += round_
    pool = [
        f"{rng.choice(WAKE_WORDS)} {t}" if rng.random() < WAKE_SHARE and not split_wake(t)[0] else t
        for t in pool[:count]
    ]
    return _generate_after_wake(pool, rng, fluent_share, groups)
