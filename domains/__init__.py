"""Domains as data: what the assistant understands, loaded, validated, imported and exported.

A domain is a folder ``domains/builtin/<name>/`` with two YAML files:

``domain.yml``
    ``intents`` (a list of names, or of ``{name: {description, confirm}}``),
    ``slots`` (``name: {type, values, synonyms, patterns}``), ``responses``.
``nlu.yml``
    ``nlu:`` a list of ``{intent, examples, templates}``. ``examples`` is a
    block of ``- `` lines with inline slots, Rasa style: ``[large](size)``,
    ``[tall](size:small)`` (value with a synonym) or
    ``[tall]{"entity": "size", "value": "small"}``. ``templates`` are lines
    with alternatives ``(a|b|)`` (an empty option makes the group optional) and
    slot references ``{size}``, filled from the slot's values when training.

This package sits directly on the ground floor (:mod:`core`): the NLU, the ASR
hints, the disfluency generator and the dialog manager all *receive* domains
from here; none of them owns them.

* :mod:`domains.model`: the data model (:class:`Domain`, :class:`SlotDef`, ...);
* :mod:`domains.loader`: YAML folders → checked :class:`Domain` objects;
* :mod:`domains.convert`: Rasa / SNIPS / Rhino importers, the Rasa exporter, our writer;
* :mod:`domains.normalize`: slot values to the canonical form the dialog acts on;
* :mod:`domains.cli`: ``quickturn domain check|import|export``.
"""

from __future__ import annotations

from domains.convert import (
    export_rasa,
    import_rasa,
    import_rhino,
    import_snips,
    rhino_to_template,
    write_domain,
)
from domains.loader import BUILTIN_DIR, load_domain, load_domains, parse_annotated
from domains.model import (
    FORMAT_VERSION,
    SLOT_KINDS,
    Domain,
    Example,
    IntentDef,
    SlotDef,
    SlotKind,
    Span,
    Template,
    intents_of,
)

__all__ = [
    "BUILTIN_DIR",
    "FORMAT_VERSION",
    "SLOT_KINDS",
    "Domain",
    "Example",
    "IntentDef",
    "SlotDef",
    "SlotKind",
    "Span",
    "Template",
    "export_rasa",
    "import_rasa",
    "import_rhino",
    "import_snips",
    "intents_of",
    "load_domain",
    "load_domains",
    "parse_annotated",
    "rhino_to_template",
    "write_domain",
]
