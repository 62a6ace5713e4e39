"""The layer rules of docs/ARCHITECTURE.md, held by reading the source.

- Only the unit of work commits: repositories, routes, commands and services never
  call ``commit()`` (services end their use case with ``with self.uow:``).
- Dependencies between domains go one way: ``users`` never imports ``auth``, and
  the shared modules import neither domain.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "myapp"
UNIT_OF_WORK = PACKAGE / "database" / "unit_of_work.py"
# Composition roots: they may know every domain.
ROOTS = {PACKAGE / "app.py", PACKAGE / "commands.py", PACKAGE / "__init__.py"}
DOMAINS = ("auth", "users")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def calls_named(path: Path, name: str) -> list[int]:
    """Line numbers of every call ``<anything>.name(...)`` in the module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
    ]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # "from myapp import auth" imports the package too
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def domain_of(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 and parts[0] in DOMAINS else None


def imports_domain(path: Path, domain: str) -> list[str]:
    prefix = f"myapp.{domain}"
    return sorted(
        name for name in imported_modules(path) if name == prefix or name.startswith(prefix + ".")
    )


class TestOnlyTheUnitOfWorkCommits:
    @pytest.mark.parametrize("path", modules(), ids=relative)
    def test_module_when_read_calls_commit_only_in_the_unit_of_work(self, path):
        commits = calls_named(path, "commit")

        if path == UNIT_OF_WORK:
            assert len(commits) == 1, "the unit of work commits in one place"
        else:
            assert commits == [], f"{relative(path)} commits at lines {commits}"

    def test_repositories_when_read_never_roll_back_either(self):
        offenders = {
            relative(path): calls_named(path, "rollback") for path in PACKAGE.rglob("repository.py")
        }

        assert offenders and all(lines == [] for lines in offenders.values()), offenders


class TestDomainsDependOneWay:
    @pytest.mark.parametrize(
        "path", [p for p in modules() if domain_of(p) == "users"], ids=relative
    )
    def test_users_module_when_read_imports_nothing_from_auth(self, path):
        assert imports_domain(path, "auth") == []

    @pytest.mark.parametrize(
        "path", [p for p in modules() if domain_of(p) is None and p not in ROOTS], ids=relative
    )
    def test_shared_module_when_read_imports_no_domain(self, path):
        assert [name for domain in DOMAINS for name in imports_domain(path, domain)] == []

    def test_checks_when_given_a_violation_find_it(self, tmp_path):
        # The rules above must be able to fail: a module that breaks both is caught.
        bad = tmp_path / "bad.py"
        bad.write_text("from myapp.auth import bearer\nimport myapp.auth.service\ndb.commit()\n")

        found = imports_domain(bad, "auth")

        assert found == ["myapp.auth", "myapp.auth.bearer", "myapp.auth.service"]
        assert calls_named(bad, "commit") == [3]


DOCUMENT = PACKAGE.parent / "docs" / "ARCHITECTURE.md"
# `myapp/auth/service.py:AuthService.login`: a file and a dotted name defined in it.
REFERENCE = re.compile(r"`(myapp/[\w/]+\.py):([\w.]+)`")


def defined_names(path: Path) -> set[str]:
    """Every function and class in the module, with methods as ``Class.method``."""
    names: set[str] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(prefix + child.name)
                visit(child, f"{prefix}{child.name}.")

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return names


class TestArchitectureDocument:
    def test_document_when_read_opens_with_the_request_traces(self):
        headings = [line for line in DOCUMENT.read_text().splitlines() if line.startswith("#")]

        assert headings[:6] == [
            "# Architecture",
            "## Four requests, hop by hop",
            "### `GET /api/v1/users/me`",
            "### `POST /api/v1/auth/login`",
            "### `POST /api/v1/auth/login/mfa`",
            "### `POST /api/v1/auth/passkeys/login`",
        ]

    def test_every_file_function_reference_when_resolved_exists(self):
        references = REFERENCE.findall(DOCUMENT.read_text())
        root = PACKAGE.parent

        missing = [
            f"{file}:{name}"
            for file, name in references
            if not (root / file).is_file() or name not in defined_names(root / file)
        ]

        assert len(references) >= 30, "the traces name every hop"
        assert missing == []
