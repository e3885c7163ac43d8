#!/usr/bin/python3
"""bench_alarms.py: alarms per second from simulated edges through canopy-central to a webhook
receiver, on a durable PostgreSQL (fsync on), beside pgbench's single-row inserts on the
same cluster.

Pipeline measured: N simulated edges (asyncio, the uplink protocol of docs/uplink.md as in
tests/integration/fixtures/uplink_node.py) send `events` batches (at most 100 events, one
batch in flight per node, the next after `events.ack`, like the real edge) at an offered
rate; central stores them (uplink_store_events: event, alarm, feed row, webhook outbox row in one
statement, which hands the outbox rows back to central already leased to it), its webhook
engine POSTs `alarm.created` signed with Standard Webhooks headers, and writes the results
back (delivery log row, outbox delete).
The receiver (tests/bench/webhook_sink.py, its own process) answers 200 at once and keeps
each message's receipt time, webhook-id and the alarm's data.time / data.event_id.

Per offered rate: delivered alarms/s at the receiver in steady state, latency from the
event's creation at the edge (its `time`, ms) to receipt (p50/p99/max), how that splits
(edge queue, the events round trip, ack to receipt), CPU of central / PostgreSQL / the
receiver / the edges, missing and duplicate messages, and where PostgreSQL spends its time
(pg_stat_activity sampled every 50 ms, rows and WAL per alarm). Beside it: pgbench with one
single-row INSERT per transaction (-c 8 -j 2) on the same cluster: the durable-commit
ceiling, and the ratio alarms/s / pgbench tps.

Usage: tests/bench/bench_alarms.py [--seconds 15] [--rates 1000 2500 5000 7500] [--nodes 4]
       [--history 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import calendar
import collections
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_central import (TICK, Central, children_of, cpu_seconds, pg_bindir,  # noqa: E402
                           raise_nofile)
from fixtures.uplink_node import _b64, utc_stamp  # noqa: E402

import websockets  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

BATCH_MAX = 100          # events per batch, as edge-agent/edge_uplink.c
WARM_S = 3.0             # of each step, before the steady-state window
DRAIN_S = 120.0          # after a step, how long we wait for the last messages
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
           "shared_buffers": "256MB"}
TARGET_RATE, TARGET_P99_MS = 5000, 100.0


# --- simulated edges ---------------------------------------------------------------------

class Edge:
    """One node's uplink, asyncio-native: a reader task (config -> config.ack, events.ack ->
    the batch in flight) and a sender that drains the node's outbox 100 events at a time."""

    def __init__(self, idx: int, url: str, ctx: ssl.SSLContext, token: str):
        self.idx, self.url, self.ctx, self.token = idx, url, ctx, token
        self.key = Ed25519PrivateKey.generate()
        self.node_id = None
        self.seq = 0
        self.ws = None
        self.outbox: collections.deque = collections.deque()  # [id, created, sent, acked, ev]
        self.wake = asyncio.Event()
        self.ack: asyncio.Future | None = None
        self.rtts: list[float] = []   # events round trips (send -> ack), s
        self.acked = 0
        self.errors: list[str] = []
        self.tasks: list[asyncio.Task] = []

    def env(self, typ: str, body: dict) -> str:
        self.seq += 1
        return json.dumps({"v": 1, "type": typ, "id": f"{self.idx}-{self.seq}", "seq": self.seq,
                           "time": utc_stamp(), "body": body}, separators=(",", ":"))

    async def connect(self):
        self.ws = await websockets.connect(self.url, ssl=self.ctx, max_size=4 << 20,
                                           compression=None)
        ch = json.loads(await self.ws.recv())
        nonce = ch["body"]["nonce"]
        pub = _b64(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
        sig = _b64(self.key.sign(f"canopy-uplink-v1\n{nonce}\n{self.token}".encode()))
        await self.ws.send(self.env("hello", {
            "public_key": pub, "signature": sig, "kind": "edge", "name": f"bench-edge-{self.idx}",
            "software": "bench_alarms", "enrol_token": self.token}))
        while True:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), 15))
            if msg["type"] == "welcome":
                self.node_id = msg["body"]["node_id"]
                break
            if msg["type"] == "error":
                raise RuntimeError(f"edge {self.idx} refused: {msg['body']}")
        self.tasks = [asyncio.ensure_future(self.reader()), asyncio.ensure_future(self.sender())]

    async def reader(self):
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                t = msg["type"]
                if t == "events.ack":
                    if self.ack is not None and not self.ack.done():
                        self.ack.set_result(msg["body"]["ids"])
                elif t == "config":
                    await self.ws.send(self.env("config.ack", {
                        "version": msg["body"]["version"], "ok": True, "error": ""}))
                elif t == "error":
                    self.errors.append(str(msg["body"]))
        except websockets.ConnectionClosed as exc:
            self.errors.append(f"uplink closed: {exc}")
        if self.ack is not None and not self.ack.done():
            self.ack.set_exception(RuntimeError(f"edge {self.idx}: uplink closed"))

    async def sender(self):
        while True:
            while not self.outbox:
                self.wake.clear()
                await self.wake.wait()
            batch = [self.outbox.popleft() for _ in range(min(BATCH_MAX, len(self.outbox)))]
            self.ack = asyncio.get_running_loop().create_future()
            sent = time.time()
            for b in batch:
                b[2] = sent
            await self.ws.send(self.env("events", {"events": [b[4] for b in batch]}))
            ids = await self.ack
            now = time.time()
            self.rtts.append(now - sent)
            if len(ids) != len(batch):
                self.errors.append(f"events.ack named {len(ids)} of {len(batch)} ids")
            for b in batch:
                b[3] = now
                b[4] = None  # the event itself is no longer needed
            self.acked += len(batch)

    async def close(self):
        for t in self.tasks:
            t.cancel()
        await self.ws.close()


async def offer(edges: list[Edge], rate: float, seconds: float, step: int, track: dict):
    """Creates events at rate/s spread over the edges for seconds; each goes into its edge's
    outbox at once, stamped with its creation time (UTC, ms), which is what the latency is
    measured from."""
    t0 = time.time()
    made = [0] * len(edges)
    per = rate / len(edges)
    while True:
        now = time.time()
        el = min(now - t0, seconds)
        for i, e in enumerate(edges):
            due = int(per * el) - made[i]
            if due <= 0:
                continue
            stamp = utc_stamp(now)
            for _ in range(due):
                made[i] += 1
                eid = f"b{step}n{i}e{made[i]:07d}"
                rec = [eid, now, 0.0, 0.0, {"id": eid, "camera": "door", "type": "intrusion",
                                            "time": stamp, "state": "active"}]
                track[eid] = rec
                e.outbox.append(rec)
            e.wake.set()
        if now - t0 >= seconds:
            return t0, now
        await asyncio.sleep(0.005)


# --- measurements --------------------------------------------------------------------------

def pg_cpu(pg) -> float:
    """CPU seconds of the postmaster, its live children, and its children that have exited
    (their time is in the postmaster's cutime/cstime: pgbench's backends end with it)."""
    pid = pg.postmaster_pid()
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(f[13]) + int(f[14])) / TICK
    for p in [pid] + children_of(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all processes, ours and others')."""
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / TICK


def thread_cpu(pid: int) -> dict:
    """CPU seconds of central's threads by role: the main loop (TLS, HTTP, uplink frames),
    the webhook http and db threads, the database pool's workers."""
    out: dict = collections.Counter()
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (t / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        f = raw.rsplit(")", 1)[1].split()
        name = "main" if int(t.name) == pid else comm if comm.startswith("webhook") else "db pool"
        out[name] += (int(f[11]) + int(f[12])) / TICK
    return out


def metrics(central: Central) -> dict:
    import urllib.request
    with urllib.request.urlopen(central.url + "/metrics", context=central.ctx, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


TABLES = ("events", "alarms", "feed", "webhook_outbox", "webhook_deliveries")


def pg_counters(conn) -> dict:
    with conn.cursor() as cur:
        cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        commits = cur.fetchone()[0]
        cur.execute("SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal")
        wal = dict(zip(("wal_records", "wal_fpi", "wal_bytes", "wal_write", "wal_sync"),
                       map(float, cur.fetchone())))
        cur.execute("SELECT relname, n_tup_ins, n_tup_upd, n_tup_del, n_tup_hot_upd"
                    " FROM pg_stat_user_tables WHERE relname = ANY(%s)", (list(TABLES),))
        rows = {r[0]: r[1:] for r in cur.fetchall()}
    return {"commits": float(commits), **wal, "rows": rows}


def pg_delta(a: dict, b: dict) -> dict:
    out = {k: b[k] - a[k] for k in a if k != "rows"}
    out["rows"] = {t: tuple(y - x for x, y in zip(a["rows"].get(t, (0, 0, 0, 0)), b["rows"][t]))
                   for t in b["rows"]}
    return out


class Sampler(threading.Thread):
    """pg_stat_activity of central's database every 50 ms: which statements are running and
    what they wait on (the average number of backends in each), and the outbox backlog."""

    def __init__(self, pg, dbname: str):
        super().__init__(daemon=True)
        self.conn = pg.connect(dbname, autocommit=True)
        self.dbname = dbname
        self.stop_ev = threading.Event()
        self.reset()

    def reset(self):
        self.samples = 0
        self.active: collections.Counter = collections.Counter()
        self.waits: collections.Counter = collections.Counter()
        self.outbox: list[int] = []

    def run(self):
        n = 0
        with self.conn.cursor() as cur:
            while not self.stop_ev.is_set():
                cur.execute("SELECT query, coalesce(wait_event_type || ':' || wait_event, 'CPU')"
                            " FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
                            " AND pid <> pg_backend_pid()", (self.dbname,))
                rows = cur.fetchall()
                if n % 20 == 0:
                    cur.execute("SELECT count(*) FROM webhook_outbox")
                    self.outbox.append(cur.fetchone()[0])
                n += 1
                self.samples += 1
                for q, w in rows:
                    m = re.search(r"\b(uplink_store_events|uplink_events|webhook_claim|webhook_apply|webhook_renew|"
                                  r"webhook_counts|alarm_tick|canopy_feed_\w+|alarm_retention)\b", q)
                    name = m.group(1) if m else " ".join(q.split())[:50]
                    self.active[name] += 1
                    self.waits[(name, w)] += 1
                time.sleep(0.05)
        self.conn.close()

    def stop(self):
        self.stop_ev.set()
        self.join(5)


class SinkProc:
    def __init__(self, work: Path):
        self.proc = subprocess.Popen([sys.executable, str(HERE / "webhook_sink.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)
        self.port = int(self.proc.stdout.readline().split()[1])
        self.work = work
        self.dumps = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hook"

    def cmd(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def count(self) -> int:
        return int(self.cmd("count").split()[1])

    def dump(self):
        self.dumps += 1
        path = self.work / f"sink-{self.dumps}.tsv"
        info = self.cmd(f"dump {path}").split()
        stats = dict(zip(info[2::2], map(int, info[3::2])))
        stats["n"] = int(info[1])
        recs = []
        with open(path) as f:
            for line in f:
                recv, msg_id, eid, etime = line.rstrip("\n").split("\t")
                recs.append((float(recv), msg_id, eid, etime))
        path.unlink()
        return recs, stats

    def stop(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def sink_alone(sink: SinkProc, work: Path, seconds: int = 5) -> float:
    """The receiver alone under wrk (32 keep-alive connections, an alarm-sized body): its
    ceiling, to show it is not what limits the pipeline."""
    lua = work / "post.lua"
    lua.write_text('wrk.method = "POST"\n'
                   'wrk.body = string.rep("x", 1200) .. \'{"data": {"event_id": "e", '
                   '"time": "2026-01-01T00:00:00.000Z"}}\'\n'
                   'wrk.headers["Content-Type"] = "application/json"\n'
                   'wrk.headers["webhook-id"] = "msg_0123456789abcdef0123456789abcdef"\n'
                   'wrk.headers["webhook-timestamp"] = "1700000000"\n'
                   'wrk.headers["webhook-signature"] = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="\n')
    out = subprocess.run(["wrk", "-t1", "-c32", f"-d{seconds}s", "-s", str(lua), sink.url],
                         capture_output=True, text=True, check=True).stdout
    sink.dump()
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))


def parse_stamp(s: str) -> float:
    # 2026-11-21T18:04:05.120Z
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S")) + int(s[20:23]) / 1000


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


# --- the run -----------------------------------------------------------------------------

def make_durable(pg) -> dict:
    """The fixture's cluster is made for tests (fsync off): this one must be durable."""
    conn = pg.connect(autocommit=True)
    with conn.cursor() as cur:
        for k, v in DURABLE.items():
            cur.execute(f"ALTER SYSTEM SET {k} = '{v}'")
    conn.close()
    pg.stop()
    pg.start()  # shared_buffers needs a restart
    conn = pg.connect(autocommit=True)
    shown = {}
    with conn.cursor() as cur:
        for k in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method",
                  "shared_buffers", "wal_level", "max_wal_size", "checkpoint_timeout"):
            cur.execute(f"SHOW {k}")
            shown[k] = cur.fetchone()[0]
    conn.close()
    for k, v in DURABLE.items():
        assert shown[k] == v, (k, shown[k])
    warm_wal(pg)
    return shown


def warm_wal(pg) -> None:
    """A server in service writes its WAL into recycled segment files; a fresh cluster has
    none and zero-fills a new 16 MB file every 16 MB written (6% of the CPU at 5,000
    alarms/s). About 600 MB of WAL and a checkpoint leave recycled segments, as in service."""
    conn = pg.connect(autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE wal_warm AS SELECT g, repeat('x', 2000) AS pad FROM generate_series(1, 300000) g")
        cur.execute("DROP TABLE wal_warm")
        cur.execute("CHECKPOINT")
        cur.execute("SELECT count(*) FROM pg_ls_waldir()")
        print(f"WAL warmed: {cur.fetchone()[0]} segment files ready", flush=True)
    conn.close()


def setup_tenant(central: Central, sink: SinkProc, nodes: int, max_in_flight: int):
    site = central.call("POST", "/api/v1/sites", {"name": "Bench site", "timezone": "Europe/Paris"})
    tokens = []
    for i in range(nodes):
        node = central.call("POST", "/api/v1/nodes",
                            {"site_id": site["id"], "kind": "edge", "name": f"bench-edge-{i}"})
        central.call("POST", "/api/v1/cameras", {"node_id": node["id"], "key": "door",
                                                 "name": f"Door {i}",
                                                 "config": {"main_url": "rtsp://10.0.0.9/s"}})
        tokens.append(central.call("POST", f"/api/v1/nodes/{node['id']}/enrolment-tokens", {})["token"])
    # processing_s: no alarm turns "missed" (and feeds the timers) during the run
    central.call("POST", "/api/v1/alarm-rules", {"name": "intrusion", "event_types": ["intrusion"],
                                                 "severity": 4, "processing_s": 86400})
    sub = central.call("POST", "/api/v1/webhooks", {"name": "bench sink", "url": sink.url,
                                                    "types": ["alarm.created"],
                                                    "max_in_flight": max_in_flight})
    assert sink.cmd(f"secret {sub['secret']}") == "ok"
    return tokens


# The hot tables of a central in service hold its retention window: a day at ~12 alarms/s
# is about a million rows each. Started empty, they are vacuumed and analysed every time
# they grow by 10-20% (autovacuum's scale factors), several passes within one 12 s window,
# which a database in service does not see, and their indexes are shallower than in service.
# Older rows have lower ids: below the warm-up's, so the live stream's cursor (past the
# warm-up) does not see the history as new.
OLDER_ID = "-(g::bigint * 100000000 + t.id)"
HISTORY_TABLES = {
    # table: the columns a historic row changes in its template row (g: the copy's number)
    "events": {"id": OLDER_ID, "event_id": "'h' || g || '-' || t.event_id",
               "at": "t.at - g * interval '86 ms'",
               "received_at": "t.received_at - g * interval '86 ms'"},
    "alarms": {"id": "gen_random_uuid()", "event_id": "NULL",
               "event_ref": "'h' || g || '-' || t.event_ref", "state": "'resolved'",
               "event_at": "t.event_at - g * interval '86 ms'",
               "created_at": "t.created_at - g * interval '86 ms'",
               "deadline": "t.deadline - g * interval '86 ms'", "auto_ack_at": "NULL",
               "level_due": "NULL"},
    "feed": {"id": OLDER_ID, "at": "t.at - g * interval '86 ms'"},
    "webhook_deliveries": {"id": OLDER_ID,
                           "msg_id": "'h' || g || '-' || t.msg_id",
                           "at": "t.at - g * interval '86 ms'"},
}


def add_history(pg, dbname: str, rows: int) -> None:
    """Copies the warm-up's rows (real ones, as central wrote them) back in time until each
    hot table holds `rows`, then vacuums, analyses and checkpoints, as a database in service
    would be."""
    if rows <= 0:
        return
    t0 = time.time()
    conn = pg.connect(dbname, autocommit=True)
    with conn.cursor() as cur:
        for table, changes in HISTORY_TABLES.items():
            cur.execute(f"SELECT count(*) FROM {table}")
            have = cur.fetchone()[0]
            if have == 0 or have >= rows:
                continue
            copies = (rows - have + have - 1) // have
            cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                        " AND table_schema = 'public' ORDER BY ordinal_position", (table,))
            cols = [r[0] for r in cur.fetchall()]
            exprs = ", ".join(changes.get(c, f"t.{c}") for c in cols)
            # materialised: a rescan of the table itself would walk the rows being added
            cur.execute(f"WITH t AS MATERIALIZED (SELECT * FROM {table})"
                        f" INSERT INTO {table} ({', '.join(cols)})"
                        f" SELECT {exprs} FROM generate_series(1, %s) g, t", (copies,))
        cur.execute("VACUUM ANALYZE")
        cur.execute("CHECKPOINT")
        cur.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in HISTORY_TABLES))
        counts = dict(zip(HISTORY_TABLES, cur.fetchone()))
    conn.close()
    print(f"history: {', '.join(f'{t} {n}' for t, n in counts.items())} rows"
          f" ({time.time() - t0:.0f} s, then VACUUM ANALYZE and CHECKPOINT)", flush=True)


async def run_step(edges, central, pg_conn, sampler, sink, rate, seconds, step, quiet=False):
    track: dict = {}
    pids = {"central": central.proc.pid, "sink": sink.proc.pid, "edges": os.getpid()}

    def snap():
        return ({k: cpu_seconds(p) for k, p in pids.items()} | {"pg": pg_cpu(central.pg),
                                                                 "machine": machine_busy()},
                thread_cpu(central.proc.pid), metrics(central), pg_counters(pg_conn), time.time())

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(offer(edges, rate, seconds, step, track))
    await asyncio.sleep(WARM_S)
    a = await loop.run_in_executor(None, snap)
    sampler.reset()
    acked0 = sum(e.acked for e in edges)
    rtt0 = [len(e.rtts) for e in edges]
    t0, t_end = await task
    b = await loop.run_in_executor(None, snap)
    acked1 = sum(e.acked for e in edges)
    rtt1 = [len(e.rtts) for e in edges]
    backlog_edge = sum(len(e.outbox) for e in edges)
    act = (sampler.samples, collections.Counter(sampler.active), collections.Counter(sampler.waits),
           list(sampler.outbox))
    # drain: every event acked, every alarm at the sink
    deadline = time.time() + DRAIN_S
    created = len(track)
    while time.time() < deadline:
        if all(not e.outbox for e in edges) and sum(e.acked for e in edges) >= acked1 and \
                await loop.run_in_executor(None, sink.count) >= sink_base[0] + created:
            break
        await asyncio.sleep(0.2)
    drained = time.time() - t_end
    await asyncio.sleep(0.5)  # duplicates, if any, would come now
    recs, sstats = await loop.run_in_executor(None, sink.dump)
    sink_base[0] += sstats["n"]

    win = b[4] - a[4]
    in_win = [r for r in recs if a[4] <= r[0] <= b[4]]
    seen_ids = collections.Counter(r[1] for r in recs)
    seen_ev = {}
    for r in recs:
        seen_ev.setdefault(r[2], r)
    lat, lat_q, lat_rtt, lat_hook, skew = [], [], [], [], []
    missing = 0
    for eid, (_, created_t, sent, acked, _) in track.items():
        if not (a[4] <= created_t <= b[4]):
            continue
        r = seen_ev.get(eid)
        if r is None:
            missing += 1
            continue
        lat.append(r[0] - parse_stamp(r[3]))
        skew.append(parse_stamp(r[3]) - created_t)
        lat_q.append(sent - created_t)
        lat_rtt.append(acked - sent)
        lat_hook.append(r[0] - acked)
    unknown = sum(1 for r in recs if r[2] not in track)
    lost = sum(1 for eid in track if eid not in seen_ev)  # the whole step, not only the window
    cpu = {k: (b[0][k] - a[0][k]) / win * 100 for k in a[0]}
    # what else ran on the machine meanwhile (other users' builds and tests disturb the run)
    cpu["others"] = cpu.pop("machine") - sum(cpu.values())
    threads = {k: (b[1].get(k, 0) - a[1].get(k, 0)) / win * 100 for k in b[1]}
    m = {k: b[2].get(k, 0) - a[2].get(k, 0) for k in b[2]}
    pgd = pg_delta(a[3], b[3])
    delivered = len(in_win) / win
    batches = sum(n1 - n0 for n0, n1 in zip(rtt0, rtt1))
    raised = max(1, pgd["rows"].get("alarms", (0,))[0])  # alarms inserted in the window
    res = {
        "offered": rate, "created": created, "window_s": round(win, 2),
        "ingested_per_s": round((acked1 - acked0) / win, 1),
        "delivered_per_s": round(delivered, 1),
        "p50_ms": round(pct(lat, 50) * 1000, 1), "p99_ms": round(pct(lat, 99) * 1000, 1),
        "max_ms": round(max(lat) * 1000, 1) if lat else float("nan"),
        "edge_queue_p50_ms": round(pct(lat_q, 50) * 1000, 1),
        "edge_queue_p99_ms": round(pct(lat_q, 99) * 1000, 1),
        "events_rtt_p50_ms": round(pct(lat_rtt, 50) * 1000, 1),
        "events_rtt_p99_ms": round(pct(lat_rtt, 99) * 1000, 1),
        "ack_to_sink_p50_ms": round(pct(lat_hook, 50) * 1000, 1),
        "ack_to_sink_p99_ms": round(pct(lat_hook, 99) * 1000, 1),
        "batch_events_avg": round((acked1 - acked0) / max(1, batches), 1),
        "measured": len(lat), "missing": lost, "missing_in_window": missing, "unknown": unknown,
        "dup_webhook_ids": sum(n - 1 for n in seen_ids.values() if n > 1),
        "dup_events": len(recs) - len(seen_ev),
        "stamp_skew_ms_max": round(max((abs(x) for x in skew), default=0) * 1000, 1),
        "sig_checked": sstats["sig_checked"], "sig_bad": sstats["sig_bad"],
        "drain_s": round(drained, 1), "edge_backlog_at_end": backlog_edge,
        "outbox_max": max(act[3], default=0), "outbox_end": act[3][-1] if act[3] else 0,
        "cpu": {k: round(v, 1) for k, v in cpu.items()},
        "central_threads": {k: round(v, 1) for k, v in sorted(threads.items())},
        "webhook": {"delivered": m.get('canopy_central_webhook_deliveries_total{outcome="delivered"}', 0),
                    "failed": m.get('canopy_central_webhook_deliveries_total{outcome="failed"}', 0),
                    "attempt_errors": m.get("canopy_central_webhook_attempt_errors_total", 0),
                    "db_errors": m.get("canopy_central_webhook_db_errors_total", 0),
                    "queue_end": b[2].get("canopy_central_webhook_queue", 0)},
        "db_jobs_per_s": round(m.get("canopy_central_db_jobs_total", 0) / win, 1),
        "db_rejected": m.get("canopy_central_db_rejected_total", 0),
        "pg": {"commits_per_s": round(pgd["commits"] / win, 1),
               "wal_syncs_per_s": round(pgd["wal_sync"] / win, 1),
               "wal_kb_per_alarm": round(pgd["wal_bytes"] / 1024 / raised, 2),
               "fpi_per_alarm": round(pgd["wal_fpi"] / raised, 3),
               "rows_per_alarm": round(sum(sum(v[:3]) for v in pgd["rows"].values()) / raised, 2),
               "rows": {t: v[:3] for t, v in pgd["rows"].items()},
               "active_backends": round(sum(act[1].values()) / max(1, act[0]), 2),
               "statements": {k: round(v / max(1, act[0]), 2) for k, v in act[1].most_common(8)},
               "waits": {f"{k[0]} / {k[1]}": round(v / max(1, act[0]), 2)
                         for k, v in act[2].most_common(10)}},
        "edge_errors": [x for e in edges for x in e.errors][:5],
    }
    if not quiet:
        print(f"  offered {rate:.0f}/s: delivered {res['delivered_per_s']:.0f}/s, p50"
              f" {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms, drained in"
              f" {res['drain_s']:.1f} s", flush=True)
    return res


sink_base = [0]  # messages the sink had received before the current step


async def bench(args, pg, work: Path):
    sink = SinkProc(work)
    central = None
    sampler = None
    edges: list[Edge] = []
    try:
        alone = sink_alone(sink, work)
        print(f"receiver alone (wrk -t1 -c32, 1.2 KB bodies): {alone:.0f} requests/s", flush=True)
        sink_base[0] = sink.count()
        Central.extra = [f"db_pool = {args.db_pool}"] if args.db_pool else []
        central = Central(pg, work)
        central.pg = pg
        tokens = setup_tenant(central, sink, args.nodes, args.max_in_flight)
        ctx = ssl.create_default_context(cafile=str(central.ca))
        url = f"wss://127.0.0.1:{central.port}/uplink"
        edges = [Edge(i, url, ctx, tok) for i, tok in enumerate(tokens)]
        await asyncio.gather(*(e.connect() for e in edges))
        pg_conn = pg.connect(central.dbname, autocommit=True)
        sampler = Sampler(pg, central.dbname)
        sampler.start()
        await asyncio.sleep(1)  # config pushes answered
        # warm-up (not reported): connections, caches, the engine's first claims
        await run_step(edges, central, pg_conn, sampler, sink, 500, 5, 0, quiet=True)
        add_history(pg, central.dbname, args.history)
        results = []
        for i, rate in enumerate(args.rates, 1):
            r = await run_step(edges, central, pg_conn, sampler, sink, rate, args.seconds, i)
            results.append(r)
        pg_conn.close()
        for e in edges:
            await e.close()
        return alone, results
    finally:
        if sampler:
            sampler.stop()
        if central:
            central.stop()
        sink.stop()


def pgbench_ceiling(pg, work: Path, seconds: int) -> dict:
    db = pg.create_database("bench_ceiling")
    conn = pg.connect(db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, v int NOT NULL)")
    conn.close()
    script = work / "ceiling.sql"
    script.write_text("\\set x random(1, 1000000000)\nINSERT INTO bench_ceiling(v) VALUES (:x);\n")
    env = dict(os.environ, PGPASSWORD=pg.password)
    p0, t0 = pg_cpu(pg), time.time()
    out = subprocess.run(
        [f"{pg_bindir()}/pgbench", "-n", "-h", pg.host, "-p", str(pg.port), "-U", pg.user,
         "-c", "8", "-j", "2", "-T", str(seconds), "-f", str(script), db],
        capture_output=True, text=True, env=env, check=True).stdout
    p1, t1 = pg_cpu(pg), time.time()
    return {"tps": float(re.search(r"tps = ([0-9.]+)", out).group(1)),
            "lat_ms": float(re.search(r"latency average = ([0-9.]+) ms", out).group(1)),
            "pg_cpu": round((p1 - p0) / (t1 - t0) * 100, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15, help="per offered rate")
    ap.add_argument("--rates", type=float, nargs="+", default=[1000, 2500, 5000, 7500])
    ap.add_argument("--nodes", type=int, default=4)
    ap.add_argument("--max-in-flight", type=int, default=32)
    ap.add_argument("--pgbench-seconds", type=int, default=15)
    ap.add_argument("--history", type=int, default=1000000,
                    help="rows each hot table holds before the run (a central in service)")
    ap.add_argument("--db-pool", type=int, default=0, help="central's db_pool (0: its default)")
    args = ap.parse_args()
    raise_nofile()
    from fixtures.pg import start_cluster
    pg = start_cluster()
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-alarms-"))
    try:
        print(f"load average before the run: {os.getloadavg()[0]:.2f} (2 cores: other users' jobs"
              " disturb the figures; see the 'rest of the machine' column)", flush=True)
        shown = make_durable(pg)
        print("PostgreSQL: " + ", ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
        alone, results = asyncio.run(bench(args, pg, work))
        ceiling = pgbench_ceiling(pg, work, args.pgbench_seconds)
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)

    print(f"\n{args.nodes} edges, batches of up to {BATCH_MAX} events, one in flight per edge;"
          f" steady state = {args.seconds:.0f} s per rate minus {WARM_S:.0f} s warm-up;"
          f" webhook max_in_flight {args.max_in_flight}")
    print("| offered alarms/s | delivered alarms/s | p50 ms | p99 ms | max ms |"
          " edge queue p99 ms | events round trip p50/p99 ms | ack to receipt p50/p99 ms |"
          " central CPU % | PostgreSQL CPU % | receiver CPU % | edges CPU % | rest of the machine CPU % |"
          " outbox backlog max | missing / dup / bad sig | ratio to pgbench |")
    print("|" + "---|" * 16)
    for r in results:
        print(f"| {r['offered']:.0f} | {r['delivered_per_s']:.0f} | {r['p50_ms']:.1f} |"
              f" {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['edge_queue_p99_ms']:.1f} |"
              f" {r['events_rtt_p50_ms']:.1f} / {r['events_rtt_p99_ms']:.1f} |"
              f" {r['ack_to_sink_p50_ms']:.1f} / {r['ack_to_sink_p99_ms']:.1f} |"
              f" {r['cpu']['central']:.0f} | {r['cpu']['pg']:.0f} | {r['cpu']['sink']:.0f} |"
              f" {r['cpu']['edges']:.0f} | {r['cpu']['others']:.0f} | {r['outbox_max']} |"
              f" {r['missing']} / {r['dup_webhook_ids']} / {r['sig_bad']} of {r['sig_checked']} |"
              f" {r['delivered_per_s'] / ceiling['tps']:.2f} |")
    print(f"\npgbench, same cluster, INSERT of one row per transaction, -c 8 -j 2 -T"
          f" {args.pgbench_seconds}: {ceiling['tps']:.0f} tps (mean {ceiling['lat_ms']:.2f} ms,"
          f" PostgreSQL CPU {ceiling['pg_cpu']:.0f}%)")
    print(f"receiver alone: {alone:.0f} requests/s")
    print("\nwhere the time goes (PostgreSQL: average number of backends running each statement,"
          " from pg_stat_activity every 50 ms; central: % of a core per thread):")
    print("| offered | events per batch | commits/s | WAL syncs/s | rows written per alarm |"
          " WAL KB per alarm | active backends: uplink_store_events / claim / apply / other |"
          " top waits | central threads: main / db pool / webhook / webhook-db |")
    print("|" + "---|" * 9)
    for r in results:
        st = r["pg"]["statements"]
        other = sum(v for k, v in st.items()
                    if k not in ("uplink_store_events", "uplink_events", "webhook_claim", "webhook_apply"))
        waits = ", ".join(f"{k} {v:.2f}" for k, v in list(r["pg"]["waits"].items())[:4])
        th = r["central_threads"]
        print(f"| {r['offered']:.0f} | {r['batch_events_avg']:.1f} | {r['pg']['commits_per_s']:.0f} |"
              f" {r['pg']['wal_syncs_per_s']:.0f} | {r['pg']['rows_per_alarm']:.2f} |"
              f" {r['pg']['wal_kb_per_alarm']:.2f} |"
              f" {st.get('uplink_store_events', 0) + st.get('uplink_events', 0):.2f} / {st.get('webhook_claim', 0):.2f} /"
              f" {st.get('webhook_apply', 0):.2f} / {other:.2f} | {waits} |"
              f" {th.get('main', 0):.0f} / {th.get('db pool', 0):.0f} / {th.get('webhook', 0):.0f} /"
              f" {th.get('webhook-db', 0):.0f} |")
    ok = [r for r in results if r["delivered_per_s"] >= 0.97 * r["offered"] and r["missing"] == 0]
    best = max(ok, key=lambda r: r["delivered_per_s"]) if ok else None
    if best:
        print(f"highest sustained: {best['delivered_per_s']:.0f} alarms/s (p99 {best['p99_ms']:.1f} ms),"
              f" {best['delivered_per_s'] / ceiling['tps']:.2f} of pgbench's single-row tps")
    met = any(r["delivered_per_s"] >= TARGET_RATE * 0.97 and r["offered"] >= TARGET_RATE
              and r["p99_ms"] < TARGET_P99_MS and r["missing"] == 0 for r in results)
    print(f"target {TARGET_RATE} alarms/s with p99 < {TARGET_P99_MS:.0f} ms: "
          f"{'met' if met else 'NOT met'}")
    print(json.dumps({"bench": "alarms", "nodes": args.nodes, "seconds": args.seconds,
                      "postgresql": shown, "receiver_alone_rps": round(alone),
                      "pgbench_tps": ceiling["tps"], "pgbench_lat_ms": ceiling["lat_ms"],
                      "target_met": met, "steps": results}))


if __name__ == "__main__":
    main()
