"""The uplink between canopy-edge and canopy-central, with real binaries, PostgreSQL and RTSP cameras.

Enrolment with a one-time token, camera configuration pushed from central and applied live,
inventory and state roll-up, desired vs applied versions, event outbox drain, offline
marking, revocation, and an edge that keeps recording alone when central is down.
"""

from __future__ import annotations

import json
import time

from fixtures.central import wait
from fixtures.edge import Edge


def make_edge_node(admin, site_name="Site A"):
    site = admin.ok("POST", "/sites", {"name": site_name})
    node = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge", "name": "edge-a"})
    tok = admin.ok("POST", f"/nodes/{node['id']}/enrolment-tokens", {})
    return site, node, tok["token"]


def start_edge(daemon_factory, central, token, **conf) -> Edge:
    d = daemon_factory("edge", central_url=central.uplink_url, central_ca=central.ca_file,
                       enrol_token=token, log_level="debug", **conf)
    return Edge(d)


def node_state(admin, node_id):
    return admin.ok("GET", f"/nodes/{node_id}")


def test_enrol_push_camera_and_roll_up(central_factory, daemon_factory, camera_factory):
    central = central_factory()
    admin = central.admin()
    site, node, token = make_edge_node(admin)
    edge = start_edge(daemon_factory, central, token)

    n = wait(lambda: (x := node_state(admin, node["id"]))["state"] == "online" and x,
             10, "edge online at central")
    assert n["key_id"] and n["software"].startswith("canopy-edge")
    # the edge stores its identity when central's welcome arrives, just after central
    # marks it online (slower under the sanitizers)
    wait(lambda: (edge.data / "uplink.json").exists(), 5, "identity stored by the edge")
    up = edge.api("/api/v1/cameras").json()["uplink"]
    assert up["state"] == "ready" and up["node_id"] == node["id"] and up["error"] is None

    cam = camera_factory()
    t0 = time.monotonic()
    c = admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "door", "name": "Front door",
                                      "config": {"main_url": cam.url, "recording": "continuous"}})
    # pushed at once: the edge records within seconds, and central sees it online
    edge.wait_state("door", "online", timeout=10)
    wait(lambda: edge.camera("door")["status"]["recording"], 10, "edge recording")
    wait(lambda: admin.ok("GET", f"/cameras/{c['id']}")["state"] == "online", 10,
         "camera online at central")
    elapsed = time.monotonic() - t0
    assert elapsed < 8, f"camera took {elapsed:.1f}s to reach online at central"
    inv = admin.ok("GET", f"/cameras/{c['id']}")["inventory"]
    assert inv["codec"] == "h264" and inv["width"] == cam.width

    # desired == applied once the edge acked
    n = wait(lambda: (x := node_state(admin, node["id"]))["config"]["drift"] is False and x,
             10, "no drift")
    assert n["config"]["applied_version"] == n["config"]["desired_version"]
    # the offset comes with the first heartbeat (every 10 s, stored every 2 s), which can
    # still be on its way when the camera is already recording
    n = wait(lambda: (x := node_state(admin, node["id"]))["clock_offset_ms"] is not None and x,
             15, "clock offset from a heartbeat")
    assert abs(n["clock_offset_ms"]) < 2000

    # the edge persisted the document it applied (its configuration for running alone)
    doc = json.loads(edge.cameras_file.read_text())
    assert [x["id"] for x in doc["cameras"]] == ["door"]
    assert doc["version"] == n["config"]["applied_version"]

    # central checks a configuration with the edge's own parser: a mistake is a 400 now
    r = admin.patch(f"/cameras/{c['id']}", {"config": {"main_url": "http://not-rtsp/x"}})
    assert r.status_code == 400 and "main_url" in r.json()["detail"], r.text
    # a document the edge still refuses (as from an older central: written straight into
    # the database) shows as drift with the edge's reason
    import psycopg2
    conn = psycopg2.connect(central_dsn(central))
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE cameras SET desired = '{\"main_url\": \"http://not-rtsp/x\"}'"
                    " WHERE id = %s", (c["id"],))
        cur.execute("SELECT canopy_config_changed(%s)", (node["id"],))
    conn.close()
    n = wait(lambda: (x := node_state(admin, node["id"]))["config"]["error"] and x, 10,
             "apply error reported")
    assert n["config"]["drift"] is True
    assert "main_url" in n["config"]["error"]
    assert json.loads(edge.cameras_file.read_text())["cameras"][0]["main_url"] == cam.url
    edge.wait_state("door", "online", timeout=5)

    # removing the camera at central stops it on the edge
    admin.ok("PATCH", f"/cameras/{c['id']}", {"config": {"main_url": cam.url}})
    wait(lambda: node_state(admin, node["id"])["config"]["drift"] is False, 10, "fixed")
    admin.ok("DELETE", f"/cameras/{c['id']}")
    wait(lambda: "door" not in edge.cameras(), 10, "camera removed from the edge")

    # events from the edge's outbox reach central (camera.online at least)
    events = central_events(central, node["id"])
    assert any(e["type"] == "camera.online" for e in events), events


def central_events(central, node_id):
    import psycopg2  # read the table the alarms work builds on
    conn = psycopg2.connect(central_dsn(central))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT type, camera_key FROM events WHERE node_id = %s", (node_id,))
            return [{"type": t, "camera": k} for t, k in cur.fetchall()]
    finally:
        conn.close()


def central_dsn(central):
    return central.daemon.conf["db"]


def test_token_is_single_use_and_revocation_is_immediate(central_factory, daemon_factory):
    central = central_factory()
    admin = central.admin()
    site, node, token = make_edge_node(admin)
    edge = start_edge(daemon_factory, central, token)
    wait(lambda: node_state(admin, node["id"])["state"] == "online", 10, "online")

    # a second node presenting the same (used) token is refused
    other = daemon_factory("edge", central_url=central.uplink_url, central_ca=central.ca_file,
                           enrol_token=token)
    wait(lambda: "already used" in other.log(), 10, "refusal logged by the second edge")
    other_edge = Edge(other)
    up = wait(lambda: (x := other_edge.api("/api/v1/cameras").json()["uplink"])["error"] and x,
              5, "refusal visible in the edge API")
    assert up["state"] in ("refused", "connecting", "authenticating") and "already used" in up["error"]
    m = other.get("/metrics").text
    assert "canopy_uplink_refused 1" in m and "canopy_uplink_ready 0" in m

    # restart: the edge authenticates with its key (the token is spent)
    edge.d.stop()
    edge.d.start()
    wait(lambda: "connected to" in edge.d.log().split("canopy-edge stopped")[-1], 10,
         "reconnected with the node key")

    admin.ok("POST", f"/nodes/{node['id']}/revoke")
    wait(lambda: "node revoked" in edge.d.log(), 5, "link closed by central")
    assert node_state(admin, node["id"])["state"] == "revoked"
    time.sleep(2)
    assert "canopy_uplink_ready 0" in edge.d.get("/metrics").text
    ev = admin.ok("GET", f"/node-events?node_id={node['id']}")["items"]
    assert {"node.enrolled", "node.online", "node.revoked"} <= {e["type"] for e in ev}


def test_wrong_ca_or_garbage_is_refused(central_factory, daemon_factory, tmp_path):
    central = central_factory()
    admin = central.admin()
    site, node, token = make_edge_node(admin)
    # a CA that did not sign central's certificate: the edge never connects
    import subprocess
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other", "-days", "1",
                    "-keyout", str(tmp_path / "k.pem"), "-out", str(tmp_path / "ca.pem")],
                   check=True, capture_output=True)
    d = daemon_factory("edge", central_url=central.uplink_url, central_ca=str(tmp_path / "ca.pem"),
                       enrol_token=token)
    time.sleep(3)
    assert node_state(admin, node["id"])["state"] == "pending"
    assert "canopy_uplink_ready 0" in d.get("/metrics").text

    # an independent WebSocket client speaking nonsense gets a clear error and is counted
    import asyncio
    import ssl
    import websockets

    async def talk():
        ctx = ssl.create_default_context(cafile=central.ca_file)
        async with websockets.connect(central.uplink_url, ssl=ctx) as ws:
            challenge = json.loads(await ws.recv())
            assert challenge["type"] == "challenge" and len(challenge["body"]["nonce"]) >= 40
            await ws.send('{"v":1,"type":"hello","id":"x","seq":1,"time":"not a time","body":{}}')
            err = json.loads(await ws.recv())
            try:
                await ws.recv()
            except websockets.ConnectionClosed as e:
                return err, e.code
            return err, None

    err, code = asyncio.run(talk())
    assert err["type"] == "error" and err["body"]["code"] == "bad_message"
    assert "time" in err["body"]["message"]
    assert code == 1008
    m = central.daemon.get("/metrics").text
    assert "canopy_central_uplink_bad_messages_total 1" in m
    # and central still serves everyone else
    assert admin.ok("GET", "/me")["user"]["username"] == "admin"


def test_offline_after_silence_and_edge_runs_alone(central_factory, daemon_factory,
                                                   camera_factory):
    central = central_factory(node_offline_after="5s")
    admin = central.admin()
    site, node, token = make_edge_node(admin)
    edge = start_edge(daemon_factory, central, token)
    cam = camera_factory()
    admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "yard",
                                  "config": {"main_url": cam.url}})
    edge.wait_state("yard", "online", timeout=15)

    central.daemon.stop()
    # the edge keeps recording without central, also across its own restart
    edge.d.stop()
    edge.d.start()
    edge.wait_state("yard", "online", timeout=15)
    wait(lambda: edge.camera("yard")["status"]["recording"], 10, "recording alone")
    assert "canopy_uplink_ready 0" in edge.d.get("/metrics").text

    # central back: the node was silent past the window -> offline event, then online again
    central.daemon.start()
    admin = central.admin()
    wait(lambda: node_state(admin, node["id"])["state"] == "online", 70, "online again")
    edge.d.stop()
    wait(lambda: node_state(admin, node["id"])["state"] == "offline", 20, "marked offline")
    n = node_state(admin, node["id"])
    assert "no heartbeat" in n["state_reason"]
    types = [e["type"] for e in admin.ok("GET", f"/node-events?node_id={node['id']}")["items"]]
    assert "node.offline" in types


def test_independent_client_clock_skew_and_events(central_factory):
    """A node written from docs/uplink.md alone (Python websockets + cryptography): enrols,
    sends a heartbeat from a clock 10 s fast, an event batch twice (acked, stored once)."""
    import asyncio
    import base64
    import ssl
    import uuid

    import websockets
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    central = central_factory(clock_warn_ms=2000)
    admin = central.admin()
    site, node, token = make_edge_node(admin)
    admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "door",
                                  "config": {"main_url": "rtsp://10.0.0.9/s"}})
    key = Ed25519PrivateKey.generate()
    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    pub = b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    seq = [0]

    def env(typ, body, skew_ms=0):
        seq[0] += 1
        t = time.time() + skew_ms / 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
        return json.dumps({"v": 1, "type": typ, "id": uuid.uuid4().hex, "seq": seq[0],
                           "time": stamp, "body": body})

    async def talk():
        ctx = ssl.create_default_context(cafile=central.ca_file)
        async with websockets.connect(central.uplink_url, ssl=ctx) as ws:
            ch = json.loads(await ws.recv())
            nonce = ch["body"]["nonce"]
            sig = b64(key.sign(f"canopy-uplink-v1\n{nonce}\n{token}".encode()))
            await ws.send(env("hello", {"enrol_token": token, "public_key": pub, "signature": sig,
                                        "kind": "edge", "name": "py", "software": "py-test"}))
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome", welcome
            assert welcome["body"]["node_id"] == node["id"]
            config = json.loads(await ws.recv())
            assert config["type"] == "config"
            assert [c["id"] for c in config["body"]["doc"]["cameras"]] == ["door"]
            await ws.send(env("config.ack", {"version": config["body"]["version"], "ok": True,
                                             "error": ""}))
            await ws.send(env("heartbeat", {"applied_version": 1}, skew_ms=10_000))
            evs = [{"id": "ev-1", "camera": "door", "type": "camera.offline",
                    "time": "2026-01-01T00:00:00Z", "state": "offline"}]
            for _ in range(2):  # at-least-once: a resend is stored once
                await ws.send(env("events", {"events": evs}))
                ack = json.loads(await ws.recv())
                assert ack["type"] == "events.ack" and ack["body"]["ids"] == ["ev-1"]
            await asyncio.sleep(3)  # heartbeats are written in batches every 2 s

    asyncio.run(talk())
    n = node_state(admin, node["id"])
    assert 9000 < n["clock_offset_ms"] < 11000, n["clock_offset_ms"]
    assert n["config"]["applied_version"] == n["config"]["desired_version"]
    types = [e["type"] for e in admin.ok("GET", f"/node-events?node_id={node['id']}")["items"]]
    assert "node.clock_skew" in types
    assert [e["type"] for e in central_events(central, node["id"])] == ["camera.offline"]


def test_enrolled_edge_keeps_its_own_cameras_until_central_manages_one(
        central_factory, daemon_factory, camera_factory):
    """An edge already recording from its local cameras_file enrols: central sends nothing
    (no drift shown) and the camera keeps recording; the first camera central configures
    makes central's document the edge's configuration."""
    from fixtures.edge import camera_entry
    central = central_factory()
    admin = central.admin()
    site, node, token = make_edge_node(admin)
    cam = camera_factory()
    d = daemon_factory("edge", launch=False, central_url=central.uplink_url,
                       central_ca=central.ca_file, enrol_token=token)
    edge = Edge(d)
    edge.data.mkdir(parents=True, exist_ok=True)
    edge.write_cameras([camera_entry(cam, "local")])
    d.start()
    edge.wait_state("local", "online", timeout=15)
    n = wait(lambda: (x := node_state(admin, node["id"]))["state"] == "online" and x, 10, "online")
    time.sleep(2)
    assert n["config"]["managed"] is False and n["config"]["drift"] is False
    assert "local" in edge.cameras() and edge.camera("local")["status"]["state"] == "online"
    # reported by the edge, visible at central as origin node
    wait(lambda: any(c["key"] == "local" and c["origin"] == "node"
                     for c in admin.ok("GET", "/cameras")["items"]), 10, "inventory")
    admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "new",
                                  "config": {"main_url": cam.url}})
    edge.wait_state("new", "online", timeout=15)
    n = wait(lambda: (x := node_state(admin, node["id"]))["config"]["drift"] is False
             and x["config"]["managed"] and x, 10, "managed, no drift")
    assert "local" not in edge.cameras()
