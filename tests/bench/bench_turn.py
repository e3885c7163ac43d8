#!/usr/bin/python3
"""bench_turn.py: TURN relaying, canopy-relay beside Debian's coturn (turnserver), same load, same run.

Both servers run privately on 127.0.0.1 (free ports) with the same REST secret
(canopy: turn_secret; coturn: use-auth-secret + static-auth-secret), TLS off, loopback
peers allowed. The load is coturn's own turnutils_uclient in client-to-client mode
(-y: every message goes client -> server -> relayed socket -> relayed socket of the other
client -> server -> client, so the server receives and sends two datagrams per message),
channels, no RTCP allocation (-c), P uclient processes of M clients, N messages each of L bytes, UDP (and
TCP to the server). The servers alternate, each scenario R times.

Measured per run: messages sent and received (uclient's tally; lost must be 0), wall
time of the uclient run, the server's CPU seconds over the run (utime + stime of all its
threads, /proc/<pid>/stat). Reported, median of the runs:
  packets/s   datagrams relayed by the server (2 per message) per second of wall time
  Mbit/s      payload delivered to clients per second of wall time
  pkt/cpu-s   datagrams relayed per CPU second of the server: throughput per core
and the ratio ours / coturn of pkt/cpu-s (target: >= 1). uclient paces itself and is
the bottleneck on a small host, so packets/s show the offered load (the same for both
when nothing is lost) and pkt/cpu-s is the comparison that matters.

Usage: tests/bench/bench_turn.py [--bin-dir build/bin] [--reps 2] [--clients 50]
       [--messages 1000] [--sizes 100 1000] [--tcp] [--procs 2] [-v]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TICK = os.sysconf("SC_CLK_TCK")
SECRET = "bench-secret"
sys.path.insert(0, str(REPO / "tests" / "integration"))

from fixtures.netutil import free_port  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def wait_udp_ready(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """A STUN Binding request answered: the server is up."""
    import socket
    import struct

    req = struct.pack("!HHI", 1, 0, 0x2112A442) + os.urandom(12)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            s.sendto(req, ("127.0.0.1", port))
            try:
                if s.recv(1500)[:2] == b"\x01\x01":
                    return
            except OSError:
                pass
        raise TimeoutError(f"no STUN answer on {port}")
    finally:
        s.close()


class Server:
    def __init__(self, name: str, cmd: list[str] | None, port: int, log: Path,
                 proc: subprocess.Popen | None = None):
        self.name, self.port = name, port
        self.log = open(log, "ab")
        self.proc = proc or subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_udp_ready(port, self.proc)

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def start_canopy(bin_dir: Path, work: Path) -> Server:
    """Its TURN port is the one it picked (port 0), read back from its log."""
    conf = work / "relay.conf"
    log = work / "relay.log"
    http_port = free_port()
    conf.write_text(
        f'node_name = "bench-relay"\ndata_dir = "{work / "relay-data"}"\n'
        f"http_port = {http_port}\nlog_level = \"info\"\n"
        f'turn_listen = "127.0.0.1:0"\nturn_secret = "{SECRET}"\n'
        f'turn_allow_peers = "127.0.0.1/32"\nturn_user_quota = 100000\n')
    proc = subprocess.Popen([str(bin_dir / "canopy-relay"), "--config", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    deadline = time.monotonic() + 10
    while not (m := re.search(r"TURN on 127\.0\.0\.1:(\d+) ", log.read_text(errors="replace"))):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"canopy-relay did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    srv = Server("canopy", None, int(m.group(1)), log, proc)
    srv.http_port = http_port
    return srv


def canopy_counters(srv: Server) -> str:
    """Where canopy-relay itself lost datagrams, if it did (its /metrics)."""
    import urllib.request

    names = ("canopy_turn_send_failures_total", "canopy_turn_dropped_total",
             "canopy_turn_oversize_total", "canopy_turn_malformed_total")
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.http_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return ", ".join(line for line in text.splitlines() if line.startswith(names))


def start_coturn(work: Path) -> Server:
    port = free_port()
    lo = 40000 + port % 20000
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    cmd = [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
           f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={SECRET}",
           "--realm=canopy", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
           "--allowed-peer-ip=127.0.0.1", f"--min-port={lo}", f"--max-port={lo + 2000}",
           f"--db={work / 'turndb'}", f"--pidfile={work / 'turnserver.pid'}",
           "--log-file=stdout", "--simple-log"]
    return Server("coturn", cmd, port, work / "coturn.log")


def uclient(port: int, clients: int, messages: int, size: int, tcp: bool) -> tuple[int, int, int, str]:
    uc = shutil.which("turnutils_uclient") or "/usr/bin/turnutils_uclient"
    cmd = [uc, "-p", str(port), "-W", SECRET, "-u", "bench/load", "-y", "-c",
           "-m", str(clients), "-n", str(messages), "-l", str(size), "-z", "1"]
    if tcp:
        cmd.append("-t")
    cmd.append("127.0.0.1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    tally = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", out, re.M)
    lost = re.search(r"Total lost packets (\d+)", out)
    if not tally or not lost:
        raise RuntimeError(f"uclient gave no tally:\n{out[-2000:]}")
    return int(tally[-1][0]), int(tally[-1][1]), int(lost.group(1)), out


def run_once(srv: Server, args, size: int, tcp: bool) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    c0, t0 = srv.cpu(), time.monotonic()
    with ThreadPoolExecutor(args.procs) as ex:
        outs = list(ex.map(lambda _: uclient(srv.port, args.clients, args.messages, size, tcp),
                           range(args.procs)))
    wall = time.monotonic() - t0
    sent, recv, lost = (sum(o[i] for o in outs) for i in range(3))
    cpu = srv.cpu() - c0
    if args.verbose:
        print(f"    {srv.name}: sent {sent} recv {recv} lost {lost} wall {wall:.2f}s cpu {cpu:.2f}s")
    pkts = 2 * recv
    return {"sent": sent, "recv": recv, "lost": lost, "wall": wall, "cpu": cpu,
            "pps": pkts / wall, "mbps": recv * size * 8 / wall / 1e6,
            "per_cpu": pkts / cpu if cpu > 0 else float("inf")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin-dir", default=str(REPO / "build" / "bin"))
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--tcp", action="store_true", help="also run each size with TCP to the server")
    ap.add_argument("--procs", type=int, default=2, help="uclient processes at once")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-turn-"))
    servers = []
    try:
        servers = [start_canopy(Path(args.bin_dir), work), start_coturn(work)]
        scenarios = [(s, False) for s in args.sizes] + ([(s, True) for s in args.sizes] if args.tcp else [])
        print(f"TURN relaying: {args.procs} x turnutils_uclient -y -c -m {args.clients} "
              f"-n {args.messages} -l SIZE -z 1 [-t], {args.reps} run(s) each, median; "
              f"host CPUs: {os.cpu_count()}")
        print(f"{'scenario':<14} {'server':<7} {'msgs':>7} {'lost':>5} {'packets/s':>10} "
              f"{'Mbit/s':>8} {'cpu s':>6} {'pkt/cpu-s':>10}")
        ratios = []
        for size, tcp in scenarios:
            res = {s.name: [] for s in servers}
            for _ in range(args.reps):
                for srv in servers:
                    res[srv.name].append(run_once(srv, args, size, tcp))
            med = {}
            for name, runs in res.items():
                m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                med[name] = m
                lost = sum(r["lost"] for r in runs)
                print(f"{('tcp' if tcp else 'udp') + f'-{size}B':<14} {name:<7} {int(m['recv']):>7} "
                      f"{lost:>5} {m['pps']:>10.0f} {m['mbps']:>8.1f} {m['cpu']:>6.2f} "
                      f"{m['per_cpu']:>10.0f}")
            ratio = med["canopy"]["per_cpu"] / med["coturn"]["per_cpu"]
            ratios.append(ratio)
            print(f"{'':<14} ratio canopy/coturn per core: {ratio:.2f}")
        print(f"canopy-relay's own losses over the whole run: {canopy_counters(servers[0])}")
        worst = min(ratios)
        print(f"TURN per-core throughput, worst scenario: canopy/coturn = {worst:.2f} "
              f"({'meets' if worst >= 1 else 'MISSES'} the target >= 1)")
        return 0 if worst >= 1 else 1
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
