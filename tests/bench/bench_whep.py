#!/usr/bin/python3
"""bench_whep.py: WebRTC live view of one camera, canopy-edge (WHEP) beside Janus's streaming plugin.

Both serve the same canopy-testcam RTSP stream to aiortc viewers on this host, in the same run:
the edge pulls the camera itself and answers WHEP (POST /whep/<camera>?stream=main; ICE on
127.0.0.1, webrtc_addresses); Janus 1.x (tests/bench/janus_peer.py: private config, streaming
plugin and HTTP transport only; ICE on the host's first non-loopback IPv4 address, as Janus
never uses loopback) relays an "rtp" mountpoint fed by GStreamer re-packetising the same RTSP
stream, no transcoding. The edge's camera records nothing unless --edge-recording continuous.

1. Time to first decoded frame: from the viewer's request (the WHEP POST; Janus's "watch")
   to the first frame aiortc decodes, camera GOP 4 s (1280x720 15 fps, 60 frames, 2 Mbit/s,
   live x264), N trials each after one warm-up, each trial after a random 0..GOP pause.
   Janus with its keyframe buffering (videobufferkf = true: the fair comparison) and
   without it. p50 and p95 (numpy's linear interpolation). Target: canopy p95 < 500 ms.
   The targets' trials run side by side (two lanes each, four for Janus without buffering)
   to fit the run in a few minutes; a trial's viewer is closed at its first frame.
2. Server CPU and RSS per viewer: a 1280x720 25 fps 2 Mbit/s clip (GOP 2 s) served by
   canopy-testcam --file, 0, 1, 10, 50 concurrent viewers (aiortc without depacketising or
   decoding, spread over several processes); CPU (utime+stime from /proc) over a window
   after the viewers receive; per viewer = (cpu(N) - cpu(0)) / N. Every viewer's received
   rate is reported so a starved viewer shows.

Usage: tests/bench/bench_whep.py [--only canopy|janus] [--trials 20] [--viewers 1 10 50] [--seconds 20]
       [--procs 4] [--edge-recording off|continuous] [--skip-ttff] [--skip-cpu] [-v] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import logging
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / "build" / "bin"
CLIP = REPO / "build" / "bench" / "clip-720p25-2m.mp4"
CLIP_SECONDS = 300
TICK = os.sysconf("SC_CLK_TCK")
CAMERA_ID = "cam1"
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures.camera import start_camera  # noqa: E402
from fixtures.netutil import free_port  # noqa: E402

import janus_peer  # noqa: E402

# TTFF camera: live encoding so any point of the GOP is "now"; GOP 60 at 15 fps = 4 s.
TTFF_CAM = dict(width=1280, height=720, fps=15, gop=60, bitrate=2000)
GOP_S = TTFF_CAM["gop"] / TTFF_CAM["fps"]


# --- measurements from /proc ---------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_clip() -> None:
    if CLIP.exists():
        return
    CLIP.parent.mkdir(parents=True, exist_ok=True)
    tmp = CLIP.with_suffix(".tmp.mp4")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                    "-t", str(CLIP_SECONDS), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                    "-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M", "-g", "50", "-pix_fmt", "yuv420p",
                    str(tmp)], check=True)
    tmp.replace(CLIP)


def clip_kbps() -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "format=duration,size", "-of", "json", str(CLIP)],
                         capture_output=True, text=True, check=True).stdout
    f = json.loads(out)["format"]
    return int(f["size"]) * 8 / float(f["duration"]) / 1000


class ClipCamera:
    """canopy-testcam --file: the pre-encoded clip over RTSP, almost free for the camera side."""

    def __init__(self, work: Path):
        self.log = open(work / "testcam-clip.log", "wb")
        self.proc = subprocess.Popen([str(BIN / "canopy-testcam"), "--port", "0", "--file", str(CLIP)],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError("testcam --file did not start")
        self.url = line[1]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.log.close()


# --- canopy-edge -----------------------------------------------------------------------------

class Edge:
    """canopy-edge with one camera (as bench_recording.py starts it) and WebRTC on 127.0.0.1."""

    def __init__(self, work: Path, cam_url: str, recording: str, max_viewers: int = 16):
        import requests

        self.data = work / "edge"
        self.data.mkdir(parents=True)
        (self.data / "cameras.json").write_text(json.dumps({"version": 1, "cameras": [
            {"id": CAMERA_ID, "name": "Bench", "main_url": cam_url, "recording": recording}]}))
        self.port = free_port()
        conf = work / "edge.conf"
        conf.write_text(f'data_dir = "{self.data}"\nhttp_port = {self.port}\nsegment_duration = 60s\n'
                        f'log_level = warn\nwebrtc_addresses = "127.0.0.1"\n'
                        f'whep_max_viewers = {max(16, max_viewers)}\n')
        self.log_path = work / "edge.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([str(BIN / "canopy-edge"), "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=self.log)
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"canopy-edge exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                self.token = (self.data / "admin.token").read_text().strip()
                cam = self.camera()
                if cam and cam["status"]["state"] == "online" and cam["status"]["counters"]["packets"] > 0:
                    return
            except (OSError, ValueError, requests.RequestException):
                pass
            time.sleep(0.2)
        raise RuntimeError("canopy-edge: camera not online in 30 s: " + self.log_tail())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def camera(self):
        r = self.http.get(self.base + "/api/v1/cameras", headers={"Authorization": f"Bearer {self.token}"},
                          timeout=5)
        r.raise_for_status()
        return next((c for c in r.json()["cameras"] if c["id"] == CAMERA_ID), None)

    def stop(self):
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


# --- aiortc viewers --------------------------------------------------------------------------

# The viewer's one host candidate: the address its server's candidates are on (127.0.0.1
# for the edge; Janus cannot use loopback, see janus_peer.host_ipv4). Per asyncio task.
VIEWER_ADDR = contextvars.ContextVar("viewer_addr", default="127.0.0.1")


def patch_aiortc(load: bool) -> None:
    """One host candidate per viewer, VIEWER_ADDR (aioice would offer every address but
    loopback, and mixed loopback/non-loopback pairs cannot work). TTFF viewers: a frame is
    complete at its RTP marker bit, as in browsers (aiortc 1.4 waits for the next frame's
    first packet, up to one frame interval later). Load viewers: count each RTP packet and
    keep the receiver statistics (for RTCP receiver reports); no depacketising, jitter
    buffer or decoding."""
    import aioice.ice
    from aiortc.jitterbuffer import JitterBuffer, JitterFrame
    from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [VIEWER_ADDR.get()]
    logging.getLogger("aiortc").setLevel(logging.ERROR)  # undecodable frames before a keyframe
    logging.getLogger("libav").setLevel(logging.CRITICAL)
    quiet_libav()

    if load:
        async def count_rtp(self, packet, arrival_time_ms):
            c = self.__dict__.get("bench_counts")
            if c is None:
                c = self.bench_counts = [0, 0]
            c[0] += 1
            c[1] += len(packet.payload)
            streams = self._RTCRtpReceiver__remote_streams
            st = streams.get(packet.ssrc)
            if st is None:
                st = streams[packet.ssrc] = StreamStatistics(90000)
            st.add(packet)

        RTCRtpReceiver._handle_rtp_packet = count_rtp
        return

    def remove_frame(self, sequence_number):
        packets = []
        timestamp = None
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self._capacity]
            if packet is None:
                return None
            if timestamp is None:
                timestamp = packet.timestamp
            elif packet.timestamp != timestamp:  # a frame whose marker packet was lost
                self.remove(count)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
            packets.append(packet)
            if packet.marker:
                self.remove(count + 1)
                return JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
        return None

    JitterBuffer._remove_frame = remove_frame


def quiet_libav() -> None:
    """aiortc puts back libav's own log callback, which prints every undecodable frame
    before the first keyframe: set libav's level to quiet where it lives."""
    import ctypes

    import aiortc  # noqa: F401 - loads libavutil

    for line in Path("/proc/self/maps").read_text().splitlines():
        if "libavutil.so" in line:
            ctypes.CDLL(line.split()[-1]).av_log_set_level(-8)  # AV_LOG_QUIET
            return


def new_pc():
    from aiortc import RTCConfiguration, RTCPeerConnection

    return RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no STUN


async def in_thread(fn, *args, **kw):
    return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kw))


class WhepTarget:
    """canopy-edge: the viewer offers (recvonly video, all candidates gathered), the edge
    answers 201 with a Location to DELETE at the end."""

    def __init__(self, base: str, token: str):
        self.url = f"{base}/whep/{CAMERA_ID}?stream=main"
        self.token = token
        self.addr = "127.0.0.1"

    async def connect(self, pc):
        import requests
        from aiortc import RTCSessionDescription

        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers every candidate here
        t0 = time.monotonic()
        r = await in_thread(requests.post, self.url, data=pc.localDescription.sdp, timeout=10,
                            headers={"Content-Type": "application/sdp",
                                     "Authorization": f"Bearer {self.token}"})
        if r.status_code != 201:
            raise RuntimeError(f"WHEP POST: {r.status_code} {r.text[:200]}")
        location = urllib.parse.urljoin(self.url, r.headers["Location"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=r.text, type="answer"))

        def close():  # a new connection: the edge may have closed the POST's idle one
            r = requests.delete(location, headers={"Authorization": f"Bearer {self.token}"}, timeout=5)
            if r.status_code not in (200, 204):
                raise RuntimeError(f"WHEP DELETE: {r.status_code} {r.text[:200]}")
        return t0, close


class JanusTarget:
    """Janus: session and handle first (the app is open), then "watch" (Janus offers), the
    viewer answers with "start"."""

    def __init__(self, base: str, mountpoint: int, addr: str):
        self.base = base
        self.mountpoint = mountpoint
        self.addr = addr

    async def connect(self, pc):
        from aiortc import RTCSessionDescription

        client = await in_thread(janus_peer.JanusClient, self.base)
        try:
            t0 = time.monotonic()
            offer = await in_thread(client.watch, self.mountpoint)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
            await in_thread(client.start, pc.localDescription.sdp)
        except BaseException:
            await in_thread(client.close)
            raise
        return t0, client.close


CLOSE_ERRORS: list[str] = []  # viewers the server failed to end (WHEP DELETE, Janus destroy)


async def ttff_trial(target) -> float:
    pc = new_pc()
    loop = asyncio.get_running_loop()
    first = loop.create_future()
    tasks = []

    @pc.on("track")
    def on_track(track):
        async def wait_frame():
            try:
                await track.recv()
                if not first.done():
                    first.set_result(time.monotonic())
            except Exception as e:  # track ended before a frame
                if not first.done():
                    first.set_exception(e)
        tasks.append(asyncio.ensure_future(wait_frame()))

    close = None
    try:
        t0, close = await target.connect(pc)
        t1 = await asyncio.wait_for(first, 20)
        return t1 - t0
    finally:
        for t in tasks:
            t.cancel()
        if close:
            try:
                await in_thread(close)
            except Exception as e:  # noqa: BLE001 - the measurement stands; reported
                CLOSE_ERRORS.append(repr(e))
        await pc.close()


async def ttff_lanes(targets: dict, trials: int, lanes: dict) -> dict:
    """Each target's trials run in `lanes[name]` sequential lanes; every trial starts after
    a random pause of 0..GOP so it lands at a random point of the GOP. Lanes of all targets
    run at the same time (the viewers are idle apart from their own trial)."""
    out = {name: [] for name in targets}
    errors = {name: [] for name in targets}

    async def lane(name, target, n, warmup):
        VIEWER_ADDR.set(target.addr)  # this task's context only
        for i in range(n + warmup):
            await asyncio.sleep(random.uniform(0, GOP_S))
            try:
                dt = await ttff_trial(target)
            except Exception as e:  # noqa: BLE001 - reported, the other lanes go on
                errors[name].append(repr(e))
                if len(errors[name]) >= 3:
                    return
                continue
            if i >= warmup:
                out[name].append(dt)

    jobs = []
    for name, target in targets.items():
        k = lanes.get(name, 1)
        per = [trials // k + (1 if j < trials % k else 0) for j in range(k)]
        jobs += [lane(name, target, per[j], 1 if j == 0 else 0) for j in range(k)]
    await asyncio.gather(*jobs)
    return {"times": out, "errors": errors}


# --- load viewers (separate processes) -------------------------------------------------------

class LoadViewer:
    def __init__(self, target):
        self.target = target
        self.pc = new_pc()
        self.close_fn = None

    def counts(self) -> tuple[int, int]:
        for r in self.pc.getReceivers():
            c = r.__dict__.get("bench_counts")
            if c:
                return c[0], c[1]
        return 0, 0

    async def start(self, sem: asyncio.Semaphore):
        async with sem:
            try:
                _, self.close_fn = await self.target.connect(self.pc)
            except BaseException:
                await self.pc.close()
                raise
        deadline = time.monotonic() + 20
        while self.counts()[0] == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("no RTP packet in 20 s")
            await asyncio.sleep(0.05)

    async def close(self):
        if self.close_fn:
            await in_thread(self.close_fn)
        await self.pc.close()


def make_target(spec: dict):
    if spec["kind"] == "canopy":
        return WhepTarget(spec["base"], spec["token"])
    return JanusTarget(spec["base"], spec["mountpoint"], spec["addr"])


def load_worker(conn, spec: dict) -> None:
    patch_aiortc(load=True)
    asyncio.run(_load_worker(conn, spec))


async def _load_worker(conn, spec: dict) -> None:
    loop = asyncio.get_running_loop()
    target = make_target(spec)
    VIEWER_ADDR.set(target.addr)
    viewers: list[LoadViewer] = []
    conn.send(("ready",))
    while True:
        cmd = await loop.run_in_executor(None, conn.recv)
        if cmd[0] == "add":
            new = [LoadViewer(target) for _ in range(cmd[1])]
            sem = asyncio.Semaphore(4)
            res = await asyncio.gather(*(v.start(sem) for v in new), return_exceptions=True)
            viewers += new
            conn.send(("added", [repr(r) for r in res if isinstance(r, BaseException)]))
        elif cmd[0] == "stats":
            conn.send(("stats", [v.counts() for v in viewers]))
        elif cmd[0] == "stop":
            await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
            conn.send(("stopped",))
            return


class LoadPool:
    """procs worker processes, viewers added round-robin."""

    def __init__(self, spec: dict, procs: int):
        ctx = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for _ in range(procs):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=load_worker, args=(child, spec), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)
        for c in self.conns:
            if not c.poll(60) or c.recv()[0] != "ready":
                raise RuntimeError("load worker did not start")
        self.total = 0

    def add(self, n: int) -> list[str]:
        share = [0] * len(self.conns)
        for i in range(n):
            share[(self.total + i) % len(share)] += 1
        self.total += n
        for c, k in zip(self.conns, share):
            c.send(("add", k))
        errors = []
        for c in self.conns:
            if not c.poll(120):
                raise RuntimeError("load worker did not answer")
            errors += c.recv()[1]
        return errors

    def stats(self) -> list[tuple[int, int]]:
        for c in self.conns:
            c.send(("stats",))
        out = []
        for c in self.conns:
            out += c.recv()[1]
        return out

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self):
        for c in self.conns:
            try:
                c.send(("stop",))
            except OSError:
                pass
        for c in self.conns:
            try:
                c.poll(30) and c.recv()
            except (OSError, EOFError):
                pass
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def measure_load(server_pid: int, spec: dict, steps: list[int], seconds: float, procs: int,
                 extra_pids: dict | None = None) -> dict:
    """Server CPU (% of one core) and RSS with 0 viewers, then the viewer count raised to each
    of steps; per step also every viewer's received rate and the load processes' CPU."""
    results = {}
    pool = LoadPool(spec, procs)
    try:
        time.sleep(2)
        for n in [0] + steps:
            if n:
                errors = pool.add(n - pool.total)
                if errors:  # keep the steps measured so far
                    results["error"] = f"at {n} viewers, {len(errors)} failed: {errors[:2]}"
                    break
                time.sleep(3)  # past the connection set-up
            s0, c0, l0, t0 = pool.stats(), cpu_seconds(server_pid), pool.cpu(), time.monotonic()
            e0 = {k: cpu_seconds(p) for k, p in (extra_pids or {}).items()}
            time.sleep(seconds)
            s1, c1, l1, t1 = pool.stats(), cpu_seconds(server_pid), pool.cpu(), time.monotonic()
            e1 = {k: cpu_seconds(p) for k, p in (extra_pids or {}).items()}
            dt = t1 - t0
            kbps = sorted((b1 - b0) * 8 / dt / 1000 for (_, b0), (_, b1) in zip(s0, s1))
            results[n] = {
                "cpu": (c1 - c0) / dt * 100, "rss": rss_mib(server_pid), "load_cpu": (l1 - l0) / dt * 100,
                "kbps_min": kbps[0] if kbps else 0, "kbps_med": kbps[len(kbps) // 2] if kbps else 0,
                "extra": {k: (e1[k] - e0[k]) / dt * 100 for k in e0},
            }
    finally:
        pool.stop()
    return results


# --- phases ----------------------------------------------------------------------------------

def run_ttff(only: str | None, trials: int, recording: str, work: Path) -> dict:
    cam = start_camera(**TTFF_CAM, log_dir=str(work))
    edge = janus = feeder = None
    res = {}
    try:
        targets, lanes = {}, {}
        if only in (None, "janus"):
            janus = janus_peer.Janus(work / "janus-ttff", free_port(), {
                1: {"name": "buffer-kf", "videobufferkf": True},
                2: {"name": "no-buffer-kf", "videobufferkf": False}})
            feeder = janus_peer.Feeder(cam.url, [janus.ports[1], janus.ports[2]], work / "feeder-ttff.log")
            targets["janus"] = JanusTarget(janus.base, 1, janus.ice_ip)
            targets["janus_nokf"] = JanusTarget(janus.base, 2, janus.ice_ip)
            lanes.update(janus=2, janus_nokf=4)  # without buffering a trial waits ~GOP/2: more lanes
        if only in (None, "canopy"):
            try:
                edge = Edge(work / "edge-ttff", cam.url, recording, 32)
                targets["canopy"] = WhepTarget(edge.base, edge.token)
                lanes["canopy"] = 2
            except RuntimeError as e:
                res["canopy_error"] = str(e)
        time.sleep(GOP_S + 1)  # both servers have had a keyframe
        patch_aiortc(load=False)
        out = asyncio.run(ttff_lanes(targets, trials, lanes))
        res.update(out)
    finally:
        for x in (feeder, janus, edge):
            if x:
                x.stop()
        cam.stop()
    return res


def run_cpu(kind: str, steps: list[int], seconds: float, procs: int, recording: str, work: Path) -> dict:
    cam = ClipCamera(work)
    server = feeder = None
    try:
        if kind == "canopy":
            server = Edge(work / "edge-cpu", cam.url, recording, max(steps) + 8)
            spec = {"kind": "canopy", "base": server.base, "token": server.token}
            extra = {}
        else:
            server = janus_peer.Janus(work / "janus-cpu", free_port(), {1: {"name": "buffer-kf",
                                                                          "videobufferkf": True}})
            feeder = janus_peer.Feeder(cam.url, [server.ports[1]], work / "feeder-cpu.log")
            time.sleep(3)  # first keyframe in (GOP 2 s)
            spec = {"kind": "janus", "base": server.base, "mountpoint": 1, "addr": server.ice_ip}
            extra = {"feeder": feeder.pid}
        return measure_load(server.pid, spec, steps, seconds, procs, extra)
    finally:
        for x in (feeder, server):
            if x:
                x.stop()
        cam.stop()


# --- report ----------------------------------------------------------------------------------

def pct(xs: list[float], q: float) -> float:
    import numpy

    return float(numpy.percentile(xs, q)) * 1000 if xs else float("nan")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and a == a and b == b else "n/a"


def fmt(x, spec=".1f") -> str:
    return "n/a" if x is None or x != x else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", choices=["canopy", "janus"])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--viewers", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--procs", type=int, default=4, help="processes for the load viewers")
    ap.add_argument("--edge-recording", default="off", choices=["off", "continuous"],
                    help="the camera's recording mode on the edge (default off: live view only, like Janus)")
    ap.add_argument("--skip-ttff", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every trial's time")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) under build/bench")
    args = ap.parse_args()
    steps = sorted(set(args.viewers))
    kinds = [k for k in ("canopy", "janus") if args.only in (None, k)]
    started = time.monotonic()
    make_clip()
    work = Path(tempfile.mkdtemp(prefix="canopy-bench-whep-", dir=REPO / "build" / "bench"))
    failed = False
    try:
        print(f"WebRTC live view of one camera: canopy-edge WHEP beside Janus 1.1.2 streaming plugin "
              f"(rtp mountpoint fed by GStreamer from the same RTSP stream); viewers: aiortc 1.4 on this host; "
              f"{os.cpu_count()} cores; edge recording mode: {args.edge_recording}", flush=True)
        if not args.skip_ttff:
            t = run_ttff(args.only, args.trials, args.edge_recording, work)
            times, errors = t.get("times", {}), t.get("errors", {})
            print(f"\ntime to first decoded frame (ms), {TTFF_CAM['width']}x{TTFF_CAM['height']} "
                  f"{TTFF_CAM['fps']} fps, GOP {TTFF_CAM['gop']} ({GOP_S:.0f} s), "
                  f"{args.trials} trials each at random points of the GOP:")
            print("| | canopy-edge | Janus, videobufferkf | ratio | Janus, no keyframe buffer |")
            print("|---|---|---|---|---|")
            for q in (50, 95):
                c, j, n = (pct(times.get(k, []), q) for k in ("canopy", "janus", "janus_nokf"))
                print(f"| p{q} | {fmt(c, '.0f')} | {fmt(j, '.0f')} | {ratio(c, j)} | {fmt(n, '.0f')} |")
            for k in times:
                if args.verbose:
                    print(f"  {k}: " + " ".join(f"{x * 1000:.0f}" for x in sorted(times[k])))
                if len(times[k]) < args.trials:
                    failed = True
                    print(f"  {k}: {len(times[k])} of {args.trials} trials; errors: {errors[k][:3]}")
            if CLOSE_ERRORS:
                failed = True
                print(f"  {len(CLOSE_ERRORS)} viewers not ended cleanly: {CLOSE_ERRORS[:2]}")
            if "canopy_error" in t:
                failed = True
                print(f"  canopy-edge: {t['canopy_error'][-600:]}")
            if "canopy" in times and times["canopy"]:
                p95 = pct(times["canopy"], 95)
                print(f"  target canopy p95 < 500 ms: {'met' if p95 < 500 else 'NOT met'} ({p95:.0f} ms)",
                      flush=True)
        if not args.skip_cpu:
            res = {}
            for k in kinds:
                try:
                    res[k] = run_cpu(k, steps, args.seconds, args.procs, args.edge_recording, work)
                except RuntimeError as e:
                    failed = True
                    print(f"\n{k}: {str(e)[-600:]}", flush=True)
            src = clip_kbps()
            print(f"\nserver CPU (% of one core) and RSS, one 1280x720 25 fps {src:.0f} kbit/s H.264 camera "
                  f"(GOP 2 s), {args.seconds:.0f} s per step; per viewer = (CPU(N) - CPU(0)) / N:")
            print("| viewers | canopy CPU | canopy per viewer | Janus CPU | Janus per viewer | per-viewer ratio "
                  "| canopy RSS MiB | Janus RSS MiB | RSS ratio | viewer kbit/s min/median canopy | Janus |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            nan = {"cpu": float("nan"), "rss": float("nan"), "kbps_min": float("nan"),
                   "kbps_med": float("nan")}
            for n in [0] + steps:
                c = res.get("canopy", {}).get(n, nan)
                j = res.get("janus", {}).get(n, nan)
                cb, jb = res.get("canopy", {}).get(0, nan)["cpu"], res.get("janus", {}).get(0, nan)["cpu"]
                cp = (c["cpu"] - cb) / n if n else float("nan")
                jp = (j["cpu"] - jb) / n if n else float("nan")
                rate = (lambda r: "-" if not n else "n/a" if r["kbps_min"] != r["kbps_min"] else
                        f"{r['kbps_min']:.0f}/{r['kbps_med']:.0f}")
                print(f"| {n} | {fmt(c['cpu'])} | {fmt(cp, '.2f')} | {fmt(j['cpu'])} | {fmt(jp, '.2f')} | "
                      f"{ratio(cp, jp) if n else '-'} | {fmt(c['rss'])} | {fmt(j['rss'])} | "
                      f"{ratio(c['rss'], j['rss'])} | {rate(c)} | {rate(j)} |", flush=True)
            for k in res:
                done = [n for n in steps if n in res[k]]
                notes = [f"load viewers' CPU (% core) at {', '.join(map(str, done))}: " + ", ".join(
                    f"{res[k][n]['load_cpu']:.0f}" for n in done)]
                if k == "janus":
                    notes.append("GStreamer feeder, not in Janus's figures (% core): " + ", ".join(
                        f"{res[k][n]['extra']['feeder']:.1f}" for n in [0] + done))
                notes.append(f"RSS growth per viewer (MiB) at {', '.join(map(str, done))}: " + ", ".join(
                    f"{(res[k][n]['rss'] - res[k][0]['rss']) / n:.2f}" for n in done))
                starved = [n for n in done if res[k][n]["kbps_min"] < 0.9 * src]
                notes.append("every viewer kept up (>= 90% of the source rate)" if not starved else
                             f"STARVED viewers (< 90% of the source rate) at {starved}")
                if starved or "error" in res[k]:
                    failed = True
                if "error" in res[k]:
                    notes.append("STOPPED " + res[k]["error"][:600])
                print(f"  {k}: " + "; ".join(notes))
        print(f"\n(total {time.monotonic() - started:.0f} s)")
    finally:
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
