"""The package's shape (issue 16): one `mossforge` namespace in site-packages, no first-party
import cycle, Prefect only in mossforge.flows, plain Python in generators and filters."""

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"mossforge": REPO / "mossforge", "mossforge.flows": REPO / "flows",
            "mossforge.generators": REPO / "generators", "mossforge.filters": REPO / "filters"}


def first_party_modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            if ".venv" in path.parts or "templates" in path.parts:
                continue
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """First-party modules `name` imports (at the top or inside functions)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # a package importing its own submodules (or a module its parent package) is no cycle
            if target and target != name and not name.startswith(target + ".") \
                    and not target.startswith(name + "."):
                found.add(target)
    return found


def test_no_first_party_import_cycle():
    modules = first_party_modules()
    graph = {name: imports_of(path, name, modules) for name, path in modules.items()}
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert cycles == []


def test_prefect_only_in_flows_and_plain_python_in_generators_and_filters():
    modules = first_party_modules()
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        uses_prefect = any(m == "prefect" or m.startswith("prefect.") for m in imported)
        if name.startswith(("mossforge.generators", "mossforge.filters")):
            assert not uses_prefect and not any(m.startswith("mossforge.flows") for m in imported), name
        elif name.startswith("mossforge.flows."):
            assert uses_prefect, f"{name} does not use Prefect: it belongs outside mossforge.flows"


@pytest.mark.slow
def test_the_wheel_installs_only_the_mossforge_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(tmp_path), str(REPO)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("mossforge-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"mossforge", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    for module in ("mossforge/flows/build.py", "mossforge/generators/seedbank/bank.py",
                   "mossforge/filters/refusal.py", "mossforge/cli/__main__.py"):
        assert module in names
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "mossforge = mossforge.cli:main" in entry  # (hands a run to the warm runner, or runs `app`)

