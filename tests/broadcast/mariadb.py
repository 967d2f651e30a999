"""A real MariaDB for the SAM import tests, and SAM Broadcaster's table layout in it.

Uses the server on 127.0.0.1:3306 (root, no password) when it answers; otherwise starts a
private `mariadbd` from Debian's mariadb-server on a temporary datadir and a free port,
and stops it (by its PID) at the end. Either way the tests get a private database of
their own, dropped at the end; the shared server is never stopped or reconfigured.

Set ECHONEST_SAM_TEST_PRIVATE_SERVER=1 to use a private server even when 3306 answers.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest

SHARED_HOST = "127.0.0.1"
SHARED_PORT = 3306

# SAM 4's tables, with the columns SAM Broadcaster itself creates (its MyISAM layout,
# zero-date defaults and all); the import reads only some of them.
SAM_SCHEMA = [
    """
    CREATE TABLE songlist (
      ID int(11) NOT NULL AUTO_INCREMENT,
      filename varchar(255) NOT NULL DEFAULT '',
      diskID int(11) NOT NULL DEFAULT 0,
      flags varchar(10) NOT NULL DEFAULT 'NNNNNNNNNN',
      songtype char(1) NOT NULL DEFAULT 'S',
      status tinyint(4) NOT NULL DEFAULT 0,
      weight double NOT NULL DEFAULT 50,
      balance double NOT NULL DEFAULT 0,
      date_added datetime DEFAULT NULL,
      date_played datetime DEFAULT NULL,
      duration int(11) NOT NULL DEFAULT 0,
      artist varchar(255) NOT NULL DEFAULT '',
      title varchar(255) NOT NULL DEFAULT '',
      album varchar(255) NOT NULL DEFAULT '',
      label varchar(255) NOT NULL DEFAULT '',
      albumyear varchar(4) NOT NULL DEFAULT '0',
      genre varchar(20) NOT NULL DEFAULT '',
      count_played mediumint(9) NOT NULL DEFAULT 0,
      count_requested mediumint(9) NOT NULL DEFAULT 0,
      last_requested datetime NOT NULL DEFAULT '2002-01-01 00:00:01',
      xfade varchar(50) NOT NULL DEFAULT '',
      bpm mediumint(9) NOT NULL DEFAULT 0,
      PRIMARY KEY (ID),
      UNIQUE KEY filename (filename)
    ) ENGINE=MyISAM DEFAULT CHARSET=latin1
    """,
    """
    CREATE TABLE historylist (
      ID int(11) NOT NULL AUTO_INCREMENT,
      songID int(11) NOT NULL DEFAULT 0,
      filename varchar(255) NOT NULL DEFAULT '',
      date_played datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
      duration int(11) NOT NULL DEFAULT 0,
      artist varchar(255) NOT NULL DEFAULT '',
      title varchar(255) NOT NULL DEFAULT '',
      album varchar(255) NOT NULL DEFAULT '',
      albumyear varchar(4) NOT NULL DEFAULT '',
      listeners mediumint(9) NOT NULL DEFAULT 0,
      label varchar(100) NOT NULL DEFAULT '',
      songtype char(1) NOT NULL DEFAULT '',
      requestID int(11) NOT NULL DEFAULT 0,
      overlay enum('yes','no') NOT NULL DEFAULT 'no',
      PRIMARY KEY (ID),
      KEY date_played (date_played)
    ) ENGINE=MyISAM DEFAULT CHARSET=latin1
    """,
    """
    CREATE TABLE requestlist (
      ID int(11) NOT NULL AUTO_INCREMENT,
      songID int(11) NOT NULL DEFAULT 0,
      t_stamp datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
      host varchar(255) NOT NULL DEFAULT '',
      msg text,
      name varchar(255) NOT NULL DEFAULT '',
      code mediumint(9) NOT NULL DEFAULT 0,
      ETA datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
      status enum('played','ignored','pending','new') NOT NULL DEFAULT 'new',
      PRIMARY KEY (ID),
      KEY t_stamp (t_stamp)
    ) ENGINE=MyISAM DEFAULT CHARSET=latin1
    """,
]
SAM_TABLES = ("songlist", "historylist", "requestlist")


@dataclass(frozen=True)
class MariaDBServer:
    host: str
    port: int
    user: str = "root"
    password: str = ""

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            autocommit=True,
            connect_timeout=5,
            charset="utf8mb4",
        )


def _answers(host: str, port: int) -> bool:
    try:
        with closing(socket.create_connection((host, port), timeout=2)):
            pass
    except OSError:
        return False
    try:
        MariaDBServer(host=host, port=port).connect().close()
    except pymysql.MySQLError:
        return False
    return True


def _free_port() -> int:
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _private_server() -> Iterator[MariaDBServer]:
    mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    install_db = shutil.which("mariadb-install-db")
    if not install_db or not Path(mariadbd).exists():
        pytest.fail(
            "No MariaDB on 127.0.0.1:3306 and no mariadb-server to start one: "
            "apt-get install mariadb-server"
        )
    workdir = Path(tempfile.mkdtemp(prefix="echonest-mariadb-"))
    datadir, socket_path = workdir / "data", workdir / "mysqld.sock"
    as_mysql = os.geteuid() == 0  # mariadbd refuses to run as root without --user
    if as_mysql:
        shutil.chown(workdir, "mysql", "mysql")
    user_args = ["--user=mysql"] if as_mysql else []
    subprocess.run(
        [
            install_db,
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user_args,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    log = open(workdir / "mariadbd.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            mariadbd,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={socket_path}",
            f"--pid-file={workdir / 'mariadbd.pid'}",
            "--skip-grant-tables",
            "--skip-name-resolve",
            *user_args,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"private mariadbd did not start: {(workdir / 'mariadbd.log').read_text()}"
                )
            time.sleep(0.2)
        yield MariaDBServer(host="127.0.0.1", port=port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    if os.environ.get("ECHONEST_SAM_TEST_PRIVATE_SERVER") != "1" and _answers(
        SHARED_HOST, SHARED_PORT
    ):
        yield MariaDBServer(host=SHARED_HOST, port=SHARED_PORT)
        return
    with _private_server() as server:
        yield server


@dataclass(frozen=True)
class SamDatabase:
    server: MariaDBServer
    name: str

    @property
    def url(self) -> str:
        auth = self.server.user + (f":{self.server.password}" if self.server.password else "")
        return f"mysql://{auth}@{self.server.host}:{self.server.port}/{self.name}"

    def execute(self, sql: str, params: tuple | list | None = None) -> None:
        with closing(self.server.connect(self.name)) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)

    def insert(self, table: str, rows: list[dict]) -> None:
        with closing(self.server.connect(self.name)) as conn, conn.cursor() as cursor:
            for row in rows:
                columns = ", ".join(row)
                placeholders = ", ".join(["%s"] * len(row))
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values())
                )

    def reset(self) -> None:
        """Empty SAM tables, as a freshly installed SAM has them."""
        with closing(self.server.connect(self.name)) as conn, conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = ''")  # SAM's zero-date defaults
            for table in SAM_TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            for ddl in SAM_SCHEMA:
                cursor.execute(ddl)


@pytest.fixture(scope="session")
def _sam_database_session(mariadb_server) -> Iterator[SamDatabase]:
    name = f"echonest_sam_test_{secrets.token_hex(4)}"
    with closing(mariadb_server.connect()) as conn, conn.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name} CHARACTER SET latin1")
    try:
        yield SamDatabase(server=mariadb_server, name=name)
    finally:
        with closing(mariadb_server.connect()) as conn, conn.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def sam_database(_sam_database_session) -> SamDatabase:
    """The session's private SAM database with fresh, empty SAM tables."""
    _sam_database_session.reset()
    return _sam_database_session
