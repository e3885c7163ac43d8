"""NAT traversal lab: which ICE path a viewer gets through real NATs, end to end.

The test builds the lab itself (fixtures/netlab.py: network namespaces, iptables NAT):
central and the relay (with its STUN/TURN server) on a public-looking "wan"; canopy-edge
and a GStreamer test camera at a site behind one NAT; an aiortc viewer behind another.
The edge enrols into central and registers with the relay through its NAT; the test asks
central for `live` and hands {whep_url, token, ice_servers} to the viewer, which runs in
its namespace, does WHEP to the relay, decodes frames and reports the nominated ICE pair.

* cone/cone (MASQUERADE, port preserving): the pair is direct (host/srflx/prflx, the
  site NAT's public address on the far side), the edge reports the session as p2p and
  the relay's TURN server relays no media bytes although the viewer holds an allocation.
* symmetric/symmetric (MASQUERADE --random): no direct path exists; the pair uses the
  viewer's relayed candidate on the relay, the edge reports turn and the TURN server's
  relayed-bytes counter grows with the video.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time

import pytest

from fixtures.central import ADMIN_PASSWORD, Central, wait
from fixtures.daemons import render_conf
from fixtures.edge import Edge
from fixtures.netlab import WAN_IP, netlab_factory, pg_dsn  # noqa: F401
from fixtures.relay import Relay

VIEWER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "natlab_viewer.py")
TURN_PORT = 3478  # the lab's wan is a namespace of its own: fixed ports are free
FRAMES = 20
HOLD_S = 5.0


def metric_sum(text: str, name: str, **labels) -> float:
    """Sum of a family's samples whose labels include labels."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, val = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(val)
    return total


class ViewerProc:
    """natlab_viewer.py in the viewer's namespace; its JSON lines through a queue."""

    def __init__(self, lab, args: dict):
        self.p = lab.popen("viewer", ["/usr/bin/python3", VIEWER], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._pump_out, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()
        self.p.stdin.write(json.dumps(args) + "\n")
        self.p.stdin.flush()

    def _pump_out(self):
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self):
        for line in self.p.stderr:
            self.err.append(line)

    def next(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"viewer silent for {timeout}s; stderr:\n{self.stderr()}")
        if line is None:
            raise AssertionError(f"viewer exited ({self.p.poll()}); stderr:\n{self.stderr()}")
        return json.loads(line)

    def stderr(self) -> str:
        return "".join(self.err)[-4000:]

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)


@pytest.mark.parametrize("nat,path", [("cone", "p2p"), ("symmetric", "turn")])
def test_ice_path_through_nats(netlab_factory, pg, daemon_factory, camera_factory, tmp_path,
                               nat, path):
    lab = netlab_factory(site_nat=nat, viewer_nat=nat)
    dbname = pg.create_database()  # over TCP from here, before entering the lab
    pwfile = tmp_path / "bootstrap-password"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    viewer = None
    with lab.inside("wan"):
        # central on the wan (all addresses of the namespace; 127.0.0.1 for the test)
        cd = daemon_factory("central", db=pg_dsn(pg, dbname), bootstrap_password_file=str(pwfile),
                            http_listen="0.0.0.0", tls_names=f"127.0.0.1,{WAN_IP}",
                            config_recheck="2s")
        central = Central(cd, dbname)
        admin = central.admin()
        uplink = f"wss://{WAN_IP}:{cd.port}/uplink"
        site = admin.ok("POST", "/sites", {"name": f"NAT lab {nat}"})

        # the relay, enrolled, with STUN/TURN on the wan address
        rnode = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "relay",
                                            "name": "relay-lab"})
        rtok = admin.ok("POST", f"/nodes/{rnode['id']}/enrolment-tokens", {})["token"]
        turn = f"{WAN_IP}:{TURN_PORT}"
        rd = daemon_factory("relay", launch=False, central_url=uplink, central_ca=central.ca_file,
                            enrol_token=rtok, http_listen="0.0.0.0", drain_timeout="3s",
                            load_report="2s", turn_listen=turn, log_debug="turn",
                            ice_urls=f"stun:{turn} turn:{turn}?transport=udp")
        rd.conf["public_url"] = f"http://{WAN_IP}:{rd.port}"
        rd.conf_path.write_text(render_conf(rd.conf))
        rd.start()
        relay = Relay(rd, rnode)
        wait(lambda: relay.health().get("configured"), 15, "relay configured by central")

        # the edge at the site, behind its NAT; STUN at the relay for its srflx candidate
        enode = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge",
                                            "name": "edge-lab"})
        etok = admin.ok("POST", f"/nodes/{enode['id']}/enrolment-tokens", {})["token"]
        ed = daemon_factory("edge", launch=False, central_url=uplink, central_ca=central.ca_file,
                            enrol_token=etok, webrtc_addresses=lab.site_ip,
                            webrtc_stun=turn)
        lab.bind(ed, "site").start()
        edge = Edge(ed)
        with lab.inside("site"):  # the camera on the site's own loopback
            cam = camera_factory(width=320, height=240, fps=15, gop=15)
        c = admin.ok("POST", "/cameras", {"node_id": enode["id"], "key": "door",
                                          "name": "Door", "config": {"main_url": cam.url}})
        edge.wait_state("door", "online", timeout=20)

        def registered():
            rel = edge.api("/api/v1/cameras").json().get("relays") or []
            return any(r["id"] == relay.id and r["state"] == "registered" for r in rel) and rel
        edge.wait_for(registered, 30, "edge registered with the relay through its NAT")
        wait(lambda: relay.health()["edges"] == 1, 10, "relay counts the edge")
        # the edge came through the site NAT: central and the relay see the NAT's address
        assert lab.gw_ip["sgw"] in lab.run("wan", ["ss", "-tn"]).stdout

        for _ in range(30):  # central learns the relay's edges from its next load report
            r = admin.post(f"/cameras/{c['id']}/live", {})
            if r.status_code != 503:
                break
            time.sleep(0.5)
        assert r.status_code == 200, r.text
        g = r.json()
        assert g["whep_url"].startswith(f"http://{WAN_IP}:{rd.port}/whep/"), g
        urls = [u for s in g["ice_servers"] for u in s["urls"]]
        assert f"turn:{turn}?transport=udp" in urls and f"stun:{turn}" in urls, g
        assert any(s.get("username") and s.get("credential") for s in g["ice_servers"]), g

        tenant = admin.ok("GET", "/me")["tenant"]["id"]
        try:
            viewer = ViewerProc(lab, {"whep_url": g["whep_url"], "token": g["token"],
                                      "ice_servers": g["ice_servers"], "frames": FRAMES,
                                      "timeout": 30, "hold": HOLD_S})
            first = viewer.next(60)
            if not first.get("ok"):
                turn_metrics = [ln for ln in relay.metrics().splitlines()
                                if ln.startswith("canopy_turn")]
                answer = (first.get("candidates") or {}).get("answer") or []
                hint = ("" if any(" typ srflx" in c for c in answer) else
                        "the edge answered no srflx candidate: the relay's STUN (turn_listen) "
                        "did not answer libnice's Binding request\n")
                pytest.fail(f"{hint}viewer failed: {json.dumps(first, indent=1)}\nviewer stderr:\n"
                            f"{viewer.stderr()}\nrelay TURN metrics:\n" + "\n".join(turn_metrics)
                            + f"\nrelay log:\n{relay.log()[-3000:]}\nedge log:\n"
                            f"{edge.d.log()[-3000:]}", pytrace=False)
            m0 = relay.metrics()
            # the edge told the relay which path ICE took
            try:
                wait(lambda: relay.metric("canopy_relay_sessions", tenant=tenant, path=path) == 1,
                     HOLD_S, f"the session counted as {path} at the relay")
            except AssertionError as e:
                raise AssertionError(f"{e}: pair {first['pair']}\n" + "\n".join(
                    ln for ln in relay.metrics().splitlines() if "relay_sessions" in ln)
                    + f"\nedge log:\n{edge.d.log()[-2000:]}\nviewer stderr:\n{viewer.stderr()}"
                    + f"\nviewer: {json.dumps(first)}") from None
            second = viewer.next(HOLD_S + 20)
            time.sleep(1.2)  # TURN byte counters are published each second
            m1 = relay.metrics()
            closed = viewer.next(20)
            assert viewer.p.wait(20) == 0, viewer.stderr()
        finally:
            if viewer is not None:
                viewer.stop()
        report = {"nat": nat, "viewer": first, "held": second, "closed": closed}

        # frames decoded, with their content: size and the test camera's frame codes
        assert first["size"] == [320, 240], report
        assert first["codes"] >= FRAMES and first["last_code"] > first["first_code"], report
        assert second["held_frames"] >= HOLD_S * 15 * 0.5, report
        assert closed["closed"] == 200, report

        pair = first["pair"]
        types = (pair["local"]["type"], pair["remote"]["type"])
        relayed = (metric_sum(m1, "canopy_turn_relayed_bytes_total", tenant=tenant)
                   - metric_sum(m0, "canopy_turn_relayed_bytes_total", tenant=tenant))
        total = metric_sum(m1, "canopy_turn_relayed_bytes_total", tenant=tenant)
        # Both sides had every kind of candidate, so the path is ICE's choice, not a gap:
        # the viewer a host, a srflx (the relay's STUN) and a relayed one (an allocation at
        # the relay's TURN); the edge a srflx from the relay's STUN, on its NAT's address.
        assert {"host", "srflx", "relay"} <= set(first["local_candidates"]), report
        assert metric_sum(m0, "canopy_turn_sessions_total", tenant=tenant) >= 1, m0
        edge_srflx = [c for c in first["candidates"]["answer"] if " typ srflx" in c]
        assert any(f" {lab.gw_ip['sgw']} " in c for c in edge_srflx), report
        print(f"NAT lab {nat}/{nat}: pair {types} {pair}, TURN bytes during {HOLD_S}s "
              f"of video: {relayed:.0f} (whole session {total:.0f}), "
              f"connect {first['connect_s']}s")
        if path == "p2p":
            assert "relay" not in types, report
            # straight to the site NAT's public address (srflx or prflx)
            assert pair["remote"]["host"] == lab.gw_ip["sgw"], report
            # no media through TURN; at most the checks of pairs ICE did not choose
            assert relayed == 0 and total < 10000, (relayed, total, report)
        else:
            assert pair["local"]["type"] == "relay" and pair["local"]["host"] == WAN_IP, report
            assert relayed > 20000, (relayed, report)
        assert second["pair"] == pair, report
