import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `export` is a top-level folder of CPython tools, not an installed package.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
