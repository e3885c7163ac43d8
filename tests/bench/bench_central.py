#!/usr/bin/python3
"""bench_central.py: canopy-central under a fleet of node uplinks, and a typical API read, each beside a peer.

1. Uplinks: N simulated nodes (canopy-uplink-load: the real client code) hold TLS WebSocket
   uplinks and send a heartbeat every 10 s. We report central's CPU (% of one core) and
   RSS in steady state, and PostgreSQL's CPU for the same window (central batches
   heartbeats into one statement every 2 s). Peer, same run, same machine: mosquitto 2
   (the usual broker for device fleets) with N MQTT-over-TLS clients each publishing a
   heartbeat of the same size every 10 s.
2. API: wrk reading the site tree of a 1,000-site tenant (GET /api/v1/sites?limit=1000,
   bearer token, TLS): requests/s and p99. Peer: pgbench running the same SQL function
   straight on PostgreSQL (no HTTP, TLS, token or JSON handling), so the ratio is what our
   serving layer keeps of the database's own throughput.

Usage: tests/bench/bench_central.py [--nodes 1000 10000] [--seconds 60] [--skip-peer]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("CANOPY_BIN_DIR", REPO / "build" / "bin"))
TICK = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, str(REPO / "tests" / "integration"))

from fixtures.netutil import free_port  # noqa: E402
from fixtures.pg import start_cluster  # noqa: E402

ADMIN_PASSWORD = "Adm1n-Passw0rd!"
HEARTBEAT_BYTES = 160  # about what a canopy heartbeat envelope weighs


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    m = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m.group(1)) / 1024


def children_of(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            if ppid == pid:
                out.append(int(p.name))
    return out


def pg_cpu(pg) -> float:
    pid = pg.postmaster_pid()
    total = 0.0
    for p in [pid] + children_of(pid):
        try:
            total += cpu_seconds(p)
        except OSError:
            pass
    return total


def raise_nofile():
    # as far as the hard limit allows (20,000 in some sandboxes: enough for 10,000 links)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Central:
    extra: list[str] = []  # more config lines (--central-conf)

    def __init__(self, pg, work: Path):
        self.port = free_port()
        self.work = work
        self.dbname = pg.create_database()
        data = work / "central-data"
        pw = work / "pw"
        pw.write_text(ADMIN_PASSWORD + "\n")
        conf = work / "central.conf"
        conf.write_text("\n".join([
            f'node_name = "bench-central"', f'data_dir = "{data}"', f"http_port = {self.port}",
            f'db = "{pg.dsn(self.dbname)}"', f'bootstrap_password_file = "{pw}"',
            'log_level = "warn"', "db_queue = 100000", "session_idle = 1h", *self.extra, ""]))
        self.log = open(work / "central.log", "wb")
        self.proc = subprocess.Popen([str(BIN / "canopy-central"), "-c", str(conf)],
                                     stderr=self.log, stdout=subprocess.DEVNULL,
                                     preexec_fn=raise_nofile)
        self.ca = data / "ca.pem"
        self.ctx = None
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.ca.exists():
                    self.ctx = ssl.create_default_context(cafile=str(self.ca))
                    self.call("GET", "/healthz")
                    break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError("central did not start: " + (work / "central.log").read_text())
        self.token = self.call("POST", "/api/v1/auth/login",
                               {"username": "admin", "password": ADMIN_PASSWORD})["access_token"]

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"content-type": "application/json"}
        if getattr(self, "token", None):
            headers["authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
            raw = r.read()
            return json.loads(raw) if raw else None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


def make_nodes(pg, central: Central, n: int, pub_hex: str) -> list[str]:
    site = central.call("POST", "/api/v1/sites", {"name": f"Fleet {n}"})
    conn = pg.connect(central.dbname)
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO nodes (tenant_id, site_id, kind, name, public_key, key_id, enrolled_at)"
            " SELECT s.tenant_id, s.id, 'edge', 'load-' || g, decode(%s, 'hex'), 'bench', now()"
            " FROM sites s, generate_series(1, %s) g WHERE s.id = %s RETURNING id",
            (pub_hex, n, site["id"]))
        ids = [str(r[0]) for r in cur.fetchall()]
    conn.close()
    return ids


def wait_ready(proc, n: int, timeout: float) -> float:
    deadline = time.time() + timeout
    t0 = time.time()
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("load tool exited")
        m = re.search(r"ready=(\d+) of", line)
        if m and int(m.group(1)) >= n:
            return time.time() - t0
    raise RuntimeError(f"only part of the fleet connected in {timeout}s: {line.strip()}")


def measure(pid: int, seconds: float, pg=None):
    c0, p0, t0 = cpu_seconds(pid), pg_cpu(pg) if pg else 0.0, time.time()
    time.sleep(seconds)
    c1, p1, t1 = cpu_seconds(pid), pg_cpu(pg) if pg else 0.0, time.time()
    return (c1 - c0) / (t1 - t0) * 100, (p1 - p0) / (t1 - t0) * 100, rss_mib(pid)


def bench_uplinks(pg, work: Path, n: int, seconds: float):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    central = Central(pg, work)
    try:
        key = Ed25519PrivateKey.generate()
        keyfile = work / "load.key"
        keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        pub = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw).hex()
        ids = make_nodes(pg, central, n, pub)
        idfile = work / "ids.txt"
        idfile.write_text("\n".join(ids) + "\n")
        load = subprocess.Popen([str(BIN / "canopy-uplink-load"),
                                 f"wss://127.0.0.1:{central.port}/uplink", str(central.ca),
                                 str(keyfile), str(idfile), "1000"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                preexec_fn=raise_nofile)
        try:
            took = wait_ready(load, n, 60 + n / 200)
            time.sleep(12)  # every node has sent a periodic heartbeat since
            cpu, pgcpu, rss = measure(central.proc.pid, seconds, pg)
            online = central.call("GET", "/api/v1/nodes?state=online&limit=1")["total"]
        finally:
            load.send_signal(signal.SIGTERM)
            load.wait(timeout=60)
        return {"connect_s": took, "cpu": cpu, "pg_cpu": pgcpu, "rss": rss, "online": online}
    finally:
        central.stop()


# --- peer: mosquitto with MQTT-over-TLS clients ------------------------------------------

def mqtt_len(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_str(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


async def mqtt_fleet(port: int, cafile: str, n: int, ready: asyncio.Event, stop: asyncio.Event,
                     counter: list):
    ctx = ssl.create_default_context(cafile=cafile)
    sem = asyncio.Semaphore(200)

    async def client(i: int):
        async with sem:
            r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
            cid = f"node-{i}".encode()
            var = mqtt_str(b"MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big")
            body = var + mqtt_str(cid)
            w.write(bytes([0x10]) + mqtt_len(len(body)) + body)
            await w.drain()
            ack = await r.readexactly(4)
            assert ack[0] == 0x20 and ack[3] == 0, ack
        counter[0] += 1
        if counter[0] == n:
            ready.set()
        topic = f"canopy/{i}/heartbeat".encode()
        payload = b"x" * (HEARTBEAT_BYTES - len(topic))
        pkt_body = mqtt_str(topic) + payload
        pkt = bytes([0x30]) + mqtt_len(len(pkt_body)) + pkt_body
        await asyncio.sleep((i % 100) / 10)  # spread over the period, like the uplinks
        while not stop.is_set():
            w.write(pkt)
            await w.drain()
            try:
                await asyncio.wait_for(stop.wait(), 10)
            except asyncio.TimeoutError:
                pass
        w.close()

    await asyncio.gather(*(client(i) for i in range(n)), return_exceptions=True)


def bench_mosquitto(work: Path, n: int, seconds: float, ca_dir: Path):
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text("\n".join([
        "user root",  # keep reading our files (it drops to "mosquitto" by default)
        "per_listener_settings false", "allow_anonymous true", "persistence false",
        "log_dest none", f"listener {port} 127.0.0.1", f"cafile {ca_dir}/ca.pem",
        f"certfile {ca_dir}/srv.pem", f"keyfile {ca_dir}/srv.key", "max_connections -1", ""]))
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=raise_nofile)
    time.sleep(0.5)
    result = {}
    raise_nofile()

    async def run():
        ready, stop, counter = asyncio.Event(), asyncio.Event(), [0]
        task = asyncio.ensure_future(mqtt_fleet(port, str(ca_dir / "ca.pem"), n, ready, stop,
                                                counter))
        t0 = time.time()
        await asyncio.wait_for(ready.wait(), 60 + n / 200)
        result["connect_s"] = time.time() - t0
        await asyncio.sleep(12)
        loop = asyncio.get_running_loop()
        cpu, _, rss = await loop.run_in_executor(None, measure, proc.pid, seconds, None)
        result.update(cpu=cpu, rss=rss)
        stop.set()
        await task

    try:
        asyncio.run(run())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return result


def make_peer_certs(d: Path):
    d.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-subj", "/CN=bench CA", "-days", "2", "-keyout", str(d / "ca.key"),
        "-out", str(d / "ca.pem"))
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=127.0.0.1", "-keyout", str(d / "srv.key"), "-out", str(d / "srv.csr"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", str(d / "srv.csr"), "-CA", str(d / "ca.pem"),
        "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
        "-out", str(d / "srv.pem"))


# --- API read: the site tree of a 1,000-site tenant -------------------------------------

def bench_site_tree(pg, work: Path, seconds: int):
    central = Central(pg, work)
    try:
        # 10 regions x 9 cities x 10 stores + the regions and cities = 1,000 sites
        for r in range(10):
            region = central.call("POST", "/api/v1/sites", {"name": f"Region {r}"})
            for c in range(9):
                city = central.call("POST", "/api/v1/sites",
                                    {"name": f"City {r}.{c}", "parent_id": region["id"]})
                for s in range(10):
                    central.call("POST", "/api/v1/sites",
                                 {"name": f"Store {r}.{c}.{s}", "parent_id": city["id"]})
        tree = central.call("GET", "/api/v1/sites?limit=1000")
        assert tree["total"] == 1000, tree["total"]
        size = len(json.dumps(tree))
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-H",
             f"Authorization: Bearer {central.token}",
             f"{central.url}/api/v1/sites?limit=1000"],
            capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
        p99 = re.search(r"99%\s+([0-9.]+)(us|ms|s)", out)
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        assert not non2xx, out
        # peer: the same SQL function through pgbench, same concurrency
        conn = pg.connect(central.dbname)
        with conn.cursor() as cur:
            cur.execute("SELECT id, tenant_id FROM users WHERE username = 'admin'")
            uid, tid = cur.fetchone()
        conn.close()
        script = work / "tree.sql"
        script.write_text(f"SELECT * FROM api_sites_list('{tid}', '{uid}', NULL, NULL, NULL,"
                          " '{\"limit\": 1000}', NULL, NULL, NULL);\n")
        env = dict(os.environ, PGPASSWORD=pg.password)
        pb = subprocess.run(
            [f"{pg_bindir()}/pgbench", "-n", "-h", pg.host, "-p", str(pg.port), "-U", pg.user,
             "-c", "16", "-j", "2", "-T", str(seconds), "-f", str(script), central.dbname],
            capture_output=True, text=True, env=env, check=True).stdout
        tps = float(re.search(r"tps = ([0-9.]+)", pb).group(1))
        lat = float(re.search(r"latency average = ([0-9.]+) ms", pb).group(1))
        return {"rps": rps, "p99_ms": p99_ms, "bytes": size, "pg_tps": tps, "pg_lat_ms": lat}
    finally:
        central.stop()


def pg_bindir():
    return os.environ.get("CANOPY_PG_BINDIR", "/usr/lib/postgresql/15/bin")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--api-seconds", type=int, default=20)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--central-conf", action="append", default=[],
                    help='extra canopy-central config line, e.g. "loop_batch = 2ms"')
    args = ap.parse_args()
    Central.extra = args.central_conf
    raise_nofile()
    pg = start_cluster()
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-central-"))
    try:
        certs = work / "peer-certs"
        if not args.skip_peer:
            make_peer_certs(certs)
        print(f"uplinks: heartbeat every 10 s, steady state measured over {args.seconds:.0f} s")
        print("| nodes | central CPU (% core) | central RSS (MiB) | PostgreSQL CPU (% core) |"
              " mosquitto CPU (% core) | mosquitto RSS (MiB) | CPU ratio | RSS ratio |")
        print("|---|---|---|---|---|---|---|---|")
        for n in args.nodes:
            d = work / f"up-{n}"
            d.mkdir()
            ours = bench_uplinks(pg, d, n, args.seconds)
            assert ours["online"] == n, f"only {ours['online']} of {n} nodes online"
            if args.skip_peer:
                peer = {"cpu": float("nan"), "rss": float("nan")}
            else:
                peer = bench_mosquitto(d, n, args.seconds, certs)
            print(f"| {n} | {ours['cpu']:.1f} | {ours['rss']:.0f} | {ours['pg_cpu']:.1f} |"
                  f" {peer['cpu']:.1f} | {peer['rss']:.0f} |"
                  f" {ours['cpu'] / peer['cpu'] if peer['cpu'] else float('nan'):.2f} |"
                  f" {ours['rss'] / peer['rss'] if peer['rss'] else float('nan'):.2f} |",
                  flush=True)
            print(f"  (fleet connected in {ours['connect_s']:.1f} s; mosquitto's in"
                  f" {peer.get('connect_s', float('nan')):.1f} s)", flush=True)
        d = work / "api"
        d.mkdir()
        api = bench_site_tree(pg, d, args.api_seconds)
        print(f"\nsite tree of a 1,000-site tenant ({api['bytes']} bytes of JSON), 16 connections:")
        print("| canopy-central req/s | p99 (ms) | pgbench same SQL tps | pgbench mean (ms) | ratio |")
        print("|---|---|---|---|---|")
        print(f"| {api['rps']:.0f} | {api['p99_ms']:.1f} | {api['pg_tps']:.0f} |"
              f" {api['pg_lat_ms']:.1f} | {api['rps'] / api['pg_tps']:.2f} |")
    finally:
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
