"""The parts stay apart (docs/architecture.md, "The parts"): the SAML kit stands alone, the demo
portals use only the kit of the IdP, the IdP never imports the portals, no idp modules import
each other in a circle, and every name is imported from the module that defines it (no module
passes on names it imported itself).

Read from the source with ``ast``, so a violation fails here even in a module no test imports.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from pathlib import Path

from idp.config import PROJECT_ROOT

KIT = "idp.samlkit"
# The launcher of `servicekonto demo` runs the IdP and the portals in one process: the one
# module that joins the two (a plugin of the `servicekonto` group, see setup.cfg).
DEMO_LAUNCHER = "sp_client.demo"


def modules(root: Path, package: str) -> dict[str, Path]:
    """The dotted name of every module in ``package`` under ``root``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, *, modules_known: Collection[str] = ()) -> set[str]:
    """What the module ``name`` imports anywhere in it, inside functions too (``from a import
    b``: ``a.b`` when that is a module). ``from package import module`` names only the module
    when it is one of ``modules_known`` (a module reaching a sibling through its package is no
    dependency on the package's ``__init__``).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            targets = {f"{base}.{alias.name}" for alias in node.names}
            if not targets <= set(modules_known):
                names.add(base)
            names.update(targets)
    return names


def defined_names(path: Path) -> set[str]:
    """The names a module defines at its top level (functions, classes, assignments, also
    inside ``if``/``try`` there); not the names it imports."""
    names: set[str] = set()
    for node in ast.iter_child_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        for inner in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
            if isinstance(inner, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(inner.name)
            elif isinstance(inner, ast.Assign):
                names.update(name.id for target in inner.targets for name in ast.walk(target)
                             if isinstance(name, ast.Name))
            elif isinstance(inner, (ast.AnnAssign, ast.AugAssign)) and \
                    isinstance(inner.target, ast.Name):
                names.add(inner.target.id)
    return names


def passed_on_names(root: Path, packages: tuple[str, ...], importers: tuple[str, ...]) -> list[str]:
    """"file: from module import name" for each name imported from one of ``packages``' modules
    that does not define it (it imported it from elsewhere), in every file under ``importers``."""
    known: dict[str, Path] = {}
    for package in packages:
        known.update(modules(root, package))
    defined: dict[str, set[str]] = {}
    found: list[str] = []
    for folder in importers:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ImportFrom) or node.level or node.module not in known:
                    continue
                module = node.module
                names = defined.setdefault(module, defined_names(known[module]))
                found.extend(f"{path.relative_to(root)}: from {module} import {alias.name}"
                             for alias in node.names
                             if alias.name not in names and f"{module}.{alias.name}" not in known)
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def offending_imports(root: Path, package: str, allowed: str, forbidden: str,
                      exempt: tuple[str, ...] = ()) -> list[str]:
    """"module -> import" for each import of ``forbidden`` (outside ``allowed``) in ``package``."""
    return [f"{name} -> {target}"
            for name, path in modules(root, package).items() if name not in exempt
            for target in sorted(imported(name, path))
            if within(target, forbidden) and not within(target, allowed)]


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """The circles among ``package``'s modules (Tarjan's strongly connected components of more
    than one module), counting imports inside functions too: two modules that need each other
    are one part, however late the second import runs."""
    known = modules(root, package)
    graph = {name: sorted(target for target in imported(name, path, modules_known=known)
                          if target in known and target != name)
             for name, path in known.items()}
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = lowest[name] = len(index)
        stack.append(name)
        for target in graph[name]:
            if target not in index:
                visit(target)
                lowest[name] = min(lowest[name], lowest[target])
            elif target in stack:
                lowest[name] = min(lowest[name], index[target])
        if lowest[name] == index[name]:
            component = [stack.pop()]
            while component[-1] != name:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    return cycles


def test_the_saml_kit_imports_nothing_else_from_idp() -> None:
    assert offending_imports(PROJECT_ROOT, KIT.replace(".", "/"), KIT, "idp") == []


def test_the_demo_portals_import_only_the_saml_kit_from_idp() -> None:
    assert offending_imports(PROJECT_ROOT, "sp_client", KIT, "idp",
                             exempt=(DEMO_LAUNCHER,)) == []


def test_the_idp_never_imports_the_demo_portals() -> None:
    assert offending_imports(PROJECT_ROOT, "idp", "", "sp_client") == []


def test_no_idp_modules_import_each_other_in_a_circle() -> None:
    assert import_cycles(PROJECT_ROOT, "idp") == []


def test_every_name_is_imported_from_the_module_that_defines_it() -> None:
    assert passed_on_names(PROJECT_ROOT, ("idp", "sp_client"),
                           ("idp", "sp_client", "tests", "benchmarks")) == []


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The checks above can fail: a kit module importing the IdP, a portal importing idp.db,
    the IdP importing the portals, two modules importing each other and a name imported from a
    module that only imported it are all found."""
    for name, text in {
        "idp/__init__.py": "",
        "idp/samlkit/__init__.py": "",
        "idp/samlkit/bindings.py": "from idp.db import utcnow\n",
        "idp/db.py": "import sp_client\n\n\ndef utcnow():\n    pass\n",
        "idp/a.py": "def later():\n    from idp import b\n",
        "idp/b.py": "from . import a\nfrom idp.db import utcnow\nLIMIT = 3\n",
        "idp/c.py": "from idp.b import LIMIT, utcnow\n",
        "sp_client/__init__.py": "from idp.samlkit import bindings\nfrom idp.db import utcnow\n",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert offending_imports(tmp_path, "idp/samlkit", KIT, "idp") == [
        "idp.samlkit.bindings -> idp.db", "idp.samlkit.bindings -> idp.db.utcnow"]
    assert offending_imports(tmp_path, "sp_client", KIT, "idp") == [
        "sp_client -> idp.db", "sp_client -> idp.db.utcnow"]
    assert offending_imports(tmp_path, "idp", "", "sp_client") == ["idp.db -> sp_client"]
    assert import_cycles(tmp_path, "idp") == [["idp.a", "idp.b"]]
    assert passed_on_names(tmp_path, ("idp",), ("idp",)) == ["idp/c.py: from idp.b import utcnow"]
