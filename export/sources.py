"""Where a model comes from: a local folder, or a hub id (`owner/name`) when the machine is online.

Both go through the same diffusers `from_pretrained` call; only `local_files_only` differs, so the
hub path (untestable offline) is the folder path."""

from __future__ import annotations

import re
from pathlib import Path

from sdlens.errors import SdlensError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_or_folder(src: str, marker: str, what: str) -> bool:
    """True when SRC is a local folder (holding `marker`), False for a hub id; else a clear error."""
    path = Path(src)
    if path.exists():
        if not (path / marker).is_file():
            raise SdlensError(f"{src} is not {what} (no {marker})")
        return True
    if HUB_ID.match(src):
        return False
    raise SdlensError(f"{src}: no such folder, and not a hub id like 'owner/name'")
