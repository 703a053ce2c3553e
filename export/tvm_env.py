"""Where TVM lives: this interpreter if it imports tvm, else $EDGEHOUND_TVM_PYTHON, else .venv-tvm."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from edgehound.runtime.errors import ToolMissing

REPO = Path(__file__).resolve().parents[1]


def tvm_python() -> str:
    if os.environ.get("EDGEHOUND_TVM_PYTHON"):
        return os.environ["EDGEHOUND_TVM_PYTHON"]
    if importlib.util.find_spec("tvm") is not None:
        return sys.executable
    for candidate in (Path.cwd() / ".venv-tvm/bin/python", REPO / ".venv-tvm/bin/python"):
        if candidate.is_file():
            return str(candidate)
    raise ToolMissing("TVM is not installed: run `make setup` (it creates .venv-tvm), or set "
                         "EDGEHOUND_TVM_PYTHON to a Python that has apache-tvm")
