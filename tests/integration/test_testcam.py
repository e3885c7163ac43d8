"""Integration tests for canopy-testcam (tests/tools/testcam.c) and the frame-code decoder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from fractions import Fraction

import numpy as np
import pytest

from fixtures.camera import camera_binary
from fixtures.framecode import (BLOCKS_PER_ROW, block_size_for_width, read_framecode,
                                render_framecode)
from fixtures.netutil import free_port, port_open

FFPROBE = "ffprobe"
FFMPEG = "ffmpeg"
TOOL_TIMEOUT = 25


def ffprobe_json(url: str, *args: str, timeout: float = TOOL_TIMEOUT) -> dict:
    r = subprocess.run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", *args, "-of", "json",
                        url], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"ffprobe failed ({r.returncode}): {r.stderr}"
    return json.loads(r.stdout)


def grab_gray_frames(url: str, count: int, width: int, height: int, vf: str | None = None,
                     timeout: float = TOOL_TIMEOUT) -> np.ndarray:
    """Decode count frames as 8-bit grey, shape (count, height, width)."""
    args = [FFMPEG, "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", url,
            "-frames:v", str(count), "-fps_mode", "passthrough"]
    if vf:
        args += ["-vf", vf]
    args += ["-f", "rawvideo", "-pix_fmt", "gray", "-"]
    r = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    assert r.returncode == 0, f"ffmpeg failed ({r.returncode}): {r.stderr.decode()}"
    frame_size = width * height
    assert len(r.stdout) == count * frame_size, (
        f"got {len(r.stdout)} bytes, expected {count} frames of {width}x{height}")
    return np.frombuffer(r.stdout, dtype=np.uint8).reshape(count, height, width)


def rtsp_request(port: int, method: str, url: str, headers: dict | None = None) -> tuple:
    """Send one RTSP request; returns (status_code, {header_lower: [values]})."""
    lines = [f"{method} {url} RTSP/1.0", "CSeq: 1", "User-Agent: canopy-tests"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    head = buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = head[0].split(" ")
    assert status[0] == "RTSP/1.0", f"bad status line {head[0]!r}"
    hdrs: dict = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), []).append(v.strip())
    return int(status[1]), hdrs


def assert_consecutive(frame_nos: list) -> None:
    diffs = np.diff(frame_nos)
    assert (diffs > 0).all(), f"frame counters not strictly increasing: {frame_nos}"
    assert (diffs == 1).all(), f"frames skipped: {frame_nos}"


# --------------------------------------------------------------------------
# Stream properties


@pytest.mark.parametrize("profile,width,height,fps,expected", [
    ("baseline", 480, 272, 12, {"Constrained Baseline", "Baseline"}),
    ("main", 640, 360, 15, {"Main"}),
    ("high", 320, 240, 10, {"High"}),
])
def test_stream_matches_configuration(camera_factory, profile, width, height, fps, expected):
    cam = camera_factory(width=width, height=height, fps=fps, gop=fps * 2, profile=profile)
    info = ffprobe_json(cam.url, "-show_streams", "-select_streams", "v:0")
    assert len(info["streams"]) == 1
    st = info["streams"][0]
    assert st["codec_name"] == "h264"
    assert (st["width"], st["height"]) == (width, height)
    assert st["pix_fmt"] == "yuv420p"
    assert Fraction(st["r_frame_rate"]) == fps
    assert st["profile"] in expected
    assert cam.alive()


def test_keyframe_interval_matches_gop(camera_factory):
    gop, fps = 10, 15
    cam = camera_factory(fps=fps, gop=gop, width=320, height=180)
    info = ffprobe_json(cam.url, "-select_streams", "v:0", "-show_frames",
                        "-show_entries", "frame=key_frame,pict_type,pts",
                        "-read_intervals", "%+#45")
    frames = info["frames"]
    assert len(frames) >= 40, f"only {len(frames)} frames"
    keys = [i for i, f in enumerate(frames) if f["key_frame"] == 1]
    assert len(keys) >= 3, f"key frames at {keys}"
    assert all(b - a == gop for a, b in zip(keys, keys[1:])), f"key frames at {keys}"
    # Only key frames are intra-coded (no scene-cut I frames), no B frames.
    types = {i: f["pict_type"] for i, f in enumerate(frames)}
    assert all((types[i] == "I") == (i in keys) for i in types), types
    assert "B" not in types.values()
    # Key frames are gop/fps seconds apart on the 90 kHz RTP clock (the very
    # first frame of an RTSP session may carry no pts yet).
    pts = [frames[i]["pts"] for i in keys if "pts" in frames[i]]
    assert len(pts) >= 2, frames
    assert all(abs((b - a) - 90000 * gop // fps) <= 90 for a, b in zip(pts, pts[1:])), pts


# --------------------------------------------------------------------------
# Digest authentication


def test_digest_auth_required(camera_factory):
    cam = camera_factory(width=320, height=180, user="viewer", password="s3cret-pw")
    assert cam.url == f"rtsp://127.0.0.1:{cam.port}/cam"
    assert cam.url_with_auth == f"rtsp://viewer:s3cret-pw@127.0.0.1:{cam.port}/cam"

    # Raw request: 401 with a Digest challenge and no Basic fallback.
    status, hdrs = rtsp_request(cam.port, "DESCRIBE", cam.url, {"Accept": "application/sdp"})
    assert status == 401
    challenges = hdrs.get("www-authenticate", [])
    assert challenges and all(c.startswith("Digest ") for c in challenges), challenges
    assert any('realm="' in c and 'nonce="' in c for c in challenges)

    # ffprobe without / with wrong credentials: 401.
    for url in (cam.url, f"rtsp://viewer:wrong@127.0.0.1:{cam.port}/cam",
                f"rtsp://intruder:s3cret-pw@127.0.0.1:{cam.port}/cam"):
        r = subprocess.run([FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-show_streams",
                            url], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=TOOL_TIMEOUT)
        assert r.returncode != 0, f"{url} was accepted"
        assert "401" in r.stderr, r.stderr

    info = ffprobe_json(cam.url_with_auth, "-show_streams", "-select_streams", "v:0")
    assert info["streams"][0]["codec_name"] == "h264"
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (320, 180)


def test_no_auth_when_not_configured(camera_factory):
    cam = camera_factory(width=320, height=180)
    status, hdrs = rtsp_request(cam.port, "DESCRIBE", cam.url, {"Accept": "application/sdp"})
    assert status == 200
    assert hdrs["content-type"] == ["application/sdp"]
    assert cam.url_with_auth == cam.url


# --------------------------------------------------------------------------
# Frame code


def test_frame_counter_and_clock(camera_factory):
    fps, count = 15, 20
    cam = camera_factory(width=640, height=360, fps=fps, gop=30)
    before_ms = time.time() * 1000
    frames = grab_gray_frames(cam.url, count, 640, 360)
    after_ms = time.time() * 1000
    codes = [read_framecode(f) for f in frames]
    frame_nos = [c.frame_no for c in codes]
    clocks = [c.utc_ms for c in codes]
    assert_consecutive(frame_nos)
    assert all(before_ms - 2000 <= c <= after_ms + 500 for c in clocks), (
        before_ms, clocks, after_ms)
    assert (np.diff(clocks) > 0).all(), clocks
    mean_ms = (clocks[-1] - clocks[0]) / (count - 1)
    assert abs(mean_ms - 1000 / fps) < 0.2 * 1000 / fps, clocks


def test_shared_media_serves_same_frames(camera_factory):
    cam = camera_factory(width=320, height=180, fps=15)
    args = [FFMPEG, "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", cam.url,
            "-frames:v", "25", "-fps_mode", "passthrough", "-f", "rawvideo",
            "-pix_fmt", "gray", "-"]
    procs = [subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=TOOL_TIMEOUT)
            assert p.returncode == 0, err.decode()
            results.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    sets = []
    for out in results:
        frames = np.frombuffer(out, np.uint8).reshape(-1, 180, 320)
        assert len(frames) == 25
        nos = [read_framecode(f).frame_no for f in frames]
        assert_consecutive(nos)
        sets.append(set(nos))
    # Both clients started within a second of each other on one shared pipeline.
    assert len(sets[0] & sets[1]) >= 5, sets


def test_joining_clients_do_not_disturb_stream(camera_factory):
    """Clients joining the shared media must not seek/rewind it for the others."""
    fps = 15
    cam = camera_factory(width=320, height=180, fps=fps)
    watcher = subprocess.Popen(
        [FFPROBE, "-v", "error", "-rtsp_transport", "tcp", "-select_streams", "v:0",
         "-show_entries", "packet=pts", "-read_intervals", "%+#45", "-of", "json", cam.url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    joiners = []
    try:
        time.sleep(1.0)
        for transport in ("tcp", "udp", "tcp"):
            joiners.append(subprocess.Popen(
                [FFMPEG, "-nostdin", "-v", "error", "-rtsp_transport", transport, "-i",
                 cam.url, "-frames:v", "3", "-f", "null", "-"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for j in joiners:
            _, err = j.communicate(timeout=TOOL_TIMEOUT)
            assert j.returncode == 0, err.decode()
        out, err = watcher.communicate(timeout=TOOL_TIMEOUT)
        assert watcher.returncode == 0, err.decode()
    finally:
        for p in [watcher, *joiners]:
            if p.poll() is None:
                p.kill()
                p.wait()
    pts = [pkt["pts"] for pkt in json.loads(out)["packets"] if "pts" in pkt]
    assert len(pts) >= 40
    assert set(np.diff(pts).tolist()) == {90000 // fps}, np.diff(pts).tolist()
    assert cam.alive(), cam.log_text()


def test_framecode_survives_downscaling(camera_factory):
    cam = camera_factory(width=640, height=360, fps=15)
    frames = grab_gray_frames(cam.url, 8, 480, 270, vf="scale=480:270")
    nos = [read_framecode(f).frame_no for f in frames]
    assert_consecutive(nos)


def test_framecode_roundtrip_and_rejection():
    for width, height in ((128, 64), (320, 180), (640, 360), (1280, 720), (1920, 1080)):
        y = np.random.default_rng(width).integers(0, 256, (height, width), dtype=np.uint8)
        assert block_size_for_width(width) * BLOCKS_PER_ROW <= width
        for frame_no, utc_ms in ((0, 0), (123456, 1_700_000_000_123), (2**48 - 1, 2**47)):
            render_framecode(y, frame_no, utc_ms)
            assert tuple(read_framecode(y)) == (frame_no, utc_ms)
    y = np.zeros((360, 640), np.uint8)
    render_framecode(y, 42, 1_700_000_000_000)
    assert tuple(read_framecode(y)) == (42, 1_700_000_000_000)
    b = block_size_for_width(640)
    # Flip one payload block of each row in turn: the CRC must reject it.
    for row in (0, 1):
        bad = y.copy()
        cell = (slice(row * b, (row + 1) * b), slice(20 * b, 21 * b))
        bad[cell] = 16 if y[row * b + b // 2, 20 * b + b // 2] > 128 else 235
        with pytest.raises(ValueError):
            read_framecode(bad)
    # A broken start guard is rejected too.
    bad = y.copy()
    bad[0:b, b:2 * b] = 235
    with pytest.raises(ValueError):
        read_framecode(bad)
    for junk in (np.zeros((360, 640), np.uint8), np.full((360, 640), 255, np.uint8),
                 np.random.default_rng(7).integers(0, 256, (360, 640), dtype=np.uint8)):
        with pytest.raises(ValueError):
            read_framecode(junk)
    with pytest.raises(ValueError):
        read_framecode(np.zeros((10, 10), np.uint8))


# --------------------------------------------------------------------------
# Process behaviour


def test_fixed_port_path_and_clean_shutdown(camera_factory):
    port = free_port()
    cam = camera_factory(width=320, height=180, port=port, path="/live/main")
    assert cam.url == f"rtsp://127.0.0.1:{port}/live/main"
    assert port_open(port)
    # Bound to 127.0.0.1 only: another loopback address is refused.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=2).close()
    status, _ = rtsp_request(port, "DESCRIBE", f"rtsp://127.0.0.1:{port}/nope")
    assert status == 404
    assert cam.stop() == 0
    assert not port_open(port)


def test_sigint_exits_zero(camera_factory):
    cam = camera_factory(width=320, height=180)
    grab_gray_frames(cam.url, 2, 320, 180)
    cam.proc.send_signal(2)
    assert cam.proc.wait(timeout=10) == 0
    assert "CRITICAL" not in cam.log_text() and "WARNING" not in cam.log_text()


@pytest.mark.parametrize("args", [
    ["--width", "abc"], ["--width", "641"], ["--width", "64"], ["--height", "360x"],
    ["--port", "70000"], ["--port", "-1"], ["--fps", "0"], ["--gop", ""],
    ["--bitrate", "99999999999999999999"], ["--user", "u"], ["--password", "p"],
    ["--profile", "extended"], ["--path", "cam"], ["--path", "/a b"],
    ["--pattern", "nosuchpattern"], ["--bogus"], ["extra"],
])
def test_bad_arguments_fail(args):
    binary = camera_binary()
    r = subprocess.run([binary, *args], stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=15)
    assert r.returncode != 0
    assert r.stdout == ""
    assert r.stderr.strip() != ""


def test_port_in_use_fails(camera_factory):
    cam = camera_factory(width=320, height=180)
    r = subprocess.run([camera_binary(), "--port", str(cam.port)], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=15)
    assert r.returncode != 0
    assert "READY" not in r.stdout
    assert r.stderr.strip() != ""
    assert cam.alive()


def test_help():
    r = subprocess.run([camera_binary(), "--help"], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=15)
    assert r.returncode == 0
    assert "--gop" in r.stdout and "--password" in r.stdout
    assert os.path.basename(camera_binary()) == "canopy-testcam"
