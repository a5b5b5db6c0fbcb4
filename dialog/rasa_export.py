"""``quickturn export rasa DIR``: QuickTurn's domains and stories as a trainable Rasa 3 project.

Writes::

    DIR/config.yml         a small pipeline (whitespace tokens, counts, DIET) and Memoization/Rule/TED
    DIR/domain.yml         intents, entities, slots (from_entity mappings), responses, custom actions
    DIR/data/nlu.yml       examples with entity annotations, synonyms, lookup tables, regexes
    DIR/data/stories.yml   QuickTurn's story files as Rasa stories (intent + entities -> action)
    DIR/data/rules.yml     one rule per intent whose answer never depends on context
    DIR/credentials.yml    the REST channel (what the ``rasa`` dialog backend talks to)
    DIR/endpoints.yml      where an action server would go (commented out)
    DIR/EXPORT.md          what was converted, and every story left out with the reason

How stories convert: every story is replayed through the real :class:`DialogManager` (the
same way ``quickturn test stories`` runs it), and each turn's outcome (``action`` +
``intent`` + expected slot) becomes a Rasa action:

==========================  ============================================================
QuickTurn outcome           Rasa action
==========================  ============================================================
``ask_slot`` (intent, slot) ``utter_ask_<intent>_<slot>`` (text from ``dialog/responses.yml``)
``confirm`` (intent)        ``utter_confirm_<intent>``, or ``action_confirm_<intent>``
``done`` (intent)           ``utter_<intent>`` (the domain's response), or ``action_<intent>``
``greet/goodbye/help``      ``utter_Greet`` / ``utter_Goodbye`` / ``utter_Help`` (``utter_help_<intent>`` in a task)
``cancelled``               ``utter_Cancel``, or ``utter_declined_<intent>`` after a Deny
``ack``                     ``utter_ack`` (``utter_nothing_to_cancel`` for a Cancel with no task)
``fallback``                ``utter_out_of_scope``
``repeat``                  ``action_repeat`` (custom: it needs the last reply)
==========================  ============================================================

A response is used only when Rasa can fill it: every ``{placeholder}`` must be a slot that
is set (from an entity of this or an earlier turn) at every point where the story uses it;
otherwise the reply is computed (weather, times, prices...) and the story names a custom
action (``action_*``, listed under ``actions:``), which needs an action server that
QuickTurn does not ship. Stories that Rasa stories cannot express are left out (see
:data:`REASONS`); the count and the reason for each are printed and written to EXPORT.md.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import string
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import InvalidInput
from core.text import normalize_text
from core.text import words as split_words
from core.types import OUT_OF_SCOPE, NluResult
from dialog.manager import DialogManager
from dialog.responses import Responses
from dialog.stories import STORIES_DIR, StoryClock, check_response, load_stories, nlu_from_step
from domains import Domain, Example, Span, load_domains
from domains.yaml_io import Block, dump_yaml

RASA_FORMAT = "3.1"
MAX_HISTORY = 5
"""Memoization/TED history and the window of the exporter's own story-conflict check."""
DEFAULT_PER_TEMPLATE = 4
"""Examples sampled per domain template: enough for DIET, few enough to train in minutes on 2 cores."""

REASONS = {
    "clock": "advances the clock (timers/alarms firing): Rasa stories have no clock; reminders need custom actions",
    "interrupt": "barge-in (the user interrupted the reply): Rasa stories have no notion of partly heard replies",
    "session": "talks in two sessions: a Rasa story is one conversation",
    "text-recovery": "QuickTurn answered from the raw text (an out_of_scope turn, or values the NLU did not tag): "
    "a Rasa story only sees intents and entities",
    "confidence": "relies on QuickTurn's NLU confidence threshold; in Rasa that is the FallbackClassifier's job "
    "on Rasa's own NLU scores",
    "error": "a skill failed (action 'error'): not a conversation pattern to train on",
    "conflict": "same intents and entities over the last turns as an earlier story, different reply: QuickTurn "
    "decides on slot values or context that Rasa's featurisation (intent + entity names) does not see",
    "fails": "the story does not pass against QuickTurn's dialog manager",
    "not-exported": "uses intents of domains that were not exported (--domains)",
}


# --------------------------------------------------------------------------- YAML output


def _lines(items: Sequence[str]) -> Block:
    return Block("".join(f"- {t}\n" for t in items))


# --------------------------------------------------------------------------- the replayed stories


@dataclass
class Turn:
    """One user turn of a story and the Rasa action it maps to."""

    intent: str
    entities: dict[str, str]
    text: str
    action: str
    kind: str  # "utter" | "custom"
    response_key: str = ""  # which response family (for the placeholder check)


@dataclass
class ConvertedStory:
    name: str
    file: str
    turns: list[Turn] = field(default_factory=list)


@dataclass
class Skipped:
    name: str
    file: str
    reason: str  # a key of REASONS
    detail: str = ""


@dataclass
class ExportReport:
    out: Path
    domains: list[str]
    stories_total: int = 0
    stories: list[ConvertedStory] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    rules: list[tuple[str, str]] = field(default_factory=list)
    examples: int = 0
    intents: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    custom_actions: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    digest: str = ""

    def summary(self) -> str:
        lines = [
            f"wrote a Rasa {RASA_FORMAT} project to {self.out} (domains: {', '.join(self.domains)})",
            f"  {len(self.intents)} intents, {self.examples} NLU examples, {len(self.responses)} responses, "
            f"{len(self.custom_actions)} custom actions",
            f"  stories: {len(self.stories)} of {self.stories_total} converted, {len(self.skipped)} left out; "
            f"{len(self.rules)} rules",
        ]
        by_reason: dict[str, int] = {}
        for s in self.skipped:
            by_reason[s.reason] = by_reason.get(s.reason, 0) + 1
        for reason, n in sorted(by_reason.items(), key=lambda kv: -kv[1]):
            lines.append(f"    {n:3} {reason}: {REASONS[reason]}")
        lines.append(f"  details: {self.out / 'EXPORT.md'}")
        return "\n".join(lines)


def _spoken(v: Any) -> str:
    """A story slot's value as Rasa's NLU would extract it (the words, not the normalized form)."""
    if isinstance(v, dict):
        return normalize_text(str(v.get("value", "")))
    return normalize_text(str(v))


def _norm(v: Any) -> str:
    if isinstance(v, dict):
        return normalize_text(str(v.get("normalized", v.get("value", ""))))
    return normalize_text(str(v))


@dataclass
class _RawTurn:
    step_intent: str
    step_slots: dict[str, Any]
    confidence: float
    text: str
    action: str
    intent: str | None
    frame: dict[str, str]
    expected_slot: str | None


def _replay(story: Any) -> tuple[list[_RawTurn], str | None]:
    """Run a story through a fresh dialog manager; the turns and a failure message (None: passed)."""
    turns: list[_RawTurn] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "dialog.db"
        clock = StoryClock(datetime.fromisoformat(story.now))
        dm = DialogManager(db, clock=clock, timezone=story.timezone, warm_up=False)
        try:
            for i, step in enumerate(story.steps, 1):
                if step.get("restart"):
                    dm.close()
                    dm = DialogManager(db, clock=clock, timezone=story.timezone, warm_up=False)
                if "advance" in step:  # only reached for stories already left out; keep state faithful
                    clock.now += timedelta(seconds=float(step["advance"]))
                    dm.fire_due()
                if "intent" not in step:
                    continue
                text = str(step.get("user") or "")
                resp = dm.handle(str(step.get("session", "story")), f"turn-{i}", nlu_from_step(step), text, text)
                err = check_response(step.get("expect") or {}, resp)
                if err:
                    return turns, f"step {i}: {err}"
                turns.append(_RawTurn(
                    str(step["intent"]), dict(step.get("slots") or {}), float(step.get("confidence", 1.0)), text,
                    resp.action, resp.intent, dict(resp.frame),
                    resp.expected.expected_slot if resp.expected else None,
                ))  # fmt: skip
        finally:
            dm.close()
    return turns, None


# --------------------------------------------------------------------------- responses


_OPTIONS = re.compile(r"\s*[,:]?\s*\{options\}")


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


class _ResponseBook:
    """Chooses the Rasa action and response text for each QuickTurn outcome."""

    def __init__(self, domains: list[Domain]) -> None:
        self.qt = Responses()
        self.domain_responses: dict[str, list[str]] = {}
        for d in domains:
            self.domain_responses.update(d.responses)

    def task(self, intent: str) -> str:
        key = f"task.{intent}"
        return self.qt.templates[key][0] if self.qt.has(key) else "request"

    def variants(self, key: str, intent: str | None = None) -> list[str]:
        """QuickTurn's variants for *key*, made static where possible ({task} filled, {options} dropped)."""
        out = []
        for v in self.qt.templates.get(key, []):
            v = _OPTIONS.sub("", v)
            if intent is not None:
                v = v.replace("{task}", self.task(intent))
            out.append(v)
        return out

    def candidates(self, t: _RawTurn) -> tuple[str, list[str], str]:
        """(action name, candidate texts, fallback custom action or '') for a replayed turn.

        An empty candidate list after the placeholder check means: use the fallback custom action.
        """
        a, intent = t.action, t.intent or t.step_intent
        dom = self.domain_responses
        if a == "greet":
            return "utter_Greet", dom.get("utter_Greet") or self.variants("greet"), ""
        if a == "goodbye":
            return "utter_Goodbye", dom.get("utter_Goodbye") or self.variants("goodbye"), ""
        if a == "help":
            if intent in (None, "Help"):
                return "utter_Help", dom.get("utter_Help") or self.variants("help"), ""
            key = f"help.{intent}" if self.qt.has(f"help.{intent}") else "help.task"
            return f"utter_help_{intent}", self.variants(key, intent), ""
        if a == "cancelled":
            if t.step_intent == "Deny" and intent not in (None, "Cancel", "Deny"):
                key = f"declined.{intent}" if self.qt.has(f"declined.{intent}") else "declined.default"
                return f"utter_declined_{intent}", self.variants(key, intent), ""
            return "utter_Cancel", dom.get("utter_Cancel") or self.variants("cancelled.nothing"), ""
        if a == "ack":
            if intent == "Cancel":
                return "utter_nothing_to_cancel", self.variants("cancelled.nothing"), ""
            return "utter_ack", self.variants("ack.Affirm"), ""
        if a == "fallback":
            return "utter_out_of_scope", dom.get("utter_out_of_scope") or self.variants("fallback"), ""
        if a == "repeat":
            return "action_repeat", [], "action_repeat"
        if a == "ask_slot" and t.expected_slot:
            s = t.expected_slot
            texts = self.variants(f"ask.{intent}.{s}", intent)
            return f"utter_ask_{intent}_{s}", texts, ""
        if a == "confirm":
            return f"utter_confirm_{intent}", self.variants(f"confirm.{intent}", intent), f"action_confirm_{intent}"
        if a == "done":
            return f"utter_{intent}", list(dom.get(f"utter_{intent}", [])), f"action_{intent}"
        # Any other outcome (a new action in the dialog manager): a custom action of that name.
        return f"action_{a}_{intent}", [], f"action_{a}_{intent}"

    def ask_fallback(self, intent: str, slot: str) -> list[str]:
        """Static texts for a slot question whose variants all need values Rasa does not have."""
        own = [v for v in self.domain_responses.get(f"utter_ask_{slot}", []) if not _placeholders(v)]
        return own or [f"What {slot.replace('_', ' ')}?"]


# --------------------------------------------------------------------------- conversion


def _story_kind(story: Any) -> str | None:
    keys = {k for step in story.steps for k in step}
    if "advance" in keys or "notifications" in keys:
        return "clock"
    if "interrupt" in keys:
        return "interrupt"
    if "session" in keys:
        return "session"
    return None


def _state_windows(turns: list[Turn]) -> list[tuple[tuple[Any, ...], str]]:
    """(last MAX_HISTORY states, next action) at every action Rasa predicts after a user turn.

    A state is (previous action, intent, entity names), as in Rasa's tracker featurisation with
    no slot influencing the conversation. After a bot action the next prediction is action_listen in
    every story, so only the predictions right after a user turn can conflict.
    """
    states: list[tuple[Any, ...]] = []
    out = []
    for t in turns:
        user = (t.intent, tuple(sorted(t.entities)))
        states.append(("action_listen", *user))
        out.append((tuple(states[-MAX_HISTORY:]), t.action))
        states.append((t.action, *user))
    return out


def _convert(
    stories: list[Any], book: _ResponseBook, synonyms: dict[str, str], known_intents: set[str]
) -> tuple[list[ConvertedStory], list[Skipped], dict[str, list[str]], set[str]]:
    """Stories -> converted stories, skipped ones, responses used, custom actions used."""
    pending: list[tuple[Any, list[_RawTurn]]] = []
    skipped: list[Skipped] = []
    for story in stories:
        where = story.path.name
        outside = sorted({str(s["intent"]) for s in story.steps if "intent" in s} - known_intents)
        if outside:
            skipped.append(Skipped(story.name, where, "not-exported", ", ".join(outside)))
            continue
        kind = _story_kind(story)
        if kind:
            skipped.append(Skipped(story.name, where, kind))
            continue
        raw, failure = _replay(story)
        if failure:
            skipped.append(Skipped(story.name, where, "fails", failure))
            continue
        reason = detail = ""
        prev: _RawTurn | None = None
        for i, t in enumerate(raw, 1):
            if t.action == "error":
                reason, detail = "error", f"turn {i}"
            elif t.confidence < 1.0:
                reason, detail = "confidence", f"turn {i}: confidence {t.confidence}"
            elif t.step_intent == OUT_OF_SCOPE and t.action != "fallback":
                reason, detail = "text-recovery", f"turn {i}: out_of_scope answered with {t.action!r}"
            elif (
                not t.step_slots
                and prev is not None
                and prev.intent == t.intent
                and any(prev.frame.get(k) != v for k, v in t.frame.items())
            ):
                reason, detail = "text-recovery", f"turn {i}: {t.step_intent} with no entities changed the task's values"
            if reason:
                break
            prev = t
        if reason:
            skipped.append(Skipped(story.name, where, reason, detail))
            continue
        pending.append((story, raw))

    # Map outcomes to actions; collect every use of a response to check its placeholders.
    uses: dict[str, list[tuple[list[str], set[str]]]] = {}
    mapped: list[tuple[Any, list[tuple[_RawTurn, str, str, dict[str, str]]]]] = []
    for story, raw in pending:
        slots_set: set[str] = set()
        rows = []
        for t in raw:
            ents = {k: synonyms.get(_spoken(v), _spoken(v)) for k, v in t.step_slots.items()}
            slots_set |= set(ents)
            action, texts, custom = book.candidates(t)
            rows.append((t, action, custom, ents))
            uses.setdefault(action, []).append((texts, set(slots_set)))
        mapped.append((story, rows))

    responses: dict[str, list[str]] = {}
    custom_for: dict[str, str] = {}
    for action, use_list in uses.items():
        texts = use_list[0][0]
        ok = [v for v in texts if all(_placeholders(v) <= have for _, have in use_list)]
        if action == "action_repeat":
            custom_for[action] = action
        elif ok:
            responses[action] = ok
        elif action.startswith("utter_ask_"):
            intent, _, slot = action[len("utter_ask_"):].partition("_")
            responses[action] = book.ask_fallback(intent, slot)
        else:
            # Replies that need computed values: a custom action (action_<intent>, action_confirm_<intent>;
            # action_<response> for a fixed response someone gave placeholders Rasa cannot fill).
            fallback = next((c for _, rows in mapped for _, a, c, _ in rows if a == action and c), "")
            custom_for[action] = fallback or "action_" + action.removeprefix("utter_")

    converted: list[ConvertedStory] = []
    seen: dict[tuple[Any, ...], tuple[str, str]] = {}
    for story, rows in mapped:
        turns = [
            Turn(t.step_intent, ents, t.text, custom_for.get(a, a), "custom" if a in custom_for else "utter", a)
            for t, a, _, ents in rows
        ]
        clash = None
        windows = _state_windows(turns)
        local: dict[tuple[Any, ...], str] = {}
        for window, action in windows:
            other = seen.get(window) or ((local[window], story.name) if window in local else None)
            if other and other[0] != action:
                clash = f"{action} here, {other[0]} in {other[1]!r}"
                break
            local[window] = action
        if clash:
            skipped.append(Skipped(story.name, story.path.name, "conflict", clash))
            continue
        for window, action in windows:
            seen.setdefault(window, (action, story.name))
        converted.append(ConvertedStory(story.name, story.path.name, turns))

    used_actions = {t.action for s in converted for t in s.turns}
    responses = {k: v for k, v in responses.items() if k in used_actions}
    customs = {t.action for s in converted for t in s.turns if t.kind == "custom"}
    return converted, skipped, responses, customs


# --------------------------------------------------------------------------- NLU data


def _locate(words: tuple[str, ...], phrase: str) -> tuple[int, int] | None:
    pw = tuple(split_words(phrase))
    if not pw:
        return None
    for i in range(len(words) - len(pw) + 1):
        if words[i : i + len(pw)] == pw:
            return i, i + len(pw)
    return None


def _story_examples(
    converted: list[ConvertedStory], slots_of: dict[str, set[str]], synonyms: dict[str, str]
) -> list[Example]:
    """The user lines of converted stories as annotated NLU examples, where that is safe.

    A line is used when every entity of its turn is found in its words; a line with no
    entities only for an intent that never has entities (an untagged "book a table for four"
    would teach the model to miss the slots).
    """
    out = []
    for story in converted:
        for t in story.turns:
            words = tuple(split_words(t.text))
            if not words:
                continue
            if not t.entities:
                if slots_of.get(t.intent):
                    continue
                out.append(Example(t.intent, words, (), story.file))
                continue
            spans = []
            for slot, value in t.entities.items():
                found = None
                for phrase in (value, *[s for s, c in synonyms.items() if c == value]):
                    found = _locate(words, phrase)
                    if found:
                        break
                if not found:
                    spans = None
                    break
                phrase = " ".join(words[found[0] : found[1]])
                spans.append(Span(slot, found[0], found[1], value if value != phrase else None))
            if spans is None or _overlap(spans):
                continue
            out.append(Example(t.intent, words, tuple(spans), story.file))
    return out


def _overlap(spans: list[Span]) -> bool:
    ordered = sorted(spans, key=lambda s: s.start)
    return any(a.end > b.start for a, b in zip(ordered, ordered[1:], strict=False))


# --------------------------------------------------------------------------- the project


CONFIG = """\
# A small, fast pipeline: DIET and TED with one small transformer layer, so the project
# trains in minutes on 2 CPU cores (timings in docs/dialog.md). Raise the sizes and epochs
# for a better model.
recipe: default.v1
language: en
assistant_id: quickturn-export

pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
    use_lookup_tables: true
    use_regexes: true
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 2
    max_ngram: 4
    max_features: 4000
  - name: DIETClassifier
    epochs: {epochs}
    number_of_transformer_layers: 1
    transformer_size: 64
    hidden_layers_sizes: {{text: [128]}}
    embedding_dimension: 20
    batch_size: [32, 128]
    random_seed: 1
    constrain_similarities: true
  - name: EntitySynonymMapper

policies:
  - name: AugmentedMemoizationPolicy
    max_history: {max_history}
  - name: RulePolicy
  - name: TEDPolicy
    max_history: {max_history}
    epochs: {ted_epochs}
    number_of_transformer_layers: {{text: 0, dialogue: 1}}
    transformer_size: {{text: 64, dialogue: 64}}
    embedding_dimension: 20
    random_seed: 1
    constrain_similarities: true
"""


CREDENTIALS = """\
# The REST channel QuickTurn's `rasa` dialog backend talks to (POST /webhooks/rest/webhook).
rest:
"""

ENDPOINTS = """\
# The custom actions listed in domain.yml (action_*) need an action server; QuickTurn does not
# ship one. Run yours and uncomment:
# action_endpoint:
#   url: "http://localhost:5055/webhook"
"""


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InvalidInput(
            f"{out} is not empty; pass --force to overwrite the exported files in it "
            "(config.yml, domain.yml, data/, credentials.yml, endpoints.yml, EXPORT.md; other files are left alone)"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".quickturn-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InvalidInput(f"cannot write to {out}: {exc.strerror or exc}") from exc


def export_project(
    out: str | Path,
    domain_names: Sequence[str] | None = None,
    *,
    per_template: int = DEFAULT_PER_TEMPLATE,
    force: bool = False,
    epochs: int = 30,
    ted_epochs: int = 30,
    stories_dir: Path | None = None,
) -> ExportReport:
    """Write the Rasa project for ``domain_names`` (default: all domains) into ``out``.

    Stories are taken from ``stories_dir`` (default ``dialog/stories``); those whose intents
    are not all in the exported domains are left out (reason "fails").

    Raises:
        InvalidInput: ``out`` is not empty (without ``force``) or cannot be written.
        DomainError: a domain or story file is invalid.
    """
    out = Path(out)
    _check_target(out, force)
    domains = load_domains(names=list(domain_names) if domain_names else None)
    if OUT_OF_SCOPE not in {i for d in domains for i in d.intents}:
        # Every QuickTurn conversation can answer "out of scope"; the fallback reply needs the intent.
        domains += load_domains(names=["out_of_scope"])
    report = ExportReport(out=out, domains=[d.name for d in domains])

    # Slots: merged over domains (the same slot name may appear in several).
    slots: dict[str, dict[str, Any]] = {}
    synonyms: dict[str, str] = {}
    for d in domains:
        for s in d.slots.values():
            spec = slots.setdefault(s.name, {"kind": s.kind, "values": [], "patterns": []})
            if spec["kind"] != s.kind:
                spec["kind"] = "text"
            spec["values"] = list(dict.fromkeys([*spec["values"], *s.values]))
            spec["patterns"] = list(dict.fromkeys([*spec["patterns"], *s.patterns]))
            synonyms.update(s.synonyms)

    intents = [i for d in domains for i in d.intents]
    report.intents = intents
    stories = load_stories([stories_dir or STORIES_DIR])
    report.stories_total = len(stories)
    book = _ResponseBook(domains)
    converted, skipped, responses, customs = _convert(stories, book, synonyms, set(intents))
    report.stories, report.skipped = converted, skipped

    # Examples: the domains' own, templates expanded, then story lines.
    examples: list[Example] = []
    for d in domains:
        examples.extend(d.all_examples(per_template, seed=0))
    slots_of: dict[str, set[str]] = {}
    for e in examples:
        slots_of.setdefault(e.intent, set()).update(s.slot for s in e.spans)
    examples.extend(_story_examples(converted, slots_of, synonyms))
    by_intent: dict[str, dict[str, None]] = {i: {} for i in intents}
    label: dict[str, str] = {}
    for e in examples:
        text = e.annotated()
        plain = e.text
        if label.setdefault(plain, e.intent) != e.intent:
            continue  # the same words under two intents: keep the first (domain examples come first)
        by_intent[e.intent].setdefault(text, None)
    # One annotation per plain text: two annotations of the same words confuse the entity extractor.
    nlu: list[dict[str, Any]] = []
    n_examples = 0
    for intent in intents:
        per_plain: dict[str, str] = {}
        for text in by_intent[intent]:
            plain = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
            per_plain.setdefault(plain, text)
        lines = sorted(per_plain.values())
        if lines:
            nlu.append({"intent": intent, "examples": _lines(lines)})
            n_examples += len(lines)
    report.examples = n_examples
    by_value: dict[str, list[str]] = {}
    for spoken, value in synonyms.items():
        if spoken != value:
            by_value.setdefault(value, []).append(spoken)
    for value, spoken in by_value.items():
        nlu.append({"synonym": value, "examples": _lines(sorted(spoken))})
    for name, spec in slots.items():
        if spec["values"]:
            nlu.append({"lookup": name, "examples": _lines(spec["values"])})
        if spec["patterns"]:
            nlu.append({"regex": name, "examples": _lines(spec["patterns"])})

    # Rules: an intent whose every converted turn gets the same action, and that never
    # appears elsewhere with another action, answers the same way anywhere.
    actions_of: dict[str, set[str]] = {}
    for s in converted:
        for t in s.turns:
            actions_of.setdefault(t.intent, set()).add(t.action)
    rules = []
    for intent in intents:
        acts = actions_of.get(intent)
        if acts and len(acts) == 1 and intent in {"Greet", "Goodbye", OUT_OF_SCOPE}:
            rules.append((intent, next(iter(acts))))
    report.rules = rules

    # Intents no converted story or rule uses: the dialog manager's answer to the bare intent.
    used = set(actions_of)
    for intent in intents:
        if intent in used:
            continue
        action = _bare_intent_action(intent, book, responses, customs)
        rules.append((intent, action))

    # Domain.
    rasa_slots: dict[str, Any] = {}
    for name, spec in slots.items():
        entry: dict[str, Any] = {"type": "categorical" if spec["kind"] == "categorical" else "text"}
        if entry["type"] == "categorical":
            entry["values"] = list(spec["values"])
        entry["influence_conversation"] = False
        entry["mappings"] = [{"type": "from_entity", "entity": name}]
        rasa_slots[name] = entry
    report.responses = sorted(responses)
    report.custom_actions = sorted(customs)
    domain_yml = {
        "version": RASA_FORMAT,
        "intents": intents,
        "entities": list(slots),
        "slots": rasa_slots,
        "responses": {k: [{"text": t} for t in v] for k, v in sorted(responses.items())},
        "actions": sorted(customs),
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    }
    if not customs:
        del domain_yml["actions"]
    header = "# Exported by `quickturn export rasa` from QuickTurn's domains and stories. Regenerate, don't edit.\n"
    dump_yaml(domain_yml, out / "domain.yml", header)
    dump_yaml({"version": RASA_FORMAT, "nlu": nlu}, out / "data" / "nlu.yml", header)
    rasa_stories = []
    for s in converted:
        steps: list[dict[str, Any]] = []
        for t in s.turns:
            step: dict[str, Any] = {"intent": t.intent}
            if t.entities:
                step["entities"] = [{k: v} for k, v in t.entities.items()]
            steps.append(step)
            steps.append({"action": t.action})
        rasa_stories.append({"story": f"{s.name} ({s.file})", "steps": steps})
    dump_yaml({"version": RASA_FORMAT, "stories": rasa_stories}, out / "data" / "stories.yml", header)
    dump_yaml(
        {"version": RASA_FORMAT,
         "rules": [{"rule": f"{intent} -> {action}", "steps": [{"intent": intent}, {"action": action}]}
                   for intent, action in rules]},
        out / "data" / "rules.yml", header,
    )  # fmt: skip
    (out / "config.yml").write_text(
        CONFIG.format(epochs=epochs, ted_epochs=ted_epochs, max_history=MAX_HISTORY), encoding="utf-8"
    )
    (out / "credentials.yml").write_text(CREDENTIALS, encoding="utf-8")
    (out / "endpoints.yml").write_text(ENDPOINTS, encoding="utf-8")
    report.files = [out / "config.yml", out / "domain.yml", out / "data" / "nlu.yml",
                    out / "data" / "stories.yml", out / "data" / "rules.yml",
                    out / "credentials.yml", out / "endpoints.yml"]  # fmt: skip
    h = hashlib.sha256()
    for f in report.files:
        h.update(f.relative_to(out).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    report.digest = h.hexdigest()
    _write_notes(report)
    report.files.append(out / "EXPORT.md")
    return report


def _bare_intent_action(intent: str, book: _ResponseBook, responses: dict[str, list[str]], customs: set[str]) -> str:
    """A rule's action for an intent no story uses: what the dialog manager says to it, with no slots."""
    with tempfile.TemporaryDirectory() as tmp, DialogManager(Path(tmp) / "d.db", warm_up=False) as dm:
        resp = dm.handle("export", "t1", NluResult(intent, 1.0, ()), "", "")
    raw = _RawTurn(intent, {}, 1.0, "", resp.action, resp.intent, dict(resp.frame),
                   resp.expected.expected_slot if resp.expected else None)  # fmt: skip
    action, texts, custom = book.candidates(raw)
    ok = [v for v in texts if not _placeholders(v)]
    if action in responses or ok:
        responses.setdefault(action, ok)
        return action
    if action.startswith("utter_ask_"):
        i, _, slot = action[len("utter_ask_"):].partition("_")
        responses[action] = book.ask_fallback(i, slot)
        return action
    customs.add(custom or action)
    return custom or action


def _write_notes(report: ExportReport) -> None:
    lines = [
        "# Rasa export notes",
        "",
        f"Domains: {', '.join(report.domains)}. Stories: {len(report.stories)} of {report.stories_total} "
        f"converted, {len(report.skipped)} left out. Export hash: `{report.digest[:16]}`.",
        "",
        "Custom actions (need an action server; QuickTurn does not ship one): "
        + (", ".join(f"`{a}`" for a in report.custom_actions) or "none") + ".",
        "",
        "## Stories left out",
        "",
        "| story | file | reason | detail |",
        "|---|---|---|---|",
    ]
    for s in report.skipped:
        lines.append(f"| {s.name} | {s.file} | {REASONS[s.reason]} | {s.detail.replace('|', '/')} |")
    lines += ["", "## Rules", ""]
    lines += [f"- `{i}` -> `{a}`" for i, a in report.rules]
    (report.out / "EXPORT.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def export_rasa_main(argv: list[str]) -> int:
    """``quickturn export rasa DIR [--domains A,B] [--per-template N] [--force]``."""
    ap = argparse.ArgumentParser(
        prog="quickturn export rasa",
        description="Write a Rasa 3 project (config.yml, domain.yml, data/nlu.yml, data/stories.yml, "
        "data/rules.yml) from QuickTurn's domains and stories.",
    )
    ap.add_argument("out", type=Path, help="the project folder (created; must be empty unless --force)")
    ap.add_argument("--domains", default="", help="comma-separated domain names (default: all)")
    ap.add_argument("--per-template", type=int, default=DEFAULT_PER_TEMPLATE,
                    help=f"examples sampled per domain template (default {DEFAULT_PER_TEMPLATE})")  # fmt: skip
    ap.add_argument("--epochs", type=int, default=30, help="DIET and TED epochs in config.yml (default 30)")
    ap.add_argument("--force", action="store_true", help="overwrite the exported files in a non-empty folder")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.domains.split(",") if n.strip()] or None
    if args.per_template < 0 or args.epochs < 1:
        raise InvalidInput("--per-template must be >= 0 and --epochs >= 1")
    report = export_project(args.out, names, per_template=args.per_template, force=args.force,
                            epochs=args.epochs, ted_epochs=args.epochs)  # fmt: skip
    print(report.summary())
    sys.stdout.flush()
    return 0
