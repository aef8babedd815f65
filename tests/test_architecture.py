"""The import rules of docs/architecture.md, checked on the source (ast; nothing is imported).

Walks every module under pipeline/ and fails on
  - an import of a stage package from a stage below it, or between siblings of one layer;
  - an import cycle between modules (top-level and function-level imports alike: a cycle that
    only works because one side imports late is still a cycle in the design);
  - an import of another module's `_private` name (`from x import _y`, `import x._y`, `x._y`
    on an imported module), except a package importing its own private sub-module;
  - a package of pipeline/ that has no place in LAYERS (a new stage must be placed).
Imports under `if TYPE_CHECKING:` are skipped: they never run.

KNOWN_VIOLATIONS lists the cases that exist on main in rooms other helpers own: each is reported
here precisely and is to be fixed by its owner and deleted from the list at merge (a listed
case that no longer occurs fails the test, so the list only shrinks).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "pipeline"

# Where each stage package sits (docs/architecture.md): a module may import from its own package
# and from packages of a lower layer, never from a higher one or from a sibling of its own layer.
LAYERS = {
    "core": 0,         # config, errors, fsutil, owner, backoff, vocabulary, csvsafe, jptext
    "store": 1,        # records, event_store, arrow_build, warehouse, prune
    "classify": 2,     # classifier, reasons/, carriers
    "lake": 2,         # the event lake of many nodes (url, upload, read, compact) and the Spark engine
    "ingest": 3,       # engine, source, session, sink, parsers/, native/ (ingest classifies as it stores)
    "suppression": 4,  # the rule, the guard, the list, the export
    "report": 5,       # reads events and the suppression history
    "sender": 5,       # reads the suppression list before each send
    "preflight": 5,    # DNS and message checks (core only)
    "jobs": 6,         # clean: ingest + suppression + report
    "cli": 7,          # one file per command group
    "console": 8,      # the console script: start-up signal handlers, then the CLI
}
# The root package (pipeline/__init__.py) is the library's front door: it may import any stage
# (late, inside connect()); stages may import only its metadata from it.
ROOT_NAMES_ALLOWED = {"__version__"}

# Known on main at the time of writing, in rooms owned by other helpers (see the module docstring).
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()  # none left


@dataclass(frozen=True)
class Import:
    importer: str   # module doing the import
    target: str     # module imported (or the module a name is taken from)
    name: str       # the name taken ("" for `import x`)
    line: int
    private_attr: bool = False  # `alias._name` on an imported module


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skipped.update(id(n) for n in ast.walk(child))
    return skipped


def collect(root: Path = PACKAGE_ROOT) -> tuple[set[str], list[Import]]:
    """Every module of the package and every import between its modules."""
    modules: dict[str, Path] = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    imports: list[Import] = []
    for mod, path in modules.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        skipped = _type_checking_nodes(tree)
        module_aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source != root.name and not source.startswith(root.name + "."):
                    continue
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in modules:  # `from pkg import module`
                        imports.append(Import(mod, full, "", node.lineno))
                        module_aliases[alias.asname or alias.name] = full
                        if alias.name.startswith("_") and not alias.name.startswith("__"):
                            imports.append(Import(mod, source, alias.name, node.lineno))
                    else:
                        imports.append(Import(mod, source, alias.name, node.lineno))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == root.name or alias.name.startswith(root.name + "."):
                        imports.append(Import(mod, alias.name, "", node.lineno))
                        if alias.asname:
                            module_aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                imports.append(Import(mod, module_aliases[node.value.id], node.attr, node.lineno, True))
    return set(modules), imports


def stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def layer_violations(modules: set[str], imports: list[Import]) -> list[tuple]:
    found = []
    for imp in imports:
        src, dst = stage_of(imp.importer), stage_of(imp.target)
        if dst is None:  # from the root package
            if src is not None and imp.name not in ROOT_NAMES_ALLOWED:
                found.append(("root", imp.importer, f"{imp.target}.{imp.name}", imp.line))
            continue
        if src is None or src == dst:
            continue
        if LAYERS[dst] >= LAYERS[src]:
            found.append(("upward", imp.importer, imp.target, imp.line))
    return found


def private_violations(modules: set[str], imports: list[Import]) -> list[tuple]:
    found = []
    for imp in imports:
        # a private name taken from another module (`from x import _y`, `x._y`)
        if imp.name.startswith("_") and not imp.name.startswith("__"):
            full = f"{imp.target}.{imp.name}"
            own_private_submodule = full in modules and imp.importer == imp.target
            if imp.importer != imp.target and not own_private_submodule:
                found.append(("private", imp.importer, full, imp.line))
        # anything from a private module (`from .reasons._phrases import C`, `import x._y`) outside
        # the package that holds it (its siblings and its package may use it)
        parent, _, last = imp.target.rpartition(".")
        if last.startswith("_") and not last.startswith("__") and parent not in (
                imp.importer, imp.importer.rpartition(".")[0]) and imp.importer != imp.target:
            found.append(("private", imp.importer, imp.target, imp.line))
    return found


def cycles(modules: set[str], imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in imports:
        target = f"{imp.target}.{imp.name}" if f"{imp.target}.{imp.name}" in modules else imp.target
        if target in modules and target != imp.importer:
            graph[imp.importer].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
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
                    found.append(sorted(component))
    return found


def all_violations(root: Path = PACKAGE_ROOT) -> list[tuple[tuple, str]]:
    """Each occurrence as (key, readable line); the key is (rule, importer, target) or
    ("cycle", module, module, ...)."""
    modules, imports = collect(root)
    found = []
    for rule, importer, target, line in layer_violations(modules, imports) + private_violations(modules, imports):
        found.append(((rule, importer, target), f"{rule}: {importer} (line {line}) imports {target}"))
    for component in cycles(modules, imports):
        found.append((("cycle", *component), "cycle: " + " <-> ".join(component)))
    return sorted(set(found))


def test_every_stage_package_has_a_layer():
    packages = {p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages - set(LAYERS) == set(), "place the new package in LAYERS (and docs/architecture.md)"
    assert set(LAYERS) - packages == set(), "LAYERS names a package that no longer exists"


def test_no_upward_import_no_cycle_no_private_import():
    new = [line for key, line in all_violations() if key not in KNOWN_VIOLATIONS]
    assert new == [], "import rules broken (docs/architecture.md):\n  " + "\n  ".join(new)


def test_known_violations_still_exist():
    """The allow-list only shrinks: a fixed case must be deleted from KNOWN_VIOLATIONS."""
    fixed = sorted(KNOWN_VIOLATIONS - {key for key, _ in all_violations()})
    assert fixed == [], f"fixed, delete from KNOWN_VIOLATIONS in tests/test_architecture.py: {fixed}"


# ----------------------------------------------------------------------------- the checker itself
def write_tree(root: Path, files: dict[str, str]) -> Path:
    pkg = root / "pipeline"
    for rel, text in files.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for d in [pkg, *[p for p in pkg.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()
    return pkg


def test_the_checker_finds_each_kind_of_violation(tmp_path):
    pkg = write_tree(tmp_path, {
        "core/util.py": "from ..store.records import SCHEMA\n",               # upward
        "store/records.py": "SCHEMA = 1\ndef f():\n    from ..core import util\n",
        "report/a.py": "from ..sender.b import X\n",                            # sibling
        "sender/b.py": "X = 1\n",
        "cli/x.py": "from ..jobs.clean import _helper\nimport pipeline.jobs.clean as jc\njc._other()\n",
        "jobs/clean.py": "def _helper(): pass\ndef _other(): pass\n",
        "ingest/p.py": "from .q import A\n",
        "ingest/q.py": "from .p import B\n",                                     # cycle
        "ingest/native/__init__.py": "from . import _ext\n",                    # own private module: fine
        "ingest/native/_ext.py": "",
        "classify/c.py": "from .reasons._phrases import C\nfrom typing import TYPE_CHECKING\n"
                         "if TYPE_CHECKING:\n    from ..cli.x import Y\n",      # private module; TYPE_CHECKING skipped
        "classify/reasons/_phrases.py": "C = 1\n",
        "classify/reasons/auth.py": "from ._phrases import C\n",            # a sibling of the private module: fine
        "preflight/d.py": "from .. import __version__, connect\n",              # root: metadata only
    })
    found = all_violations(pkg)
    keys, lines = {k for k, _ in found}, [line for _, line in found]
    assert ("upward", "pipeline.core.util", "pipeline.store.records") in keys
    assert ("upward", "pipeline.report.a", "pipeline.sender.b") in keys
    assert ("private", "pipeline.cli.x", "pipeline.jobs.clean._helper") in keys
    assert ("private", "pipeline.cli.x", "pipeline.jobs.clean._other") in keys
    assert ("cycle", "pipeline.ingest.p", "pipeline.ingest.q") in keys
    assert ("cycle", "pipeline.core.util", "pipeline.store.records") in keys
    assert ("private", "pipeline.classify.c", "pipeline.classify.reasons._phrases") in keys
    assert ("root", "pipeline.preflight.d", "pipeline.connect") in keys
    assert not any("native" in k[1] for k in keys)
    assert not any(k[1] == "pipeline.classify.reasons.auth" for k in keys)
    assert not any(k[1] == "pipeline.classify.c" and "cli" in k[2] for k in keys)
    assert any(line.startswith("upward: pipeline.core.util (line 1) imports pipeline.store.records") for line in lines)


# ----------------------------------------------------------------------------- the tests' own imports
TESTS_DIR = Path(__file__).resolve().parent


def forbidden_test_imports(tests_dir: Path) -> list[str]:
    """Imports of conftest or of a test module by any module under tests/ (shared helpers live in
    tests/fixtures.py; pytest hands conftest's fixtures to the tests that name them)."""
    test_modules = {p.stem for p in tests_dir.glob("test_*.py")}
    found = []
    for path in sorted(tests_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "conftest" or top in test_modules:
                    found.append(f"{path.name}:{node.lineno} imports {name}")
    return found


def test_no_test_module_imports_conftest_or_another_test_module():
    assert forbidden_test_imports(TESTS_DIR) == [], "move what is shared to tests/fixtures.py"


def test_the_test_import_check_finds_both_kinds(tmp_path):
    (tmp_path / "conftest.py").write_text("import pytest\n")
    (tmp_path / "test_a.py").write_text("from conftest import x\n")
    (tmp_path / "test_b.py").write_text("def f():\n    from test_a import y\n")
    (tmp_path / "test_c.py").write_text("import test_b.sub\nfrom fixtures import z\n")
    (tmp_path / "fixtures.py").write_text("import os\n")
    assert forbidden_test_imports(tmp_path) == ["test_a.py:1 imports conftest", "test_b.py:2 imports test_a",
                                             "test_c.py:1 imports test_b.sub"]
