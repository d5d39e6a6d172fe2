"""``unity credentials rotate-master-key``: re-encrypt every secret under a new master key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from unity.cli.credentials import ACTOR, run
from unity.cli.output import console, error_console, fail, load_settings
from unity.credentials import CredentialError, CredentialStore, load_keyring
from unity.credentials.crypto import KEY_FILE, PREVIOUS_KEY_FILE, create_key_file, read_key_file

__all__ = ["prepare_key_files", "rotate_master_key"]


def prepare_key_files(data_dir: Path) -> str:
    """Put a new key in ``master.key`` and the old one in ``master.key.previous``.

    Re-running after an interruption resumes: when ``master.key.previous``
    holds another key than ``master.key``, the rotation to ``master.key`` goes on.
    """
    current_path, previous_path = data_dir / KEY_FILE, data_dir / PREVIOUS_KEY_FILE
    current = read_key_file(current_path)
    if previous_path.exists():
        if read_key_file(previous_path).key_id != current.key_id:
            return f"resuming the rotation to master key {current.key_id}"
    else:
        create_key_file(previous_path, current)
    staged = data_dir / (KEY_FILE + ".new")
    staged.unlink(missing_ok=True)
    new = create_key_file(staged)
    os.replace(staged, current_path)
    return f"new master key {new.key_id} in {current_path}; the old one is in {previous_path}"


def rotate_master_key(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keep_previous: Annotated[
        bool, typer.Option("--keep-previous", help="Keep master.key.previous afterwards.")
    ] = False,
) -> None:
    """Re-encrypt every secret under a new master key.

    With the key file, a new master.key is made and the old one kept as
    master.key.previous until every row is re-sealed. With UNITY_MASTER_KEY,
    set it to the new key and the old one in UNITY_MASTER_KEY_PREVIOUS first.
    Interrupted? Run it again: it resumes, and no secret is ever unreadable.
    """
    settings = load_settings()
    env_key = settings.master_key is not None and settings.master_key.get_secret_value().strip()
    if not yes:
        typer.confirm("Re-encrypt every stored secret now?", abort=True)
    if not env_key:
        try:
            load_keyring(settings)  # creates the key file on a first start
            error_console().print(prepare_key_files(settings.data_dir), soft_wrap=True)
        except CredentialError as exc:
            fail(str(exc))

    async def work(store: CredentialStore) -> tuple[int, int, int, str, int]:
        with Progress(
            TextColumn("Re-encrypting"),
            BarColumn(),
            MofNCompleteColumn(),
            console=error_console(),
            transient=False,
        ) as progress:
            task = progress.add_task("rotate", total=None)

            def step(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = await store.rotate_master_key(actor=ACTOR, progress=step)
            progress.update(task, completed=report.total, total=report.total)
        left = set(await store.key_ids_in_use()) - {report.key_id}
        if left:
            fail(f"secrets still sealed with {', '.join(sorted(left))}; run it again")
        return report.total, report.rotated, report.skipped, report.key_id, report.configs

    total, rotated, skipped, key_id, configs = run(work)
    previous = settings.data_dir / PREVIOUS_KEY_FILE
    if not env_key and not keep_previous:
        previous.unlink(missing_ok=True)
    console().print(
        f"{total} credentials under master key {key_id}: {rotated} re-encrypted, "
        f"{skipped} already were; {configs} plugin config(s) re-sealed.",
        soft_wrap=True,
    )
    if env_key:
        console().print("The old key is no longer needed: unset UNITY_MASTER_KEY_PREVIOUS.")
    elif keep_previous:
        console().print(f"The old key is still in {previous}; delete it when you are sure.")
