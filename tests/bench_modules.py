"""The scripts of ``benchmarks/`` loaded as modules for tests (``benchmarks/`` is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_benchmark(filename: str, module_name: str) -> ModuleType:
    """``benchmarks/<filename>`` executed as module ``module_name``, registered in
    ``sys.modules`` (dataclasses look their module up there)."""
    spec = importlib.util.spec_from_file_location(module_name, BENCHMARKS / filename)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
