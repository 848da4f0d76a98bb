"""A throwaway PostgreSQL cluster started from the machine's own binaries.

Used by the test suite and by ``tfclaims bench`` when no server URL is given:
``initdb`` into a temporary folder, ``pg_ctl start`` on a free loopback port,
and everything removed on exit. PostgreSQL refuses to run as root, so as root
the cluster runs as the unprivileged ``nobody`` user through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from warehouse.errors import WarehouseError


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is absent."""
    env = os.environ.get("TFCLAIMS_PG_BIN")
    candidates = [env] if env else []
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], as_user: str | None) -> None:
    program = Path(cmd[0]).name
    if as_user:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise WarehouseError(f"{program} failed: {' | '.join(tail)}")


@contextmanager
def temporary_cluster() -> Iterator[str]:
    """Start a throwaway cluster; yields a SQLAlchemy URL to its ``postgres`` database."""
    pg_bin = find_pg_bin()
    if pg_bin is None:
        raise WarehouseError("PostgreSQL binaries (initdb, pg_ctl) not found")
    as_user = "nobody" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="tfclaims-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if as_user:
        shutil.chown(root, user=as_user)
        shutil.chown(sock, user=as_user)
        os.chmod(root, 0o700)
    port = _free_port()
    try:
        _run(
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "-N",
            ],
            as_user,
        )
        opts = (
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50"
        )
        _run(
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                opts,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            as_user,
        )
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                (["runuser", "-u", as_user, "--"] if as_user else [])
                + [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server at ``server_url``; returns its URL."""
    import psycopg

    plain = server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"
