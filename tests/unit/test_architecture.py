"""The dependency rule of docs/architecture: checked over every import in src/voxserve."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "voxserve"
WEB = ("fastapi", "starlette", "uvicorn")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def area(path: Path) -> str:
    return path.relative_to(SRC).parts[0]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_only_api_imports_the_web_framework(path: Path) -> None:
    if area(path) in ("api", "cli"):
        return  # the CLI starts uvicorn
    bad = {m for m in imports_of(path) if m.split(".")[0] in WEB}
    assert not bad, f"{path.name} imports {bad}"


@pytest.mark.parametrize("package", ["engines", "storage", "audio"])
def test_lower_layers_never_import_core_or_api(package: str) -> None:
    for path in modules(package):
        bad = {m for m in imports_of(path) if m.startswith(("voxserve.core", "voxserve.api"))}
        assert not bad, f"{path} imports {bad}"


def test_core_never_imports_api() -> None:
    for path in modules("core"):
        bad = {m for m in imports_of(path) if m.startswith("voxserve.api")}
        assert not bad, f"{path} imports {bad}"


def test_adapters_never_import_each_other() -> None:
    adapters = SRC / "api" / "adapters"
    for folder in (p for p in adapters.iterdir() if p.is_dir()):
        for path in folder.rglob("*.py"):
            for name in imports_of(path):
                if name.startswith("voxserve.api.adapters."):
                    assert name.split(".")[3] == folder.name, f"{path} imports {name}"
