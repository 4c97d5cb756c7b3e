"""The package as a whole: no import circles, no module too long to read, and an installed copy
(not the source tree) that runs from any folder with its presets inside the wheel."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TINY, set_args

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pixelplayer"
MAX_LINES = 500


# --- the import graph --------------------------------------------------------------------------


def module_name(path: Path, root: Path = ROOT) -> str:
    """pixelplayer/a/b.py -> pixelplayer.a.b; pixelplayer/a/__init__.py -> pixelplayer.a."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`): imports that never run."""
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every Import and ImportFrom node, at any depth, except under `if TYPE_CHECKING:`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif _type_checking_only(node):
            todo.extend(node.orelse)
        else:
            todo.extend(ast.iter_child_nodes(node))


def _known(name: str, modules: set[str]) -> str | None:
    """`name` or its longest prefix that is a module of the package."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """module -> {module of the package it imports: line of the first such import}, module-level
    and inside functions alike; `from pixelplayer.x import y` counts as importing pixelplayer.x.y
    when y is a submodule, else pixelplayer.x; relative imports are resolved."""
    paths = {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}
    modules = set(paths)
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        edges: dict[str, int] = {}
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                found = _known(target, modules)
                if found and found != name:
                    edges[found] = min(edges.get(found, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def import_groups(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The groups of modules that import each other, in a circle (Tarjan's strongly connected
    components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # recursion depth: at most the number of modules
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                on_stack.discard(w)
                group.append(w)
            on_stack.discard(v)
            if group:
                groups.append(sorted([v, *group]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups)


def shortest_circle(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """The shortest circle [a, b, ..., a] through the group's first module (breadth first)."""
    start, members = group[0], set(group)
    came: dict[str, str] = {}
    todo = deque([start])
    while todo:
        v = todo.popleft()
        if start in graph[v]:
            path = [v]
            while path[-1] != start:
                path.append(came[path[-1]])
            return [*reversed(path), start]
        for w in graph[v]:
            if w in members and w not in came and w != start:
                came[w] = v
                todo.append(w)
    raise ValueError(f"{group}: not a circle")


def describe(graph: dict[str, dict[str, int]], group: list[str]) -> str:
    """'a (line 3) -> b (line 9) -> a', and the whole group when it holds more modules."""
    circle = shortest_circle(graph, group)
    steps = [f"{a} (line {graph[a][b]})" for a, b in zip(circle, circle[1:], strict=False)]
    text = " -> ".join([*steps, circle[-1]])
    if len(group) > len(circle) - 1:
        text += f"; in all {len(group)} modules import each other: {', '.join(group)}"
    return text


def test_circles_are_found_and_named(tmp_path):
    pkg = tmp_path / "pixelplayer"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "def f():\n    from pixelplayer.sub import b\n",  # a function-level import
        "sub/__init__.py": "",
        "sub/b.py": "from ..c import x\n",  # relative, two levels
        "c.py": "import pixelplayer.a\nx = 1\n",
        "d.py": "import typing\nif typing.TYPE_CHECKING:\n    from pixelplayer import e\n",
        "e.py": "from . import d\n",  # d -> e only for type checkers: no circle
        "f.py": "if TYPE_CHECKING:\n    pass\nelse:\n    import pixelplayer.a\n",  # runs
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = import_graph(pkg)
    assert graph["pixelplayer.sub.b"] == {"pixelplayer.c": 1}
    assert graph["pixelplayer.a"] == {"pixelplayer.sub.b": 2}
    assert graph["pixelplayer.f"] == {"pixelplayer.a": 4} and graph["pixelplayer.d"] == {}
    group = ["pixelplayer.a", "pixelplayer.c", "pixelplayer.sub.b"]
    assert import_groups(graph) == [group]
    assert describe(graph, group) == (
        "pixelplayer.a (line 2) -> pixelplayer.sub.b (line 1) -> pixelplayer.c (line 1) "
        "-> pixelplayer.a"
    )


def test_no_import_circles():
    graph = import_graph()
    groups = import_groups(graph)
    assert not groups, "import circles:\n" + "\n".join(describe(graph, g) for g in groups)


def test_no_module_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(
        f"{p} ({n})" for p, n in sorted(long.items(), key=lambda x: -x[1])
    )


def test_benchmarks_import_only_what_the_package_has():
    """The scripts in benchmarks/ run only by hand: their imports of the package are checked."""
    missing = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith(
                "pixelplayer"
            ):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        missing.append(f"{path.name}:{node.lineno} {node.module}.{alias.name}")
    assert not missing, "benchmarks import what the package does not have: " + ", ".join(missing)


# --- dependencies -----------------------------------------------------------------------------

# distributions used other than by importing a module of their own: (folder, text showing the use)
USED_THROUGH = {
    "ruff": ("scripts", "ruff check"),
    "tensorboard": ("pixelplayer", "torch.utils.tensorboard"),
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """Each distribution pyproject.toml declares (normalized name) -> where: 'dependencies'
    and the extras, e.g. '[dev]'."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"]}
    groups |= {f"[{k}]": v for k, v in project.get("optional-dependencies", {}).items()}
    found: dict[str, set[str]] = {}
    for group, requirements in groups.items():
        for requirement in requirements:
            name = _normal(re.match(r"[A-Za-z0-9_.-]+", requirement).group())
            if name != "pixelplayer":
                found.setdefault(name, set()).add(group)
    return found


def imported(*folders: str) -> dict[str, set[str]]:
    """Top-level module -> the files under `folders` that import it (`pytest.importorskip`
    included), the package's own and the standard library's left out."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            names = [a.name for n in _imports(tree) if isinstance(n, ast.Import) for a in n.names]
            names += [
                n.module for n in _imports(tree) if isinstance(n, ast.ImportFrom) and not n.level
            ]
            names += [
                n.args[0].value
                for n in ast.walk(tree)
                if isinstance(n, ast.Call)
                and getattr(n.func, "attr", "") == "importorskip"
                and n.args
                and isinstance(n.args[0], ast.Constant)
            ]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("pixelplayer", "tests"):
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@functools.cache
def _distributions(module: str) -> frozenset[str]:
    return frozenset(_normal(d) for d in _installed().get(module, []))


@functools.cache
def _installed() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def test_every_declared_dependency_is_used():
    used = {
        d
        for module in imported("pixelplayer", "tests", "benchmarks")
        for d in _distributions(module)
    }
    unused = []
    for name, groups in declared().items():
        if name in used:
            continue
        folder, text = USED_THROUGH.get(name, (None, None))
        files = (ROOT / folder).rglob("*") if folder else []
        if not any(p.is_file() and text in p.read_text(errors="ignore") for p in files):
            unused.append(f"{name} ({', '.join(sorted(groups))})")
    assert not unused, f"declared in pyproject.toml, used nowhere: {', '.join(unused)}"


def test_every_imported_distribution_is_declared():
    everywhere = declared()
    runtime = {name for name, groups in everywhere.items() if groups - {"[dev]"}}
    missing = []
    for folders, allowed in ((("pixelplayer",), runtime), (("tests", "benchmarks"), everywhere)):
        for module, files in imported(*folders).items():
            dists = _distributions(module)
            if not dists & set(allowed):
                what = ", ".join(sorted(dists)) or "not installed"
                missing.append(f"{module} ({what}; in {sorted(files)[0]})")
    assert not missing, f"imported, not declared in pyproject.toml: {', '.join(missing)}"


# --- installed, not editable ------------------------------------------------------------------


def _source_copy(dest: Path) -> Path:
    """What a source distribution holds, copied out so that building writes nothing here."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(
        PACKAGE, dest / "pixelplayer", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return dest


def _pip(*args: str, python: str = sys.executable) -> None:
    argv = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    done = subprocess.run(
        [*argv, *args, "--no-deps", "--no-build-isolation", "--no-index", "-q"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with `pip install .` (not editable) of a copy of the source;
    the dependencies come from this environment's site-packages through a .pth file, which adds
    the folder but none of its .pth files (so not the editable install's finder)."""
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _pip("install", str(_source_copy(root / "src")), python=str(python))
    return venv


def _run(venv: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / argv[0]), *argv[1:]],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_installed_copy_runs_from_any_folder(installed, prepared, tmp_path):
    where = _run(
        installed, tmp_path, "python", "-c", "import pixelplayer; print(pixelplayer.__file__)"
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed), where.stdout  # not the source
    helped = _run(installed, tmp_path, "pixelplayer", "train", "--model", "ame", "--help")
    assert helped.returncode == 0 and "usage: pixelplayer train" in helped.stdout, helped.stderr
    missing = ["pixelplayer", "train", "--config", "pixelplayer-cpu", "--data", "MISSING"]
    failed = _run(installed, tmp_path, *missing, "--out", "X")
    assert failed.returncode == 1
    assert failed.stderr == "pixelplayer: error: MISSING: no such index file or prepared folder\n"
    # a preset by name, a real (tiny) training run, from a folder outside the source tree
    argv = ["pixelplayer", "train", "--config", "pixelplayer-cpu", "--data", str(prepared)]
    tiny = set_args(*TINY, "train.epochs=1")
    trained = _run(installed, tmp_path, *argv, "--out", "run", "--no-progress", *tiny)
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "last.pt").is_file() and (tmp_path / "run" / "config.yaml").is_file()


@pytest.mark.slow
def test_wheel_holds_the_presets(tmp_path):
    wheels = tmp_path / "wheels"
    _pip("wheel", "-w", str(wheels), str(_source_copy(tmp_path / "src")))
    (wheel,) = wheels.glob("pixelplayer-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    presets = sorted(p.relative_to(ROOT).as_posix() for p in PACKAGE.glob("presets/*.yaml"))
    assert presets and not set(presets) - inside, f"not in the wheel: {set(presets) - inside}"
