"""The README and docs/ say what the code does: links resolve inside the repository, names and paths exist,
the import rules in docs/architecture.md hold, the README's scenario is the bundled one, `--version` works."""
from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.metadata
import io
import re
import subprocess
from pathlib import Path

import pytest

import simlab
from simlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", ROOT / "reports" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
INLINE = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
LINK = re.compile(r"!?\[(?:[^\]\n]|\n(?!\n))*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def prose(path: Path) -> str:
    """A Markdown file without its fenced code blocks (links and names in code are not links)."""
    return FENCE.sub("", path.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]|\[|\]\([^)]*\)", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", prose(path), re.MULTILINE):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def ignored_by_git(path: Path) -> bool:
    try:
        done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves_inside_the_repository(doc):
    problems = []
    for target in LINK.findall(prose(doc)):
        if re.match(r"^(https?|mailto):", target):
            continue  # a web page, not a file
        path_part, _, fragment = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        try:
            path.relative_to(ROOT)
        except ValueError:
            problems.append(f"{target}: outside the repository")
            continue
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif ignored_by_git(path):
            problems.append(f"{target}: ignored by git, so absent from a fresh clone")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path):
            problems.append(f"{target}: no heading with anchor #{fragment} in {path.name}")
    assert problems == [], f"{doc.name}: {problems}"


def test_the_readme_links_the_architecture_and_nothing_outside():
    text = (ROOT / "README.md").read_text()
    assert "(docs/architecture.md)" in text
    assert "../" not in "".join(LINK.findall(text))


def test_no_soon_for_what_exists():
    for doc in DOCS:
        assert "(soon)" not in doc.read_text(), doc.name


def test_the_readme_scenario_is_the_bundled_checkout_canary():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## One scenario file", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    assert block == (ROOT / "experiments" / "checkout-canary.yaml").read_text()


def test_version_prints_the_package_version():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--version"])
    assert code == 0
    assert out.getvalue().strip() == f"simlab {importlib.metadata.version('simlab')}"
    assert simlab.__version__ == importlib.metadata.version("simlab")


# --- names and paths the docs mention exist --------------------------------------------------

TOP = ("simlab/", "tests/", "benchmarks/", "experiments/", "docs/", "notebooks/")


def inline_code(path: Path) -> list[str]:
    return INLINE.findall(prose(path))


def resolve_path(token: str, doc: Path) -> bool:
    if token.startswith(TOP):
        return any(ROOT.glob(token.rstrip("/")))
    token = token.rstrip("/")
    if "/" in token:  # relative to the package: engines/request/fleet.py
        return any((ROOT / "simlab").glob(token))
    return any((ROOT / "simlab").rglob(token))  # a bare module file name: somewhere in the package


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_path_the_docs_name_exists(doc):
    paths = []
    for code in inline_code(doc):
        for token in code.replace(",", " ").split():
            if re.fullmatch(r"(?:[\w.*-]+/)+[\w.*-]*", token) and token.startswith(TOP):
                paths.append(token)
            elif doc.name == "architecture.md" and re.fullmatch(r"(?:[\w*-]+/)*[\w*-]+\.py", token):
                paths.append(token)
    missing = [p for p in paths if not resolve_path(p, doc)]
    assert missing == [], f"{doc.name} names files that do not exist: {missing}"


def test_the_staging_modules_in_architecture_md_are_the_staging_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("### The staging package", 1)[1].split("\n\n", 2)[1]
    named = {m for row in table.splitlines()[2:] for m in re.findall(r"`(\w+\.py)`", row.split("|")[1])}
    present = {p.name for p in (ROOT / "simlab" / "staging").glob("*.py")} - {"__init__.py"}
    assert named == present, f"described but absent: {sorted(named - present)}; present but not described: " \
                             f"{sorted(present - named)}"


DOTTED = re.compile(r"\bsimlab(?:\.[A-Za-z_]\w*)+")
SIDE_EFFECTS = {"simlab.staging.locustfile"}  # imports Locust, which patches the standard library (gevent)


def resolve_name(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        if module_name in SIDE_EFFECTS:
            return (ROOT / (module_name.replace(".", "/") + ".py")).exists()
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_simlab_name_the_docs_use_exists(doc):
    names = {m for code in inline_code(doc) for m in DOTTED.findall(code.replace("\n", " "))}
    missing = sorted(n for n in names if not resolve_name(n))
    assert missing == [], f"{doc.name} names what does not exist: {missing}"


# --- the layers of docs/architecture.md -------------------------------------------------------

def documented_layers() -> dict[str, set[str]]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("## Layers: who imports whom", 1)[1].split("\n| package | may import |", 1)[1]
    rows = table.split("\n\n", 1)[0].strip().splitlines()[1:]
    allowed: dict[str, set[str]] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        package = re.findall(r"`(\w+)`", cells[0])[0]
        allowed[package] = set(re.findall(r"`(\w+)`", cells[1]))
        if "everything" in cells[1]:
            allowed[package] |= {"*"}
    return allowed


def documented_exceptions() -> dict[str, set[str]]:
    """{module file: packages it may import beyond its package's row}, from the known-exceptions table."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("| module | also imports | why |", 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    out: dict[str, set[str]] = {}
    for row in table:
        cells = [c.strip() for c in row.strip("|").split("|")]
        out[re.findall(r"`([\w/.]+)`", cells[0])[0]] = set(re.findall(r"`(\w+)`", cells[1]))
    return out


def package_of(module: str) -> str:
    parts = module.split(".")
    return "simlab" if len(parts) == 1 else parts[1]


def simlab_imports() -> dict[str, dict[str, set[str]]]:
    """{package: {imported package: {files}}} for every import of simlab inside simlab/, lazy ones included."""
    found: dict[str, dict[str, set[str]]] = {}
    for path in (ROOT / "simlab").rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        source = package_of(module)
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "simlab":
                    targets = [f"simlab.{a.name}" for a in node.names]
                elif node.module.startswith("simlab."):
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("simlab")]
            for target in targets:
                name = package_of(target)
                if name == "__version__":
                    name = "simlab"
                if name != source:
                    found.setdefault(source, {}).setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_simlab_package_has_a_row_in_the_layer_table():
    allowed = documented_layers()
    present = {p.stem if p.is_file() else p.name for p in (ROOT / "simlab").iterdir()
               if (p.suffix == ".py" and p.stem not in ("__init__", "__main__")) or (p / "__init__.py").exists()}
    assert present - set(allowed) == set(), "add these to docs/architecture.md's layer table"
    assert set(allowed) - present - {"simlab"} == set(), "the layer table names packages that no longer exist"


def test_imports_follow_the_layer_table_of_architecture_md():
    """Every import inside simlab/ is allowed by its package's row, or is a listed exception."""
    allowed = documented_layers()
    allowed["__main__"] = {"cli"}
    exceptions = documented_exceptions()
    wrong = []
    for source, targets in sorted(simlab_imports().items()):
        may = allowed.get(source, set())
        for target, files in sorted(targets.items()):
            files = {f for f in files if target not in exceptions.get(f, set())}
            if files and "*" not in may and target not in may:
                wrong.append(f"{source} imports {target} ({', '.join(sorted(files))})")
    assert wrong == [], "imports docs/architecture.md does not allow (fix the import or the table):\n" + "\n".join(wrong)


def test_every_listed_exception_is_still_needed():
    imports = simlab_imports()
    for path, targets in documented_exceptions().items():
        source = package_of(".".join(Path(path).with_suffix("").parts))
        for target in targets:
            assert path in imports.get(source, {}).get(target, set()), \
                f"{path} no longer imports {target}: drop it from docs/architecture.md's exceptions"
