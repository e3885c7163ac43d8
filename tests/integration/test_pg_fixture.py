"""Tests for the private PostgreSQL cluster fixture (fixtures/pg.py)."""

from __future__ import annotations

import os
import socket

import psycopg2
import pytest


def _uids(pid: int) -> tuple:
    """(real, effective) uid of a process."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                real, effective = line.split()[1:3]
                return int(real), int(effective)
    raise AssertionError(f"no Uid line for pid {pid}")


def _tcp_listeners(port: int) -> list:
    """Local addresses (hex, as in /proc/net/tcp*) listening on port."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    addr, hexport = cols[1].rsplit(":", 1)
                    if int(hexport, 16) == port and cols[3] == "0A":  # LISTEN
                        found.append((table, addr))
        except FileNotFoundError:
            pass
    return found


def test_connect_create_table(pg, pg_database):
    conn = pg.connect(pg_database)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version_num')::int, current_user, "
                        "current_database()")
            version, user, db = cur.fetchone()
            assert 150000 <= version < 160000
            assert user == pg.user
            assert db == pg_database
            cur.execute("CREATE TABLE cams (id serial PRIMARY KEY, url text NOT NULL)")
            cur.execute("INSERT INTO cams (url) VALUES (%s), (%s)",
                        ("rtsp://127.0.0.1:1/a", "rtsp://127.0.0.1:2/b"))
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), min(url) FROM cams")
            assert cur.fetchone() == (2, "rtsp://127.0.0.1:1/a")
    finally:
        conn.close()


def test_listens_on_loopback_only(pg):
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone()[0] == "127.0.0.1"
            cur.execute("SHOW port")
            assert int(cur.fetchone()[0]) == pg.port
            cur.execute("SELECT inet_server_addr()::text")
            assert cur.fetchone()[0] in ("127.0.0.1", "127.0.0.1/32")
    finally:
        conn.close()
    listeners = _tcp_listeners(pg.port)
    # Exactly one IPv4 listener, bound to 127.0.0.1 (0100007F in /proc byte order).
    assert listeners == [("/proc/net/tcp", "0100007F")], listeners
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", pg.port), timeout=2).close()
    # The unix socket lives in the private directory, not /var/run/postgresql.
    assert os.path.exists(os.path.join(pg.socket_dir, f".s.PGSQL.{pg.port}"))
    assert not os.path.exists(f"/var/run/postgresql/.s.PGSQL.{pg.port}")


def test_runs_as_non_root(pg):
    pid = pg.postmaster_pid()
    assert pid is not None
    real, effective = _uids(pid)
    assert real != 0 and effective != 0
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            backend = cur.fetchone()[0]
            assert _uids(backend) == (real, effective)
    finally:
        conn.close()
    st = os.stat(pg.data_dir)
    assert st.st_uid == real
    if os.geteuid() != 0:
        assert real == os.geteuid()


def test_password_required_over_tcp(pg):
    bad = pg.dsn().replace(f"password={pg.password}", "password=wrong")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(bad)
    # The unix socket in the private directory trusts local users.
    conn = psycopg2.connect(host=pg.socket_dir, port=pg.port, user=pg.user, dbname="postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_create_and_drop_database(pg):
    a = pg.create_database()
    b = pg.create_database()
    assert a != b
    conn = psycopg2.connect(pg.url(a))
    conn.close()
    pg.drop_database(a)
    pg.drop_database(b)
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_database WHERE datname IN (%s, %s)", (a, b))
            assert cur.fetchone()[0] == 0
    finally:
        conn.close()
    with pytest.raises(ValueError):
        pg.create_database("bad name; DROP")
