"""A private, throw-away PostgreSQL cluster for the tests: ``initdb`` + ``pg_ctl start``.

The server listens only on a Unix socket in its own folder (no TCP port), so any number of
clusters run side by side -- one per pytest-xdist worker -- without racing for a port. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` OS user (``runuser``).
Durability is switched off (fsync, full-page writes): the data lives for one test session.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

PORT = 5432  # only names the socket file; there is no TCP listener
INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install -y postgresql) or put initdb and pg_ctl on PATH"


class PostgresMissing(RuntimeError):
    pass


def find_binaries() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/N/bin."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise PostgresMissing(f"PostgreSQL's initdb and pg_ctl were not found; {INSTALL_HINT}.")


class PostgresCluster:
    """One running server; :meth:`create_database` hands out a fresh, empty database per test."""

    def __init__(self) -> None:
        self.bin = find_binaries()
        self.root = Path(tempfile.mkdtemp(prefix="lmcourse-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root  # where .s.PGSQL.5432 appears
        self.user = "postgres"
        self._as_postgres = os.geteuid() == 0
        if not self._as_postgres:
            self.user = os.environ.get("USER") or "postgres"

    def start(self) -> PostgresCluster:
        options = (f"-k {self.socket_dir} -p {PORT} -c listen_addresses='' -c fsync=off -c full_page_writes=off "
                   "-c synchronous_commit=off -c max_connections=200")
        try:
            if self._as_postgres:
                shutil.chown(self.root, "postgres", "postgres")
            self._run("initdb", "-D", self.data, "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync")
            self._run("pg_ctl", "start", "-D", self.data, "-w", "-t", "60", "-l", self.root / "server.log",
                      "-o", options)
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}&port={PORT}"

    def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(host=str(self.socket_dir), port=PORT, user=self.user, dbname="postgres", autocommit=True)

    def _run(self, tool: str, *args: str | Path) -> None:
        command = [str(self.bin / tool), *map(str, args)]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{tail}")
