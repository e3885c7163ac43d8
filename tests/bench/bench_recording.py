#!/usr/bin/python3
"""bench_recording.py: CPU and memory per recorded camera, canopy-edge beside ffmpeg -c copy -f segment.

Both record the same RTSP stream (a pre-encoded 1280x720 25 fps ~4 Mbit/s H.264 clip served by
canopy-testcam --file, so the camera side costs almost nothing) for the same time, one after the
other, N cameras at a time. Prints one table row per N with our figure, ffmpeg's and the ratio.
Usage: tests/bench/bench_recording.py [--cameras 10 50 100] [--seconds 60] [--no-ffmpeg] [--edge-option "k = v"]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Our binaries from build/bin unless CANOPY_BIN_DIR says; the test camera is always build/bin's.
BIN = Path(os.environ.get("CANOPY_BIN_DIR", REPO / "build" / "bin"))
TESTCAM = REPO / "build" / "bin" / "canopy-testcam"
CLIP = REPO / "build" / "bench" / "clip.mp4"
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def make_clip() -> None:
    if CLIP.exists():
        return
    CLIP.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                    "-t", "600", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                    "-b:v", "4M", "-maxrate", "4M", "-bufsize", "4M", "-g", "50", "-pix_fmt", "yuv420p",
                    str(CLIP)], check=True)


def start_camera() -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([str(TESTCAM), "--port", "0", "--file", str(CLIP)],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "READY", "testcam did not start"
    return p, line[1]


def api(port: int, token: str, path: str):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def bench_canopy(n: int, url: str, seconds: int, work: Path, extra: list[str]) -> dict:
    data = work / "edge"
    data.mkdir()
    (data / "cameras.json").write_text(json.dumps({"cameras": [
        {"id": f"c{i}", "main_url": url} for i in range(n)]}))
    port = free_port()
    conf = work / "edge.conf"
    conf.write_text(f'data_dir = "{data}"\nhttp_port = {port}\nsegment_duration = 60s\nlog_level = warn\n'
                    + "".join(line + "\n" for line in extra))
    p = subprocess.Popen([str(BIN / "canopy-edge"), "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        token = (data / "admin.token").read_text().strip()
        deadline = time.time() + 120
        while time.time() < deadline:
            cams = api(port, token, "/api/v1/cameras")["cameras"]
            if len(cams) == n and all(c["status"]["recording"] for c in cams):
                break
            time.sleep(1)
        else:
            raise RuntimeError("cameras did not all start recording")
        time.sleep(3)  # past connection set-up
        before = {c["id"]: c["status"]["counters"] for c in api(port, token, "/api/v1/cameras")["cameras"]}
        c0 = cpu_seconds(p.pid)
        time.sleep(seconds)
        c1 = cpu_seconds(p.pid)
        rss = peak_rss_kib(p.pid)
        after = {c["id"]: c["status"]["counters"] for c in api(port, token, "/api/v1/cameras")["cameras"]}
        fps = min((after[k]["packets"] - before[k]["packets"]) / seconds for k in after)
        # RTP packets lost and frames dropped whole during the window: a read batch longer
        # than the socket buffer holds would show here
        lost = sum(after[k][f] - before[k][f] for k in after for f in ("packets_lost", "corrupt_packets"))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
    return {"cpu": c1 - c0, "rss_kib": rss, "min_fps": fps, "lost": lost}


def bench_ffmpeg(n: int, url: str, seconds: int, work: Path) -> dict:
    out = work / "ffmpeg"
    out.mkdir()
    procs = [subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", url,
                               "-c", "copy", "-f", "segment", "-segment_time", "60", "-reset_timestamps", "1",
                               str(out / f"c{i}_%03d.mp4")], stderr=subprocess.DEVNULL)
             for i in range(n)]
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(out.glob("*.mp4"))) < n:
            time.sleep(1)
        time.sleep(3)
        c0 = sum(cpu_seconds(p.pid) for p in procs)
        time.sleep(seconds)
        c1 = sum(cpu_seconds(p.pid) for p in procs)
        rss = sum(peak_rss_kib(p.pid) for p in procs)
        alive = sum(p.poll() is None for p in procs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    return {"cpu": c1 - c0, "rss_kib": rss, "alive": alive}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cameras", type=int, nargs="+", default=[10, 50, 100])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--edge-option", action="append", default=[], metavar="'KEY = VALUE'",
                    help="an extra line for canopy-edge's config (repeatable)")
    ap.add_argument("--no-ffmpeg", action="store_true", help="measure canopy-edge only (for A/B runs)")
    args = ap.parse_args()
    make_clip()
    print(f"recording a 1280x720 25 fps ~4 Mbit/s H.264 stream for {args.seconds} s per run; "
          f"{os.cpu_count()} cores")
    print("| cameras | canopy CPU s/camera/min | ffmpeg CPU s/camera/min | CPU ratio | canopy peak RSS MiB/camera "
          "| ffmpeg peak RSS MiB/camera | RSS ratio | canopy cores used | min fps per camera |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.cameras:
        cam, url = start_camera()
        work = Path(tempfile.mkdtemp(prefix=f"canopy-bench-{n}-", dir=REPO / "build" / "bench"))
        try:
            ours = bench_canopy(n, url, args.seconds, work, args.edge_option)
            theirs = (None if args.no_ffmpeg else bench_ffmpeg(n, url, args.seconds, work))
        finally:
            cam.send_signal(signal.SIGTERM)
            cam.wait(timeout=30)
            shutil.rmtree(work, ignore_errors=True)
        per_min = 60 / args.seconds
        oc, orss = ours["cpu"] / n * per_min, ours["rss_kib"] / n / 1024
        if theirs is None:
            print(f"| {n} | {oc:.3f} | - | - | {orss:.2f} | - | - | {ours['cpu'] / args.seconds:.2f} | "
                  f"{ours['min_fps']:.1f} (lost {ours['lost']}) |", flush=True)
            continue
        fc, frss = theirs["cpu"] / n * per_min, theirs["rss_kib"] / n / 1024
        print(f"| {n} | {oc:.3f} | {fc:.3f} | {oc / fc:.2f} | {orss:.2f} | {frss:.2f} | {orss / frss:.3f} | "
              f"{ours['cpu'] / args.seconds:.2f} | {ours['min_fps']:.1f} (lost {ours['lost']}; ffmpeg alive {theirs['alive']}/{n}) |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
