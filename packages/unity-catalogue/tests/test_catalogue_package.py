"""The catalogue is its own distribution: the hub and the agent both install it,
so it must stand on the SDK alone."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

from unity_catalogue import BUILTIN_PLUGINS


def test_the_catalogue_imports_nothing_of_the_hub() -> None:
    probe = (
        "import json, sys, unity_catalogue;"
        "[cls().get_metadata() for cls in unity_catalogue.BUILTIN_PLUGINS];"
        "print(json.dumps(sorted(sys.modules)))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    roots = {name.split(".")[0] for name in json.loads(output)}
    assert not roots & {"fastapi", "sqlalchemy", "unity", "starlette", "uvicorn", "alembic"}
    # Client libraries load when their plugin runs, not when the catalogue is listed.
    assert not roots & {"asyncpg", "asyncmy", "redis", "aiomqtt", "dns", "cryptography"}


def test_the_catalogue_depends_on_the_sdk_and_psutil_only() -> None:
    requires = importlib.metadata.requires("unity-catalogue") or []
    base = {
        req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip()
        for req in requires
        if "extra ==" not in req
    }
    assert base == {"unity-sdk", "pydantic", "httpx", "psutil"}


def test_every_plugin_has_a_unique_id() -> None:
    ids = [cls().get_metadata().id for cls in BUILTIN_PLUGINS]
    assert len(ids) == len(set(ids)) == 31


def test_a_missing_client_library_names_the_extra_to_install() -> None:
    import tomllib
    from pathlib import Path

    from unity_catalogue.extras import EXTRAS, install_hint

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert set(EXTRAS.values()) <= set(declared["project"]["optional-dependencies"])
    assert install_hint(ModuleNotFoundError("No module named 'left'", name="left")) is None
    missing = ModuleNotFoundError("No module named 'redis'", name="redis")
    assert install_hint(missing) == "pip install 'unity-catalogue[redis]'"
    assert install_hint(ValueError("x")) is None
