"""make demo's script (deploy/demo/demo.py) end to end: start, the printed examples run as
printed, stop, a taken port, resume with the same data and admin, reset.

The script runs with a temporary state directory, free ports (its environment overrides)
and the binaries under test (CANOPY_BIN_DIR), exactly as `make demo` runs it otherwise.
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from fixtures.browser import Browser
from fixtures.central import Api, wait
from fixtures.daemons import BIN_DIR, REPO
from fixtures.netutil import port_open
from fixtures.whep import WhepClient

SCRIPT = REPO / "deploy" / "demo" / "demo.py"


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_ports() -> dict:
    """Five single ports and a run of four for the cameras, none of them in use now."""
    chosen: set = set()

    def pick(n: int) -> int:
        for _ in range(200):
            # below the ephemeral range (32768-60999), where outgoing connections take ports
            base = random.randrange(20000, 32000)
            run = range(base, base + n)
            if not chosen & set(run) and all(_bindable(p) for p in run):
                chosen.update(run)
                return base
        raise RuntimeError("no free ports")

    return {"CANOPY_DEMO_PG_PORT": pick(1), "CANOPY_DEMO_CENTRAL_PORT": pick(1),
            "CANOPY_DEMO_RELAY_PORT": pick(1), "CANOPY_DEMO_TURN_PORT": pick(1),
            "CANOPY_DEMO_EDGE1_PORT": pick(1),
            "CANOPY_DEMO_EDGE2_PORT": pick(1), "CANOPY_DEMO_CAMERA_PORT": pick(4)}


class Demo:
    def __init__(self, state: Path, ports: dict):
        self.state = state
        self.ports = ports
        self.env = dict(os.environ, CANOPY_DEMO_DIR=str(state), CANOPY_BIN_DIR=str(BIN_DIR),
                        **{k: str(v) for k, v in ports.items()})

    def run(self, cmd: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(SCRIPT), cmd], env=self.env, text=True,
                              capture_output=True, timeout=timeout, cwd="/")

    def pids(self) -> list[int]:
        out = []
        for f in (self.state / "run").glob("*.pid"):
            out.append(json.loads(f.read_text())["pid"])
        pg = self.state / "pg" / "data" / "postmaster.pid"
        if pg.exists():
            out.append(int(pg.read_text().split("\n", 1)[0]))
        return out

    @property
    def central_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['CANOPY_DEMO_CENTRAL_PORT']}"

    @property
    def ca(self) -> str:
        return str(self.state / "central" / "data" / "ca.pem")

    def api(self, user: str, password: str) -> Api:
        a = Api(self.central_url, verify=self.ca)
        r = a.login(user, password)
        assert r.status_code == 200, r.text
        return a


def block(out: str, name: str) -> str:
    m = re.search(rf"^--- {name} example ---\n(.*?)^--- end ---$", out, re.S | re.M)
    assert m, f"no {name} example in:\n{out}"
    return m.group(1)


def run_shell(script: str) -> str:
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                       text=True, timeout=30, cwd="/")
    assert r.returncode == 0, f"example failed ({r.returncode}):\n{script}\n{r.stderr}"
    return r.stdout


def json_stream(text: str) -> list:
    dec, i, out = json.JSONDecoder(), 0, []
    text = text.strip()
    while i < len(text):
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def demo(tmp_path_factory):
    # pytest's tree is root's alone: as root, the script then keeps the PostgreSQL cluster
    # in /var/tmp (its fallback for a state directory the postgres user cannot reach)
    d = Demo(tmp_path_factory.mktemp("demo") / "var", free_ports())
    try:
        yield d
    finally:
        d.run("reset", timeout=60)
        for pid in d.pids() if d.state.exists() else []:
            assert not alive(pid)


def check_system(d: Demo, password: str) -> dict:
    """The sites, nodes and cameras at central, and the edges recording; returns ids."""
    api = d.api("demo", password)
    sites = {s["name"]: s["id"] for s in api.ok("GET", "/sites")["items"]}
    assert set(sites) == {"HQ", "Store 12"}, sites
    nodes = api.ok("GET", "/nodes")["items"]
    assert sorted(n["name"] for n in nodes if n["kind"] == "edge") == ["edge-hq", "edge-store12"]
    # the relay is a node too once it can enrol (then it must be online like the edges)
    assert [n["name"] for n in nodes if n["kind"] != "edge"] in ([], ["relay-demo"]), nodes
    wait(lambda: all(n["state"] == "online" for n in api.ok("GET", "/nodes")["items"]), 20,
         "every node online")
    for name, site_id in sites.items():
        cams = wait(lambda: (c := api.ok("GET", f"/cameras?site_id={site_id}")["items"])
                    and len(c) == 2 and all(x["state"] == "online" for x in c) and c,
                    30, f"two cameras online at {name}")
        assert all(c["inventory"]["codec"] == "h264" for c in cams)
    # the edges record what central configured
    for edge, port_var, keys in (("edge-hq", "CANOPY_DEMO_EDGE1_PORT", {"entrance", "parking"}),
                                 ("edge-store12", "CANOPY_DEMO_EDGE2_PORT", {"door", "till"})):
        token = (d.state / edge / "data" / "admin.token").read_text().strip()
        local = Api(f"http://127.0.0.1:{d.ports[port_var]}", token)

        def recording():
            cams = local.ok("GET", "/cameras")["cameras"]
            return ({c["id"] for c in cams} == keys and
                    all(c["status"]["recording"] for c in cams))
        wait(recording, 20, f"{edge} recording {keys}")
    return {"sites": sites, "nodes": sorted(n["id"] for n in nodes),
            "cameras": sorted(c["id"] for c in api.ok("GET", "/cameras")["items"])}


def console_plays(d: Demo, password: str, workdir: Path) -> dict:
    """The printed console URL and login in headless Chromium: the tree lists the four
    cameras, and a click plays one in a live tile (central's live call, then WHEP)."""
    from selenium.webdriver.common.by import By

    b = Browser(workdir, extra_flags=["--ignore-certificate-errors"])  # central's own CA
    drv = b.driver

    def until(script, timeout, what, *args):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = drv.execute_script(script, *args)
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"console: timed out waiting for {what}; last: {last!r}")

    try:
        drv.get(d.central_url + "/")
        until("return document.readyState === 'complete' && !!document.getElementById('login-user')",
              15, "the login form")
        drv.find_element(By.ID, "login-user").send_keys("demo")
        drv.find_element(By.ID, "login-pass").send_keys(password)
        drv.find_element(By.ID, "login-submit").click()
        until("return !document.getElementById('app').hidden", 15, "the console after login")
        until("return document.querySelectorAll('#tree [data-camera]').length === 4", 15,
              "four cameras in the tree")
        tree = drv.execute_script("return document.getElementById('tree').innerText")
        cam = drv.execute_script("return document.querySelector('#tree [data-camera]').dataset.camera")
        drv.execute_script("document.querySelector(`#tree [data-camera='${arguments[0]}'] .label`)"
                           ".click()", cam)
        tile = until("const t = document.querySelector(`#grid li[data-camera='${arguments[0]}']`);"
                     "if (!t) return null;"
                     "if (t.dataset.state === 'error') return {error: t.dataset.error || 'error'};"
                     "const v = t.querySelector('video');"
                     "return Number(t.dataset.frames) > 0 && v.videoWidth > 0 &&"
                     "  {frames: Number(t.dataset.frames), w: v.videoWidth, h: v.videoHeight};",
                     30, "decoded frames in a live tile", cam)
        return {"tree": tree, "tile": tile}
    finally:
        b.close()


def test_demo_start_examples_stop_taken_port_resume_reset(demo, tmp_path):
    d = demo
    r = d.run("start")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout

    # the console and the login, printed once with the generated passwords (stored 0600)
    assert f"console     {d.central_url}/" in out
    demo_pw = (d.state / "demo-password").read_text().strip()
    admin_pw = (d.state / "central" / "data" / "initial-admin-password").read_text().strip()
    assert f"login       demo / {demo_pw}" in out and f"admin / {admin_pw}" in out
    for f in (d.state / "demo-password", d.state / "central" / "data" / "initial-admin-password"):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert d.api("admin", admin_pw).ok("GET", "/me")["user"]["username"] == "admin"
    console = Api(d.central_url, verify=d.ca).session.get(d.central_url + "/", verify=d.ca)
    assert console.status_code == 200 and "text/html" in console.headers["content-type"]

    # the REST example, run as printed: four cameras, online
    cams = json_stream(run_shell(block(out, "rest")))
    assert sorted(c["key"] for c in cams) == ["door", "entrance", "parking", "till"]
    assert all(c["state"] == "online" for c in cams), cams

    ids = check_system(d, demo_pw)

    seen = console_plays(d, demo_pw, tmp_path / "browser")
    assert "error" not in seen["tile"] and (seen["tile"]["w"], seen["tile"]["h"]) == (640, 360), seen
    for name in ("HQ", "Store 12", "HQ entrance", "HQ parking", "Store 12 door", "Store 12 till"):
        assert name in seen["tree"], seen["tree"]

    # every metric family the running binaries expose is in the operations reference
    reference = (REPO / "docs" / "operations.md").read_text()
    s = requests.Session()
    scraped = {"central": s.get(d.central_url + "/metrics", verify=d.ca, timeout=10).text}
    for var in ("CANOPY_DEMO_EDGE1_PORT", "CANOPY_DEMO_RELAY_PORT"):
        scraped[var] = s.get(f"http://127.0.0.1:{d.ports[var]}/metrics", timeout=10).text
    for who, text in scraped.items():
        families = re.findall(r"^# TYPE (\S+) ", text, re.M)
        assert len(families) > 10, (who, text[:500])
        missing = [f for f in families if f"`{f}`" not in reference and f not in reference]
        assert not missing, f"{who}: not in docs/operations.md: {missing}"

    # the WHEP example, run as printed (after the REST one, whose $TOKEN it may use), gives
    # a player URL whose endpoint and token play the camera
    url = run_shell(block(out, "rest") + block(out, "whep")).strip().splitlines()[-1]
    page, _, query = url.partition("?")
    assert page.startswith("file://") and Path(urllib.parse.unquote(page[7:])).exists(), url
    q = dict(urllib.parse.parse_qsl(query))
    endpoint = urllib.parse.urlsplit(q["url"])
    assert endpoint.scheme == "http" and endpoint.hostname == "127.0.0.1", q
    if "through the relay" in out:
        assert endpoint.port == d.ports["CANOPY_DEMO_RELAY_PORT"], q
    c = WhepClient(decode_codes=False)
    try:
        c.connect(f"http://127.0.0.1:{endpoint.port}", endpoint.path.rsplit("/", 1)[1],
                  q["token"], stream=None)
        c.wait_frames(10, timeout=20, coded=False)
        assert (c.width, c.height) == (640, 360)
    finally:
        c.close()

    # stop: every process ends, the data stays
    pids = d.pids()
    assert len(pids) == 9  # 2 edges, relay, central, 4 cameras, postmaster
    r = d.run("stop")
    assert r.returncode == 0, r.stderr
    assert not [p for p in pids if alive(p)]
    assert not port_open(d.ports["CANOPY_DEMO_CENTRAL_PORT"])
    assert (d.state / "state.json").exists()

    # a port taken by someone else: a clear message naming it and its variable; nothing starts
    port = d.ports["CANOPY_DEMO_CENTRAL_PORT"]
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        r = d.run("start")
    assert r.returncode != 0
    assert f"port {port}" in r.stderr and "CANOPY_DEMO_CENTRAL_PORT" in r.stderr, r.stderr
    assert "canopy-central" in r.stderr
    assert d.pids() == [], "something started although a port was taken"

    # resume: same data, same admin, no second bootstrap, passwords not printed again
    r = d.run("start")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming" in r.stdout
    assert demo_pw not in r.stdout and admin_pw not in r.stdout
    assert str(d.state / "demo-password") in r.stdout
    assert check_system(d, demo_pw) == ids
    assert d.api("admin", admin_pw).ok("GET", "/me")["user"]["username"] == "admin"
    central_log = (d.state / "logs" / "central.log").read_text()
    assert central_log.count("created user 'admin'") == 1
    cams = json_stream(run_shell(block(r.stdout, "rest")))
    assert len(cams) == 4 and all(c["state"] == "online" for c in cams)

    # start while running: says so and changes nothing
    pids = d.pids()
    r = d.run("start")
    assert r.returncode == 0 and "already running" in r.stdout
    assert sorted(d.pids()) == sorted(pids)

    # reset: processes gone, directory gone (and the cluster's, wherever it was)
    pg_dir = (d.state / "pg").resolve()
    r = d.run("reset")
    assert r.returncode == 0, r.stderr
    assert not [p for p in pids if alive(p)]
    assert not d.state.exists() and not pg_dir.exists()
