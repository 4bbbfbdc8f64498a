"""Lists modules in tuitune/ over 700 lines and functions in tuitune/core over 80 lines of code (docstring not counted) (issue 19).

Usage: python scripts/check_sizes.py   (exit 1 when something is listed)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE, MAX_FUNCTION = 700, 80


def main() -> int:
    root = Path(__file__).resolve().parent.parent / "tuitune"
    bad = []
    for f in sorted(root.rglob("*.py")):
        text = f.read_text()
        n = len(text.splitlines())
        where = f.relative_to(root.parent)
        if n > MAX_MODULE:
            bad.append(f"{where}: {n} lines (module, max {MAX_MODULE})")
        if "core" not in f.relative_to(root).parts:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:] or body  # the docstring is not code
                length = (node.end_lineno or node.lineno) - body[0].lineno + 1 + (body[0].lineno > node.lineno)
                if length > MAX_FUNCTION:
                    bad.append(f"{where}:{node.lineno} {node.name}: {length} lines (function, max {MAX_FUNCTION})")
    print("\n".join(bad) or "ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
