"""Webhook delivery by canopy-central: the real binary POSTs outbox messages to a scripted
receiver (fixtures/webhook_receiver.py).

Messages are made with the API's POST /webhooks/{id}/test or, as data set-up, by calling
canopy_webhook_enqueue() through psycopg2; everything after that (claims, leases, signing,
retries, 410, dead letters, replay, the delivery log) is the binary's.

Signatures are checked here independently, per the Standard Webhooks scheme: HMAC-SHA256
over "{webhook-id}.{webhook-timestamp}.{body}" with the base64-decoded part of the secret
after "whsec_", sent as "v1,<base64>" (several, space-separated, during a rotation).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from jsonschema import Draft202012Validator

from fixtures.central import Api, wait
from fixtures.daemons import REPO
from fixtures.webhook_receiver import webhook_receiver  # noqa: F401 (fixture)

PASSWORD = "Str0ng-Passw0rd!"
FAST = {"webhook_backoff_min": "200ms", "webhook_backoff_max": "10s"}
MESSAGE_SCHEMA = Draft202012Validator(
    json.loads((REPO / "schemas" / "webhook-message.schema.json").read_text()),
    format_checker=Draft202012Validator.FORMAT_CHECKER)


def verify(secret: str, req) -> bool:
    """Standard Webhooks v1 verification, written from the scheme (not from our C code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, ts = req.headers["webhook-id"], req.headers["webhook-timestamp"]
    assert abs(int(ts) - req.wall) < 300, "webhook-timestamp is not the time of sending"
    signed = f"{msg_id}.{ts}.".encode() + req.body
    want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sigs = [s.split(",", 1)[1] for s in req.headers["webhook-signature"].split(" ") if s.startswith("v1,")]
    return any(hmac.compare_digest(want, s) for s in sigs)


def subscribe(api: Api, receiver, **extra) -> dict:
    body = {"name": "hook", "url": receiver.url, "types": ["alarm.*", "event.*"], **extra}
    sub = api.ok("POST", "/webhooks", body, status=201)
    assert sub["secret"].startswith("whsec_") and sub["enabled"] is True
    return sub


def tenant_of(api: Api) -> str:
    return api.ok("GET", "/me")["tenant"]["id"]


def enqueue(pg, c, tenant: str, sub_id: str, n: int = 1, typ: str = "alarm.created") -> None:
    """Data set-up: n messages for one subscription, each in its own transaction."""
    conn = pg.connect(c.dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            for i in range(n):
                cur.execute("SELECT canopy_webhook_enqueue(%s, %s, NULL, 3, %s::jsonb, %s)",
                            (tenant, typ, json.dumps({"seq": i, "note": "caf\u00e9 \"quoted\""}), sub_id))
                assert cur.fetchone()[0] == 1
    finally:
        conn.close()


def outbox(pg, c, sub_id: str) -> list:
    conn = pg.connect(c.dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT msg_id, state, attempts, payload, lease_owner FROM webhook_outbox "
                        "WHERE subscription_id = %s ORDER BY id", (sub_id,))
            return cur.fetchall()
    finally:
        conn.close()


def deliveries(api: Api, sub_id: str, **params) -> list:
    return api.ok("GET", f"/webhooks/{sub_id}/deliveries", params={"limit": 1000, **params})["items"]


def dead_letters(api: Api, sub_id: str) -> list:
    return api.ok("GET", f"/webhooks/{sub_id}/dead-letters", params={"limit": 1000})["items"]


def test_retries_with_backoff_then_delivers_once_signed(central_factory, webhook_receiver, pg):
    """500, 500, then 200: three attempts with growing gaps, one webhook-id, every signature
    valid, the exact body each time; the log shows 500, 500, 200 with latencies."""
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    rx.statuses = [500, 500]
    sub = subscribe(adm, rx)
    queued = adm.ok("POST", f"/webhooks/{sub['id']}/test", status=202)
    assert queued["msg_id"].startswith("msg_") and queued["type"] == "webhook.test"

    reqs = rx.wait_for(3, what="(two failures and a success)")
    assert [r.status for r in reqs] == [500, 500, 200]
    assert {r.msg_id for r in reqs} == {queued["msg_id"]}
    assert len({r.body for r in reqs}) == 1, "the body changed between attempts"
    body = json.loads(reqs[0].body)
    assert body["type"] == "webhook.test" and body["data"]["subscription_id"] == sub["id"]
    MESSAGE_SCHEMA.validate(body)
    for r in reqs:
        assert verify(sub["secret"], r), r.headers
        assert r.headers["content-type"] == "application/json"
        assert r.headers["user-agent"].startswith("canopy-central/")
        assert r.path == "/hook"
    gaps = [reqs[1].at - reqs[0].done_at, reqs[2].at - reqs[1].done_at]
    # backoff_min 200 ms, doubling, +-20% jitter: ~0.2 s then ~0.4 s
    assert 0.15 <= gaps[0] <= 0.6, gaps
    assert 0.3 <= gaps[1] <= 1.0 and gaps[1] > gaps[0], gaps

    log = wait(lambda: (d := deliveries(adm, sub["id"], msg_id=queued["msg_id"])) and len(d) == 3 and d,
               10, "three attempts in the delivery log")
    assert [(d["attempt"], d["status"]) for d in log] == [(3, 200), (2, 500), (1, 500)]
    assert all(isinstance(d["latency_ms"], int) and 0 <= d["latency_ms"] < 5000 for d in log)
    assert log[1]["error"].startswith("HTTP 500") and log[0]["error"] == ""
    got = wait(lambda: (s := adm.ok("GET", f"/webhooks/{sub['id']}")) and s["pending"] == 0 and s,
               5, "the outbox row gone")
    assert got["dead"] == 0 and got["last_delivery"]["status"] == 200
    assert "secret" not in got
    assert outbox(pg, c, sub["id"]) == []
    time.sleep(1.0)
    assert len(rx.snapshot()) == 3, "delivered once, then nothing more"

    metrics = c.daemon.get("/metrics").text
    for line in ('canopy_central_webhook_deliveries_total{outcome="delivered"} 1',
                 'canopy_central_webhook_deliveries_total{outcome="failed"} 2',
                 "canopy_central_webhook_attempts_total 3",
                 "canopy_central_webhook_in_flight 0",
                 'canopy_central_webhook_attempt_seconds_bucket{le="+Inf"} 3'):
        assert line in metrics, line


def test_410_disables_and_replay_redelivers_with_the_same_id(central_factory, webhook_receiver, pg):
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    rx.default = 410
    sub = subscribe(adm, rx, max_in_flight=1)
    enqueue(pg, c, tenant_of(adm), sub["id"], n=5)

    got = wait(lambda: (s := adm.ok("GET", f"/webhooks/{sub['id']}")) and not s["enabled"] and s["dead"] == 5 and s,
               10, "the subscription disabled with 5 dead letters")
    assert "410" in got["disabled_reason"] and got["disabled_at"] and got["pending"] == 0
    time.sleep(1.5)
    first = rx.snapshot()
    assert len(first) == 1 and first[0].status == 410, "attempts went on after 410 Gone"
    dead = dead_letters(adm, sub["id"])
    assert len(dead) == 5
    assert sum(d["last_status"] == 410 for d in dead) == 1
    assert all(d["payload"]["type"] == "alarm.created" for d in dead)
    assert {d["id"] for d in dead} == {m for m, *_ in outbox(pg, c, sub["id"])}

    # replay needs the subscription enabled first
    r = adm.post(f"/webhooks/{sub['id']}/dead-letters/replay", {})
    assert r.status_code == 409, r.text
    assert adm.post(f"/webhooks/{sub['id']}/test").status_code == 409
    rx.default = 200
    en = adm.ok("PATCH", f"/webhooks/{sub['id']}", {"enabled": True})
    assert en["enabled"] and en["disabled_reason"] is None and en["disabled_at"] is None
    time.sleep(0.5)
    assert len(rx.snapshot()) == 1, "dead letters went out before the replay"
    out = adm.ok("POST", f"/webhooks/{sub['id']}/dead-letters/replay", {})
    assert out == {"requeued": 5, "not_found": []}

    reqs = rx.wait_for(6, what="(the five replayed)")
    assert {r.msg_id for r in reqs[1:]} == {d["id"] for d in dead}
    assert all(r.status == 200 for r in reqs[1:])
    assert reqs[0].msg_id in {r.msg_id for r in reqs[1:]}, "the 410'd message kept its webhook-id"
    assert all(verify(sub["secret"], r) for r in reqs)
    wait(lambda: outbox(pg, c, sub["id"]) == [], 5, "the outbox empty")
    got = adm.ok("GET", f"/webhooks/{sub['id']}")
    assert (got["pending"], got["dead"], got["enabled"]) == (0, 0, True)
    attempts = deliveries(adm, sub["id"], msg_id=reqs[0].msg_id)
    assert [(d["attempt"], d["status"]) for d in attempts] == [(1, 200), (1, 410)]
    actions = {a["action"] for a in adm.ok("GET", "/audit", params={"object_id": sub["id"]})["items"]}
    assert {"webhook.create", "webhook.update", "webhook.replay"} <= actions


def test_retry_window_exhausted_makes_a_dead_letter_that_replays(central_factory, webhook_receiver):
    c = central_factory(webhook_retry_window="1s", **FAST)
    adm = c.admin()
    rx = webhook_receiver()
    rx.default = 503
    sub = subscribe(adm, rx)
    msg = adm.ok("POST", f"/webhooks/{sub['id']}/test", status=202)["msg_id"]

    dead = wait(lambda: dead_letters(adm, sub["id"]), 10, "a dead letter")
    assert [d["id"] for d in dead] == [msg]
    assert dead[0]["last_status"] == 503 and dead[0]["last_error"].startswith("HTTP 503")
    assert dead[0]["attempts"] >= 2 and dead[0]["dead_at"]
    tries = rx.snapshot()
    assert len(tries) == dead[0]["attempts"] and {r.msg_id for r in tries} == {msg}
    assert tries[-1].at - tries[0].at <= 1.5, "attempts went on past the retry window"
    time.sleep(1.0)
    assert len(rx.snapshot()) == len(tries), "a dead letter was tried again"
    assert len(deliveries(adm, sub["id"])) == len(tries)
    got = adm.ok("GET", f"/webhooks/{sub['id']}")
    assert (got["pending"], got["dead"], got["enabled"]) == (0, 1, True)

    rx.default = 200
    out = adm.ok("POST", f"/webhooks/{sub['id']}/dead-letters/replay",
                 {"ids": [msg, "msg_doesnotexist"]})
    assert out == {"requeued": 1, "not_found": ["msg_doesnotexist"]}
    reqs = rx.wait_for(len(tries) + 1, what="(the replay)")
    assert reqs[-1].msg_id == msg and reqs[-1].status == 200
    assert reqs[-1].body == tries[0].body
    assert verify(sub["secret"], reqs[-1])
    wait(lambda: adm.ok("GET", f"/webhooks/{sub['id']}")["dead"] == 0, 5, "no dead letter left")
    assert dead_letters(adm, sub["id"]) == []


def test_concurrency_is_limited_per_subscription(central_factory, webhook_receiver, pg):
    c = central_factory(**FAST)
    adm = c.admin()
    tenant = tenant_of(adm)
    rx3, rx1 = webhook_receiver(), webhook_receiver()
    rx3.delay = rx1.delay = 0.25
    sub3 = subscribe(adm, rx3, name="three", max_in_flight=3)
    sub1 = subscribe(adm, rx1, name="one", max_in_flight=1)
    enqueue(pg, c, tenant, sub3["id"], n=15)
    enqueue(pg, c, tenant, sub1["id"], n=5)

    reqs3 = rx3.wait_for(15, timeout=20)
    reqs1 = rx1.wait_for(5, timeout=20)
    assert rx3.max_concurrent == 3, rx3.max_concurrent
    assert rx1.max_concurrent == 1, rx1.max_concurrent
    assert len({r.msg_id for r in reqs3}) == 15 and len({r.msg_id for r in reqs1}) == 5
    # keep-alive: connections are reused, not one per message
    assert len({r.conn for r in reqs3}) <= 3, {r.conn for r in reqs3}
    assert len({r.conn for r in reqs1}) == 1
    wait(lambda: outbox(pg, c, sub3["id"]) == [] and outbox(pg, c, sub1["id"]) == [], 5, "all delivered")


def test_disabling_stops_what_is_queued_and_enabling_resumes(central_factory, webhook_receiver, pg):
    """Messages already claimed by the instance are not sent once the subscription is
    disabled (within a sweep, 1 s); they wait, and go out when it is enabled again."""
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    rx.delay = 0.2
    sub = subscribe(adm, rx, max_in_flight=1)
    enqueue(pg, c, tenant_of(adm), sub["id"], n=20)
    rx.wait_for(2)
    off = adm.ok("PATCH", f"/webhooks/{sub['id']}", {"enabled": False})
    assert (off["enabled"], off["disabled_reason"]) == (False, "disabled through the API")
    time.sleep(2.0)
    n1 = len(rx.snapshot())
    time.sleep(1.5)
    assert len(rx.snapshot()) == n1 < 12, "deliveries went on after the subscription was disabled"
    got = adm.ok("GET", f"/webhooks/{sub['id']}")
    assert got["pending"] == 20 - n1 and got["dead"] == 0
    rx.delay = 0
    adm.ok("PATCH", f"/webhooks/{sub['id']}", {"enabled": True})
    wait(lambda: len({r.msg_id for r in rx.snapshot() if r.status == 200}) == 20, 10, "all 20 delivered")
    wait(lambda: outbox(pg, c, sub["id"]) == [], 5, "the outbox empty")


def test_https_receivers_must_chain_to_webhook_ca(central_factory, webhook_receiver):
    """webhook_ca names the CAs https receivers must chain to; a receiver outside it gets no
    message (the attempt fails with libcurl's reason and no status, and is retried)."""
    trusted, stranger = webhook_receiver(tls=True), webhook_receiver(tls=True)
    c = central_factory(webhook_ca=trusted.ca_file, **FAST)
    adm = c.admin()
    good = subscribe(adm, trusted, name="trusted")
    bad = subscribe(adm, stranger, name="stranger")
    adm.ok("POST", f"/webhooks/{good['id']}/test", status=202)
    adm.ok("POST", f"/webhooks/{bad['id']}/test", status=202)
    req = trusted.wait_for(1)[0]
    assert req.status == 200 and verify(good["secret"], req)
    log = wait(lambda: deliveries(adm, bad["id"]), 10, "the refused attempt logged")
    assert log[0]["status"] is None and "certificate" in log[0]["error"].lower(), log[0]
    assert stranger.snapshot() == []
    got = adm.ok("GET", f"/webhooks/{bad['id']}")
    assert (got["pending"], got["enabled"]) == (1, True)
    metrics = c.daemon.get("/metrics").text
    assert "canopy_central_webhook_attempt_errors_total 0" not in metrics


def test_other_tenants_cannot_see_or_touch_a_subscription(central_factory, webhook_receiver):
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    site = adm.ok("POST", "/sites", {"name": "hq"}, status=201)
    sub = subscribe(adm, rx, site_id=site["id"], min_severity=2)
    adm.ok("POST", "/tenants", {"name": "other", "username": "other-adm", "password": PASSWORD}, status=201)
    other = c.api()
    assert other.login("other-adm", PASSWORD).status_code == 200
    sid = sub["id"]

    for method, path, body in (("GET", f"/webhooks/{sid}", None),
                               ("PATCH", f"/webhooks/{sid}", {"name": "mine now"}),
                               ("DELETE", f"/webhooks/{sid}", None),
                               ("POST", f"/webhooks/{sid}/rotate-secret", None),
                               ("POST", f"/webhooks/{sid}/test", None),
                               ("GET", f"/webhooks/{sid}/deliveries", None),
                               ("GET", f"/webhooks/{sid}/dead-letters", None),
                               ("POST", f"/webhooks/{sid}/dead-letters/replay", {})):
        r = other.call(method, path, json=body)
        assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
        assert sid not in r.text
    assert other.ok("GET", "/webhooks")["total"] == 0
    r = other.post("/webhooks", {"name": "x", "url": rx.url, "types": ["alarm.*"], "site_id": site["id"]})
    assert (r.status_code, r.json()["detail"]) == (404, "site not found"), r.text
    mine = adm.ok("GET", f"/webhooks/{sid}")
    assert (mine["name"], mine["version"], mine["site_id"], mine["min_severity"]) == \
        ("hook", 1, site["id"], 2)
    time.sleep(0.5)
    assert rx.snapshot() == [], "another tenant's test message went out"

    # within the tenant, the permission is needed
    adm.ok("POST", "/users", {"username": "op", "password": PASSWORD}, status=201)
    op_id = [u for u in adm.ok("GET", "/users")["items"] if u["username"] == "op"][0]["id"]
    adm.ok("POST", "/grants", {"user_id": op_id, "role_id": "00000000-0000-0000-0000-00000000a002"},
           status=201)
    op = c.api()
    assert op.login("op", PASSWORD).status_code == 200
    assert op.get("/webhooks").status_code == 403
    assert op.get(f"/webhooks/{sid}").status_code == 403
    assert op.post(f"/webhooks/{sid}/test").status_code == 403


def test_pending_messages_survive_a_crash_and_wait_for_the_lease(central_factory, webhook_receiver, pg):
    """kill -9 while messages are claimed and in flight: a new instance takes them over once
    their lease runs out (not before), and delivers each with its webhook-id."""
    lease = 4.0
    conf = {"webhook_timeout": "2s", "webhook_lease": "4s", **FAST}
    c = central_factory(**conf)
    adm = c.admin()
    rx = webhook_receiver()
    rx.delay = 1.5  # the first requests are still in flight at the kill
    sub = subscribe(adm, rx, max_in_flight=2)
    tenant = tenant_of(adm)
    t0 = time.monotonic()
    enqueue(pg, c, tenant, sub["id"], n=6)
    wait(lambda: all(o[4] for o in outbox(pg, c, sub["id"])), 5, "all six leased", interval=0.05)
    time.sleep(0.3)
    c.daemon.kill9()
    killed = time.monotonic()
    ids = {o[0] for o in outbox(pg, c, sub["id"])}
    assert len(ids) == 6 and all(o[1] == "pending" for o in outbox(pg, c, sub["id"]))
    rx.delay = 0
    c.daemon.start()

    reqs = wait(lambda: (s := [r for r in rx.snapshot() if r.at > killed]) and
                {r.msg_id for r in s if r.status == 200} == ids and s,
                lease + 10, "every message delivered after the restart")
    first_after = min(r.at for r in reqs)
    assert first_after >= t0 + lease - 0.3, \
        f"a message was taken over {first_after - t0:.2f}s after its claim, lease {lease}s"
    assert all(verify(sub["secret"], r) for r in reqs)
    wait(lambda: outbox(pg, c, sub["id"]) == [], 5, "the outbox empty")
    before = [r for r in rx.snapshot() if r.at <= killed]
    assert {r.msg_id for r in before} <= ids  # the in-flight ones, resent with the same id


def test_results_wait_out_a_database_restart(central_factory, webhook_receiver, pg):
    """PostgreSQL goes away while requests are in flight: their results wait in memory and
    are written once it is back (each message sent once), and new messages flow again."""
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    rx.delay = 1.0
    sub = subscribe(adm, rx)
    tenant = tenant_of(adm)
    enqueue(pg, c, tenant, sub["id"], n=3)
    wait(lambda: rx.current == 3, 5, "three requests in flight", interval=0.02)
    pg.stop()
    try:
        rx.wait_for(3)  # answered while the database is down
        time.sleep(0.5)
    finally:
        pg.start()
    wait(lambda: outbox(pg, c, sub["id"]) == [], 15, "the results written after the restart")
    enqueue(pg, c, tenant, sub["id"], n=2)
    reqs = rx.wait_for(5, timeout=15)
    assert len({r.msg_id for r in reqs}) == 5 and all(r.status == 200 for r in reqs)
    time.sleep(1.0)
    assert len(rx.snapshot()) == 5, "a message was sent twice"
    # Every REST pool connection was closed by the restart: none may fail a request for it.
    for _ in range(12):
        adm.ok("GET", "/webhooks")
    conn = pg.connect(c.dbname, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM webhook_deliveries WHERE subscription_id = %s", (sub["id"],))
            assert [s for s, in cur.fetchall()] == [200] * 5
    finally:
        conn.close()
    assert "[webhook] database connection lost" in c.log()
    assert "[webhook] database connection back" in c.log()


def test_rotation_signs_with_both_secrets_and_validation(central_factory, webhook_receiver):
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    sub = subscribe(adm, rx)
    rot = adm.ok("POST", f"/webhooks/{sub['id']}/rotate-secret")
    assert rot["secret"] != sub["secret"] and rot["version"] == 2 and rot["previous_secret_until"]
    adm.ok("POST", f"/webhooks/{sub['id']}/test", status=202)
    req = rx.wait_for(1)[0]
    assert len(req.headers["webhook-signature"].split(" ")) == 2
    assert verify(rot["secret"], req) and verify(sub["secret"], req)
    assert "secret" not in adm.ok("GET", f"/webhooks/{sub['id']}")
    audit = adm.ok("GET", "/audit", params={"action": "webhook.rotate_secret"})["items"]
    assert len(audit) == 1 and rot["secret"] not in json.dumps(audit)

    for body, why in (({"name": "x", "url": "ftp://x/", "types": ["alarm.*"]}, "url must be"),
                      ({"name": "x", "url": "http://a b/", "types": ["alarm.*"]}, "url must be"),
                      ({"name": "x", "url": rx.url, "types": ["al*rm"]}, "types: al*rm"),
                      ({"name": "x", "url": rx.url, "types": ["alarm.*"], "max_in_flight": 0},
                       "field 'max_in_flight': must be between 1 and 256")):
        r = adm.post("/webhooks", body)
        assert r.status_code == 400 and r.json()["detail"].startswith(why), r.text
    r = adm.patch(f"/webhooks/{sub['id']}", {"name": "renamed"}, headers={"If-Match": '"1"'})
    assert r.status_code == 412, r.text
    adm.ok("DELETE", f"/webhooks/{sub['id']}", status=204)
    assert adm.get(f"/webhooks/{sub['id']}").status_code == 404


def test_alarm_and_event_messages_match_the_documented_schema(central_factory, webhook_receiver, pg):
    """The alarm pipeline's messages (alarm.created, event.<type>, alarm.updated) as a
    receiver gets them, against schemas/webhook-message.schema.json."""
    c = central_factory(**FAST)
    adm = c.admin()
    rx = webhook_receiver()
    site = adm.ok("POST", "/sites", {"name": "hq", "timezone": "Europe/Paris"}, status=201)
    node = adm.ok("POST", "/nodes", {"site_id": site["id"], "kind": "edge", "name": "edge"}, status=201)
    cam = adm.ok("POST", "/cameras", {"node_id": node["id"], "key": "gate", "name": "Gate",
                                      "config": {"main_url": "rtsp://10.0.0.1/s"}}, status=201)
    adm.ok("POST", "/alarm-rules", {"name": "r", "event_types": ["intrusion"], "site_id": site["id"],
                                    "severity": 4}, status=201)
    sub = subscribe(adm, rx)
    conn = pg.connect(c.dbname, autocommit=True)
    try:
        with conn.cursor() as cur:  # an event as the uplink stores it
            cur.execute("SELECT n_alarms, canopy_events_notify(n_alarms, n_hooks) FROM uplink_events(%s, %s::jsonb)", (node["id"], json.dumps([
                {"id": "ev-1", "camera": "gate", "type": "intrusion", "time": "2026-11-21T10:00:00.000Z",
                 "state": "active"}])))
    finally:
        conn.close()
    reqs = rx.wait_for(2)
    got = {json.loads(r.body)["type"]: json.loads(r.body) for r in reqs}
    assert set(got) == {"alarm.created", "event.intrusion"}
    for body in got.values():
        MESSAGE_SCHEMA.validate(body)
    alarm = got["alarm.created"]["data"]
    assert (alarm["site_path"], alarm["camera"], alarm["camera_name"], alarm["event_id"], alarm["severity"],
            alarm["state"]) == ("hq", "gate", "Gate", "ev-1", 4, "new")
    assert (alarm["time"], alarm["local_time"]) == ("2026-11-21T10:00:00.000Z", "2026-11-21T11:00:00.000+01:00")
    event = got["event.intrusion"]["data"]
    assert (event["id"], event["node_id"], event["site_id"], event["camera_id"]) == \
        ("ev-1", node["id"], site["id"], cam["id"])
    assert all(verify(sub["secret"], r) for r in reqs)

    adm.ok("POST", f"/alarms/{alarm['id']}/state", {"state": "accepted"})
    upd = json.loads(rx.wait_for(3)[2].body)
    MESSAGE_SCHEMA.validate(upd)
    assert (upd["type"], upd["data"]["id"], upd["data"]["state"]) == ("alarm.updated", alarm["id"], "accepted")


def test_a_lease_shorter_than_a_request_is_refused_at_start(central_factory):
    c = central_factory(launch=False, webhook_timeout="5s", webhook_lease="6s")
    with pytest.raises(RuntimeError):
        c.daemon.start()
    assert "webhook_lease (6000 ms) must exceed webhook_timeout (5000 ms)" in c.log()
    assert c.daemon.proc.wait(5) == 1
