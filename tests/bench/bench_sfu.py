#!/usr/bin/python3
"""bench_sfu.py: one 2 Mbit/s camera to N WebRTC viewers: canopy-relay's SFU beside Janus's streaming plugin.

canopy: canopy-testcam --file (the bench clip over RTSP) -> canopy-edge (live only) -> one
WHEP upstream -> canopy-relay SFU (sfu_edge_url: plain WHEP to the co-located edge) -> N
viewers at POST /sfu/whep/<camera>. Janus 1.1.2 (tests/bench/janus_peer.py): an "rtp"
mountpoint fed by GStreamer re-packetising the same RTSP stream, the same N viewers. Both in
the same run, one after the other, on the same clip.

Viewers are aiortc 1.4 in several processes doing ICE, DTLS and SRTP, with no
depacketising or decoding: each counts RTP packets and bytes and tracks sequence numbers
(extended, RFC 3550 A.1), so loss = 1 - received / expected over the measuring window.

Per step (N viewers): server CPU (utime+stime of the relay process; of the janus process;
the edge's and the GStreamer feeder's shown apart: each is one stream's cost, the same for
any N), loss (worst viewer and all viewers together), kbit/s of the slowest viewer.
CPU per viewer = (CPU(N) - CPU(0)) / N. Viewers per core = 100 / (CPU per viewer in % of a
core) at the largest step whose total loss stays <= 1%: measured up to that N, extrapolated
beyond it (the load viewers run on the same 2 cores, so the bench cannot saturate a server
core by itself). Target: canopy >= 2x Janus's viewers per core.

Usage: tests/bench/bench_sfu.py [--only canopy|janus] [--viewers 10 50 100] [--seconds 15] [--procs 4] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_whep as bw  # noqa: E402
import janus_peer  # noqa: E402
from fixtures.netutil import free_port  # noqa: E402

TOKEN = "bench-sfu-viewer-token"
# canopy-edge and canopy-relay from build/bin unless CANOPY_BIN_DIR says; the test camera is
# always build/bin/canopy-testcam (the Makefile builds it there).
TESTCAM_DIR = bw.BIN
bw.BIN = Path(os.environ.get("CANOPY_BIN_DIR", str(bw.BIN)))


def clip_camera(work: Path):
    bin_dir, bw.BIN = bw.BIN, TESTCAM_DIR
    try:
        return bw.ClipCamera(work)
    finally:
        bw.BIN = bin_dir


# --- load viewers: count packets and sequence numbers --------------------------------------

def patch_counting() -> None:
    """aiortc's receiver: per packet [packets, bytes, expected] with the extended highest and
    first sequence numbers (the receiver statistics stay, for RTCP receiver reports)."""
    import aioice.ice
    from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [bw.VIEWER_ADDR.get()]
    bw.quiet_libav()

    async def count_rtp(self, packet, arrival_time_ms):
        c = self.__dict__.get("bench_counts")
        if c is None:
            # packets, bytes, expected, first extended seq, highest extended seq
            c = self.bench_counts = [0, 0, 0, packet.sequence_number, packet.sequence_number]
        c[0] += 1
        c[1] += len(packet.payload)
        hi = c[4]
        d = (packet.sequence_number - (hi & 0xFFFF)) & 0xFFFF
        if 0 < d < 0x8000:
            c[4] = hi + d
        c[2] = c[4] - c[3] + 1
        streams = self._RTCRtpReceiver__remote_streams
        st = streams.get(packet.ssrc)
        if st is None:
            st = streams[packet.ssrc] = StreamStatistics(90000)
        st.add(packet)

    RTCRtpReceiver._handle_rtp_packet = count_rtp

    def counts(self):
        for r in self.pc.getReceivers():
            c = r.__dict__.get("bench_counts")
            if c:
                return c[0], c[1], c[2]
        return 0, 0, 0

    bw.LoadViewer.counts = counts


def load_worker(conn, spec: dict) -> None:
    patch_counting()
    asyncio.run(bw._load_worker(conn, spec))


class Pool(bw.LoadPool):
    """bench_whep's pool with our counting worker."""

    def __init__(self, spec: dict, procs: int):
        orig = bw.load_worker
        bw.load_worker = load_worker
        try:
            super().__init__(spec, procs)
        finally:
            bw.load_worker = orig


# --- servers ------------------------------------------------------------------------------

class Relay:
    """canopy-relay with its SFU pulling by plain WHEP from the edge beside it."""

    def __init__(self, work: Path, edge: bw.Edge, max_viewers: int):
        import requests

        self.data = work / "relay"
        self.data.mkdir(parents=True)
        self.port = free_port()
        conf = work / "relay.conf"
        conf.write_text(f'data_dir = "{self.data}"\nhttp_port = {self.port}\nlog_level = warn\n'
                        f'sfu_edge_url = "{edge.base}"\nsfu_edge_token_file = "{edge.data / "admin.token"}"\n'
                        f'sfu_viewer_token = "{TOKEN}"\nsfu_webrtc_addresses = "127.0.0.1"\n'
                        f'sfu_max_viewers = {max_viewers + 8}\nsfu_linger = 10m\n')
        self.log_path = work / "relay.log"
        self.log = open(self.log_path, "wb")
        import subprocess
        self.proc = subprocess.Popen([str(bw.BIN / "canopy-relay"), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"canopy-relay exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("canopy-relay did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def metrics(self) -> dict:
        import requests

        out = {}
        for line in requests.get(self.base + "/metrics", timeout=5).text.splitlines():
            if line.startswith("canopy_sfu_") and " " in line:
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def stop(self):
        import signal
        import subprocess
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


def measure(server_pid: int, spec: dict, steps: list[int], seconds: float, procs: int,
            extra_pids: dict) -> dict:
    results = {}
    pool = Pool(spec, procs)
    try:
        time.sleep(2)
        for n in [0] + steps:
            if n:
                errors = pool.add(n - pool.total)
                if errors:
                    results["error"] = f"at {n} viewers, {len(errors)} failed: {errors[:2]}"
                    break
                time.sleep(4)  # past the set-up and the catch-up burst
            s0, c0, t0 = pool.stats(), bw.cpu_seconds(server_pid), time.monotonic()
            e0 = {k: bw.cpu_seconds(p) for k, p in extra_pids.items()}
            l0 = pool.cpu()
            time.sleep(seconds)
            s1, c1, t1 = pool.stats(), bw.cpu_seconds(server_pid), time.monotonic()
            e1 = {k: bw.cpu_seconds(p) for k, p in extra_pids.items()}
            l1 = pool.cpu()
            dt = t1 - t0
            losses, kbps = [], []
            got = exp = 0
            for a, b in zip(s0, s1):
                dp, de = b[0] - a[0], b[2] - a[2]
                got += dp
                exp += de
                losses.append(max(0.0, 1 - dp / de) if de > 0 else 1.0)
                kbps.append((b[1] - a[1]) * 8 / dt / 1000)
            results[n] = {
                "cpu": (c1 - c0) / dt * 100, "rss": bw.rss_mib(server_pid),
                "loss_max": max(losses) if losses else 0.0,
                "loss": (1 - got / exp) if exp > 0 else 0.0,
                "kbps_min": min(kbps) if kbps else 0.0,
                "load_cpu": (l1 - l0) / dt * 100,
                "extra": {k: (e1[k] - e0[k]) / dt * 100 for k in e0},
            }
            print(f"  {spec['kind']} {n} viewers: server {results[n]['cpu']:.1f}% core, "
                  f"loss {results[n]['loss'] * 100:.2f}% (worst viewer {results[n]['loss_max'] * 100:.2f}%), "
                  f"slowest {results[n]['kbps_min']:.0f} kbit/s, viewers' processes "
                  f"{results[n]['load_cpu']:.0f}% core", flush=True)
    finally:
        pool.stop()
    return results


def run(kind: str, steps: list[int], seconds: float, procs: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    cam = clip_camera(work)
    servers = []
    try:
        if kind == "canopy":
            edge = bw.Edge(work / "edge", cam.url, "off", 16)
            servers.append(edge)
            relay = Relay(work, edge, max(steps))
            servers.append(relay)
            # One viewer comes and goes first: the upstream then lingers (sfu_linger) with
            # no viewer, so CPU(0) includes receiving the stream, as Janus's does.
            from fixtures.whep import WhepClient
            w = WhepClient(name="warm-up")
            try:
                w.connect(relay.base + "/sfu", bw.CAMERA_ID, TOKEN)
                w.wait_frames(1, timeout=20, coded=False)
            finally:
                w.close()
            spec = {"kind": "canopy", "base": relay.base + "/sfu", "token": TOKEN}
            res = measure(relay.pid, spec, steps, seconds, procs, {"edge": edge.pid})
            m = relay.metrics()
            res["relay_metrics"] = {k: v for k, v in m.items() if v}
            cam_json = edge.camera()
            res["edge_sessions"] = len(cam_json.get("viewers", []))
            return res
        janus = janus_peer.Janus(work / "janus", free_port(), {1: {"name": "buffer-kf", "videobufferkf": True}})
        servers.append(janus)
        feeder = janus_peer.Feeder(cam.url, [janus.ports[1]], work / "feeder.log")
        servers.append(feeder)
        time.sleep(3)
        spec = {"kind": "janus", "base": janus.base, "mountpoint": 1, "addr": janus.ice_ip}
        return measure(janus.pid, spec, steps, seconds, procs, {"feeder": feeder.pid})
    finally:
        for s in reversed(servers):
            s.stop()
        cam.stop()


def per_viewer(res: dict, n: int) -> float:
    return (res[n]["cpu"] - res[0]["cpu"]) / n if n and n in res and 0 in res else float("nan")


def capacity(res: dict, steps: list[int]) -> tuple[float, int | None]:
    """Viewers per core from the largest step with total loss <= 1%, and that step."""
    ok = [n for n in steps if n in res and res[n]["loss"] <= 0.01]
    if not ok:
        return float("nan"), None
    n = max(ok)
    pv = per_viewer(res, n)
    return (100 / pv if pv > 0 else float("inf")), n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["canopy", "janus"])
    ap.add_argument("--viewers", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    steps = sorted(set(args.viewers))
    kinds = [k for k in ("canopy", "janus") if args.only in (None, k)]
    bw.make_clip()
    src = bw.clip_kbps()
    (REPO / "build" / "bench").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-sfu-", dir=REPO / "build" / "bench"))
    started = time.monotonic()
    failed = False
    res = {}
    try:
        print(f"SFU: one 1280x720 25 fps {src:.0f} kbit/s H.264 camera to N viewers: canopy-relay SFU "
              f"(upstream from canopy-edge) beside Janus 1.1.2 streaming plugin (rtp mountpoint fed by "
              f"GStreamer); viewers aiortc 1.4 without decoding, {args.procs} processes; "
              f"{args.seconds:.0f} s per step", flush=True)
        for k in kinds:
            try:
                res[k] = run(k, steps, args.seconds, args.procs, work / k)
            except RuntimeError as e:
                failed = True
                print(f"{k}: {str(e)[-800:]}", flush=True)
        nan = {"cpu": float("nan"), "loss": float("nan"), "loss_max": float("nan"), "kbps_min": float("nan"),
               "rss": float("nan")}
        print("\n| viewers | canopy relay CPU % | per viewer | loss % (worst) | Janus CPU % | per viewer "
              "| loss % (worst) | Janus / canopy per viewer | slowest kbit/s canopy / Janus |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in [0] + steps:
            c = res.get("canopy", {}).get(n, nan)
            j = res.get("janus", {}).get(n, nan)
            cp, jp = per_viewer(res.get("canopy", {}), n), per_viewer(res.get("janus", {}), n)
            print(f"| {n} | {bw.fmt(c['cpu'])} | {bw.fmt(cp, '.3f') if n else '-'} | "
                  f"{bw.fmt(c['loss'] * 100, '.2f')} ({bw.fmt(c['loss_max'] * 100, '.2f')}) | "
                  f"{bw.fmt(j['cpu'])} | {bw.fmt(jp, '.3f') if n else '-'} | "
                  f"{bw.fmt(j['loss'] * 100, '.2f')} ({bw.fmt(j['loss_max'] * 100, '.2f')}) | "
                  f"{bw.ratio(jp, cp) if n else '-'} | "
                  f"{'-' if not n else bw.fmt(c['kbps_min'], '.0f') + ' / ' + bw.fmt(j['kbps_min'], '.0f')} |")
        cc, cn = capacity(res.get("canopy", {}), steps)
        jc, jn = capacity(res.get("janus", {}), steps)
        print(f"\nviewers per core (100 / CPU per viewer at the largest step with loss <= 1%): "
              f"canopy {bw.fmt(cc, '.0f')} (at {cn}), Janus {bw.fmt(jc, '.0f')} (at {jn}), "
              f"ratio {bw.ratio(cc, jc)}; target >= 2: "
              f"{'met' if cc == cc and jc == jc and cc >= 2 * jc else 'NOT met'}")
        if "canopy" in res:
            r = res["canopy"]
            print(f"  canopy: the edge served {r.get('edge_sessions')} WHEP session(s) at the end "
                  f"(one upstream); edge CPU (% core, not in the relay's figures) at "
                  f"{', '.join(str(n) for n in [0] + steps if n in r)}: "
                  + ", ".join(f"{r[n]['extra']['edge']:.1f}" for n in [0] + steps if n in r))
            print("  relay counters: " + json.dumps(r.get("relay_metrics", {}))[:900])
        if "janus" in res:
            r = res["janus"]
            print("  Janus: GStreamer feeder (% core, not in Janus's figures): "
                  + ", ".join(f"{r[n]['extra']['feeder']:.1f}" for n in [0] + steps if n in r))
        for k in res:
            if "error" in res[k]:
                failed = True
                print(f"  {k}: STOPPED {res[k]['error'][:600]}")
        print(f"\n(total {time.monotonic() - started:.0f} s)")
    finally:
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
