"""The three daemons from outside: options, config checking, health, metrics, HTTP hygiene, shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

from fixtures.daemons import COMPONENTS, REPO, binary

EXAMPLES = REPO / "deploy" / "examples"
# Prometheus text format: comment lines, or name{labels} value.
METRIC_LINE = re.compile(
    r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
    r'-?[0-9.eE+-]+$|^-?NaN$')


def run(component, *args, timeout=10):
    return subprocess.run([str(binary(component)), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("component", COMPONENTS)
def test_version(component):
    r = run(component, "--version")
    assert r.returncode == 0
    assert re.match(rf"^canopy-{component} \d+\.\d+\.\d+ \(\S+\)$", r.stdout.strip())


@pytest.mark.parametrize("component", COMPONENTS)
def test_check_example_config_prints_effective_config(component):
    r = run(component, "-t", "--config", str(EXAMPLES / f"{component}.conf"))
    assert r.returncode == 0, r.stderr
    assert f'node_name = "{component}-1"' in r.stdout
    # Values the example leaves at their defaults are printed too: the effective config.
    assert "log_format = text" in r.stdout
    assert "http_max_body = 1M" in r.stdout
    assert "is valid" in r.stderr


@pytest.mark.parametrize("component", COMPONENTS)
def test_effective_config_is_itself_a_valid_config(component, tmp_path):
    first = run(component, "-t", "--config", str(EXAMPLES / f"{component}.conf"))
    dumped = tmp_path / "dumped.conf"
    dumped.write_text(first.stdout)
    second = run(component, "-t", "--config", str(dumped))
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[1:] == first.stdout.splitlines()[1:]


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("text,line,message", [
    ("node_name = a\nhttp_prot = 80\n", 2, "unknown key 'http_prot'"),
    ("\n\nhttp_port = 70000\n", 3, "'http_port': 70000 is out of range 1..65535"),
    ("http_port = eighty\n", 1, "'http_port': 'eighty' is not a number"),
    ("log_level = loud\n", 1, "'log_level': 'loud' is not one of error, warn, info, debug"),
    ("http_max_body = 10G\n", 1, "'http_max_body': 10G is out of range"),
    ("http_port = 1\nhttp_port = 2\n", 2, "'http_port' set again (first set on line 1)"),
    ("node_name\n", 1, "expected 'key = value'"),
])
def test_bad_config_names_key_and_line(component, tmp_path, text, line, message):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    r = run(component, "-t", "--config", str(conf))
    assert r.returncode != 0
    assert f"{conf}:{line}: {message}" in r.stderr
    assert r.stdout == ""
    # The same config refuses to start the daemon, with the same message.
    r = run(component, "--config", str(conf))
    assert r.returncode == 1
    assert f"{conf}:{line}: {message}" in r.stderr


@pytest.mark.parametrize("component", COMPONENTS)
def test_bad_log_debug_list_is_a_config_error(component, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text('log_debug = "http, Not Valid"\n')
    r = run(component, "-t", "-c", str(conf))
    assert r.returncode == 1
    assert "'log_debug'" in r.stderr


def test_usage_errors():
    assert run("edge", "--bogus").returncode == 2
    assert run("edge", "stray-argument").returncode == 2
    r = run("edge", "--config", "/nonexistent/edge.conf", "-t")
    assert r.returncode == 1
    assert "cannot open config '/nonexistent/edge.conf'" in r.stderr
    r = run("edge", "--help")
    assert r.returncode == 0 and "--config" in r.stdout


@pytest.mark.parametrize("component", COMPONENTS)
def test_health_metrics_and_clean_sigterm(component, daemon_factory):
    d = daemon_factory(component)
    h = d.get("/healthz")
    assert h.status == 200
    assert h.headers["content-type"] == "application/json"
    body = h.json()
    assert body["status"] == "ok"
    assert body["component"] == component
    assert body["node"] == f"test-{component}"
    assert re.match(r"^\d+\.\d+\.\d+$", body["version"])
    assert len(body["key_id"]) == 16

    m = d.get("/metrics")
    assert m.status == 200
    assert m.headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = m.text.splitlines()
    bad = [ln for ln in lines if not ln.startswith("#") and not METRIC_LINE.match(ln)]
    assert not bad, f"not Prometheus text: {bad}"
    text = m.text
    assert re.search(rf'^canopy_build_info{{component="{component}",version="[^"]+"}} 1$', text, re.M)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_open_fds", "process_start_time_seconds"):
        assert re.search(rf"^{name} [0-9.]+$", text, re.M), name
    rss = int(re.search(r"^process_resident_memory_bytes (\d+)$", text, re.M).group(1))
    assert 1 << 20 < rss < 1 << 31
    start = float(re.search(r"^process_start_time_seconds ([0-9.]+)$", text, re.M).group(1))
    assert abs(start - time.time()) < 60
    # The health request above is counted.
    ok = re.search(rf'^canopy_http_responses_total{{listener="{component}",code="2xx"}} (\d+)$',
                   text, re.M)
    assert ok and int(ok.group(1)) >= 1

    t0 = time.monotonic()
    assert d.stop(signal.SIGTERM) == 0
    assert time.monotonic() - t0 < 5
    assert f"canopy-{component} stopped" in d.log()


def test_sigint_also_stops_cleanly(daemon_factory):
    d = daemon_factory("relay")
    assert d.stop(signal.SIGINT) == 0
    assert "received SIGINT" in d.log()


def test_http_errors_are_problem_json(daemon_factory):
    d = daemon_factory("central")
    r = d.get("/no/such/thing")
    assert r.status == 404
    assert r.headers["content-type"] == "application/problem+json"
    p = r.json()
    assert p["status"] == 404 and p["title"] == "Not Found"
    assert "/no/such/thing" in p["detail"]

    r = d.request("DELETE", "/healthz")
    assert r.status == 405
    assert r.headers["allow"] == "GET"
    assert "DELETE is not allowed on /healthz" in r.json()["detail"]

    # HEAD is answered like GET, without a body.
    r = d.request("HEAD", "/healthz")
    assert r.status == 200 and r.body == b""


def test_request_body_limit(daemon_factory):
    d = daemon_factory("edge", http_max_body="1K")
    r = d.request("POST", "/healthz", body=b"x" * 2048,
                  headers={"content-type": "application/octet-stream"})
    assert r.status == 413
    assert "exceeds 1024 bytes" in r.json()["detail"]
    m = d.get("/metrics").text
    assert re.search(r'^canopy_http_bodies_rejected_total{listener="edge"} 1$', m, re.M)
    # Still serving afterwards.
    assert d.get("/healthz").status == 200


def test_garbage_and_slow_clients_do_not_stop_service(daemon_factory):
    d = daemon_factory("relay")
    socks = []
    for payload in (b"\x00\xff" * 100, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
                    b"NOTAMETHOD / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /healthz HTTP/1.1\r\n"):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=2)
        s.sendall(payload)
        socks.append(s)  # the last one never finishes its headers
    for s in socks[:-1]:
        try:
            s.recv(4096)
        except OSError:
            pass
    # Others are served while the slow client is still connected.
    results = []

    def hit():
        results.append(d.get("/healthz").status)

    threads = [threading.Thread(target=hit) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 40
    for s in socks:
        s.close()


def test_node_key_is_created_once_and_kept(daemon_factory):
    d = daemon_factory("edge")
    key_id = d.get("/healthz").json()["key_id"]
    key = d.workdir / "data" / "node.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key.parent).st_mode) == 0o700
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert d.stop() == 0
    d.start()
    assert d.get("/healthz").json()["key_id"] == key_id


def test_corrupt_node_key_refuses_to_start(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "node.key").write_text("not a key\n")
    conf = tmp_path / "edge.conf"
    conf.write_text(f'data_dir = "{data}"\nhttp_port = 1\n')
    r = run("edge", "-c", str(conf))
    assert r.returncode == 1
    assert f"cannot use node key '{data}/node.key'" in r.stderr


def test_port_in_use_is_a_clear_error(daemon_factory):
    first = daemon_factory("central")
    second = daemon_factory("central", wait=False, http_port=first.port)
    second.proc.wait(timeout=10)
    assert second.proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{first.port}" in second.log()
    assert first.get("/healthz").status == 200


def test_json_log_lines(daemon_factory):
    d = daemon_factory("edge", log_format="json", log_debug="http")
    d.get("/healthz")
    d.get("/missing")
    assert d.stop() == 0
    records = [json.loads(line) for line in d.log().splitlines() if line.strip()]
    assert records, "no log output"
    assert all({"ts", "level", "sub", "msg"} <= r.keys() for r in records)
    dbg = [r for r in records if r["level"] == "debug" and r["sub"] == "http"]
    assert any("GET /missing -> 404" in r["msg"] for r in dbg)
    assert all("file" in r and "line" in r for r in dbg)
