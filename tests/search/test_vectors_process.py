"""usearch carries its own libstdc++: loaded first, it used to make pyarrow segfault later in the
same process (converting a time zone compiles a std::regex). Checked in a fresh interpreter,
since what matters is which library the process loads first."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import datetime
import roost.search.vectors  # usearch loaded before pyarrow, as the search and ads stages do
import pyarrow as pa
times = pa.array([datetime.datetime(2022, 1, 1)] * 3, pa.timestamp("ms", tz="UTC"))
assert times.to_pylist()[0] == datetime.datetime(2022, 1, 1, tzinfo=datetime.timezone.utc)
"""


def test_pyarrow_time_zones_work_after_usearch_is_loaded() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
