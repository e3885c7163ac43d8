"""The deployment files in deploy/: each example config passes its binary's `-t` check, the
systemd units parse without a complaint (systemd-analyze verify, when present), and
deploy/postgres/setup.sql makes a role and database a central migrates and runs on.
The container images are not built here (no container engine in the test environment);
only their config files are checked."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from fixtures.daemons import REPO, binary

COMPONENTS = ("edge", "relay", "central")


@pytest.mark.parametrize("component", COMPONENTS)
def test_example_config_passes_check(component):
    conf = REPO / "deploy" / "config" / f"{component}.conf.example"
    r = subprocess.run([str(binary(component)), "-t", "--config", str(conf)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert f"configuration {conf} is valid" in r.stderr
    # the check prints the effective configuration: the example's own values are in it
    assert 'data_dir = "/var/lib/canopy-' + component + '"' in r.stdout
    assert "http_listen = \"0.0.0.0\"" in r.stdout


@pytest.mark.parametrize("component", COMPONENTS)
def test_container_config_passes_check(component):
    conf = REPO / "deploy" / "container" / f"{component}.conf"
    r = subprocess.run([str(binary(component)), "-t", "--config", str(conf)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert 'log_format = json' in r.stdout


def test_example_config_check_catches_a_mistake(tmp_path):
    """The check above could not pass on a broken file: a typo is refused with its line."""
    bad = tmp_path / "edge.conf"
    text = (REPO / "deploy" / "config" / "edge.conf.example").read_text()
    bad.write_text(text.replace("segment_duration = 60s", "segment_duraton = 60s"))
    r = subprocess.run([str(binary("edge")), "-t", "--config", str(bad)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "segment_duraton" in r.stderr, r.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_units_verify(tmp_path):
    # verify wants ExecStart to exist: point it at the binaries under test
    for component in COMPONENTS:
        unit = (REPO / "deploy" / "systemd" / f"canopy-{component}.service").read_text()
        assert re.search(r"^User=canopy-" + component + "$", unit, re.M)
        for directive in ("ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
                          "ProtectHome=yes", "CapabilityBoundingSet=", "Restart=on-failure",
                          "LimitNOFILE=", "ReadWritePaths=/var/lib/canopy-" + component):
            assert re.search("^" + re.escape(directive), unit, re.M), (component, directive)
        unit = unit.replace(f"/usr/local/bin/canopy-{component}", str(binary(component)))
        (tmp_path / f"canopy-{component}.service").write_text(unit)
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units, capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    complaints = [line for line in r.stderr.splitlines() if str(tmp_path) in line]
    assert r.returncode == 0 and not complaints, r.stderr


def test_postgres_setup_sql_then_central_migrates_as_that_role(pg, daemon_factory, tmp_path):
    """deploy/postgres/setup.sql on a real cluster (another role and database name than
    canopy, which this test cluster's superuser already is): a central started on the
    result, logged in as that role, migrates the empty database and serves its admin."""
    import uuid

    import psycopg2

    from fixtures.central import Api

    suffix = uuid.uuid4().hex[:8]
    role, dbname, password = f"central_{suffix}", f"canopy_{suffix}", uuid.uuid4().hex
    env = {"PGPASSWORD": pg.password, "PATH": "/usr/bin:/bin"}
    psql = ["psql", "-X", "-q", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", "postgres",
            "-v", "ON_ERROR_STOP=1"]
    setup = str(REPO / "deploy" / "postgres" / "setup.sql")
    try:
        # without a password it refuses to do anything
        r = subprocess.run(psql + ["-f", setup], env=env, capture_output=True, text=True,
                           timeout=30)
        assert "give the role a password" in r.stdout + r.stderr, r
        r = subprocess.run(psql + ["-v", f"role={role}", "-v", f"dbname={dbname}", "-v",
                                   f"password={password}", "-f", setup],
                           env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        with pg.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
                        (role,))
            assert cur.fetchone() == (False, False, False)
        # nobody else may connect
        other = f"other_{suffix}"
        conn = pg.connect(autocommit=True)
        conn.cursor().execute(f'CREATE ROLE "{other}" LOGIN PASSWORD \'{password}\'')
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="permission denied"):
            psycopg2.connect(host=pg.host, port=pg.port, user=other, password=password,
                             dbname=dbname, connect_timeout=5)

        pwfile = tmp_path / "admin-password"
        pwfile.write_text("Setup-Passw0rd!\n")
        dsn = f"host={pg.host} port={pg.port} dbname={dbname} user={role} password={password}"
        d = daemon_factory("central", db=dsn, bootstrap_password_file=str(pwfile))
        assert "applied migration 0001_init" in d.log()
        api = Api(d.base_url, verify=str(d.ca_file))
        assert api.login("admin", "Setup-Passw0rd!").status_code == 200
        assert api.ok("GET", "/me")["user"]["username"] == "admin"
        with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                        " AND tableowner <> %s", (role,))
            assert cur.fetchone()[0] == 0
        d.stop()
    finally:
        conn = pg.connect(autocommit=True)
        cur = conn.cursor()
        cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        cur.execute(f'DROP ROLE IF EXISTS "other_{suffix}"')
        conn.close()
