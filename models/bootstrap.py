"""Make QuickTurn importable from a Triton Python-backend adapter (``models/<model>/<version>/model.py``).

Triton's Python backend loads each ``model.py`` by path in a stub process
whose ``sys.path`` does not hold the project. Every adapter runs this file
first, with ``runpy.run_path`` (so it works before anything of ours is
importable, and leaves no ``__pycache__`` folder that Triton could take for a
model). It puts the project root on ``sys.path`` unless QuickTurn is already
importable (``pip install quickturn`` in a container image), in which case the
installed package wins and nothing changes. A model folder copied into another
repository has no bootstrap beside it and relies on QuickTurn being installed.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if importlib.util.find_spec("core") is None and str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
