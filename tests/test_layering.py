"""The layer rule, checked on the source: imports only point down, and top-level packages form no cycle.

Layers (README, Layout): errors, determinism, paths -> entropy/, container/ -> codec packages -> profiles/,
pipeline -> tools (eval/, train/, scale/, report/, bench/, commands/, cli). Every import counts, also one
inside a function (the lazy imports that keep ``semcodec --help`` fast) and relative ones, resolved here
to absolute names, because a lazy import still ties the layers together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import semcodec

ROOT = Path(semcodec.__file__).parent
CODEC_PACKAGES = {"image", "text", "semantic", "generative", "lossless", "container", "entropy"}
UPPER_LAYERS = {"pipeline", "eval", "train", "scale", "report", "cli", "bench", "commands", "lazy_command"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, absolute module)`` for every import in the file, nested ones included."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target
            if node.module is None or node.level:  # `from . import x` may import submodule x
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"


def top_package(module: str) -> str | None:
    """``semcodec.image.learned.coding`` -> ``image``; None for modules outside semcodec."""
    parts = module.split(".")
    if parts[0] != "semcodec" or len(parts) < 2:
        return None
    return parts[1]


def edges() -> list[tuple[str, int, str, str]]:
    """``(file, line, from top package, to top package)`` for every import between two top packages."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        src = top_package(module_name(path))
        for line, target in imports_of(path):
            dst = top_package(target)
            if src and dst and dst != src and (ROOT / dst).exists() | (ROOT / f"{dst}.py").exists():
                out.append((str(path.relative_to(ROOT)), line, src, dst))
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_resolves_relative_and_nested_imports() -> None:
    """The walker itself: relative imports inside a function resolve to absolute modules."""
    found = {t for _, t in imports_of(ROOT / "cli.py")}
    assert {"semcodec.pipeline", "semcodec.image_io", "semcodec.container"} <= found  # function-level ones
    assert "semcodec.image.learned.models" in {t for _, t in imports_of(ROOT / "image" / "learned" / "coding.py")}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_codec_packages_never_import_upper_layers() -> None:
    bad = sorted({f"{file}:{line} ({src} -> {dst})" for file, line, src, dst in edges()
                  if src in CODEC_PACKAGES and dst in UPPER_LAYERS})
    assert not bad, "codec packages import tool layers:\n" + "\n".join(bad)


def test_no_cycle_between_top_level_packages() -> None:
    graph: dict[str, set[str]] = {}
    where: dict[tuple[str, str], str] = {}
    for file, line, src, dst in edges():
        graph.setdefault(src, set()).add(dst)
        where.setdefault((src, dst), f"{file}:{line}")
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between packages: " + " -> ".join(cycle) + "\n" + "\n".join(
        f"  {a} -> {b}: {where[(a, b)]}" for a, b in zip(cycle, cycle[1:], strict=False))
