"""Nothing is lost: an alarm storm survives kill -9 of central and a PostgreSQL restart.

10,000 events from two nodes (independent uplink clients, fixtures/uplink_node.py) each
raise an alarm; every alarm.created message must reach the receiver at least once, with a
valid Standard Webhooks signature, and any duplicate carries the same webhook-id (and
body) as the first delivery. Central is killed with SIGKILL mid-storm and PostgreSQL is
restarted while it is down.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from fixtures.central import wait
from fixtures.uplink_node import UplinkNode, event
from fixtures.webhook_receiver import webhook_receiver  # noqa: F401 (fixture)

TOTAL = 10_000
BATCH = 100


def verify(secret: str, req) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{req.headers['webhook-id']}.{req.headers['webhook-timestamp']}.".encode() + req.body
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(s == f"v1,{want}" for s in req.headers["webhook-signature"].split())


def test_storm_with_central_killed_and_postgres_restarted(central_factory, pg, webhook_receiver):
    recv = webhook_receiver()
    c = central_factory(webhook_backoff_min="200ms", webhook_backoff_max="2s", webhook_lease="3s",
                        webhook_timeout="1s")
    admin = c.admin()
    site = admin.ok("POST", "/sites", {"name": "Mall"})
    admin.ok("POST", "/alarm-rules", {"name": "all intrusions", "event_types": ["intrusion"]})
    sub = admin.ok("POST", "/webhooks", {"name": "psim", "url": recv.url, "types": ["alarm.created"],
                                         "max_in_flight": 16})
    secret = sub["secret"]
    nodes = []
    for i in range(2):
        nd = admin.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge", "name": f"edge-{i}"})
        tok = admin.ok("POST", f"/nodes/{nd['id']}/enrolment-tokens", {})["token"]
        nodes.append(UplinkNode(c.uplink_url, c.ca_file, tok, name=f"edge-{i}"))

    batches = [[event(f"cam{j % 4}", "intrusion") for j in range(BATCH)] for _ in range(TOTAL // BATCH)]
    sent = 0
    try:
        # the first 40 % goes through a live central ...
        for k in range(40):
            nodes[k % 2].send_events(batches[k])
            sent += 1
        # ... then central dies mid-delivery, and the database restarts while it is down
        time.sleep(0.3)
        in_flight_at_kill = len(recv.snapshot())
        c.daemon.kill9()
        pg.stop()
        pg.start()
        c.daemon.start()
        for n in nodes:
            n.connect()
        # the rest (the batch whose ack may have been lost is sent again: stored once)
        for k in range(sent - 1, len(batches)):
            nodes[k % 2].send_events(batches[k])

        def alarms_seen():
            seen = set()
            for r in recv.snapshot():
                if 200 <= r.status < 300:
                    seen.add(json.loads(r.body)["data"]["event_id"])
            return len(seen) == TOTAL
        wait(alarms_seen, 120, "every alarm at the receiver")
    finally:
        for n in nodes:
            n.close()

    reqs = recv.snapshot()
    by_id: dict[str, list] = {}
    ids_of_event: dict[str, set] = {}
    for r in reqs:
        assert verify(secret, r), f"signature does not verify: {r.headers}"
        by_id.setdefault(r.msg_id, []).append(r)
        ev = json.loads(r.body)["data"]["event_id"]
        ids_of_event.setdefault(ev, set()).add(r.msg_id)
    expected = {e["id"] for b in batches for e in b}
    assert set(ids_of_event) == expected
    # a duplicate is the same message: same webhook-id, same body
    assert all(len(v) == 1 for v in ids_of_event.values()), \
        [k for k, v in ids_of_event.items() if len(v) > 1][:5]
    assert all(len({r.body for r in v}) == 1 for v in by_id.values())
    dups = sum(len(v) - 1 for v in by_id.values())
    print(f"{len(reqs)} deliveries for {TOTAL} alarms ({dups} duplicates, "
          f"{in_flight_at_kill} delivered before the kill)")
    # central's books agree: nothing left pending, nothing dead
    adm = c.admin()
    wait(lambda: (w := adm.ok("GET", f"/webhooks/{sub['id']}"))["pending"] == 0 and w, 15,
         "the outbox emptied")
    assert adm.ok("GET", f"/webhooks/{sub['id']}")["dead"] == 0
    assert adm.ok("GET", "/alarms", params={"limit": 1})["total"] == TOTAL
