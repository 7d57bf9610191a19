"""A throw-away PostgreSQL server for the history tests, started from the distribution's binaries.

``start()`` runs ``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu; ``HQA_PG_BIN`` overrides)
in a fresh directory, with password (SCRAM) authentication on 127.0.0.1 and a free port. PostgreSQL refuses to run
as root, so under root the server runs as the ``postgres`` user the package creates (``subprocess`` ``user=``).
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

USER, PASSWORD = "hqa", "hqa-secret"


def pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` holding initdb and pg_ctl, or ``HQA_PG_BIN``."""
    if os.environ.get("HQA_PG_BIN"):
        return Path(os.environ["HQA_PG_BIN"])
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [b for b in found if (b / "pg_ctl").is_file()]
    return max(found, key=lambda b: float(b.parent.name) if b.parent.name.replace(".", "").isdigit() else 0,
               default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bin: Path
    root: Path
    port: int
    run_as: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres", *, user: str = USER, password: str = PASSWORD) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        kw = {"user": self.run_as} if self.run_as else {}
        r = subprocess.run([str(self.bin / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout,
                           cwd=self.root, stdin=subprocess.DEVNULL, **kw)
        if r.returncode != 0:
            log = (self.root / "log").read_text() if (self.root / "log").is_file() else ""
            raise RuntimeError(f"{args[0]} failed ({r.returncode}): {r.stderr.strip()}\n{log[-2000:]}")
        return r

    def start(self) -> PgServer:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        except RuntimeError:
            pass

    def create_db(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> PgServer:
    """initdb + start a server; raises RuntimeError (with the server's log) when it cannot."""
    b = pg_bin()
    if b is None:
        raise FileNotFoundError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    run_as = None
    root = Path(tempfile.mkdtemp(prefix="hqa-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root and there is no 'postgres' user to run the server as") from None
        os.chown(root, pw.pw_uid, pw.pw_gid)
        run_as = "postgres"
    srv = PgServer(b, root, _free_port(), run_as)
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if run_as:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    srv._run("initdb", "-D", str(srv.data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
             "--no-sync", "--no-instructions")
    try:
        return srv.start()
    except Exception:
        srv.cleanup()
        raise
