"""A tree of centrals, and several central instances on one database, with real binaries.

* Three levels: a global central, a regional central enrolled into it as a node of kind
  central, and two edges under the regional one. Configuration made at the top reaches a
  leaf edge through the middle; state rolls up; losing the middle marks its subtree stale
  at the top, and it recovers when the middle comes back.
* Two instances sharing one PostgreSQL database answer the API the same way, and an edge
  that loses one instance carries on with the other.
"""

from __future__ import annotations

import time

from fixtures.central import wait
from fixtures.edge import Edge


def enrol_token(admin, site_id, kind, name):
    node = admin.ok("POST", "/nodes", {"site_id": site_id, "kind": kind, "name": name})
    tok = admin.ok("POST", f"/nodes/{node['id']}/enrolment-tokens", {})["token"]
    return node, tok


def nodes_by_name(admin):
    return {n["name"]: n for n in admin.ok("GET", "/nodes?limit=1000")["items"]}


def test_three_level_tree(central_factory, daemon_factory, camera_factory):
    top = central_factory(node_offline_after="5s", node_name="global")
    gadmin = top.admin()
    region = gadmin.ok("POST", "/sites", {"name": "Region North"})
    rnode, rtok = enrol_token(gadmin, region["id"], "central", "regional")

    mid = central_factory(node_name="regional", parent_url=top.uplink_url,
                          parent_ca=top.ca_file, parent_enrol_token=rtok)
    radmin = mid.admin()
    wait(lambda: nodes_by_name(gadmin)["regional"]["state"] == "online", 10,
         "regional central online at the top")

    edges = {}
    for i in (1, 2):
        store = radmin.ok("POST", "/sites", {"name": f"Store {i}"})
        enode, etok = enrol_token(radmin, store["id"], "edge", f"edge-{i}")
        d = daemon_factory("edge", node_name=f"edge-{i}", central_url=mid.uplink_url,
                           central_ca=mid.ca_file, enrol_token=etok)
        edges[f"edge-{i}"] = (enode, Edge(d), store)

    # the top sees the regional tree: sites under Region North, edges online
    def rolled_up():
        n = nodes_by_name(gadmin)
        return all(n.get(f"edge-{i}", {}).get("state") == "online" for i in (1, 2)) and n
    n = wait(rolled_up, 15, "edges visible and online at the top")
    assert n["edge-1"]["managed_by"] == rnode["id"]
    sites = {s["name"]: s for s in gadmin.ok("GET", "/sites")["items"]}
    assert sites["Store 1"]["parent_id"] == region["id"]
    assert sites["Store 1"]["path"] == [region["id"], sites["Store 1"]["id"]]
    assert sites["Store 1"]["managed_by"] == rnode["id"]
    # ids are the same at every level
    assert n["edge-1"]["id"] == edges["edge-1"][0]["id"]

    # a camera added at the top for a leaf site records on its edge within 5 s
    cam = camera_factory()
    t0 = time.monotonic()
    c = gadmin.ok("POST", "/cameras", {"node_id": n["edge-1"]["id"], "key": "gate",
                                       "name": "Gate", "config": {"main_url": cam.url}})
    edge1 = edges["edge-1"][1]
    wait(lambda: (x := edge1.cameras().get("gate")) and x["status"]["recording"], 5,
         "camera recording on the leaf edge")
    took = time.monotonic() - t0
    # and its status is visible at the top
    wait(lambda: gadmin.ok("GET", f"/cameras/{c['id']}")["state"] == "online", 10,
         "camera online at the top")
    # the middle holds it as configuration from its parent
    mid_cams = {x["key"]: x for x in radmin.ok("GET", "/cameras")["items"]}
    assert mid_cams["gate"]["origin"] == "parent"
    print(f"camera added at the top was recording on the leaf edge after {took:.2f} s")

    # killing the middle marks its subtree stale at the top within the offline window
    mid.daemon.kill9()
    wait(lambda: nodes_by_name(gadmin)["regional"]["state"] == "offline", 15,
         "regional offline at the top")
    n = nodes_by_name(gadmin)
    assert n["edge-1"]["state"] == "stale" and n["edge-2"]["state"] == "stale"
    sites = {s["name"]: s for s in gadmin.ok("GET", "/sites")["items"]}
    assert sites["Store 1"]["stale"] is True
    # the edge records on without anyone above it
    assert edge1.camera("gate")["status"]["recording"]

    # restart: the middle reconnects with its key and the top recovers
    mid.daemon.start()
    wait(lambda: nodes_by_name(gadmin)["regional"]["state"] == "online", 20,
         "regional back online")
    wait(lambda: nodes_by_name(gadmin)["edge-1"]["state"] == "online", 20, "edge-1 not stale")
    wait(lambda: nodes_by_name(radmin_again(mid))["edge-1"]["state"] == "online", 20,
         "edge reconnected to the middle")


def radmin_again(mid):
    return mid.admin()


def test_two_instances_one_database(central_factory, daemon_factory, camera_factory):
    a = central_factory(node_name="central-a", node_offline_after="30s")
    b = central_factory(db=a.dbname, node_name="central-b", node_offline_after="30s")
    admin_a, admin_b = a.admin(), b.admin()
    site = admin_a.ok("POST", "/sites", {"name": "Shared"})
    # the same data through either instance, and a token from one works on the other
    assert admin_b.ok("GET", f"/sites/{site['id']}")["name"] == "Shared"
    cross = b.api(admin_a.token)
    assert cross.ok("GET", "/me")["user"]["username"] == "admin"
    # both serve with certificates from the one CA the database holds
    assert open(a.ca_file).read() == open(b.ca_file).read()

    node, tok = enrol_token(admin_a, site["id"], "edge", "edge-x")
    # the edge knows only instance a at first; a config pushed via b still reaches it
    d = daemon_factory("edge", central_url=a.uplink_url, central_ca=a.ca_file, enrol_token=tok)
    edge = Edge(d)
    wait(lambda: admin_b.ok("GET", f"/nodes/{node['id']}")["state"] == "online", 10,
         "edge online, seen through b")
    cam = camera_factory()
    c = admin_b.ok("POST", "/cameras", {"node_id": node["id"], "key": "lobby",
                                        "config": {"main_url": cam.url}})
    edge.wait_state("lobby", "online", timeout=10)

    # instance a goes away; the edge is pointed at b (as a load balancer would) and carries on
    a.daemon.stop()
    d.stop()
    d.conf["central_url"] = b.uplink_url
    from fixtures.daemons import render_conf
    d.conf_path.write_text(render_conf(d.conf))
    d.start()
    wait(lambda: admin_b.ok("GET", f"/nodes/{node['id']}")["state"] == "online"
         and "connected to " + b.uplink_url in d.log(), 15, "edge carried on with b")
    admin_b.ok("PATCH", f"/cameras/{c['id']}", {"name": "Lobby cam",
                                                "config": {"main_url": cam.url,
                                                           "recording": "off"}})
    wait(lambda: edge.camera("lobby")["recording"] == "off", 10, "change via b applied")
    n = wait(lambda: (x := admin_b.ok("GET", f"/nodes/{node['id']}"))["config"]["drift"] is False
             and x, 10, "no drift")
    assert n["config"]["applied_version"] >= 3


def test_config_acks_count_in_version_order(central_factory, pg):
    """Acks of two quick pushes run on different pool connections and may commit in either
    order; an older ack arriving last must not pull the node back into drift."""
    c = central_factory()
    admin = c.admin()
    site = admin.ok("POST", "/sites", {"name": "Acks"})
    node, _ = enrol_token(admin, site["id"], "edge", "edge-acks")
    conn = pg.connect(c.dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE nodes SET desired_version = 3 WHERE id = %s", (node["id"],))
            cur.execute("SELECT uplink_config_ack(%s, 3, true, '')", (node["id"],))
            cur.execute("SELECT uplink_config_ack(%s, 2, true, '')", (node["id"],))
            n = admin.ok("GET", f"/nodes/{node['id']}")["config"]
            assert (n["applied_version"], n["drift"]) == (3, False)
            # a refusal of a newer version still shows, and a late ok of an older one
            # does not clear it
            cur.execute("UPDATE nodes SET desired_version = 4 WHERE id = %s", (node["id"],))
            cur.execute("SELECT uplink_config_ack(%s, 4, false, 'bad camera url')", (node["id"],))
            cur.execute("SELECT uplink_config_ack(%s, 3, true, '')", (node["id"],))
            n = admin.ok("GET", f"/nodes/{node['id']}")["config"]
            assert (n["applied_version"], n["error"], n["drift"]) == (3, "bad camera url", True)
    finally:
        conn.close()
