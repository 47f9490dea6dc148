"""README's "## Python client" examples, run as written against `mds serve --demo`.

Each ```python block of that section runs in a fresh interpreter with the README's address
(http://127.0.0.1:8001) replaced by the process's, once the demo holds the data they read
(daily and 5m bars, an option chain, macro series)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import MdsProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8001"


def client_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Python client\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_has_examples_that_name_the_demo_address() -> None:
    blocks = client_blocks()
    assert len(blocks) >= 2
    assert all(README_URL in b for b in blocks)


@pytest.mark.timeout(240)
def test_readme_client_examples_run_against_the_demo(start_mds, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mds: MdsProcess = start_mds(["serve", "--demo"])
    mds.wait_until(
        lambda: len(mds.get("/stocks/MSFT/history", period="5d").json()["bars"]) > 0, 120, "daily bars"
    )
    mds.wait_until(
        lambda: len(mds.get("/stocks/AAPL/intraday", interval="5m").json()["bars"]) > 0, 120, "5m bars"
    )
    mds.wait_until(lambda: mds.get("/options/SPY/chain", max_days=10).status_code == 200, 60, "a chain")
    mds.wait_until(lambda: mds.get("/factors/macro/DGS10/history").json().get("count", 0) > 0, 60, "macro")
    printed = []
    for i, block in enumerate(client_blocks()):
        script = tmp_path / f"readme_{i}.py"
        script.write_text(block.replace(README_URL, mds.url))
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (
            f"block {i}:\n{block}\n--- stderr\n{done.stderr}\n--- stdout\n{done.stdout}"
        )
        printed.append(done.stdout)
    # What the examples say they show: the typed 404, and a snapshot per streamed symbol.
    assert "404 unknown symbol: NOPE" in printed[0]
    assert "snapshot AAPL" in printed[1] and "snapshot MSFT" in printed[1]
