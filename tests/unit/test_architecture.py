"""The dependency rule of docs/architecture: checked over every import in src/voxserve.

Most rules look at every import a module makes, at the top or inside a function. The cycle rule
looks at the imports that run when a module is imported (its top level, without
``if TYPE_CHECKING:`` blocks): a function-level import is the usual way to break a cycle, and an
import that never runs cannot close one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "voxserve"
WEB_FRAMEWORKS = ("fastapi", "starlette")
WEB_SERVER = "uvicorn"
LOWER_THAN_CORE = ("voxserve.storage", "voxserve.engines")
HTTP_CLIENTS = ("httpx", "httpcore", "aiohttp", "urllib3", "requests", "ssl", "socket")
"""Network access: core reaches the network only through protocols (``core.fetching``)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    """The module an ``from ... import`` names, with relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _imported(nodes: Iterable[ast.AST], path: Path) -> Iterator[str]:
    """Every module the import statements among ``nodes`` name; for ``from a import b`` both
    ``a`` and ``a.b`` (which is a module or just a name in ``a``)."""
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names if alias.name != "*")


def imports_of(path: Path) -> set[str]:
    """Every import in the module, at any depth (functions included)."""
    return set(_imported(ast.walk(ast.parse(path.read_text())), path))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run on import: the top level, into ``if``/``try``/``with`` blocks
    (but not ``if TYPE_CHECKING:``), never into functions or classes' methods."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _runtime_statements(node.body)
            yield from _runtime_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _runtime_statements(block)
            for handler in node.handlers:
                yield from _runtime_statements(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            yield from _runtime_statements(node.body)


def top_level_imports_of(path: Path) -> set[str]:
    """The imports that run when the module is imported."""
    return set(_imported(_runtime_statements(ast.parse(path.read_text()).body), path))


ALL = sorted(SRC.rglob("*.py"))
MODULES = {module_name(path): path for path in ALL}


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def area(path: Path) -> str:
    return path.relative_to(SRC).parts[0]


def _roots(names: Iterable[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(SRC)))
def test_only_api_imports_the_web_framework(path: Path) -> None:
    if area(path) == "api":
        return
    bad = _roots(imports_of(path)) & set(WEB_FRAMEWORKS)
    assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(SRC)))
def test_only_api_and_cli_import_the_web_server(path: Path) -> None:
    if area(path) in ("api", "cli"):
        return  # the CLI starts uvicorn
    assert WEB_SERVER not in _roots(imports_of(path)), f"{path.relative_to(SRC)} imports uvicorn"


@pytest.mark.parametrize("package", ["engines", "storage", "audio", "net"])
def test_lower_layers_never_import_core_or_api(package: str) -> None:
    for path in modules(package):
        bad = {m for m in imports_of(path) if m.startswith(("voxserve.core", "voxserve.api"))}
        if package == "net":
            # net implements core's protocols: it may name their types, nothing else of core.
            bad = {m for m in bad if not m.startswith("voxserve.core.fetching")}
        assert not bad, f"{path} imports {bad}"


def test_core_never_imports_api() -> None:
    for path in modules("core"):
        bad = {m for m in imports_of(path) if m.startswith("voxserve.api")}
        assert not bad, f"{path} imports {bad}"


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: p.name)
def test_core_imports_no_http_client(path: Path) -> None:
    names = imports_of(path)
    bad = (_roots(names) & set(HTTP_CLIENTS)) | {m for m in names if m.startswith("voxserve.net")}
    assert not bad, f"core/{path.name} imports {sorted(bad)}: go through a protocol"


def test_api_sees_services_only_never_storage_or_engines() -> None:
    found = {
        str(path.relative_to(SRC)): sorted(bad)
        for path in modules("api")
        if (bad := {m for m in imports_of(path) if m.startswith(LOWER_THAN_CORE)})
    }
    assert not found, found


def test_only_api_imports_the_adapters() -> None:
    # Outside api/, the wire shapes are reached through api.app (the CLI's serve and worker).
    found = {
        str(path.relative_to(SRC)): sorted(bad)
        for path in ALL
        if area(path) != "api"
        and (bad := {m for m in imports_of(path) if m.startswith("voxserve.api.adapters")})
    }
    assert not found, found


JOBS_MAY_IMPORT = ("voxserve.core", "voxserve.storage", "voxserve.settings", "voxserve.errors")
"""The job queue runs core's work (``core.batch_types.JobRunner``) and reads its settings."""


@pytest.mark.parametrize("path", modules("jobs"), ids=lambda p: p.name)
def test_jobs_import_core_and_storage_never_api(path: Path) -> None:
    own = {m for m in imports_of(path) if m.startswith("voxserve.")}
    bad = {m for m in own if not m.startswith(("voxserve.jobs", *JOBS_MAY_IMPORT))}
    assert not bad, f"jobs/{path.name} imports {sorted(bad)}"


def test_core_reaches_the_job_queue_through_its_protocol() -> None:
    for path in modules("core"):
        bad = {m for m in imports_of(path) if m.startswith("voxserve.jobs")}
        assert not bad, f"{path} imports {bad}: use core.batch_types.BatchQueue"


def test_adapters_never_import_each_other() -> None:
    adapters = SRC / "api" / "adapters"
    for folder in (p for p in adapters.iterdir() if p.is_dir()):
        for path in folder.rglob("*.py"):
            for name in imports_of(path):
                if name.startswith("voxserve.api.adapters."):
                    assert name.split(".")[3] == folder.name, f"{path} imports {name}"


# ------------------------------------------------------------------------------- cycles


def import_graph(*, function_level: bool = False) -> dict[str, set[str]]:
    """Module -> the voxserve modules its import-time imports name (packages by their
    ``__init__``; a name that is no module, as in ``from voxserve.errors import NotFound``,
    adds no edge); ``function_level`` adds the imports inside functions."""
    read = imports_of if function_level else top_level_imports_of
    return {
        name: {m for m in read(path) if m in MODULES and m != name}
        for name, path in MODULES.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that ends where it starts) per strongly connected component with
    more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(_path_through(set(component), graph))
    return found


def _path_through(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module, as a path."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & component):
            if child == start:
                return [*paths[node], start]
            if child not in paths:
                paths[child] = [*paths[node], child]
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")  # a component always has one


def test_no_import_cycles_between_modules() -> None:
    found = [" -> ".join(cycle) for cycle in cycles(import_graph())]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_no_import_cycles_even_through_function_level_imports() -> None:
    # A function-level import hides a cycle from Python, not from the reader (the CLI's
    # main <-> local circle was one).
    found = [" -> ".join(cycle) for cycle in cycles(import_graph(function_level=True))]
    assert not found, "import cycles through function-level imports:\n" + "\n".join(found)


def test_the_cycle_finder_finds_a_cycle_and_its_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"x": {"y"}, "y": set()}) == []
