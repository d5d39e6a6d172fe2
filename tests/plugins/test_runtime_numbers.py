"""An in-hub plugin's document obeys the SDK's number rule before it is stored."""

from __future__ import annotations

import pytest

from unity.plugins.runtime import as_document


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"n": 10**400}, "document.n"),
        ({"disks": [{"bytes": 2**64}]}, "document.disks.0.bytes"),
        ({"t": float("inf")}, "document.t"),
    ],
)
def test_a_document_with_an_unstorable_number_fails_the_run(
    document: dict[str, object], field: str
) -> None:
    with pytest.raises(TypeError, match=field):
        as_document(document)


def test_a_document_of_storable_numbers_passes_unchanged() -> None:
    document = {"n": 2**63 - 1, "m": -(2**63), "x": 1.5e308, "ok": True}
    assert as_document(document) == document
