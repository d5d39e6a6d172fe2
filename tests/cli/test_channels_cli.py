"""``unity channels``: add (URL from stdin, never argv), list, test, log, remove
against a real hub on loopback."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.cli.conftest import Hub, Invoke
from tests.cli.test_cli import as_admin, as_reader
from tests.notify.receivers import http_receiver
from unity.cli.main import app

TOKEN = "CliCanary-77ab31"


def test_add_list_test_log_and_remove_a_channel(cli: Invoke, hub: Hub) -> None:
    with http_receiver() as web:
        url = f"json://127.0.0.1:{web.port}/{TOKEN}"
        added = CliRunner().invoke(
            app,
            as_admin(
                hub, "alerts", "channels", "add", "hook", "--url-stdin", "--min-severity", "warning"
            ),
            input=url + "\n",
            env={"COLUMNS": "200", "NO_COLOR": "1", "UNITY_URL": None, "UNITY_TOKEN": None},
        )
        assert added.exit_code == 0, added.output
        assert "Channel hook added (json://…)" in added.output
        assert TOKEN not in added.output

        listed = cli(*as_reader(hub, "alerts", "channels", "list"))
        assert listed.exit_code == 0, listed.output
        assert "hook" in listed.output
        assert "≥ warning" in listed.output
        assert TOKEN not in listed.output

        refused = cli(*as_reader(hub, "alerts", "channels", "test", "hook"))
        assert refused.exit_code == 1
        tested = cli(*as_admin(hub, "alerts", "channels", "test", "hook"))
        assert tested.exit_code == 0, tested.output
        assert len(web.requests) == 1

    log = cli(*as_reader(hub, "alerts", "channels", "log", "--json"))
    assert log.exit_code == 0, log.output
    entries = json.loads(log.stdout)
    assert [(e["channel"], e["state"], e["test"]) for e in entries] == [("hook", "sent", True)]

    removed = cli(*as_admin(hub, "alerts", "channels", "remove", "hook"))
    assert removed.exit_code == 0, removed.output
    missing = cli(*as_admin(hub, "alerts", "channels", "test", "hook"))
    assert missing.exit_code == 1
    assert "no channel named 'hook'" in missing.output
