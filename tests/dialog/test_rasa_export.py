"""`quickturn export rasa`: the exported Rasa 3 project's structure, without Rasa itself.

The real `rasa data validate` / `rasa train` / `rasa run` checks are in tests/dialog/test_rasa_integration.py.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import yaml

from assistant.cli import main as cli_main
from core.settings import REPO_ROOT
from dialog.rasa_export import MAX_HISTORY, REASONS, _state_windows, export_project
from domains import import_rasa, load_domains, parse_annotated


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("rasa") / "project"
    report = export_project(out)
    return out, report


def _yaml(path: Path):  # type: ignore[no-untyped-def]
    return yaml.safe_load(path.read_text())


def _examples(block: str) -> list[str]:
    return [line[2:] for line in block.splitlines() if line.startswith("- ")]


def test_files_and_versions(project) -> None:  # type: ignore[no-untyped-def]
    out, report = project
    for rel in ("config.yml", "domain.yml", "data/nlu.yml", "data/stories.yml", "data/rules.yml", "EXPORT.md",
                "credentials.yml", "endpoints.yml"):
        assert (out / rel).is_file(), rel
    assert "rest" in _yaml(out / "credentials.yml")
    for rel in ("domain.yml", "data/nlu.yml", "data/stories.yml", "data/rules.yml"):
        assert str(_yaml(out / rel)["version"]) == "3.1", rel
    config = _yaml(out / "config.yml")
    names = [c["name"] for c in config["pipeline"]]
    assert names[0] == "WhitespaceTokenizer" and "DIETClassifier" in names and "EntitySynonymMapper" in names
    assert {p["name"] for p in config["policies"]} >= {"RulePolicy", "TEDPolicy"}
    assert len(report.digest) == 64


def test_domain_is_consistent(project) -> None:  # type: ignore[no-untyped-def]
    out, report = project
    dom = _yaml(out / "domain.yml")
    ours = [i for d in load_domains() for i in d.intents]
    assert dom["intents"] == ours
    assert set(dom["entities"]) == {s for d in load_domains() for s in d.slots}
    for name, slot in dom["slots"].items():
        assert slot["mappings"] == [{"type": "from_entity", "entity": name}]
        assert slot["influence_conversation"] is False
        if slot["type"] == "categorical":
            assert slot["values"], name
    assert dom["session_config"]["session_expiration_time"] > 0
    # Every response can be filled by Rasa: placeholders are slots (Rasa would say "None" otherwise).
    for key, variants in dom["responses"].items():
        assert key.startswith("utter_")
        for v in variants:
            names = {n for _, n, _, _ in string.Formatter().parse(v["text"]) if n}
            assert names <= set(dom["slots"]), (key, v["text"])
    assert all(a.startswith("action_") for a in dom.get("actions", []))


def test_stories_and_rules_only_use_what_the_domain_declares(project) -> None:  # type: ignore[no-untyped-def]
    out, _ = project
    dom = _yaml(out / "domain.yml")
    known_actions = set(dom["responses"]) | set(dom.get("actions", []))
    used_intents: set[str] = set()
    used_actions: set[str] = set()
    for rel, key in (("data/stories.yml", "stories"), ("data/rules.yml", "rules")):
        for story in _yaml(out / rel)[key]:
            steps = story["steps"]
            assert steps, story
            for step in steps:
                if "intent" in step:
                    used_intents.add(step["intent"])
                    for ent in step.get("entities", []):
                        (name,) = ent
                        assert name in dom["entities"], (story, name)
                else:
                    used_actions.add(step["action"])
    assert used_intents <= set(dom["intents"])
    assert used_actions <= known_actions
    # No unused intents or responses: `rasa data validate` would warn about them.
    assert used_intents == set(dom["intents"])
    assert set(dom["responses"]) <= used_actions


def test_story_conversion(project) -> None:  # type: ignore[no-untyped-def]
    out, report = project
    stories = {s["story"]: s["steps"] for s in _yaml(out / "data/stories.yml")["stories"]}
    steps = stories["coffee over three turns with one correction (Deny + slot) (coffee.yml)"]
    assert steps == [
        {"intent": "orderDrink", "entities": [{"coffeeDrink": "latte"}]},
        {"action": "utter_ask_orderDrink_size"},
        {"intent": "orderDrink", "entities": [{"size": "small"}]},
        {"action": "utter_orderDrink"},
        {"intent": "Deny", "entities": [{"size": "large"}]},
        {"action": "utter_orderDrink"},
    ]
    # A cancelled task and a reply computed by a skill (custom action).
    assert stories["coffee cancelled mid-order (coffee.yml)"][-1] == {"action": "utter_Cancel"}
    assert stories["repeat the last reply (conversation.yml)"] == [
        {"intent": "GetTime"}, {"action": "action_GetTime"}, {"intent": "Repeat"}, {"action": "action_repeat"},
    ]  # fmt: skip
    # Every story is either converted or left out with a known reason; the counts add up.
    from dialog.stories import STORIES_DIR, load_stories

    assert len(report.stories) + len(report.skipped) == report.stories_total == len(load_stories([STORIES_DIR]))
    assert all(s.reason in REASONS for s in report.skipped)
    skipped = {s.name: s.reason for s in report.skipped}
    assert skipped["timer fires after five minutes"] == "clock"
    assert skipped["two sessions at once stay apart"] == "session"
    assert skipped["an interrupted question is asked again"] == "interrupt"
    assert skipped["coffee answer the NLU missed is found in the text"] == "text-recovery"
    assert skipped["coffee refuses an unknown drink and asks again"] == "conflict"
    notes = (out / "EXPORT.md").read_text()
    for s in report.skipped:
        assert s.name in notes
    assert len(report.stories) >= 50  # measured: 58 of 84


def test_no_story_conflicts_in_the_export(project) -> None:  # type: ignore[no-untyped-def]
    """The exporter's own check: one action per (last MAX_HISTORY states) over all written stories."""
    _, report = project
    seen: dict[tuple[object, ...], str] = {}
    for s in report.stories:
        for window, action in _state_windows(s.turns):
            assert len(window) <= MAX_HISTORY
            assert seen.setdefault(window, action) == action, (s.name, window)


def test_entity_annotations_round_trip(project) -> None:  # type: ignore[no-untyped-def]
    out, _ = project
    nlu = _yaml(out / "data/nlu.yml")["nlu"]
    exported: dict[str, set[tuple[tuple[str, ...], tuple[object, ...]]]] = {}
    for item in nlu:
        if "intent" in item:
            for line in _examples(item["examples"]):
                ex = parse_annotated(line, item["intent"])
                exported.setdefault(item["intent"], set()).add((ex.words, ex.spans))
    # Every hand-written example of the domains comes out with the same words and slot spans.
    checked = 0
    for d in load_domains():
        for ex in d.examples:
            plain = {w for w, _ in exported.get(ex.intent, set())}
            if ex.words not in plain:
                continue  # the same words labelled with another intent elsewhere (kept once)
            assert (ex.words, ex.spans) in exported[ex.intent], ex.annotated()
            checked += 1
    assert checked > 300
    # A story line with an entity is annotated where its value is ("no, make it large" -> [large](size)).
    deny = {" ".join(w): spans for w, spans in exported["Deny"]}
    assert [(s.slot, s.start, s.end) for s in deny["no make it large"]] == [("size", 3, 4)]
    # Synonyms, lookup tables and regexes are there.
    kinds = {k for item in nlu for k in item if k in ("synonym", "lookup", "regex")}
    assert kinds == {"synonym", "lookup", "regex"}
    syn = {item["synonym"]: _examples(item["examples"]) for item in nlu if "synonym" in item}
    assert syn["tv"] == ["telly"]
    # And QuickTurn's own Rasa importer reads the export back.
    back = import_rasa(out / "data/nlu.yml", "back", out / "domain.yml")
    assert set(back.intents) == {i for d in load_domains() for i in d.intents}
    assert back.slots["device"].synonyms["telly"] == "tv"


def test_no_text_is_labelled_with_two_intents(project) -> None:  # type: ignore[no-untyped-def]
    out, _ = project
    owner: dict[str, str] = {}
    for item in _yaml(out / "data/nlu.yml")["nlu"]:
        if "intent" not in item:
            continue
        for line in _examples(item["examples"]):
            plain = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)
            assert owner.setdefault(plain, item["intent"]) == item["intent"], plain


def test_subset_of_domains(tmp_path: Path) -> None:
    report = export_project(tmp_path / "p", ["coffee", "conversation"])
    dom = _yaml(tmp_path / "p" / "domain.yml")
    assert "out_of_scope" in dom["intents"] and "orderDrink" in dom["intents"] and "GetTime" not in dom["intents"]
    assert sum(s.reason == "not-exported" for s in report.skipped) > 40
    names = {s.name for s in report.stories}
    assert "coffee over three turns with one correction (Deny + slot)" in names
    assert "repeat the last reply" not in names  # uses GetTime


def test_refuses_a_non_empty_folder_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p"
    assert cli_main(["export", "rasa", str(out), "--domains", "conversation"]) == 0
    assert "stories:" in capsys.readouterr().out
    (out / "mine.txt").write_text("keep me")
    before = (out / "domain.yml").read_text()
    assert cli_main(["export", "rasa", str(out), "--domains", "conversation"]) == 1
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err and "Traceback" not in err
    (out / "domain.yml").write_text("changed")
    assert cli_main(["export", "rasa", str(out), "--domains", "conversation", "--force"]) == 0
    assert (out / "domain.yml").read_text() == before
    assert (out / "mine.txt").read_text() == "keep me"


def test_export_is_deterministic(project, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The trained-model cache is keyed by the export's hash: the same sources give the same files."""
    _, report = project
    again = export_project(tmp_path / "again")
    assert again.digest == report.digest


def test_rasa_env_script_explains_a_missing_python_310(tmp_path: Path) -> None:
    """deploy/rasa-env.sh fails with a clear message (and builds nothing) without Python 3.10."""
    import shutil
    import subprocess
    import sys

    script = REPO_ROOT / "deploy" / "rasa-env.sh"
    cache = tmp_path / "cache"
    bin_dir = tmp_path / "bin"  # the tools the script needs before it looks for Python, and no python3.10
    bin_dir.mkdir()
    for tool in ("dirname", "ls", "sort"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    env = {"HOME": str(tmp_path), "PATH": str(bin_dir), "PYENV_ROOT": str(tmp_path / "no-pyenv"),
           "QUICKTURN_CACHE": str(cache)}  # fmt: skip
    bash = shutil.which("bash") or "/bin/bash"
    proc = subprocess.run([bash, str(script)], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1 and "Python 3.10 not found" in proc.stderr and "QT_PYTHON310" in proc.stderr
    wrong = subprocess.run([bash, str(script)], env={**env, "QT_PYTHON310": sys.executable},
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    assert wrong.returncode == 1 and "Rasa 3.6 needs 3.10" in wrong.stderr
    assert not cache.exists()


def test_unwritable_or_bad_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert cli_main(["export", "rasa", str(f)]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert cli_main(["export", "rasa", str(f / "sub")]) == 1
    assert "cannot write" in capsys.readouterr().err
    assert cli_main(["export", "rasa", str(tmp_path / "q"), "--domains", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
