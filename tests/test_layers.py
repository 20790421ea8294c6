"""The house rule: each layer imports only the layers before it (docs/architecture.md). This test reads every
import of ``src/vadkit`` (module level and inside functions) and fails on one that points up."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vadkit"

# lowest first; a module may import its own layer and the layers before it
LAYERS = [
    {"io", "registry", "progress", "device"},
    {"datasets", "models", "losses"},
    {"features"},
    {"detectors"},
    {"scoring"},
    {"metrics", "report"},
    {"engine"},
    {"inference", "viewer", "cli", "cli_score", "cli_output"},
]
# stricter: the plain building blocks import nothing of vadkit beyond these
ONLY = {"models": {"models", "registry", "losses"}, "losses": {"losses"}, "datasets": {"datasets", "io", "registry"},
        "io": {"io"}, "registry": {"registry"}, "progress": {"progress"}, "device": {"device"}}


def part(module: str) -> str:
    """``vadkit.features.store`` -> ``features``."""
    return module.split(".")[1] if module.count(".") else ""


def level(name: str) -> int:
    for i, names in enumerate(LAYERS):
        if name in names:
            return i
    raise AssertionError(f"vadkit.{name} is in no layer: add it to LAYERS (and to docs/architecture.md)")


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("vadkit.")]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            if node.module and node.module.startswith("vadkit."):
                found.append((node.lineno, node.module))
            elif node.module == "vadkit":
                found += [(node.lineno, f"vadkit.{a.name}") for a in node.names]
    return found


def upward_imports() -> list[str]:
    faults = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent).with_suffix("")
        own = part(".".join(relative.parts))
        if not own or own == "__init__":
            continue
        for line, target in imports(path):
            other = part(target)
            allowed = ONLY.get(own)
            if (allowed is not None and other not in allowed) or level(other) > level(own):
                faults.append(f"{path.relative_to(SRC.parent)}:{line}: {own} imports {target}")
    return faults


def test_no_module_imports_a_layer_above_it():
    assert upward_imports() == []


def test_the_check_can_fail(tmp_path, monkeypatch):
    """A fake upward import (features importing engine) is caught."""
    fake = tmp_path / "vadkit"
    (fake / "features").mkdir(parents=True)
    (fake / "features" / "bad.py").write_text("def f():\n    from vadkit.engine.train import train\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert upward_imports() == ["vadkit/features/bad.py:2: features imports vadkit.engine.train"]


def test_every_part_of_vadkit_has_a_layer():
    for path in SRC.iterdir():
        if path.name.startswith(("_", ".")) or path.name == "assets" or path.suffix not in ("", ".py"):
            continue
        level(path.stem)


if __name__ == "__main__":
    pytest.main([__file__])


def import_graph() -> dict[str, set[str]]:
    """Module -> the vadkit modules it imports (module level or inside functions; a name imported from a package
    counts as the package)."""
    modules = {}
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {}
    for name, path in modules.items():
        targets = set()
        for _, target in imports(path):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``graph``: each strongly connected group of more than one module, sorted."""
    order, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        on_stack.add(module)
        for other in graph[module]:
            if other not in order:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], order[other])
        if low[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in order:
            visit(module)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_can_fail():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
