"""canopy-edge recording real RTSP test cameras: archive, coverage listing, camera states, live config."""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from fixtures.daemons import BIN_DIR
from fixtures.edge import camera_entry, validate_events
from fixtures.framecode import read_framecode


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def segment_files(edge, cam_id: str) -> list[Path]:
    return sorted((edge.archive / cam_id).glob("*/*.mp4"))


def decode_errors(path: Path) -> str:
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                       capture_output=True, text=True, timeout=60)
    return r.stderr.strip() if r.returncode == 0 else f"exit {r.returncode}: {r.stderr}"


def frame_numbers(path: Path, width: int, height: int) -> list[int]:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, timeout=60).stdout
    n = len(raw) // (width * height)
    frames = np.frombuffer(raw[:n * width * height], np.uint8).reshape(n, height, width)
    return [read_framecode(f)[0] for f in frames]


def test_records_four_cameras_for_two_minutes(edge_factory, camera_factory, tmp_path):
    cams = [camera_factory(width=320, height=180, fps=15, gop=15) for _ in range(4)]
    edge = edge_factory([camera_entry(c, f"cam{i}") for i, c in enumerate(cams)],
                        segment_duration="10s")
    for i in range(4):
        edge.wait_state(f"cam{i}", "online")
    t_online = time.time()
    time.sleep(120)
    for i, cam in enumerate(cams):
        cid = f"cam{i}"
        rec = edge.recordings(cid, **{"from": iso(t_online - 60)})
        assert rec["recording"] is True
        assert len(rec["ranges"]) == 1, rec  # one continuous range: no gap between segments
        rng = rec["ranges"][0]
        # Covered from (about) when the camera came online to (about) now.
        assert parse_iso(rng["start"]) < t_online + 1.5, rng
        assert parse_iso(rng["end"]) > time.time() - 3.5, rng
        files = segment_files(edge, cid)
        assert len(files) >= 3, files
        numbers = []
        for f in files[:-1]:  # the last is being written
            assert decode_errors(f) == "", f
            numbers += frame_numbers(f, 320, 180)
        # Every frame the camera produced is in the archive, once, in order, across
        # segment boundaries.
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers[:50]
        assert len(numbers) >= 15 * 100
        # An arbitrary 30 s range exports, decodes cleanly and lasts 30 s within one GOP.
        start = t_online + 37.7 + i
        out = tmp_path / f"{cid}.mp4"
        r = export(edge, cid, start, start + 30, out)
        assert r.status == 200, r.text
        assert decode_errors(out) == ""
        assert 30.0 - 0.2 <= probe_duration(out) <= 31.0 + 0.2
    m = edge.d.get("/metrics").text
    for i in range(4):
        assert f'canopy_camera_up{{camera="cam{i}"}} 1' in m
        assert f'canopy_camera_packets_lost_total{{camera="cam{i}"}} 0' in m  # TCP: nothing lost
        assert f'canopy_camera_recording{{camera="cam{i}"}} 1' in m
        fps = float(re.search(rf'^canopy_camera_fps{{camera="cam{i}"}} ([0-9.]+)$', m, re.M).group(1))
        assert 12 <= fps <= 18, fps


def test_segment_files_are_fragmented_and_indexed(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180, fps=15, gop=15)
    edge = edge_factory([camera_entry(cam, "door")], segment_duration="4s")
    edge.wait_state("door", "online")
    edge.wait_for(lambda: len(segment_files(edge, "door")) >= 3, 20, "three segments")
    f = segment_files(edge, "door")[0]
    # Layout: <archive>/<camera>/<YYYY-MM-DD>/<HHMMSS-mmm>.mp4 (UTC).
    assert re.match(r"^\d{4}-\d{2}-\d{2}$", f.parent.name)
    assert re.match(r"^\d{6}-\d{3}\.mp4$", f.name)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(f)],
        capture_output=True, text=True, timeout=30).stdout)
    assert probe["streams"][0]["codec_name"] == "h264"
    assert probe["streams"][0]["width"] == 320
    dur = float(probe["format"]["duration"])
    assert 3.9 <= dur <= 5.1, dur  # cut on the first keyframe (1 s GOP) at or after 4 s
    # A fragment per keyframe: moof boxes in the file, one per GOP.
    data = f.read_bytes()
    assert data[4:8] == b"ftyp"
    assert data.count(b"moof") >= 4


def test_camera_offline_then_online(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180, fps=15, gop=15)
    edge = edge_factory([camera_entry(cam, "yard")], rtsp_timeout="3s", reconnect_max="2s",
                        segment_duration="5s")
    edge.wait_state("yard", "online")
    time.sleep(4)
    port = cam.port
    t_stop = time.time()
    cam.stop()
    st = edge.wait_state("yard", "unreachable", timeout=15)
    assert st["status"]["recording"] is False
    assert st["status"]["reason"]
    time.sleep(5)
    cam2 = camera_factory(width=320, height=180, fps=15, gop=15, port=port)
    t_back = time.time()
    edge.wait_state("yard", "online", timeout=20)
    time.sleep(4)
    kinds = [(e["camera"], e["type"], e["state"]) for e in edge.events()]
    assert kinds == [("yard", "camera.online", "online"), ("yard", "camera.offline", "unreachable"),
                     ("yard", "camera.online", "online")], kinds
    rec = edge.recordings("yard", **{"from": iso(t_stop - 60)})
    assert len(rec["ranges"]) == 2, rec
    gap_start = parse_iso(rec["ranges"][0]["end"])
    gap_end = parse_iso(rec["ranges"][1]["start"])
    assert gap_start <= t_stop + 1 and gap_end >= t_back - 1, (rec, t_stop, t_back)
    assert any(parse_iso(g["start"]) == gap_start for g in rec["gaps"])
    validate_events(edge.events())
    m = edge.d.get("/metrics").text
    assert int(re.search(r'^canopy_camera_reconnects_total{camera="yard"} (\d+)$', m, re.M).group(1)) >= 1
    cam2.stop()


def test_wrong_password_is_unauthorized_with_backoff(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180, user="admin", password="s3cret")
    entry = camera_entry(cam, "gate")
    entry["password"] = "Bad-Pass-9q7"
    edge = edge_factory([entry], reconnect_max="8s")
    st = edge.wait_state("gate", "unauthorized")
    assert "credentials" in st["status"]["reason"]
    assert "401" in st["status"]["reason"]
    time.sleep(12)
    st = edge.camera("gate")["status"]
    # 1 + 2 + 4 + 8 s of backoff: no tight retry loop.
    assert 2 <= st["counters"]["reconnects"] <= 5, st
    assert st["state"] == "unauthorized"
    assert st["retry_in_s"] >= 4
    events = [e for e in edge.events() if e["camera"] == "gate"]
    assert [e["state"] for e in events] == ["unauthorized"]  # one event, not one per retry
    # The password never leaks through the API or the log.
    assert "Bad-Pass-9q7" not in json.dumps(edge.cameras())
    assert "Bad-Pass-9q7" not in edge.d.log()
    # Fixing the password in the document takes effect live.
    entry["password"] = "s3cret"
    edge.write_cameras([entry], version=2)
    edge.wait_state("gate", "online", timeout=20)


def test_cameras_document_changes_apply_live(edge_factory, camera_factory):
    a = camera_factory(width=320, height=180)
    b = camera_factory(width=320, height=180)
    edge = edge_factory([camera_entry(a, "a")])
    edge.wait_state("a", "online")
    edge.write_cameras([camera_entry(a, "a"), camera_entry(b, "b")], version=2)
    edge.wait_state("b", "online")
    # A broken document is refused with a precise reason; the cameras keep recording.
    edge.cameras_file.write_text('{"version": 3, "cameras": [{"id": "a", "main_url": "http://x"}]}')
    r = edge.wait_for(lambda: edge.api("/api/v1/cameras").json()["config_error"], 10, "config error")
    assert "camera 'a': main_url must be rtsp://" in r
    assert set(edge.cameras()) == {"a", "b"}
    m = edge.d.get("/metrics").text
    assert re.search(r"^canopy_edge_config_errors_total [1-9]\d*$", m, re.M)
    # Removing a camera stops it; its recordings stay listed.
    edge.write_cameras([camera_entry(b, "b")], version=4)
    edge.wait_for(lambda: set(edge.cameras()) == {"b"}, 10, "camera a removed")
    assert edge.api("/api/v1/cameras").json()["config_error"] is None
    time.sleep(1)
    assert edge.recordings("a")["ranges"], "footage of a removed camera disappeared"


def test_schema_example_document_is_accepted(edge_factory):
    example = json.loads((Path(__file__).resolve().parents[2] / "schemas" /
                          "edge-cameras.schema.json").read_text())["examples"][0]
    edge = edge_factory(example["cameras"])
    cams = edge.cameras()
    assert set(cams) == {"front-door", "yard"}
    assert cams["yard"]["recording"] == "motion"
    assert "secret" not in json.dumps(cams)
    assert edge.api("/api/v1/cameras").json()["config_error"] is None


def test_api_requires_a_valid_admin_token(edge_factory, tmp_path):
    edge = edge_factory([])
    assert edge.api("/api/v1/cameras", token="").status == 401
    r = edge.api("/api/v1/cameras", token="not.a.token")
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Bearer")
    # A token signed by another key.
    other = tmp_path / "other.pem"
    subprocess.run([str(BIN_DIR / "canopy-codec"), "keygen", str(other), str(tmp_path / "o.pub")], check=True)
    now = int(time.time())
    claims = json.dumps({"sub": "x", "tenant": "local", "jti": "j", "scope": "edge:admin", "exp": now + 60})
    forged = subprocess.run([str(BIN_DIR / "canopy-codec"), "jwt-sign", str(other)], input=claims,
                            capture_output=True, text=True, check=True).stdout.strip()
    r = edge.api("/api/v1/cameras", token=forged)
    assert r.status == 401 and "signature" in r.json()["detail"]
    # The node's own key, but without the admin scope.
    key = edge.data / "node.key"
    claims = json.dumps({"sub": "x", "tenant": "local", "jti": "j", "scope": "camera:view", "exp": now + 60})
    viewer = subprocess.run([str(BIN_DIR / "canopy-codec"), "jwt-sign", str(key)], input=claims,
                            capture_output=True, text=True, check=True).stdout.strip()
    r = edge.api("/api/v1/cameras", token=viewer)
    assert r.status == 403 and "edge:admin" in r.json()["detail"]
    # Bad query parameters are precise 400s.
    r = edge.api("/api/v1/recordings", camera="x", **{"from": "yesterday"})
    assert r.status == 400 and "'from' must be an RFC 3339 time" in r.json()["detail"]
    assert edge.api("/api/v1/recordings").status == 400
    assert edge.api("/api/v1/events", since="-1").status == 400


def export(edge, cam_id: str, start: float, end: float, dest: Path):
    r = edge.api("/api/v1/export", camera=cam_id, **{"from": iso(start), "to": iso(end)})
    if r.status == 200:
        dest.write_bytes(r.body)
    return r


def probe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                          "csv=p=0", str(path)], capture_output=True, text=True, timeout=30).stdout
    return float(out.strip())


def test_export_of_a_range_across_segments(edge_factory, camera_factory, tmp_path):
    cam = camera_factory(width=W, height=H, fps=15, gop=15)
    edge = edge_factory([camera_entry(cam, "hall")], segment_duration="4s")
    edge.wait_state("hall", "online")
    t0 = time.time()
    time.sleep(16)
    start, end = t0 + 2.3, t0 + 12.3  # 10 s across three segment boundaries
    out = tmp_path / "hall.mp4"
    r = export(edge, "hall", start, end, out)
    assert r.status == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    assert "attachment" in r.headers["content-disposition"]
    assert decode_errors(out) == ""
    dur = probe_duration(out)
    assert 10.0 - 0.2 <= dur <= 10.0 + 1.0 + 0.2, dur  # starts at the keyframe before "from" (1 s GOP)
    numbers = frame_numbers(out, W, H)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    # The first frame is from the keyframe at or before "from", the last from before "to".
    first = read_framecode(first_frame(out))
    assert start - 1.3 <= first.utc_ms / 1000 <= start + 0.3, (first, start)
    # moov first: playable while downloading (faststart).
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    # Errors are precise.
    r = export(edge, "hall", t0 - 7200, t0 - 3600, tmp_path / "none.mp4")
    assert r.status == 404 and "no footage of camera 'hall'" in r.json()["detail"]
    r = edge.api("/api/v1/export", camera="hall", **{"from": iso(end), "to": iso(start)})
    assert r.status == 400


W, H = 320, 180


def first_frame(path: Path):
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, timeout=30).stdout
    return np.frombuffer(raw[:W * H], np.uint8).reshape(H, W)


def test_json_logs_stay_json_with_ffmpeg_errors(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180, user="admin", password="right-one")
    # Over TCP the edge's own RTSP client talks to the camera; UDP goes through
    # libavformat, whose log lines are what this test is about.
    entry = camera_entry(cam, "gate", transport="udp")
    entry["password"] = "Wrong-7x"
    edge = edge_factory([entry], log_format="json", log_debug="ffmpeg")
    edge.wait_state("gate", "unauthorized")
    assert edge.d.stop() == 0
    lines = [ln for ln in edge.d.log().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]  # every line, FFmpeg's included, is JSON
    ff = [r for r in records if r["sub"] == "ffmpeg"]
    assert any("401" in r["msg"] for r in ff), ff


def probe_streams(path: Path) -> list[dict]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=30).stdout
    return json.loads(out)["streams"]


def audio_samples(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le",
                          "-ac", "1", "-ar", "8000", "-"], capture_output=True, timeout=60).stdout
    return np.frombuffer(raw, "<i2").astype(np.float64)


@pytest.mark.parametrize("codec,name", [("pcma", "pcm_alaw"), ("pcmu", "pcm_mulaw")])
def test_g711_audio_is_recorded_and_exported(edge_factory, camera_factory, tmp_path, codec, name):
    cam = camera_factory(width=W, height=H, fps=15, gop=15, audio=codec)
    edge = edge_factory([camera_entry(cam, "lobby")], segment_duration="4s")
    edge.wait_state("lobby", "online")
    t0 = time.time()
    edge.wait_for(lambda: len(segment_files(edge, "lobby")) >= 4, 30, "four segments")
    # A whole segment: a video and a G.711 track (no transcoding), both decodable, as long
    # as each other.
    seg = segment_files(edge, "lobby")[1]
    streams = probe_streams(seg)
    assert [s["codec_type"] for s in streams] == ["video", "audio"], streams
    assert streams[1]["codec_name"] == name and streams[1]["sample_rate"] == "8000", streams[1]
    assert decode_errors(seg) == ""
    v_dur, a_dur = float(streams[0]["duration"]), float(streams[1]["duration"])
    assert abs(v_dur - a_dur) < 0.5, (v_dur, a_dur)

    # An export across segments carries the audio, in the same format.
    start, end = t0 + 2.3, t0 + 9.3
    out = tmp_path / f"lobby-{codec}.mp4"
    r = export(edge, "lobby", start, end, out)
    assert r.status == 200, r.text
    assert decode_errors(out) == ""
    streams = probe_streams(out)
    assert [s["codec_type"] for s in streams] == ["video", "audio"], streams
    assert streams[1]["codec_name"] == name
    v_dur, a_dur = float(streams[0]["duration"]), float(streams[1]["duration"])
    assert 7.0 - 0.2 <= v_dur <= 8.0 + 0.2, v_dur
    assert abs(v_dur - a_dur) < 0.5, (v_dur, a_dur)
    data = out.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # still faststart
    # It is the camera's 440 Hz tone, without holes: every 100 ms window is loud and
    # peaks at 440 Hz.
    pcm = audio_samples(out)
    assert len(pcm) >= 8000 * (a_dur - 0.1), (len(pcm), a_dur)
    win = 800
    for i in range(0, len(pcm) - win, win):
        w = pcm[i:i + win]
        assert np.sqrt(np.mean(w * w)) > 1000, f"silence at {i / 8000:.2f} s"
        spectrum = np.abs(np.fft.rfft(w * np.hanning(win)))
        assert abs(np.argmax(spectrum) * 8000 / win - 440) <= 10, i
    # The video is unchanged: every frame, in order.
    numbers = frame_numbers(out, W, H)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
