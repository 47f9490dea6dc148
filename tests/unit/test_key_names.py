"""Cross-process key names are declared once, in mds.constants."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import mds
from mds import constants

SRC = Path(mds.__file__).parent
KEYLIKE = re.compile(r"^(market|mds):|^(quote|quotes|bars|series-gen):$")


def _string_literals(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def test_no_module_but_constants_spells_a_redis_key() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == Path(constants.__file__):
            continue
        for lineno, text in _string_literals(ast.parse(path.read_text(), str(path))):
            # Docstrings may name keys; code may not.
            if "\n" not in text and KEYLIKE.match(text):
                offenders.append(f"{path.relative_to(SRC)}:{lineno}: {text!r}")
    assert offenders == [], "declare these in mds/constants.py:\n" + "\n".join(offenders)


def test_settings_take_their_key_defaults_from_constants() -> None:
    from mds.config import Settings

    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.RLC_REDIS_JOBS_KEY == constants.LIVE_JOBS_KEY == "market:jobs"
    assert s.RLC_REDIS_BACKFILL_KEYS.T2 == constants.backfill_jobs_key("T2") == "market:backfills:T2"
    assert constants.scheduler_leader_key(s.RLC_REDIS_JOBS_KEY) == "market:jobs:scheduler-leader"


def test_queue_side_keys_hang_off_the_queue_key() -> None:
    assert [
        constants.processing_key("q", "w1"),
        constants.lease_key("q", "w1"),
        constants.consumers_key("q"),
        constants.delayed_key("q"),
        constants.dlq_key("q"),
    ] == ["q:processing:w1", "q:lease:w1", "q:consumers", "q:delayed", "q:dlq"]
