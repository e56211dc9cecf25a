"""A real PostgreSQL server for the store tests: the one named by ROOST_TEST_PG_URL, or else a
throwaway cluster started here with Debian's `initdb` and `pg_ctl` (package `postgresql`) in a
temporary directory, on a free port of 127.0.0.1, and removed afterwards. `None` with the reason
when neither is possible, so the tests skip saying why."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

URL_VARIABLE = "ROOST_TEST_PG_URL"


def server_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: from PATH, or Debian's versioned one."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    candidates += [Path(d) for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_cluster(binaries: Path) -> Iterator[str]:
    """Start a cluster (trust auth, fsync off: it lives for one test session) and yield its URL.
    PostgreSQL refuses to run as root, so under root the cluster runs as the `postgres` user that
    Debian's package creates."""
    as_root = os.geteuid() == 0
    run_as = ["runuser", "-u", "postgres", "--"] if as_root else []
    home = Path(tempfile.mkdtemp(prefix="roost-pg-"))  # not under pytest's 0700 root-owned tree
    if as_root:
        shutil.chown(home, "postgres")
    data, port = home / "data", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*run_as, *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")

    try:
        run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "roost",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-F -k {home} -p {port} -c listen_addresses=127.0.0.1 -c max_connections=200"
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(home / "log"),
            "start",
        )
        try:
            yield f"postgresql://roost@127.0.0.1:{port}/postgres"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[tuple[str | None, str]]:
    """(URL, where it came from) of a server to test against, or (None, why there is none)."""
    url = os.environ.get(URL_VARIABLE, "")
    if url:
        yield url, URL_VARIABLE
        return
    binaries = server_binaries()
    if binaries is None:
        yield None, f"no PostgreSQL: set {URL_VARIABLE}, or install Debian's postgresql (initdb, pg_ctl)"
        return
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        yield None, "running as root without runuser: cannot start PostgreSQL as the postgres user"
        return
    with ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_cluster(binaries))
        except (RuntimeError, OSError, KeyError, subprocess.TimeoutExpired) as exc:
            yield None, f"could not start a throwaway PostgreSQL from {binaries}: {exc}"
            return
        yield url, f"throwaway cluster from {binaries}"
