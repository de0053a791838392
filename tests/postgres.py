"""A real PostgreSQL server for the database-pull tests: Debian's `postgresql` (make test installs it),
a throwaway cluster in a temp dir, listening on a Unix socket only (no TCP at all), passwords required."""

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER, SUPERUSER_PASSWORD = "dba", "dba-password-1"


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@dataclass
class Server:
    socket_dir: Path
    port: int

    def url(self, user: str, database: str) -> str:
        """A URL without a password (as a pull definition holds it)."""
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}&port={self.port}"

    def connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, user=SUPERUSER,
                               password=SUPERUSER_PASSWORD, dbname=database, autocommit=True)


def _as_server_user(command: list[str]) -> list[str]:
    # PostgreSQL will not run as root; in CI the tests do.
    return ["runuser", "-u", "postgres", "--"] + command if os.geteuid() == 0 else command


def start(port: int = 54329) -> tuple[Server, callable]:
    """A fresh cluster in its own temp dir (the server's user must reach it, which pytest's 0700 tmp tree
    does not allow); returns the server and a function that stops it and removes the cluster."""
    binaries = server_bin()
    root = Path(tempfile.mkdtemp(prefix="insight-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    password_file = root / "pw"
    password_file.write_text(SUPERUSER_PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(password_file, "postgres")
    subprocess.run(_as_server_user([str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile",
                                    str(password_file), "--auth-local=scram-sha-256", "--auth-host=reject",
                                    "-E", "UTF8", "--locale=C.UTF-8"]), check=True, capture_output=True)
    options = f"-c listen_addresses='' -c unix_socket_directories={sockets} -p {port} -c fsync=off"
    subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
                                    "-o", options, "-w", "start"]), check=True, capture_output=True)

    def stop():
        subprocess.run(_as_server_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)

    return Server(sockets, port), stop
