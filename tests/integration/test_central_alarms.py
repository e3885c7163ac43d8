"""Events to alarms in canopy-central, with the real binary and PostgreSQL.

* Rules raise alarms from node events (type patterns, scope, guard schedule, severity);
  states new -> accepted/false/ignored -> resolved, missed after the processing time,
  automatic acknowledgement, comment required; every transition in the history.
* The events API by site subtree, camera and type, within grants and archive depth.
* Escalation across a two-level tree: level 1 calls a role, level 2 forwards to the
  parent; accepting at the parent reaches the child; a change at the child reaches the
  parent.
"""

from __future__ import annotations

import time

import psycopg2

from fixtures.central import wait
from fixtures.uplink_node import UplinkNode, event, utc_stamp

PASSWORD = "Op3rator-Passw0rd!"
OPERATOR_ROLE = "00000000-0000-0000-0000-00000000a002"


def node_at(admin, site, name, kind="edge"):
    node = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": kind, "name": name})
    tok = admin.ok("POST", f"/nodes/{node['id']}/enrolment-tokens", {})["token"]
    return node, tok


def alarms(api, **q):
    return api.ok("GET", "/alarms", params={"limit": 1000, **q})["items"]


def by_event(api, event_id, **q):
    return next((a for a in alarms(api, **q) if a["event_id"] == event_id), None)


def user_with_grant(admin, central, name, site, role_id=OPERATOR_ROLE):
    u = admin.ok("POST", "/users", {"username": name, "password": PASSWORD})
    admin.ok("POST", "/grants", {"user_id": u["id"], "role_id": role_id, "site_id": site["id"]})
    api = central.api()
    assert api.login(name, PASSWORD).status_code == 200
    return api


def test_rules_states_history_and_events_api(central_factory):
    c = central_factory(alarm_tick="200ms")
    admin = c.admin()
    hq = admin.ok("POST", "/sites", {"name": "HQ", "timezone": "Europe/Paris"})
    store = admin.ok("POST", "/sites", {"name": "Store", "parent_id": hq["id"],
                                        "timezone": "Asia/Kolkata"})
    other = admin.ok("POST", "/sites", {"name": "Other"})
    node, tok = node_at(admin, store, "edge-s")
    cam = admin.ok("POST", "/cameras", {"node_id": node["id"], "key": "door", "name": "Front door",
                                        "config": {"main_url": "rtsp://10.0.0.9/s"}})

    admin.ok("POST", "/alarm-rules", {"name": "intrusion", "event_types": ["intrusion"],
                                      "site_id": hq["id"], "severity": 4, "processing_s": 2,
                                      "comment_required": True})
    admin.ok("POST", "/alarm-rules", {"name": "plates", "event_types": ["analytics.*"],
                                      "camera_id": cam["id"], "severity": 2, "auto_ack_s": 1})
    admin.ok("POST", "/alarm-rules", {"name": "off", "event_types": ["motion"], "enabled": False})
    # armed only in a window that is never now (6 to 7 hours ahead in Store's zone)
    local = time.time() + 5.5 * 3600
    window = {"days": [1, 2, 3, 4, 5, 6, 7], "from": time.strftime("%H:%M", time.gmtime(local + 6 * 3600)),
              "to": time.strftime("%H:%M", time.gmtime(local + 7 * 3600))}
    admin.ok("POST", "/alarm-rules", {"name": "night", "event_types": ["line_crossing"],
                                      "schedule": [window]})
    # a rule elsewhere in the tree does not apply
    admin.ok("POST", "/alarm-rules", {"name": "elsewhere", "event_types": ["tamper"],
                                      "site_id": other["id"]})
    bad = admin.call("POST", "/alarm-rules", json={"name": "x", "event_types": ["Bad Type"]})
    assert bad.status_code == 400 and "event_types" in bad.json()["detail"]
    bad = admin.call("POST", "/alarm-rules", json={"name": "x", "event_types": ["motion"],
                                                   "schedule": [{"days": [8], "from": "1", "to": "2"}]})
    assert bad.status_code == 400 and "schedule[1]" in bad.json()["detail"]

    n = UplinkNode(c.uplink_url, c.ca_file, tok)
    try:
        evs = [event("door", "intrusion", local_time="2026-11-21T15:30:00.000+05:30",
                     utc_offset_min=330),
               event("door", "analytics.plate", plate={"text": "KA01AB1234", "confidence": 0.93}),
               event("door", "motion"), event("door", "line_crossing"), event("door", "tamper")]
        assert n.send_events(evs) == [e["id"] for e in evs]
        assert n.send_events(evs[:1]) == [evs[0]["id"]]  # a resend raises nothing twice

        got = alarms(admin)
        assert sorted(a["type"] for a in got) == ["analytics.plate", "intrusion"], got
        intr = by_event(admin, evs[0]["id"])
        assert intr["severity"] == 4 and intr["state"] in ("new", "missed")
        assert intr["site_path"] == "HQ / Store" and intr["camera_name"] == "Front door"
        assert intr["local_time"] == "2026-11-21T15:30:00.000+05:30"
        plate = by_event(admin, evs[1]["id"])
        assert plate["plate"]["text"] == "KA01AB1234"
        assert plate["local_time"].endswith("+05:30")  # from the site's zone

        # comment required; then accepted once; a second handler is told who was first
        r = admin.call("POST", f"/alarms/{intr['id']}/state", json={"state": "accepted"})
        assert r.status_code == 400 and "comment" in r.json()["detail"]
        acc = admin.ok("POST", f"/alarms/{intr['id']}/state",
                       {"state": "accepted", "comment": "guard sent"})
        assert acc["state"] == "accepted" and acc["handled_by"] == "admin"
        r = admin.call("POST", f"/alarms/{intr['id']}/state", json={"state": "false", "comment": "x"})
        assert r.status_code == 409 and "already accepted" in r.json()["detail"]
        admin.ok("POST", f"/alarms/{intr['id']}/state", {"state": "resolved"})
        hist = admin.ok("GET", f"/alarms/{intr['id']}")["history"]
        assert [(h["from"], h["to"], h["source"]) for h in hist][-2:] == \
            [("new", "accepted", "user"), ("accepted", "resolved", "user")] or \
            [(h["from"], h["to"]) for h in hist][-3:] == \
            [("new", "missed"), ("missed", "accepted"), ("accepted", "resolved")], hist
        assert any(h["comment"] == "guard sent" and h["by"] == "admin" for h in hist)

        # automatic acknowledgement after 1 s
        wait(lambda: by_event(admin, evs[1]["id"])["state"] == "accepted", 5, "auto-acknowledged")
        assert by_event(admin, evs[1]["id"])["handled_by"] == "auto"

        # unhandled within 2 s: missed, and still handleable
        late = event("door", "intrusion")
        n.send_events([late])
        wait(lambda: by_event(admin, late["id"])["state"] == "missed", 6, "missed")
        a = by_event(admin, late["id"])
        assert [x["state"] for x in alarms(admin, state="open")] == ["missed"]
        admin.ok("POST", f"/alarms/{a['id']}/state", {"state": "ignored", "comment": "drill"})
        assert alarms(admin, state="open") == []

        # events: by type, camera, subtree; newest first; paged
        page = admin.ok("GET", "/events", params={"camera_id": cam["id"], "limit": 2})
        assert page["total"] == 6 and len(page["items"]) == 2
        assert admin.ok("GET", "/events", params={"type": "analytics.*"})["total"] == 1
        assert admin.ok("GET", "/events", params={"site_id": hq["id"]})["total"] == 6
        assert admin.ok("GET", "/events", params={"site_id": other["id"]})["total"] == 0
        ev = admin.ok("GET", "/events", params={"type": "tamper"})["items"][0]
        assert ev["site_path"] == "HQ / Store" and ev["body"]["id"] == evs[4]["id"]

        # grants: an operator at Other sees none of it; one at HQ sees it all
        elsewhere = user_with_grant(admin, c, "op-other", other)
        assert elsewhere.ok("GET", "/events")["total"] == 0 and alarms(elsewhere) == []
        r = elsewhere.call("GET", f"/alarms/{a['id']}")
        assert r.status_code == 404
        here = user_with_grant(admin, c, "op-hq", hq)
        assert here.ok("GET", "/events")["total"] == 6 and len(alarms(here)) == 3
        # a viewer may see nothing of events (no events.read) ...
        viewer = user_with_grant(admin, c, "viewer-hq", hq, "00000000-0000-0000-0000-00000000a003")
        assert viewer.ok("GET", "/events")["total"] == 0
        # ... and an operator with a 1-minute archive depth sees only recent events
        role = admin.ok("POST", "/roles", {"name": "short", "permissions": ["events.read"],
                                           "archive_depth": 1, "archive_depth_unit": "minutes"})
        short = user_with_grant(admin, c, "op-short", hq, role["id"])
        n.send_events([event("door", "tamper", time=utc_stamp(time.time() - 3600))])
        assert admin.ok("GET", "/events", params={"type": "tamper"})["total"] == 2
        assert short.ok("GET", "/events", params={"type": "tamper"})["total"] == 1
    finally:
        n.close()


def test_escalation_across_a_two_level_tree(central_factory, pg):
    top = central_factory(node_name="hq", alarm_tick="200ms")
    tadmin = top.admin()
    region = tadmin.ok("POST", "/sites", {"name": "Region"})
    cnode, ctok = node_at(tadmin, region, "regional", kind="central")
    child = central_factory(node_name="regional", parent_url=top.uplink_url, parent_ca=top.ca_file,
                            parent_enrol_token=ctok, alarm_tick="200ms")
    cadmin = child.admin()
    store = cadmin.ok("POST", "/sites", {"name": "Store 7"})
    enode, etok = node_at(cadmin, store, "edge-7")
    # the store's own operator is called first; unhandled for 2 s, it goes to HQ
    pol = cadmin.ok("POST", "/escalation-policies", {"name": "store then hq", "levels": [
        {"timeout_s": 2, "notify": [{"role_id": OPERATOR_ROLE}]},
        {"timeout_s": 60, "notify": [{"parent": True}]}]})
    cadmin.ok("POST", "/alarm-rules", {"name": "intrusion", "event_types": ["intrusion"],
                                       "severity": 5, "processing_s": 600, "policy_id": pol["id"]})
    wait(lambda: any(s["name"] == "Store 7" for s in tadmin.ok("GET", "/sites")["items"]), 15,
         "store mirrored at the top")

    n = UplinkNode(child.uplink_url, child.ca_file, etok)
    try:
        ev = event("door", "intrusion")
        t0 = time.monotonic()
        n.send_events([ev])
        a = wait(lambda: by_event(cadmin, ev["id"]), 5, "alarm at the child")
        assert a["level"] == 1 and not a["forwarded"]
        a = wait(lambda: (x := by_event(cadmin, ev["id"]))["level"] == 2 and x, 8, "escalated to level 2")
        assert a["forwarded"] and time.monotonic() - t0 >= 2
        up = wait(lambda: by_event(tadmin, ev["id"]), 10, "alarm forwarded to the parent")
        assert up["id"] == a["id"] and up["from_child"] == cnode["id"]
        assert up["site_path"] == "Region / Store 7" and up["state"] == "new" and up["severity"] == 5
        hist = cadmin.ok("GET", f"/alarms/{a['id']}")["history"]
        assert [h["level"] for h in hist] == [1, 2]
        assert "forwarded to the parent central" in hist[1]["comment"]

        # accepted at HQ: the child's alarm is handled too, and stops escalating
        tadmin.ok("POST", f"/alarms/{up['id']}/state", {"state": "accepted", "comment": "HQ on it"})
        down = wait(lambda: (x := cadmin.ok("GET", f"/alarms/{a['id']}"))["state"] == "accepted" and x,
                    10, "acceptance at the parent reaches the child")
        assert down["handled_by"] == "admin (at the parent central)" and down["comment"] == "HQ on it"
        assert down["history"][-1]["source"] == "parent"

        # resolved at the child: the parent follows
        cadmin.ok("POST", f"/alarms/{a['id']}/state", {"state": "resolved"})
        wait(lambda: tadmin.ok("GET", f"/alarms/{up['id']}")["state"] == "resolved", 10,
             "resolution at the child reaches the parent")

        # the parent was away: forwarded alarms wait in the child's outbox
        top.daemon.kill9()
        ev2 = event("door", "intrusion")
        n.send_events([ev2])
        wait(lambda: (x := by_event(cadmin, ev2["id"])) and x["forwarded"], 10, "forwarded (queued)")
        top.daemon.start()
        tadmin = top.admin()
        up2 = wait(lambda: by_event(tadmin, ev2["id"]), 30, "queued alarm reaches the restarted parent")
        assert up2["state"] == "new"
        conn = psycopg2.connect(pg.dsn(child.dbname))
        with conn, conn.cursor() as cur:
            wait(lambda: (cur.execute("SELECT count(*) FROM parent_outbox"), cur.fetchone()[0] == 0)[1],
                 10, "child's outbox emptied by acknowledgements")
        conn.close()
    finally:
        n.close()
