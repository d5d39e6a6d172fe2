"""Config schemas given as JSON Schema must be self-contained.

A JSON Schema ``$ref`` may name any URI, and jsonschema's default registry
fetches what it does not know (synchronously, without a timeout). A schema an
external plugin sends is untrusted input, so the hub follows only references
inside the schema itself: :func:`self_contained` is the registry every
validation uses, and its retrieval always refuses. A plugin whose schema has
references that leave the document or lead nowhere is refused
(:func:`reference_problems` names each by its JSON pointer).

``referencing`` is imported on first use: most plugins declare a pydantic model,
not a JSON Schema, and a process that never checks a schema never loads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from referencing import Registry, Resource

    # referencing exports no name for the type of Registry.resolver(); its own
    # jsonschema module imports it from here too.
    from referencing._core import Resolver

__all__ = ["REFERENCE_KEYWORDS", "reference_problems", "self_contained"]

REFERENCE_KEYWORDS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})


def _refuse(uri: str) -> Resource[Any]:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


@cache
def self_contained() -> Registry[Any]:
    """The registry of every validation: it retrieves nothing."""
    from referencing import Registry

    return Registry(retrieve=_refuse)  # type: ignore[call-arg]


def _pointer_segment(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _problem(resolver: Resolver[Any], reference: str) -> str | None:
    if not reference.startswith("#"):
        return "points outside the schema"
    try:
        resolver.lookup(reference)
    except Exception:
        # Unresolvable, or a malformed pointer (a word where a list index belongs).
        return "does not resolve within the schema"
    return None


def reference_problems(schema: Mapping[str, Any]) -> list[str]:
    """Every reference of ``schema`` the hub will not follow, as
    ``"<JSON pointer> (<reference>) <why>"``; empty when it is self-contained.

    Every ``$ref``-like key is checked, also inside ``default`` or ``examples``:
    a local reference can make the validator treat those as schemas.
    """
    from referencing.jsonschema import DRAFT202012

    problems: list[str] = []
    root = self_contained().resolver_with_root(DRAFT202012.create_resource(dict(schema)))
    # Iterative: a schema may nest deeper than the interpreter's recursion limit.
    stack: list[tuple[Any, str, Resolver[Any]]] = [(schema, "", root)]
    while stack:
        node, pointer, resolver = stack.pop()
        if isinstance(node, Mapping):
            if pointer and isinstance(node.get("$id"), str):
                # A nested $id moves the base that '#...' references resolve against.
                resolver = resolver.in_subresource(DRAFT202012.create_resource(dict(node)))
            for key, value in node.items():
                here = f"{pointer}/{_pointer_segment(str(key))}"
                if key in REFERENCE_KEYWORDS and isinstance(value, str):
                    why = _problem(resolver, value)
                    if why:
                        problems.append(f"{here} ({value!r}) {why}")
                else:
                    stack.append((value, here, resolver))
        elif isinstance(node, list):
            stack.extend((item, f"{pointer}/{i}", resolver) for i, item in enumerate(node))
    return sorted(problems)
