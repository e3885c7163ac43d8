"""The web console served by canopy-central, driven by headless Chromium (Selenium).

* Files: served at / and /console/ from the copy compiled into the binary, with content
  types, ETag revalidation (304), a strict Content-Security-Policy and nosniff; nothing
  outside the console's flat directory; console_dir serves a development copy;
  console_connect_src is checked at start.
* A demo-like system (PostgreSQL, central, a real edge recording a test camera): an
  operator logs in, sees the site tree with the edge and the camera online, sees an alarm
  raised by a camera push appear without a reload (and announced), accepts it with a
  comment in the dialog, and the API shows it accepted by them; a second operator's late
  attempt is told who was first.
* A wrong password shows an error; the page loads nothing from outside central's origin.
* Live view through a relay (enrolled before the edge, as the broker's own tests do): the
  relay's origin appears in the page's connect-src by itself, and a tile plays the camera
  (frames decoded, growing) via POST /cameras/{id}/live and the relay's WHEP endpoint;
  skipped only when central has no live endpoint at all (404 on the route).
* The player alone against the edge's own WHEP endpoint (same protocol), so a failure can
  be told apart from the broker's.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from fixtures.browser import Browser
from fixtures.central import wait
from fixtures.edge import Edge, camera_entry
from fixtures.relay import relay_factory  # noqa: F401  (fixture)

PASSWORD = "Watch-Passw0rd!"
OPERATOR_ROLE = "00000000-0000-0000-0000-00000000a002"
PUSH = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "camevent" / \
    "valid-fielddetection-cdata.xml"  # a Hikvision field detection: event type "intrusion"


# ---- helpers -------------------------------------------------------------------------

def get(central, path, **headers):
    return requests.get(central.url + path, headers=headers, verify=central.ca_file, timeout=10)


def operator(admin, central, name, site):
    u = admin.ok("POST", "/users", {"username": name, "password": PASSWORD,
                                     "display_name": name.title()})
    admin.ok("POST", "/grants", {"user_id": u["id"], "role_id": OPERATOR_ROLE, "site_id": site["id"]})
    return u


def demo_system(central_factory, daemon_factory, camera_factory, before_edge=None,
                edge_conf=None, **central_conf):
    """Central with a site, an enrolled edge recording one test camera, an intrusion rule
    and an operator 'guard' at the site. before_edge(central, admin, site) runs before the
    edge starts (a relay, so the edge registers with it at once)."""
    central = central_factory(**central_conf)
    admin = central.admin()
    hq = admin.ok("POST", "/sites", {"name": "Harbour HQ"})
    site = admin.ok("POST", "/sites", {"name": "Warehouse 7", "parent_id": hq["id"]})
    extra = before_edge(central, admin, site) if before_edge else None
    node = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge", "name": "edge-w7"})
    tok = admin.ok("POST", f"/nodes/{node['id']}/enrolment-tokens", {})["token"]
    edge = Edge(daemon_factory("edge", central_url=central.uplink_url, central_ca=central.ca_file,
                               enrol_token=tok, **(edge_conf or {})))
    edge.extra = extra
    cam = camera_factory(width=320, height=180)
    camera = admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "door", "name": "Loading door",
                                           "config": {"main_url": cam.url, "recording": "continuous"}})
    wait(lambda: admin.ok("GET", f"/cameras/{camera['id']}")["state"] == "online", 20,
         "camera online at central")
    admin.ok("POST", "/alarm-rules", {"name": "intrusion", "event_types": ["intrusion"],
                                      "site_id": site["id"], "severity": 4, "comment_required": True})
    operator(admin, central, "guard", site)
    return central, admin, site, node, edge, camera


def push_intrusion(edge):
    ctype, _, body = PUSH.read_bytes().partition(b"\n")  # fuzz seed: content type, newline, body
    r = edge.d.request("POST", "/push/door", body=body, headers={"content-type": ctype.decode()})
    assert r.status == 200, r.text


class Console:
    """The console page in a Chromium tab."""

    def __init__(self, browser: Browser, central):
        self.b = browser
        self.d = browser.driver
        self.central = central
        self.d.get(central.url + "/")

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def logs(self) -> str:
        try:
            return "\n".join(f"{e.get('level')}: {e.get('message')}" for e in self.d.get_log("browser"))
        except Exception:  # noqa: BLE001 - diagnostics only
            return ""

    def until(self, script, timeout, what, *args):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.js(script, *args)
            if last:
                return last
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}\n"
                             f"browser console:\n{self.logs()[-3000:]}")

    def login(self, user, password):
        from selenium.webdriver.common.by import By
        self.until("return document.readyState === 'complete' && !!document.getElementById('login-user')",
                   10, "the login form")
        u = self.d.find_element(By.ID, "login-user")
        p = self.d.find_element(By.ID, "login-pass")
        u.clear()
        u.send_keys(user)
        p.clear()
        p.send_keys(password)
        self.d.find_element(By.ID, "login-submit").click()

    def wait_app(self, timeout=15):
        self.until("return !document.getElementById('app').hidden", timeout, "the console after login")


@pytest.fixture
def chromium(tmp_path):
    # central's certificate comes from its own CA, which this throwaway profile does not know
    b = Browser(tmp_path / "browser", extra_flags=["--ignore-certificate-errors"])
    try:
        yield b
    finally:
        b.close()


# ---- files, headers, configuration ----------------------------------------------------

def test_console_files_are_served_with_csp_and_etags(central_factory, daemon_factory, tmp_path):
    c = central_factory()
    r = get(c, "/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Canopy console</title>" in r.text
    csp = r.headers["content-security-policy"]
    for part in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                 "frame-ancestors 'none'", "base-uri 'none'"):
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "no-cache" in r.headers["cache-control"]  # revalidated on each load, see ETag
    etag = r.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 18

    # revalidation: same tag -> 304 without a body; another tag -> the file again
    r304 = get(c, "/", **{"If-None-Match": etag})
    assert r304.status_code == 304 and r304.content == b"" and r304.headers["etag"] == etag
    assert get(c, "/", **{"If-None-Match": '"0000"'}).status_code == 200
    assert get(c, "/console/", **{"If-None-Match": etag}).status_code == 304  # index too

    types = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8",
             "index.html": "text/html; charset=utf-8"}
    for name, ctype in types.items():
        r = get(c, "/console/" + name)
        assert r.status_code == 200 and r.headers["content-type"] == ctype, (name, r.headers)
        src = Path(__file__).resolve().parents[2] / "central" / "console" / name
        assert r.content == src.read_bytes(), f"{name} served differs from the source"
    head = requests.head(c.url + "/console/console.js", verify=c.ca_file, timeout=5)
    assert head.status_code == 200 and head.content == b""

    # nothing but the flat list of console files
    for path in ("/console/nope.js", "/console/.hidden.js", "/console/..%2fcentral.conf",
                 "/console/sub/index.html", "/console/x%2Findex.html", "/console/console.js.map", "/index.html",
                 "/console/central.conf"):
        assert get(c, path).status_code == 404, path
    m = get(c, "/metrics").text
    assert "canopy_central_console_not_modified_total 2" in m
    assert "canopy_central_console_not_found_total" in m
    # the API is untouched by the console's routes
    assert get(c, "/api/v1/nope").status_code == 404
    assert requests.post(c.url + "/", verify=c.ca_file, timeout=5).status_code == 405

    # console_dir: a development copy, read on every request (edits show on reload)
    dev = tmp_path / "console-dev"
    dev.mkdir()
    (dev / "index.html").write_text("<!doctype html><title>dev copy</title>")
    (tmp_path / "outside.js").write_text("secret")
    (dev / "link.js").symlink_to(tmp_path / "outside.js")
    d = central_factory(console_dir=str(dev), console_connect_src="https://relay.example:8443")
    r = get(d, "/")
    assert r.text == "<!doctype html><title>dev copy</title>"
    assert "connect-src 'self' https://relay.example:8443;" in r.headers["content-security-policy"]
    (dev / "index.html").write_text("<!doctype html><title>edited</title>")
    r2 = get(d, "/", **{"If-None-Match": r.headers["etag"]})
    assert r2.status_code == 200 and "edited" in r2.text
    assert get(d, "/console/link.js").status_code == 404  # no symbolic links out
    assert get(d, "/console/console.js").status_code == 404  # not in the dev copy

    # an origin list that would change the policy stops the start, naming the directive
    bad = central_factory(launch=False, console_connect_src="https://x.example; script-src *")
    with pytest.raises(RuntimeError) as e:
        bad.daemon.start()
    assert "console_connect_src" in str(e.value)


# ---- the console in a browser ---------------------------------------------------------

def test_wrong_password_then_no_foreign_requests(central_factory, chromium):
    c = central_factory()
    admin = c.admin()
    admin.ok("POST", "/sites", {"name": "Lonely site"})
    page = Console(chromium, c)
    page.login("admin", "not-the-password")
    msg = page.until("const e = document.getElementById('login-error');"
                     "return !e.hidden && e.textContent", 10, "the login error")
    assert msg == "Wrong user name or password."
    assert page.js("return document.getElementById('app').hidden") is True
    assert page.js("return document.activeElement.id") == "login-pass"
    r = admin.ok("GET", "/audit", params={"action": "login", "result": "failed"})
    assert r["total"] >= 1 and r["items"][0]["client_type"] == "console"

    page.login("admin", "Adm1n-Passw0rd!")
    page.wait_app()
    page.until("return [...document.querySelectorAll('#tree [role=treeitem]')]"
               ".some(li => li.textContent.includes('Lonely site'))", 10, "the site in the tree")
    page.until("return document.getElementById('stream-state').dataset.state === 'live'", 10,
               "the alarm stream live")
    # Every resource and API call went to central's own origin (the WebSocket is not a
    # resource entry; it is checked by its state above and by the CSP's connect-src 'self').
    urls = page.js("return performance.getEntriesByType('navigation')"
                   ".concat(performance.getEntriesByType('resource')).map(e => e.name)")
    assert urls and all(u.startswith(c.url + "/") for u in urls), urls
    assert any("/api/v1/me" in u for u in urls) and any(u.endswith("/console/console.js") for u in urls)
    logs = page.logs()
    assert "Content Security Policy" not in logs and "Refused to" not in logs, logs

    # log out: back to the login form, and the session is over at central
    page.d.find_element("id", "logout").click()
    page.until("return !document.getElementById('login-view').hidden", 10, "the login form again")
    sessions = admin.ok("GET", "/sessions")["items"]
    assert not any(s.get("client_type") == "console" for s in sessions), sessions


def test_operator_sees_tree_and_accepts_an_alarm_live(central_factory, daemon_factory,
                                                      camera_factory, chromium):
    central, admin, site, node, edge, camera = demo_system(central_factory, daemon_factory,
                                                           camera_factory)
    page = Console(chromium, central)
    page.login("guard", PASSWORD)
    page.wait_app()
    assert "Guard" in page.js("return document.getElementById('who').textContent")

    # the tree: the operator's site, its edge and the camera, each with its state
    tree = page.until(
        "const q = (s) => [...document.querySelectorAll('#tree [role=treeitem]')];"
        "const cam = q().find(li => li.dataset.camera === arguments[0]);"
        "if (!cam) return null;"
        "return q().map(li => [li.dataset.kind, li.querySelector('.label').textContent,"
        "  (li.querySelector(':scope > .row > .state') || {}).textContent || null,"
        "  li.getAttribute('aria-level')]);", 15, "the camera in the tree", camera["id"])
    assert ["site", "Warehouse 7", None, "2"] in tree, tree
    assert ["edge", "edge-w7", "online", "3"] in tree, tree
    assert ["camera", "Loading door", "online", "4"] in tree, tree
    assert "Harbour HQ" not in str(tree)  # not granted to the operator

    # keyboard: the tree is one tab stop; arrows move through it
    page.js("document.querySelector('#tree [tabindex=\"0\"]').focus()")
    from selenium.webdriver.common.keys import Keys
    for _ in range(3):
        page.d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    focused = page.js("return document.activeElement.dataset.kind")
    assert focused == "camera", focused
    assert page.js("return document.querySelectorAll('#tree [tabindex=\"0\"]').length") == 1

    page.until("return document.getElementById('stream-state').dataset.state === 'live'", 10,
               "the alarm stream live")
    page.js("window.__noReload = 1")
    push_intrusion(edge)
    alarm_id = page.until(
        "const li = [...document.querySelectorAll('#alarms li.alarm')]"
        ".find(li => li.dataset.state === 'new' && li.textContent.includes('intrusion'));"
        "return li && li.dataset.alarm", 20, "the new alarm in the list")
    assert page.js("return window.__noReload") == 1, "the page reloaded"
    said = page.js("return document.getElementById('announce').textContent")
    assert said.startswith("New alarm: intrusion, severity 4") and "Loading door" in said, said
    assert page.js("return document.getElementById('announce').getAttribute('aria-live')") == "assertive"

    # Accept: the dialog takes focus, a comment is required, focus comes back afterwards
    page.js("document.querySelector(`#a-${arguments[0]} [data-action=accepted]`).click()", alarm_id)
    page.until("return document.getElementById('handle-dialog').open", 5, "the dialog")
    assert page.js("return document.activeElement.id") == "handle-comment"
    page.js("document.getElementById('handle-ok').click()")
    assert page.until("const e = document.getElementById('handle-error');"
                      "return !e.hidden && e.textContent", 5, "the comment error") == \
        "This alarm needs a comment."
    page.d.switch_to.active_element.send_keys("guard sent to door 7")
    page.js("document.getElementById('handle-ok').click()")
    page.until("return !document.getElementById('handle-dialog').open", 10, "the dialog closed")
    a = admin.ok("GET", f"/alarms/{alarm_id}")
    assert a["state"] == "accepted" and a["handled_by"] == "guard", a
    assert a["comment"] == "guard sent to door 7"
    assert a["history"][-1]["source"] == "user"
    page.until("return !document.getElementById('a-' + arguments[0])", 5,
               "the handled alarm gone from the open list", alarm_id)
    assert page.js("return document.activeElement && document.activeElement.id") in \
        ("alarm-title", "main", "alarms") or page.js("return document.activeElement.tagName") != "BODY"

    # a second alarm handled elsewhere first: the console says by whom
    push_intrusion(edge)
    second = page.until(
        "const li = [...document.querySelectorAll('#alarms li.alarm')].find(li => li.dataset.state === 'new');"
        "return li && li.dataset.alarm", 20, "the second alarm")
    page.js("document.querySelector(`#a-${arguments[0]} [data-action=false]`).click()", second)
    page.until("return document.getElementById('handle-dialog').open", 5, "the dialog")
    admin.ok("POST", f"/alarms/{second}/state", {"state": "accepted", "comment": "HQ has it"})
    page.d.switch_to.active_element.send_keys("false: a cat")
    page.js("document.getElementById('handle-ok').click()")
    err = page.until("const e = document.getElementById('handle-error');"
                     "return !e.hidden && e.textContent", 10, "the conflict message")
    assert err == "Already accepted by admin.", err
    assert page.js("return document.getElementById('handle-dialog').open") is True
    page.js("document.getElementById('handle-cancel').click()")
    assert admin.ok("GET", f"/alarms/{second}")["handled_by"] == "admin"


def test_live_tile_plays_through_the_relay(central_factory, daemon_factory, camera_factory,
                                           relay_factory, chromium):  # noqa: F811
    relays = []
    central, admin, site, node, edge, camera = demo_system(
        central_factory, daemon_factory, camera_factory,
        before_edge=lambda c, a, s: relays.append(relay_factory(c, a, site_id=s["id"])),
        edge_conf={"webrtc_addresses": "127.0.0.1"}, config_recheck="2s")
    guard = central.api()
    assert guard.login("guard", PASSWORD).status_code == 200
    probe = guard.call("POST", f"/cameras/{camera['id']}/live", json={})
    assert probe.status_code == 200, probe.text
    relay_origin = relays[0].url
    # central puts the relays it knows into the console's policy by itself
    wait(lambda: f"connect-src 'self' {relay_origin};" in
         get(central, "/").headers["content-security-policy"], 20, "the relay in the console's CSP")
    last = {}

    def live_ok():
        r = guard.call("POST", f"/cameras/{camera['id']}/live", json={})
        last.update(status=r.status_code, body=r.text)
        return r.status_code in (200, 201)
    try:
        wait(live_ok, 30, "a relay able to serve the camera")
    except AssertionError as e:
        raise AssertionError(f"{e}; last answer: {last}") from None
    grant = guard.ok("POST", f"/cameras/{camera['id']}/live", {})
    assert grant["whep_url"].startswith(relay_origin + "/"), grant

    page = Console(chromium, central)
    page.login("guard", PASSWORD)
    page.wait_app()
    page.until("return !!document.querySelector(`#tree [data-camera='${arguments[0]}']`)", 15,
               "the camera in the tree", camera["id"])
    page.js("document.querySelector(`#tree [data-camera='${arguments[0]}'] .label`).click()",
            camera["id"])
    tile = page.until(
        "const t = document.querySelector(`#grid li[data-camera='${arguments[0]}']`);"
        "if (!t) return null;"
        "if (t.dataset.state === 'error') return {error: t.dataset.error || 'error'};"
        "const v = t.querySelector('video');"
        "return Number(t.dataset.frames) > 0 && v.videoWidth > 0 &&"
        "  {frames: Number(t.dataset.frames), w: v.videoWidth, h: v.videoHeight};",
        30, "decoded frames in the live tile", camera["id"])
    assert "error" not in tile, tile
    assert (tile["w"], tile["h"]) == (320, 180), tile
    time.sleep(2)
    later = int(page.js("return document.querySelector(`#grid li[data-camera='${arguments[0]}']`)"
                        ".dataset.frames", camera["id"]))
    assert later > tile["frames"], (tile, later)
    # the WHEP signalling went to the relay named in the policy, nothing else left central
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(u.startswith(central.url + "/") or u.startswith(relay_origin + "/") for u in urls), urls
    # the grid: 9 tiles, the camera keeps playing in the first
    from selenium.webdriver.support.ui import Select
    Select(page.d.find_element("id", "layout")).select_by_value("9")
    assert page.js("return document.querySelectorAll('#grid > li').length") == 9
    page.js("document.querySelector(`#grid li[data-camera='${arguments[0]}'] button`).click()",
            camera["id"])
    page.until("return !document.querySelector(`#grid li[data-camera='${arguments[0]}']`)", 5,
               "the tile stopped", camera["id"])
    # Recordings: the edge's ranges through the relay (the playback grant's recordings_url),
    # and "Play from here" plays the archive
    page.js("document.getElementById('tab-rec').click()")
    Select(page.d.find_element("id", "rec-camera")).select_by_value(camera["id"])
    rng = page.until(
        "const b = document.querySelector('#rec-list li button.rec-play');"
        "return b ? document.querySelector('#rec-list li').textContent"
        "  : (/Recordings:|not listed/.test(document.getElementById('rec-status').textContent)"
        "     && {error: document.getElementById('rec-status').textContent});",
        30, "a recorded range listed")
    assert isinstance(rng, str) and "Play from here" in rng, rng
    assert page.js("return document.querySelectorAll('#rec-list time[datetime]').length") >= 2
    page.js("document.querySelector('#rec-list li button.rec-play').click()")
    played = page.until(
        "const t = document.querySelector('#rec-player .tile');"
        "if (!t) return null;"
        "if (t.dataset.state === 'error') return {error: document.getElementById('rec-status').textContent};"
        "return Number(t.dataset.frames) > 0 && {frames: Number(t.dataset.frames)};",
        30, "decoded frames from the archive")
    assert "error" not in played, played
    urls = page.js("return performance.getEntriesByType('resource').map(e => e.name)")
    assert any(u.startswith(relay_origin + "/edge/recordings/") for u in urls), urls


def test_console_player_plays_a_whep_stream(central_factory, edge_factory, camera_factory,
                                            chromium):
    """The console's WHEP player (the live tile) against the edge's own WHEP endpoint: the
    same protocol the relay speaks, so the player is checked whatever the broker's state."""
    cam = camera_factory(width=320, height=180)
    edge = edge_factory([camera_entry(cam, "door")])
    edge.wait_state("door", "online")
    r = edge.d.request("POST", "/api/v1/viewer-tokens",
                       body=b'{"camera": "door", "ttl_s": 300, "archive_depth_s": 0}',
                       headers={"Authorization": f"Bearer {edge.token}",
                                "Content-Type": "application/json"})
    assert r.status in (200, 201), r.text
    grant = {"whep_url": edge.d.base_url + "/whep/door", "token": r.json()["token"],
             "ice_servers": []}
    c = central_factory(console_connect_src=edge.d.base_url)
    page = Console(chromium, c)
    page.login("admin", "Adm1n-Passw0rd!")
    page.wait_app()
    page.js("window.canopyConsole.playGrant({id: 'door', name: 'Edge door'}, arguments[0])", grant)
    tile = page.until(
        "const t = document.querySelector(\"#grid li[data-camera='door']\");"
        "if (!t) return null;"
        "if (t.dataset.state === 'error') return {error: t.dataset.error || 'error'};"
        "const v = t.querySelector('video');"
        "return Number(t.dataset.frames) > 0 && v.videoWidth > 0 &&"
        "  {frames: Number(t.dataset.frames), w: v.videoWidth, h: v.videoHeight};",
        30, "decoded frames in the tile")
    assert "error" not in tile, tile
    assert (tile["w"], tile["h"]) == (320, 180), tile
    edge.wait_for(lambda: viewers(edge) == 1, 5, "one viewer at the edge")
    # stopping the tile ends the session at the edge (DELETE on the Location)
    page.js("document.querySelector(\"#grid li[data-camera='door'] button\").click()")
    edge.wait_for(lambda: viewers(edge) == 0, 10, "the session deleted at the edge")
    logs = page.logs()
    assert "Content Security Policy" not in logs and "Refused to" not in logs, logs


def viewers(edge) -> int:
    v = edge.camera("door").get("viewers")
    return len(v) if isinstance(v, list) else int(v or 0)
