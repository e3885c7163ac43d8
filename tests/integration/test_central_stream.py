"""The live alarm stream (wss://.../api/v1/stream) of canopy-central, with the real binary and PostgreSQL.

* Authentication by a first message (access token or cnt_ integrator token with
  events.read), refusals with 4401/4403 counted, the connection closed when the access
  token expires unless a fresh token is sent.
* Fan-out by tenant and grants (tenant-wide, site subtree).
* Resume from a cursor: exactly the missed messages in order, then live; reset when the
  cursor is too old, too far behind or unknown.
* A client that does not read is closed with 4008 without stalling the others.

Feed rows are made the way the alarm pipeline makes them: an alarm row, then
canopy_feed_add() (schemas/central/0004_alarms.sql); the stream under test is the binary.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
from datetime import datetime, timedelta, timezone

import psycopg2
import websockets
from cryptography.hazmat.primitives import serialization

from fixtures.central import wait

PASSWORD = "Op3rator-Passw0rd!"
OPERATOR_ROLE = "00000000-0000-0000-0000-00000000a002"
VIEWER_ROLE = "00000000-0000-0000-0000-00000000a003"


# ---- helpers ------------------------------------------------------------------------------

def stream_url(central) -> str:
    return f"wss://127.0.0.1:{central.daemon.port}/api/v1/stream"


def ssl_ctx(central):
    return ssl.create_default_context(cafile=central.ca_file)


class Feed:
    """Makes alarms and their feed rows straight in the database (test data set-up)."""

    def __init__(self, central):
        self.conn = psycopg2.connect(central.daemon.conf["db"])
        self.conn.autocommit = True

    def add(self, tenant_id, site_id=None, typ="alarm.created", details_size=0) -> int:
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO alarms (tenant_id, site_id, type, severity, event_at, deadline,"
                " details) VALUES (%s, %s, 'intrusion', 3, now(), now() + interval '5 min',"
                " jsonb_build_object('pad', repeat('x', %s))) RETURNING id",
                (tenant_id, site_id, details_size))
            alarm_id = cur.fetchone()[0]
            cur.execute("SELECT canopy_feed_add(a, %s, NULL) FROM alarms a WHERE a.id = %s",
                        (typ, alarm_id))
            cur.execute("SELECT max(id) FROM feed WHERE body->>'id' = %s", (str(alarm_id),))
            return cur.fetchone()[0]

    def sql(self, q, args=()):
        with self.conn.cursor() as cur:
            cur.execute(q, args)
            return cur.fetchall() if cur.description else None

    def close(self):
        self.conn.close()


def tenant_of(api) -> str:
    return api.ok("GET", "/me")["tenant"]["id"]


def user_with_grant(admin, central, name, site=None, role_id=OPERATOR_ROLE):
    u = admin.ok("POST", "/users", {"username": name, "password": PASSWORD})
    g = {"user_id": u["id"], "role_id": role_id}
    if site:
        g["site_id"] = site["id"]
    admin.ok("POST", "/grants", g)
    api = central.api()
    assert api.login(name, PASSWORD).status_code == 200
    return api


def metric(central, name) -> float:
    for line in central.daemon.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


async def recv(ws, timeout=5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def open_stream(central, token, cursor=None, **kw):
    """Connected and authenticated: returns (ws, auth.ok message)."""
    ws = await websockets.connect(stream_url(central), ssl=ssl_ctx(central), **kw)
    msg = {"type": "auth", "token": token}
    if cursor is not None:
        msg["cursor"] = cursor
    await ws.send(json.dumps(msg))
    ok = await recv(ws)
    assert ok["type"] == "auth.ok", ok
    return ws, ok


async def until_ready(ws, timeout=10.0):
    """Alarm messages up to ready (replay), and ready itself."""
    got = []
    while True:
        m = await recv(ws, timeout)
        if m["type"] == "ready":
            return got, m
        got.append(m)


async def alarms_for(ws, seconds) -> list:
    """Every alarm message arriving within seconds (pings skipped)."""
    got = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            m = await recv(ws, left)
        except asyncio.TimeoutError:
            break
        if m["type"].startswith("alarm."):
            got.append(m)
    return got


async def alarms_n(ws, n, timeout=10.0) -> list:
    got = []
    while len(got) < n:
        m = await recv(ws, timeout)
        if m["type"].startswith("alarm."):
            got.append(m)
    return got


async def close_code(ws, timeout=15.0):
    """Reads until the server closes; returns (code, reason)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except websockets.ConnectionClosed as e:
        return e.code, e.reason


# ---- fan-out by tenant and grants -----------------------------------------------------------

def test_stream_fans_out_by_tenant_and_grants(central_factory):
    central = central_factory()
    admin = central.admin()
    site_a = admin.ok("POST", "/sites", {"name": "Site A"})
    site_a1 = admin.ok("POST", "/sites", {"name": "A1", "parent_id": site_a["id"]})
    site_b = admin.ok("POST", "/sites", {"name": "Site B"})
    op_a = user_with_grant(admin, central, "op-a", site_a)
    op_b = user_with_grant(admin, central, "op-b", site_b)
    admin.ok("POST", "/tenants", {"name": "Other", "username": "other-admin",
                                  "password": PASSWORD})
    other = central.api()
    assert other.login("other-admin", PASSWORD).status_code == 200
    tenant = tenant_of(admin)
    feed = Feed(central)

    async def run():
        clients = {}
        for name, api in (("admin", admin), ("op_a", op_a), ("op_b", op_b), ("other", other)):
            ws, ok = await open_stream(central, api.token)
            got, ready = await until_ready(ws)
            assert got == [] and isinstance(ready["cursor"], int)
            clients[name] = ws
        assert metric(central, "canopy_central_stream_clients") == 4

        at_a = feed.add(tenant, site_a["id"])
        at_a1 = feed.add(tenant, site_a1["id"], "alarm.updated")
        at_b = feed.add(tenant, site_b["id"], "alarm.escalated")
        no_site = feed.add(tenant, None)

        got_admin = await alarms_n(clients["admin"], 4)
        assert [m["id"] for m in got_admin] == [at_a, at_a1, at_b, no_site]
        assert [m["type"] for m in got_admin] == ["alarm.created", "alarm.updated",
                                                  "alarm.escalated", "alarm.created"]
        first = got_admin[0]
        assert first["cursor"] == at_a and first["alarm"]["site_id"] == site_a["id"]
        assert first["alarm"]["type"] == "intrusion" and first["notify"] is None
        assert first["at"].endswith("Z")

        # the site grant covers the subtree; nothing else
        got_a = await alarms_for(clients["op_a"], 2)
        assert [m["id"] for m in got_a] == [at_a, at_a1]
        got_b = await alarms_for(clients["op_b"], 0.5)
        assert [m["id"] for m in got_b] == [at_b]
        # another tenant sees nothing of this one
        assert await alarms_for(clients["other"], 0.5) == []
        for ws in clients.values():
            await ws.close()

    asyncio.run(run())
    assert metric(central, "canopy_central_stream_messages_total") == 7
    wait(lambda: metric(central, "canopy_central_stream_clients") == 0, 5, "clients gone")
    feed.close()


# ---- resume from a cursor -----------------------------------------------------------------

def test_stream_resume_replays_exactly_the_missed_rows(central_factory):
    central = central_factory(stream_replay_max=6)
    admin = central.admin()
    tenant = tenant_of(admin)
    feed = Feed(central)

    async def run():
        ws, _ = await open_stream(central, admin.token)
        await until_ready(ws)
        seen = [feed.add(tenant) for _ in range(3)]
        got = await alarms_n(ws, 3)
        assert [m["id"] for m in got] == seen
        cursor = got[-1]["cursor"]
        assert cursor == seen[-1]
        await ws.close()

        missed = [feed.add(tenant) for _ in range(4)]
        ws, _ = await open_stream(central, admin.token, cursor=cursor)
        replay, ready = await until_ready(ws)
        assert [m["id"] for m in replay] == missed  # in order, nothing seen before
        assert [m["cursor"] for m in replay] == missed
        assert ready["cursor"] == missed[-1]
        live = feed.add(tenant)
        got = await alarms_for(ws, 1.5)
        assert [m["id"] for m in got] == [live]  # then live, no duplicates
        await ws.close()

        # resuming at the newest cursor replays nothing
        ws, _ = await open_stream(central, admin.token, cursor=live)
        replay, ready = await until_ready(ws)
        assert replay == [] and ready["cursor"] == live
        await ws.close()

        # more missed than stream_replay_max: told to reload, then live from here
        ws, _ = await open_stream(central, admin.token, cursor=seen[0] - 1)
        reset = await recv(ws)
        assert reset == {"type": "reset", "reason": "cursor too far behind"}
        replay, ready = await until_ready(ws)
        assert replay == [] and ready["cursor"] >= live
        newer = feed.add(tenant)
        assert [m["id"] for m in await alarms_n(ws, 1)] == [newer]
        await ws.close()

        # a cursor the server never handed out
        ws, _ = await open_stream(central, admin.token, cursor=newer + 1000)
        assert (await recv(ws)) == {"type": "reset", "reason": "cursor unknown"}
        await ws.close()

        # missed rows older than stream_replay_age (24 h): reload instead
        old = feed.add(tenant)
        feed.sql("UPDATE feed SET at = now() - interval '2 days' WHERE id = %s", (old,))
        ws, _ = await open_stream(central, admin.token, cursor=newer)
        assert (await recv(ws)) == {"type": "reset", "reason": "cursor too old"}
        await ws.close()

    asyncio.run(run())
    assert metric(central, "canopy_central_stream_resets_total") == 3
    assert metric(central, "canopy_central_stream_replayed_total") == 4
    feed.close()


def test_stream_replay_respects_grants_and_retention(central_factory):
    central = central_factory(feed_retention="1m")
    admin = central.admin()
    site_a = admin.ok("POST", "/sites", {"name": "Site A"})
    site_b = admin.ok("POST", "/sites", {"name": "Site B"})
    op_a = user_with_grant(admin, central, "op-a", site_a)
    tenant = tenant_of(admin)
    feed = Feed(central)
    start = feed.sql("SELECT coalesce(max(id), 0) FROM feed")[0][0]
    rows = [feed.add(tenant, s["id"]) for s in (site_a, site_b, site_a, site_b)]

    async def replay(cursor):
        ws, _ = await open_stream(central, op_a.token, cursor=cursor)
        got = []
        while (m := await recv(ws))["type"] != "ready":
            if m["type"] == "reset":
                await ws.close()
                return m
            got.append(m["id"])
        await ws.close()
        return got

    # only what the grant covers is replayed
    assert asyncio.run(replay(start)) == [rows[0], rows[2]]

    # retention (1 minute here) deletes old rows; a cursor below them must reload
    feed.sql("UPDATE feed SET at = now() - interval '2 hours' WHERE id = ANY(%s)",
             ([rows[0], rows[1]],))
    wait(lambda: feed.sql("SELECT count(*) FROM feed WHERE id = ANY(%s)",
                          ([rows[0], rows[1]],))[0][0] == 0, 15, "old feed rows purged")
    assert metric(central, "canopy_central_feed_purged_total") >= 2
    assert asyncio.run(replay(start)) == {"type": "reset", "reason": "cursor too old"}
    assert asyncio.run(replay(rows[1])) == [rows[2]]
    feed.close()


def test_stream_rows_committing_out_of_order(central_factory):
    """Feed ids are handed out in order but commit in any order: the later id is sent at
    once with a cursor that does not pass the missing one; the late row still comes, and a
    rolled-back id is given up after 10 s."""
    central = central_factory()
    admin = central.admin()
    tenant = tenant_of(admin)
    feed = Feed(central)
    slow_tx = Feed(central)
    slow_tx.conn.autocommit = False

    async def run():
        ws, _ = await open_stream(central, admin.token)
        _, ready = await until_ready(ws)
        base = feed.add(tenant)
        assert [m["id"] for m in await alarms_n(ws, 1)] == [base]

        late = slow_tx.add(tenant)  # id handed out, not committed
        early = feed.add(tenant)
        assert late < early
        got = await alarms_n(ws, 1)
        assert [m["id"] for m in got] == [early]
        assert got[0]["cursor"] == base  # resuming from it would not skip the late one
        slow_tx.conn.commit()
        got = await alarms_n(ws, 1)
        assert [m["id"] for m in got] == [late] and got[0]["cursor"] == early
        await ws.close()
        assert metric(central, "canopy_central_feed_late_rows_total") == 1

        # a resume from the cursor before the late commit gets both, in id order
        ws, _ = await open_stream(central, admin.token, cursor=base)
        replay, ready = await until_ready(ws)
        assert [m["id"] for m in replay] == [late, early] and ready["cursor"] == early

        # an id rolled back: the cursor stays below it until it is given up (10 s)
        lost = slow_tx.add(tenant)
        slow_tx.conn.rollback()
        after = feed.add(tenant)
        got = await alarms_n(ws, 1)
        assert got[0]["id"] == after and got[0]["cursor"] == early and lost < after
        wait(lambda: metric(central, "canopy_central_feed_gaps_given_up_total") == 1, 15,
             "rolled-back id given up")
        last = feed.add(tenant)
        got = await alarms_n(ws, 1)
        assert got[0]["id"] == last and got[0]["cursor"] == last
        await ws.close()

    asyncio.run(run())
    feed.close()
    slow_tx.close()


# ---- authentication -----------------------------------------------------------------------

def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64url(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def resign(central, feed, token, **claims) -> str:
    """The access token with claims changed, signed with central's key (from the database)."""
    pem = feed.sql("SELECT value FROM central_secrets WHERE name = 'token_signing_key'")[0][0]
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    head, body, _ = token.split(".")
    payload = json.loads(unb64url(body))
    payload.update(claims)
    signing_input = head + "." + b64url(json.dumps(payload, separators=(",", ":")).encode())
    return signing_input + "." + b64url(key.sign(signing_input.encode()))


def test_stream_refuses_bad_tokens_and_closes_on_expiry(central_factory):
    central = central_factory()
    admin = central.admin()
    site = admin.ok("POST", "/sites", {"name": "Site A"})
    viewer = user_with_grant(admin, central, "viewer-a", site, VIEWER_ROLE)
    operator = user_with_grant(admin, central, "op-a", site)
    feed = Feed(central)
    now = int(time.time())
    expired = resign(central, feed, admin.token, exp=now - 60, iat=now - 120, nbf=now - 120)
    expires = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    narrow = admin.ok("POST", "/api-tokens", {"name": "no events", "scopes": ["sites.read"],
                                              "expires_at": expires})["token"]
    reader = admin.ok("POST", "/api-tokens", {"name": "events", "scopes": ["events.read"],
                                              "expires_at": expires})["token"]
    gone = central.api()
    assert gone.login("admin", "Adm1n-Passw0rd!").status_code == 200
    gone.ok("POST", "/auth/logout")
    assert gone.get("/me").status_code == 401

    async def refused(first_message):
        async with websockets.connect(stream_url(central), ssl=ssl_ctx(central)) as ws:
            if first_message is not None:
                await ws.send(first_message)
            return await close_code(ws)

    async def run():
        auth = lambda t: json.dumps({"type": "auth", "token": t})  # noqa: E731
        code, reason = await refused(auth("not-a-token"))
        assert code == 4401, (code, reason)
        code, reason = await refused(auth(expired))
        assert code == 4401 and "expired" in reason, reason
        code, reason = await refused(auth(gone.token))
        assert code == 4401 and "session ended" in reason, reason
        code, reason = await refused(auth("cnt_unknown"))
        assert code == 4401, reason
        code, reason = await refused(auth(narrow))
        assert code == 4403 and "events.read" in reason, reason
        code, reason = await refused(auth(viewer.token))
        assert code == 4403 and "events.read" in reason, reason
        code, reason = await refused("hello")
        assert code == 4401, reason
        code, reason = await refused(json.dumps({"type": "subscribe"}))
        assert code == 4401, reason
        code, reason = await refused(None)  # nothing within 10 s
        assert code == 4401 and "10 s" in reason, reason

        # an integrator token with events.read works
        ws, ok = await open_stream(central, reader)
        assert ok["expires_at"].startswith(expires[:10])
        await until_ready(ws)
        await ws.close()

        # a token about to expire: closed when it does ...
        ws, ok = await open_stream(central, resign(central, feed, admin.token,
                                                   exp=int(time.time()) + 4))
        await until_ready(ws)
        t0 = time.monotonic()
        code, reason = await close_code(ws, 15)
        assert code == 4401 and reason == "token expired", (code, reason)
        assert time.monotonic() - t0 < 7
        # ... unless a fresh one comes first (after a refresh), on the same connection
        ws, ok = await open_stream(central, resign(central, feed, admin.token,
                                                   exp=int(time.time()) + 3))
        await until_ready(ws)
        await ws.send(json.dumps({"type": "auth", "token": admin.token}))
        again = await recv(ws)
        assert again["type"] == "auth.ok"
        await asyncio.sleep(5)
        tenant = tenant_of(admin)
        row = feed.add(tenant)
        assert [m["id"] for m in await alarms_n(ws, 1)] == [row]
        # a token of someone else is not a refresh
        await ws.send(json.dumps({"type": "auth", "token": operator.token}))
        code, reason = await close_code(ws)
        assert code == 4401 and "another user" in reason, reason

    asyncio.run(run())
    assert metric(central, "canopy_central_stream_auth_failures_total") == 10
    assert metric(central, "canopy_central_stream_expired_total") == 1
    feed.close()


# ---- a slow client ------------------------------------------------------------------------

def test_stream_slow_client_is_closed_and_others_carry_on(central_factory):
    central = central_factory()
    admin = central.admin()
    tenant = tenant_of(admin)
    feed = Feed(central)
    total = 160

    async def run():
        # websockets stops reading the socket once max_queue messages wait unread
        slow, _ = await open_stream(central, admin.token, max_queue=4)
        await until_ready(slow)
        fast, _ = await open_stream(central, admin.token, max_size=1 << 21)
        await until_ready(fast)
        ids, got = [], []
        for _ in range(total // 8):
            ids += [feed.add(tenant, details_size=100_000) for _ in range(8)]
            got += await alarms_n(fast, 8, timeout=15)
        assert [m["id"] for m in got] == ids
        wait(lambda: metric(central, "canopy_central_stream_slow_closed_total") == 1, 10,
             "the slow client closed")
        code, reason = await close_code(slow, 30)
        assert code == 4008 and "resume from your cursor" in reason, (code, reason)
        # the fast one is still served
        row = feed.add(tenant)
        assert [m["id"] for m in await alarms_n(fast, 1)] == [row]
        await fast.close()

    asyncio.run(run())
    feed.close()
