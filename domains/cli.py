"""``quickturn domain check|import|export``: validate, convert and export domains."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from core.errors import DomainError
from domains.convert import export_rasa, import_rasa, import_rhino, import_snips, write_domain
from domains.loader import load_domain, load_domains


def main(argv: Sequence[str] | None = None) -> int:
    """``quickturn domain check|import|export`` — validate, convert and export domains."""
    p = argparse.ArgumentParser(prog="quickturn domain", description=main.__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="load and validate domain folders (default: the built-in ones)")
    c.add_argument("folders", nargs="*", type=Path)
    i = sub.add_parser("import", help="convert a Rasa nlu.yml, SNIPS JSON or Rhino context into a domain folder")
    i.add_argument("format", choices=["rasa", "snips", "rhino"])
    i.add_argument("source", type=Path)
    i.add_argument("out", type=Path, help="the domain folder to write")
    i.add_argument("--name")
    e = sub.add_parser("export", help="write Rasa nlu.yml + domain.yml for a domain folder")
    e.add_argument("folder", type=Path)
    e.add_argument("out", type=Path)
    e.add_argument("--per-template", type=int, default=20)
    args = p.parse_args(argv)
    try:
        if args.cmd == "check":
            domains = [load_domain(f) for f in args.folders] if args.folders else load_domains()
            for d in domains:
                print(f"ok  {d.name}: {len(d.intents)} intents, {len(d.slots)} slots, "
                      f"{len(d.examples)} examples, {len(d.templates)} templates")
        elif args.cmd == "import":
            name = args.name or args.out.name
            importer = {"rasa": import_rasa, "snips": import_snips, "rhino": import_rhino}[args.format]
            domain = importer(args.source, name)
            write_domain(domain, args.out, header=f"# {domain.source}\n")
            print(f"wrote {args.out}/domain.yml and nlu.yml ({len(domain.intents)} intents)")
        else:
            nlu_path, domain_path = export_rasa(load_domain(args.folder), args.out, args.per_template)
            print(f"wrote {nlu_path} and {domain_path}")
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
