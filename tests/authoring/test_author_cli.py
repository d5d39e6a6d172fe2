"""Author tooling end to end: scaffold, check, run, install, test with the SDK fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.processes import pip_install_into
from typer.testing import CliRunner

from unity.cli.main import app

runner = CliRunner()


def _unity(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def package(tmp_path: Path) -> Path:
    code, out, _ = _unity("author", "new", "nas-temp", "--dir", str(tmp_path))
    assert code == 0, out
    return tmp_path / "nas-temp"


def test_scaffold_has_entry_point_class_and_test(package: Path) -> None:
    pyproject = (package / "pyproject.toml").read_text()
    assert '[project.entry-points."unity.plugins"]' in pyproject
    assert 'nas-temp = "unity_plugin_nas_temp:NasTempPlugin"' in pyproject
    assert (package / "src" / "unity_plugin_nas_temp" / "__init__.py").is_file()
    assert "unity_plugin_check" in (package / "tests" / "test_plugin.py").read_text()
    code, _, err = _unity("author", "new", "nas-temp", "--dir", str(package.parent))
    assert code == 1
    assert "already exists" in err
    code, _, err = _unity("author", "new", "Bad_Id", "--dir", str(package.parent))
    assert code == 1
    assert "not a valid plugin id" in err


def test_check_passes_without_advice(package: Path) -> None:
    code, out, _ = _unity("author", "check", str(package), "--json")
    assert code == 0
    assert json.loads(out) == [
        {
            "plugin": "nas-temp",
            "ok": True,
            "problems": [],
            "advice": [],
            "prometheus": {
                "load.one": "unity_nas_temp_load_one{host}",
                "load.five": "unity_nas_temp_load_five{host}",
            },
        }
    ]
    code, out, _ = _unity("author", "check", str(package))
    assert code == 0
    assert "unity_nas_temp_load_one{host}" in out


def test_run_checks_config_and_document(package: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"scale": 2}')
    code, out, _ = _unity("author", "run", str(package), "--config", str(good), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["ok"] is True
    assert set(report["document"]["load"]) == {"one", "five"}
    bad = tmp_path / "bad.toml"
    bad.write_text("scale = -1\nextra = 1\n")
    code, out, _ = _unity("author", "run", str(package), "--config", str(bad), "--json")
    assert code == 1
    assert sorted(json.loads(out)["problems"]) == [
        "config extra: Extra inputs are not permitted",
        "config scale: Input should be greater than 0",
    ]


def test_run_warns_about_numbers_no_metric_declares(tmp_path: Path) -> None:
    source = tmp_path / "extra.py"
    source.write_text(
        "from unity_sdk import PluginBase, PluginMetadata, MetricField\n"
        "class Extra(PluginBase):\n"
        "    def get_metadata(self):\n"
        "        return PluginMetadata(id='extra', name='E', version='1.0.0',\n"
        "                              metrics=[MetricField(name='x', unit='s')])\n"
        "    async def collect_data(self):\n"
        "        return {'x': 1.0, 'disk': {'sda': {'reads': 3}}, 'label': 'text'}\n"
    )
    code, out, _ = _unity("author", "run", str(source), "--json")
    assert code == 0, "undeclared numbers are a warning, not an error"
    report = json.loads(out)
    assert report["ok"] is True
    assert report["warnings"] == [
        "'disk/sda/reads' is a number no metric declares: it will not be charted or exported"
    ]
    code, _, err = _unity("author", "run", str(source))
    assert code == 0
    assert "warning" in err
    assert "disk/sda/reads" in err


def test_check_reports_problems_in_a_file(tmp_path: Path) -> None:
    source = tmp_path / "broken.py"
    source.write_text(
        "from unity_sdk import PluginBase, PluginMetadata, MetricField\n"
        "class Broken(PluginBase):\n"
        "    def get_metadata(self):\n"
        "        return PluginMetadata(id='broken', name='B', version='1',\n"
        "                              metrics=[MetricField(name='x')])\n"
        "    async def collect_data(self):\n"
        "        return {'x': 'text'}\n"
    )
    code, _, err = _unity("author", "check", str(source))
    assert code == 1
    assert "not semantic versioning" in err
    source.write_text(source.read_text().replace("version='1'", "version='1.0.0'"))
    code, _, err = _unity("author", "run", f"{source}:Broken")
    assert code == 1
    assert "metric 'x' is declared gauge but the value is 'text'" in err
    code, _, err = _unity("author", "check", str(tmp_path / "missing.py"))
    assert code == 1
    assert "does not exist" in err


def test_installed_package_is_found_and_its_own_tests_pass(package: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip_install_into(package, target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from unity.plugins.loader import PluginLoader\n"
            "loaded, failures = PluginLoader().discover()\n"
            "print(sorted(p.id for p in loaded if p.source == 'entry_point'), failures)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip() == "['nas-temp'] []"
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
        cwd=package,
        env=env,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "1 passed" in tests.stdout
    assert "warning" not in tests.stdout.lower(), "the scaffold's own test runs warning-free"


def test_check_refuses_what_the_hub_loader_refuses(tmp_path: Path) -> None:
    """The same rule as the hub's loader: a config field named like a hub key, and a
    ``PluginBase[Model]`` whose model is not the declared config schema."""
    source = tmp_path / "claims.py"
    source.write_text(
        "from pydantic import BaseModel\n"
        "from unity_sdk import PluginBase, PluginMetadata\n"
        "class Config(BaseModel):\n"
        "    targets: list[str] = []\n"
        "class Other(BaseModel):\n"
        "    url: str = ''\n"
        "class Claims(PluginBase[Config]):\n"
        "    def get_metadata(self):\n"
        "        return PluginMetadata(id='claims', name='C', version='1.0.0',\n"
        "                              config_schema=Config)\n"
        "    async def collect_data(self):\n"
        "        return {}\n"
    )
    code, out, _ = _unity("plugin", "check", str(source), "--json")
    assert code == 1
    [report] = json.loads(out)
    assert report["problems"] == [
        "MetadataError: metadata of plugin 'claims' is not valid: config schema of 'claims' "
        "declares targets: those keys belong to the hub (rename the plugin's field)"
    ]
    source.write_text(source.read_text().replace("config_schema=Config", "config_schema=Other"))
    code, out, _ = _unity("plugin", "check", str(source), "--json")
    [report] = json.loads(out)
    assert report["problems"] == [
        "MetadataError: Claims subclasses PluginBase[Config] but its config_schema is Other: "
        "they must name the same model"
    ]


def test_check_reports_two_metrics_with_one_prometheus_name(tmp_path: Path) -> None:
    source = tmp_path / "clash.py"
    source.write_text(
        "from unity_sdk import PluginBase, PluginMetadata, MetricField\n"
        "class Clash(PluginBase):\n"
        "    def get_metadata(self):\n"
        "        return PluginMetadata(id='clash', name='C', version='1.0.0', metrics=[\n"
        "            MetricField(name='disk_used', unit='bytes'),\n"
        "            MetricField(name='disks.*.used', unit='bytes')])\n"
        "    async def collect_data(self):\n"
        "        return {}\n"
    )
    code, out, _ = _unity("author", "check", str(source), "--json")
    assert code == 1
    [report] = json.loads(out)
    assert report["problems"] == [
        "MetadataError: metadata of plugin 'clash' is not valid: metrics 'disk_used' (gauge) "
        "and 'disks.*.used' (gauge) map to the same Prometheus name "
        "'unity_clash_disk_used_bytes'; rename one of them"
    ]


def test_check_advises_on_names_promtool_would_warn_about(tmp_path: Path) -> None:
    source = tmp_path / "jobs.py"
    source.write_text(
        "from unity_sdk import PluginBase, PluginMetadata, MetricField\n"
        "class Jobs(PluginBase):\n"
        "    def get_metadata(self):\n"
        "        return PluginMetadata(id='jobs', name='J', version='1.0.0', description='d',\n"
        "            metrics=[MetricField(name='queue_gauge', unit='count', description='q'),\n"
        "                     MetricField(name='wait_minutes', unit='count', description='w')])\n"
        "    async def collect_data(self):\n"
        "        return {}\n"
    )
    code, out, _ = _unity("author", "check", str(source), "--json")
    assert code == 0
    [report] = json.loads(out)
    assert report["advice"] == [
        "metric 'queue_gauge': Prometheus name unity_jobs_queue_gauge contains the type name "
        "'gauge' (promtool check metrics warns about it)",
        "metric 'wait_minutes': Prometheus name unity_jobs_wait_minutes uses the unit 'minutes' "
        "where Prometheus expects 'seconds' (promtool check metrics warns about it)",
    ]
