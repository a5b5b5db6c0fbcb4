"""The floors hold: the import-linter contracts pass, catch an upward import, and the runtime stays apart from training.

The contracts themselves live in ``pyproject.toml`` (``[tool.importlinter]``);
``deploy/test.sh`` runs ``lint-imports`` before the tests, and these tests show
that the check is real (it fails on a planted violation) and cover what
import-linter cannot see: the Triton ``models/`` adapters, which are not an
importable package.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import REPO_ROOT

PACKAGES = ("core", "domains", "services", "dialog", "assistant", "training")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
needs_lint = pytest.mark.skipif(not LINT_IMPORTS.is_file(), reason="import-linter is not installed (dev extra)")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


@needs_lint
def test_the_layer_contracts_are_kept() -> None:
    result = _lint(REPO_ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


@needs_lint
@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/errors.py", "from assistant import pipeline", "Floors: no package imports a package above it"),
        ("services/nlu/bert.py", "from training.nlu import common", "The runtime never imports training code"),
        ("domains/model.py", "import dialog.manager", "Floors: no package imports a package above it"),
    ],
)
def test_a_planted_violation_breaks_the_contract(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """An upward import added to a copy of the tree fails ``lint-imports`` and names the broken contract."""
    for name in PACKAGES:
        shutil.copytree(REPO_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # planted by the test\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout[-3000:]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
    return out


def test_triton_adapters_import_only_the_floors_below_them() -> None:
    """``models/*/1/model.py`` sit beside ``dialog``: they may use core, domains and services only."""
    adapters = sorted((REPO_ROOT / "models").glob("*/1/model.py"))
    assert len(adapters) == 4
    for path in adapters:
        ours = _imports(path) & set(PACKAGES)
        assert ours <= {"core", "domains", "services"}, f"{path.relative_to(REPO_ROOT)} imports {sorted(ours)}"
        assert "bootstrap.py" in path.read_text(), f"{path} does not go through models/bootstrap.py"


def test_the_runtime_loads_no_training_code_and_no_torch() -> None:
    """Loading every runtime entry point leaves training, torch, transformers and onnx unimported."""
    code = (
        "import sys\n"
        "import assistant.cli, assistant.pipeline, assistant.web.server, assistant.commands.chat, assistant.commands.bench,"
        " assistant.commands.evaluate, assistant.commands.mic, services.registry, services.serving.triton_server,"
        " services.serving.riva_server, services.nlu.commands, services.disfluency.commands, dialog.commands, domains.cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'torch', 'transformers', 'onnx'))\n"
        "print(' '.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == ""
