"""The layout holds: no import circle, no import against the rooms' directions (tests/architecture.py)."""

from __future__ import annotations

import architecture


def test_no_import_circles_and_no_forbidden_directions() -> None:
    assert architecture.problems() == []


def test_the_check_sees_a_circle_and_a_wrong_direction() -> None:
    edges = [
        architecture.Edge("recorderd.a", "recorderd.b", 1),
        architecture.Edge("recorderd.b", "recorderd.a", 1),
        architecture.Edge("recorderd.c", "recorderd.c.d", 1),
    ]
    assert architecture.cycles(edges) == [["recorderd.a", "recorderd.b"]]
    known = {m: architecture.ROOT / "x.py" for m in ("recorderd.daemon.x", "recorderd.cli.y", "storage.z")}
    wrong = [
        architecture.Edge("recorderd.daemon.x", "recorderd.cli.y", 3),  # the daemon never imports a front end
        architecture.Edge("storage.z", "recorderd.daemon.x", 4),  # storage imports no recorderd
        architecture.Edge("recorderd.cli.y", "recorderd.daemon.x", 5),  # allowed: `recorderd run`
    ]
    found = architecture.direction_problems(wrong, known)
    assert len(found) == 2 and "daemon may not import recorderd.cli" in found[0]
