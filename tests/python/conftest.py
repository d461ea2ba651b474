import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("THRIFTY_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> Path of a file in a temporary directory."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def thrifty_cli():
    """The command that runs the installed CLI with this interpreter."""
    return [sys.executable, "-m", "thrifty"]
