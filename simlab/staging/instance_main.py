"""Start one service instance without running `simlab/__init__.py` (run this file by path).

The package's top level imports the simulator and pandas, which would add a
second and ~60 MB to every instance start; an instance needs neither.
"""
import sys
import types
from pathlib import Path

if __name__ == "__main__":
    sys.path.pop(0)  # this file's folder would shadow top-level modules (e.g. `prometheus`)
    package = Path(__file__).resolve().parents[1]
    if "simlab" not in sys.modules:
        stub = types.ModuleType("simlab")
        stub.__path__ = [str(package)]
        sys.modules["simlab"] = stub
    sys.path.insert(0, str(package.parent))
    from simlab.staging.service import main

    sys.exit(main())
