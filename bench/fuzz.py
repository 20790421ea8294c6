"""Fuzz every format vadkit reads (ground truth, dataset layouts, box files, videos, model files, result.json).

    python bench/fuzz.py [--n 10000] [--seed 0] [--targets a,b] [--timeout 10] [--save-failures DIR]
                         [--no-real-data] [--only I]

A thin runner: the mutators, seed generators and targets are test infrastructure and live in
``tests/fuzz_harness.py`` (its docstring describes the formats, the documented failures and the JSON line printed);
``tests/test_fuzz.py`` runs short campaigns of it in ``make test``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_harness import main  # noqa: E402 - the harness lives with the tests

if __name__ == "__main__":
    main()
