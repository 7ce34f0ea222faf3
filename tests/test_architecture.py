"""The import graph follows the data (docs/architecture.md): Jamf -> devices -> compliance -> Intune.

Read from the source with ``ast``, so an import inside a function counts as much as one at the top.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _imports(path):
    """Every module name a file imports (absolute imports, and relative ones resolved against its package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(ROOT).with_suffix("").parts[:-1]
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                module = "%s.%s" % (base, node.module) if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            names.extend("%s.%s" % (module, alias.name) for alias in node.names)
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value.startswith("compliance.") and " " not in node.value
        ):
            names.append(node.value)  # import_module("compliance.x") or a dotted task path: a dependency all the same
    return names


def _python_files(app):
    return sorted(p for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts)


def test_the_scan_sees_imports():
    """The checker itself: it finds top-level, function-level, relative and string imports."""
    sample = ROOT / "devices" / "_architecture_sample.py"
    sample.write_text(
        "import compliance.tasks\n"
        "def f():\n    from compliance.models import X\n    from . import models\n"
        "TASK = 'compliance.tasks.deliver_task'\n"
    )
    try:
        found = _imports(sample)
    finally:
        sample.unlink()
    assert "compliance.tasks" in found
    assert "compliance.models" in found
    assert "devices.models" in found
    assert "compliance.tasks.deliver_task" in found


@pytest.mark.parametrize("path", _python_files("devices"), ids=lambda p: str(p.relative_to(ROOT)))
def test_devices_never_imports_compliance(path):
    offending = [name for name in _imports(path) if name == "compliance" or name.startswith("compliance.")]
    assert not offending, "%s imports %s: devices announces (devices.signals), compliance reacts" % (
        path.relative_to(ROOT), ", ".join(sorted(set(offending))))


@pytest.mark.parametrize("path", sorted(ROOT.glob("*/models.py")) + sorted(ROOT.glob("*/models/*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_models_do_not_queue_background_work(path):
    """A model's save() never queues tasks: a signal receiver or the service function that changed the data does."""
    offending = [name for name in _imports(path) if name.endswith(".tasks") or ".tasks." in name
                 or name.startswith("django_q")]
    assert not offending, "%s imports %s" % (path.relative_to(ROOT), ", ".join(sorted(set(offending))))


def test_portal_core_imports_neither_app():
    """portal's shared ground (models, tenancy, runs, fields, http) stands below devices and compliance."""
    for name in ("models.py", "tenancy.py", "runs.py", "lanes.py", "fields.py", "http.py"):
        path = ROOT / "portal" / name
        offending = [n for n in _imports(path) if n.split(".")[0] in ("devices", "compliance")]
        assert not offending, "portal/%s imports %s" % (name, offending)
