"""The relay's control plane and WHEP broker, with real binaries end to end.

PostgreSQL + canopy-central + canopy-relay (enrolled) + canopy-edge (enrolled, registered
with the relay over its outbound WebSocket) + a GStreamer RTSP test camera. A viewer asks
central for `live`, POSTs WHEP to the relay, and the relay brokers offer and answer to the
edge; media then flows edge -> viewer directly (P2P), never through the relay.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.parse

import pytest

from fixtures.central import wait
from fixtures.edge import Edge
from fixtures.whep import WhepClient, http_request, make_offer, post_offer

WEBRTC = {"webrtc_addresses": "127.0.0.1"}


def setup_system(central_factory, daemon_factory, relay_factory, camera_factory, **relay_conf):
    central = central_factory(config_recheck="2s")
    admin = central.admin()
    site = admin.ok("POST", "/sites", {"name": "Site A"})
    relay = relay_factory(central, admin, site_id=site["id"], **relay_conf)
    node = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge", "name": "edge-a"})
    tok = admin.ok("POST", f"/nodes/{node['id']}/enrolment-tokens", {})["token"]
    edge = Edge(daemon_factory("edge", central_url=central.uplink_url, central_ca=central.ca_file,
                               enrol_token=tok, **WEBRTC))
    cam = camera_factory(width=320, height=240, fps=15, gop=15)
    c = admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "door", "name": "Door",
                                      "config": {"main_url": cam.url, "recording": "continuous"}})
    edge.wait_state("door", "online", timeout=15)
    wait_registered(edge, relay)
    return central, admin, relay, edge, node, c


def wait_registered(edge, relay, timeout=20):
    def ok():
        rel = edge.api("/api/v1/cameras").json().get("relays") or []
        return any(r["id"] == relay.id and r["state"] == "registered" for r in rel) and rel
    edge.wait_for(ok, timeout, "edge registered with the relay")
    # central hears it from the relay's next load report
    wait(lambda: relay.health()["edges"] == 1, 5, "relay counts the edge")


def live(admin, cam_id, retries=20):
    """central's live call; retried while central has not yet seen the relay's report."""
    for _ in range(retries):
        r = admin.post(f"/cameras/{cam_id}/live", {})
        if r.status_code != 503:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    return r.json()


def split(whep_url):
    u = urllib.parse.urlsplit(whep_url)
    base = f"{u.scheme}://{u.netloc}"
    camera = u.path.rsplit("/", 1)[1]
    q = dict(urllib.parse.parse_qsl(u.query))
    return base, camera, q


def selected_pair(client):
    """(local type, remote type) of the aiortc viewer's nominated ICE pair."""
    for t in client._pc.getTransceivers():
        ice = t.receiver.transport.transport
        conn = ice._connection
        for pair in conn._nominated.values():
            return pair.local_candidate.type, pair.remote_candidate.type
    return None


def test_live_through_relay_is_p2p(central_factory, daemon_factory, relay_factory, camera_factory):
    from fixtures.netutil import free_port

    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory,
                                                        turn_listen=f"127.0.0.1:{free_port()}")
    g = live(admin, c["id"])
    assert g["relay"]["id"] == relay.id and g["relay"]["url"] == relay.url
    assert g["whep_url"] == f"{relay.url}/whep/{c['id']}"
    assert "turn_secret" not in g and g["token"] and g["expires_at"]
    assert isinstance(g["ice_servers"], list)
    base, camera, q = split(g["whep_url"])
    v = WhepClient(name="relay-viewer")
    try:
        v.connect(base, camera, g["token"], stream=None)
        assert v.location.startswith(f"/whep/{c['id']}/")
        v.wait_frames(10, timeout=20)
        pair = selected_pair(v)
        assert pair and pair[0] in ("host", "srflx") and pair[1] in ("host", "srflx", "prflx"), pair
        # the edge reported the path: P2P, counted per tenant
        tenant = admin.ok("GET", "/me")["tenant"]["id"]
        wait(lambda: relay.metric("canopy_relay_sessions", tenant=tenant, path="p2p") == 1, 10,
             "p2p session counted at the relay")
        assert relay.metric("canopy_relay_sessions", tenant=tenant, path="turn") == 0
        # trickle goes through the relay too
        r = v.patch(v.ice_sdpfrag())
        assert r.status == 204, r
        # central sees the relay and its load
        rel = wait(lambda: [x for x in admin.ok("GET", "/relays")["items"]
                            if x["id"] == relay.id and x["sessions"] == 1], 10,
                   "relay load at central")[0]
        assert rel["state"] == "online" and rel["edges"] == 1 and rel["public_url"] == relay.url
        assert rel["load"]["tenants"][tenant]["p2p"] == 1
    finally:
        reply = v.close()
    assert reply is None or reply.status == 200, reply
    wait(lambda: relay.health()["sessions"] == 0, 10, "session gone at the relay")
    assert "canopy_relay_sessions_total{tenant=" in relay.metrics()
    # the relay's TURN server runs, but carried nothing: media went edge -> viewer
    assert "canopy_turn_allocations" in relay.metrics()
    assert turn_metric_sum(relay, "canopy_turn_relayed_bytes_total") == 0
    assert turn_metric_sum(relay, "canopy_turn_sessions_total") == 0


def forge(token: str, **claims) -> str:
    h, p, s = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    body.update(claims)
    p2 = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{h}.{p2}.{s}"


def test_refused_tokens_are_counted(central_factory, daemon_factory, relay_factory,
                                    camera_factory):
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory)
    g = live(admin, c["id"])
    base, camera, _ = split(g["whep_url"])
    offer = make_offer()
    # another camera's URL with this token
    other = "00000000-0000-0000-0000-000000000001"
    r = post_offer(base, f"/whep/{other}", offer, g["token"])
    assert r.status == 403 and "not" in r.detail, r
    # forged: claims changed, signature kept
    r = post_offer(base, f"/whep/{camera}", offer, forge(g["token"], cid=camera, node=node["id"], adepth=999999))
    assert r.status == 401, r
    r = post_offer(base, f"/whep/{camera}", offer, forge(g["token"], exp=int(time.time()) - 3600))
    assert r.status == 401, r
    r = post_offer(base, f"/whep/{camera}", offer, None)
    assert r.status == 401 and r.headers.get("WWW-Authenticate"), r
    r = post_offer(base, f"/whep/{camera}", offer, g["token"], content_type="text/plain")
    assert r.status == 415, r
    assert relay.metric("canopy_relay_whep_rejected_total", reason="unauthorized") >= 3
    assert relay.metric("canopy_relay_whep_rejected_total", reason="forbidden") >= 1
    # a token straight to the edge for a camera that is not the token's: refused there too
    r = post_offer(edge.d.base_url, "/whep/other", offer, g["token"])
    assert r.status in (403, 404), r


def test_playback_through_relay(central_factory, daemon_factory, relay_factory, camera_factory):
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory)
    # something recorded to play back
    edge.wait_for(lambda: edge.recordings("door").get("ranges"), 20, "a recorded range")
    time.sleep(3)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    r = admin.post(f"/cameras/{c['id']}/playback", {"start": start, "speed": 2})
    assert r.status_code == 200, r.text
    g = r.json()
    base, camera, q = split(g["whep_url"])
    assert q["speed"] == "2" and "start" in q
    v = WhepClient(name="relay-playback")
    try:
        v.connect(base, camera, g["token"], stream=None, start=q["start"], speed=2)
        v.wait_frames(5, timeout=20)
    finally:
        v.close()
    # the token carries the depth; the edge checks it too (here: within)
    assert g["archive_depth_s"] > 0


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_rfc3339(s: str) -> float:
    import calendar
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))


def test_recordings_through_relay(central_factory, daemon_factory, relay_factory, camera_factory):
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory)
    edge.wait_for(lambda: edge.recordings("door").get("ranges"), 20, "a recorded range")
    time.sleep(3)
    now = time.time()
    r = admin.post(f"/cameras/{c['id']}/playback", {"start": rfc3339(now - 2)})
    assert r.status_code == 200, r.text
    g = r.json()
    assert g["recordings_url"] == f"{relay.url}/edge/recordings/{c['id']}", g
    auth = {"Authorization": f"Bearer {g['token']}"}
    q = urllib.parse.urlencode({"from": rfc3339(now - 600), "to": rfc3339(now + 5)})
    r = http_request("GET", f"{g['recordings_url']}?{q}", headers=auth)
    assert r.status == 200 and r.content_type == "application/json", r.text
    assert r.headers.get("Access-Control-Allow-Origin") == "*"
    rec = r.json()
    assert rec["camera"] == "door" and rec["ranges"], rec
    first, last = rec["ranges"][0], rec["ranges"][-1]
    # the ranges cover what was recorded: at least the last few seconds
    assert parse_rfc3339(first["start"]) <= now - 3 <= parse_rfc3339(last["end"]) + 1, rec
    assert sum(x["duration_s"] for x in rec["ranges"]) >= 3, rec
    # the same as the edge's own API lists
    local = edge.recordings("door", **{"from": rfc3339(now - 600), "to": rfc3339(now + 5)})
    assert local["ranges"][0]["start"] == first["start"], (local, rec)
    r = http_request("OPTIONS", g["recordings_url"])
    assert r.status == 204 and "GET" in r.headers.get("Access-Control-Allow-Methods"), r
    # the token is for this camera only
    other = "00000000-0000-0000-0000-000000000001"
    r = http_request("GET", f"{relay.url}/edge/recordings/{other}", headers=auth)
    assert r.status == 403 and r.content_type == "application/problem+json" and "not" in r.detail, r
    # forged (claims changed, signature kept), absent, expired: 401
    bad = forge(g["token"], adepth=999999999)
    r = http_request("GET", g["recordings_url"], headers={"Authorization": f"Bearer {bad}"})
    assert r.status == 401 and r.headers.get("WWW-Authenticate"), r
    r = http_request("GET", g["recordings_url"])
    assert r.status == 401, r
    r = http_request("GET", f"{g['recordings_url']}?from=yesterday", headers=auth)
    assert r.status == 400 and "RFC 3339" in r.detail, r
    assert relay.metric("canopy_relay_whep_rejected_total", reason="unauthorized") >= 2
    assert relay.metric("canopy_relay_whep_rejected_total", reason="forbidden") >= 1
    # the archive depth cuts what is listed: a 10-minute user asking for the last 2 hours
    short = user_with(central, admin, "short", ["cameras.read", "archive.view"], depth_minutes=10)
    r = short.post(f"/cameras/{c['id']}/playback", {"start": rfc3339(time.time() - 2)})
    assert r.status_code == 200, r.text
    gs = r.json()
    q = urllib.parse.urlencode({"from": rfc3339(time.time() - 7200)})
    r = http_request("GET", f"{gs['recordings_url']}?{q}",
                     headers={"Authorization": f"Bearer {gs['token']}"})
    assert r.status == 200, r.text
    cut = r.json()
    assert cut["archive_depth_s"] == 600 and cut["ranges"], cut
    assert parse_rfc3339(cut["from"]) >= time.time() - 600 - 5, cut
    assert all(parse_rfc3339(x["start"]) >= parse_rfc3339(cut["from"]) - 1 for x in cut["ranges"])
    # the edge's own API (admin token) is not cut
    assert "archive_depth_s" not in edge.recordings("door", **{"from": rfc3339(time.time() - 7200)})


def user_with(central, admin, name, perms, depth_minutes=None):
    role = {"name": f"role-{name}", "permissions": perms}
    if depth_minutes:
        role.update(archive_depth=depth_minutes, archive_depth_unit="minutes")
    rid = admin.ok("POST", "/roles", role)["id"]
    pw = "Vi3wer-Passw0rd!"
    uid = admin.ok("POST", "/users", {"username": name, "password": pw})["id"]
    admin.ok("POST", "/grants", {"user_id": uid, "role_id": rid})
    api = central.api()
    assert api.login(name, pw).status_code == 200
    return api


def test_rights_decide_live_and_playback(central_factory, daemon_factory, relay_factory,
                                         camera_factory):
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory)
    live(admin, c["id"])  # the relay knows the edge
    watcher = user_with(central, admin, "watcher", ["cameras.read", "live.view"])
    r = watcher.post(f"/cameras/{c['id']}/live", {})
    assert r.status_code == 200, r.text
    r = watcher.post(f"/cameras/{c['id']}/playback", {"start": "2026-01-01T00:00:00Z"})
    assert r.status_code == 403 and "archive.view" in r.json()["detail"], r.text
    short = user_with(central, admin, "short", ["cameras.read", "archive.view"], depth_minutes=10)
    r = short.post(f"/cameras/{c['id']}/live", {})
    assert r.status_code == 403 and "live.view" in r.json()["detail"], r.text
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    r = short.post(f"/cameras/{c['id']}/playback", {"start": old})
    assert r.status_code == 403 and "600 s" in r.json()["detail"], r.text
    recent = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    r = short.post(f"/cameras/{c['id']}/playback", {"start": recent})
    assert r.status_code == 200 and r.json()["archive_depth_s"] == 600, r.text
    nobody = user_with(central, admin, "nobody", ["sites.read"])
    r = nobody.post(f"/cameras/{c['id']}/live", {})
    assert r.status_code == 404, r.text
    # every call is in the audit log
    audit = admin.ok("GET", "/audit", params={"action": "camera.live"})["items"]
    assert any(a["actor"] == "watcher" and a["result"] == "ok" for a in audit), audit


def test_edge_reregisters_with_restarted_relay(central_factory, daemon_factory, relay_factory,
                                               camera_factory):
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory)
    def registered():
        return [r for r in edge.api("/api/v1/cameras").json()["relays"]
                if r["id"] == relay.id and r["state"] == "registered"]

    # a drained relay (SIGTERM) told the edge and central: the edge lets it go, and
    # registers again once the restarted relay reports to central
    relay.d.stop()
    edge.wait_for(lambda: not registered(), 10, "edge lets the drained relay go")
    relay.d.start()
    wait_registered(edge, relay, timeout=40)
    # a relay that dies (SIGKILL) is dialled again with backoff until it is back
    relay.d.kill9()
    edge.wait_for(lambda: [r for r in edge.api("/api/v1/cameras").json()["relays"]
                           if r["id"] == relay.id and r["state"] != "registered" and r["error"]],
                  10, "edge sees the relay gone, and why")
    assert edge.d.get("/metrics").text.count('canopy_edge_relay_links{state="registered"} 0') == 1
    relay.d.start()
    wait_registered(edge, relay, timeout=40)
    g = live(admin, c["id"])
    base, camera, _ = split(g["whep_url"])
    v = WhepClient(name="after-restart")
    try:
        v.connect(base, camera, g["token"], stream=None)
        v.wait_frames(5, timeout=20)
    finally:
        v.close()


def test_no_relay_for_the_edge_is_a_precise_503(central_factory, daemon_factory, camera_factory):
    central = central_factory()
    admin = central.admin()
    site = admin.ok("POST", "/sites", {"name": "Site A"})
    node = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge", "name": "edge-a"})
    tok = admin.ok("POST", f"/nodes/{node['id']}/enrolment-tokens", {})["token"]
    edge = Edge(daemon_factory("edge", central_url=central.uplink_url, central_ca=central.ca_file,
                               enrol_token=tok, **WEBRTC))
    cam = camera_factory(width=320, height=240)
    c = admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "door",
                                      "config": {"main_url": cam.url}})
    wait(lambda: admin.ok("GET", f"/nodes/{node['id']}")["state"] == "online", 10, "edge online")
    r = admin.post(f"/cameras/{c['id']}/live", {})
    assert r.status_code == 503 and "no relay can reach edge edge-a" in r.json()["detail"], r.text


def test_drain_refuses_new_sessions(central_factory, daemon_factory, relay_factory,
                                    camera_factory):
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory,
                                                        drain_timeout="4s")
    g = live(admin, c["id"])
    base, camera, _ = split(g["whep_url"])
    v = WhepClient(name="drain")
    v.connect(base, camera, g["token"], stream=None)
    v.wait_frames(3, timeout=20)
    import signal
    relay.d.proc.send_signal(signal.SIGTERM)
    wait(lambda: relay.d.get("/health").status == 503, 5, "health says draining")
    r = post_offer(base, f"/whep/{camera}", make_offer(), g["token"])
    assert r.status == 503 and r.headers.get("Retry-After"), r
    # the running session keeps its media until the drain timeout
    n = len(v.codes)
    time.sleep(1)
    assert len(v.codes) > n
    # signalling for sessions under way still works: the viewer's DELETE ends the last
    # session, and the relay exits without waiting for the whole drain_timeout
    reply = v.close()
    assert reply is not None and reply.status == 200, reply
    t0 = time.monotonic()
    relay.d.proc.wait(timeout=10)
    assert relay.d.proc.returncode == 0 and time.monotonic() - t0 < 2.5
    assert "drained: 0 session(s) left" in relay.log()
    # central stops offering it
    r = admin.post(f"/cameras/{c['id']}/live", {})
    assert r.status_code == 503, r.text


def test_chromium_plays_through_relay_from_central_live_call(central_factory, daemon_factory,
                                                            relay_factory, camera_factory,
                                                            tmp_path):
    from fixtures.browser import Browser

    # An unanswered STUN URL: central hands it out, the browser tries it, host pairs win.
    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory,
                                                        ice_urls="stun:127.0.0.1:9")
    g = live(admin, c["id"])
    assert g["ice_servers"] == [{"urls": ["stun:127.0.0.1:9"]}], g["ice_servers"]
    b = Browser(tmp_path / "browser")
    try:
        page = b.open_whep(g["whep_url"], g["token"], ice_servers=g["ice_servers"])
        before, after = page.wait_frames_growing(2.0, min_growth=15, timeout=30)
        assert after["videoWidth"] == 320 and after["videoHeight"] == 240, after
        tenant = admin.ok("GET", "/me")["tenant"]["id"]
        wait(lambda: relay.metric("canopy_relay_sessions", tenant=tenant, path="p2p") == 1, 10,
             "the browser's session counted as p2p")
        assert page.stop() == 200
        wait(lambda: relay.health()["sessions"] == 0, 10, "session ended through the relay")
    finally:
        b.close()


def edge_sessions(edge) -> int:
    return len(edge.camera("door").get("viewers") or [])


def test_viewers_past_the_threshold_go_through_the_sfu(central_factory, daemon_factory,
                                                     relay_factory, camera_factory):
    central, admin, relay, edge, node, c = setup_system(
        central_factory, daemon_factory, relay_factory, camera_factory, sfu_threshold=1,
        sfu_webrtc_addresses="127.0.0.1", sfu_linger="1s")
    tenant = admin.ok("GET", "/me")["tenant"]["id"]
    viewers = []
    try:
        for i in range(3):
            g = live(admin, c["id"])
            base, camera, _ = split(g["whep_url"])
            v = WhepClient(name=f"v{i}")
            viewers.append(v)
            v.connect(base, camera, g["token"], stream=None)
            v.wait_frames(5, timeout=20)
        # the first peer to peer; the others share one upstream from the edge
        wait(lambda: relay.metric("canopy_relay_sessions", tenant=tenant, path="sfu") == 2
             and relay.metric("canopy_relay_sessions", tenant=tenant, path="p2p") == 1, 10,
             "1 p2p and 2 sfu sessions at the relay")
        assert edge_sessions(edge) == 2, edge.camera("door")["viewers"]
        # trickle to an SFU viewer is handled by the relay itself
        r = viewers[2].patch(viewers[2].ice_sdpfrag())
        assert r.status == 204, r
    finally:
        for v in viewers:
            reply = v.close()
            assert reply is None or reply.status == 200, reply
    wait(lambda: relay.health()["sessions"] == 0, 10, "relay sessions gone")
    # after its linger the SFU closes its upstream, and the relay ends it at the edge
    edge.wait_for(lambda: edge_sessions(edge) == 0, 20, "upstream closed at the edge")


def turn_metric_sum(relay, name) -> float:
    return sum(float(l.split()[-1]) for l in relay.metrics().splitlines()
               if l.startswith(name + "{"))


def test_chromium_relay_only_goes_through_turn(central_factory, daemon_factory, relay_factory,
                                               camera_factory, tmp_path, pg):
    """The browser may use relayed candidates only: the session's path is TURN, counted by
    tenant, and the relay's TURN server (secret from central) carries the media."""
    import hashlib
    import hmac

    from fixtures.browser import Browser
    from fixtures.netutil import free_port

    port = free_port()
    central, admin, relay, edge, node, c = setup_system(
        central_factory, daemon_factory, relay_factory, camera_factory,
        turn_listen=f"127.0.0.1:{port}", turn_allow_peers="127.0.0.0/8")
    tenant = admin.ok("GET", "/me")["tenant"]["id"]
    g = live(admin, c["id"])
    turn = [s for s in g["ice_servers"] if s["urls"][0].startswith("turn:")]
    assert turn and turn[0]["urls"][0] == f"turn:127.0.0.1:{port}?transport=udp", g["ice_servers"]
    user = turn[0]["username"]
    expiry, subject = user.split(":", 1)
    assert subject.startswith(tenant + "/") and int(expiry) > time.time() + 600, user
    conn = pg.connect(central.dbname, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SELECT turn_secret FROM relays WHERE id = %s", (relay.id,))
        secret = cur.fetchone()[0]
    conn.close()
    want = base64.b64encode(hmac.new(secret.encode(), user.encode(), hashlib.sha1).digest()).decode()
    assert turn[0]["credential"] == want
    b = Browser(tmp_path / "browser")
    try:
        page = b.open_whep(g["whep_url"], g["token"], ice_servers=g["ice_servers"], ice_policy="relay")
        page.wait_frames_growing(2.0, min_growth=15, timeout=30)
        wait(lambda: relay.metric("canopy_relay_sessions", tenant=tenant, path="turn") == 1, 10,
             "the session counted as turn")
        assert relay.metric("canopy_relay_sessions", tenant=tenant, path="p2p") == 0
        wait(lambda: turn_metric_sum(relay, "canopy_turn_relayed_bytes_total") > 100_000, 10,
             "media relayed by TURN")
        assert page.stop() == 200
    finally:
        b.close()


def test_bad_registrations_and_bodies_are_refused(central_factory, daemon_factory,
                                                  relay_factory, camera_factory):
    """Registrations need central's token and the node key's signature; a viewer cannot
    knock an edge off with a body the registration could not carry."""
    import asyncio

    import websockets

    central, admin, relay, edge, node, c = setup_system(central_factory, daemon_factory,
                                                        relay_factory, camera_factory)
    g = live(admin, c["id"])
    ws_url = relay.url.replace("http://", "ws://") + "/relay/edge"

    def env(typ, body):
        return json.dumps({"v": 1, "type": typ, "id": "x" + str(time.time_ns()), "seq": 1,
                           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "body": body})

    async def attempt(token):
        async with websockets.connect(ws_url) as ws:
            ch = json.loads(await ws.recv())
            assert ch["type"] == "challenge" and ch["body"]["relay_id"] == relay.id
            await ws.send(env("register", {"token": token, "signature": "AAAA"}))
            err = json.loads(await ws.recv())
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except websockets.ConnectionClosed as e:
                return err, e.code
            return err, None

    # a viewer token is no registration token; a forged one does not verify
    for tok in (g["token"], forge(g["token"], typ="relay-reg", scope="relay:register")):
        err, code = asyncio.run(attempt(tok))
        assert err["type"] == "error" and err["body"]["code"] == "refused", err
        assert code == 4003, code
    assert relay.metric("canopy_relay_edge_registrations_total", result="refused") == 2
    assert relay.health()["edges"] == 1  # the real edge is untouched

    base, camera, _ = split(g["whep_url"])
    r = post_offer(base, f"/whep/{camera}", b"v=0\r\n\xff\xfe bad", g["token"])
    assert r.status == 400 and "UTF-8" in r.detail, r
    r = post_offer(base, f"/whep/{camera}", b"v=0\r\n" + b"a=x\r\n" * 20000, g["token"])
    assert r.status == 413, r
    time.sleep(0.5)
    assert relay.health()["edges"] == 1
    v = WhepClient(name="after-bad")
    try:
        v.connect(base, camera, g["token"], stream=None)
        v.wait_frames(3, timeout=20)
    finally:
        v.close()
