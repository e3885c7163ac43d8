"""canopy-edge retention: quota deletes the oldest share of retention first, protected ranges stay,
a full disk pauses recording visibly and recording resumes by itself."""

from __future__ import annotations

import os
import re
import subprocess
import time
from datetime import datetime, timezone

import pytest

from fixtures.edge import camera_entry


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def metric(edge, name: str) -> float:
    m = re.search(rf"^{name} ([0-9.e+-]+)$", edge.d.get("/metrics").text, re.M)
    assert m, name
    return float(m.group(1))


def test_quota_deletes_oldest_share_first_and_spares_protected(edge_factory, camera_factory):
    cams = [camera_factory(width=640, height=360, fps=15, gop=15, bitrate=2000) for _ in range(2)]
    edge = edge_factory([camera_entry(cams[0], "short", retention_days=10),
                         camera_entry(cams[1], "long", retention_days=20)],
                        segment_duration="2s", archive_quota="3M", retention_interval="1s",
                        archive_max_percent=99)
    edge.wait_state("short", "online")
    edge.wait_state("long", "online")
    t0 = time.time()
    time.sleep(3.5)
    # Protect the first seconds of "short".
    r = edge.d.request("POST", "/api/v1/protected", headers={
        "Authorization": f"Bearer {edge.token}", "content-type": "application/json"},
        body=f'{{"camera":"short","from":"{iso(t0 - 5)}","to":"{iso(t0 + 1)}","reason":"incident 7"}}'.encode())
    assert r.status == 201, r.text
    pid = r.json()["id"]
    assert r.headers["location"] == f"/api/v1/protected/{pid}"
    prot = edge.api("/api/v1/protected", camera="short").json()["protected"]
    assert [p["reason"] for p in prot] == ["incident 7"]

    edge.wait_for(lambda: metric(edge, "canopy_retention_deleted_segments_total") >= 6, 60,
                  "quota deletions")
    time.sleep(8)
    # Within quota (plus the two segments being written, which are never deleted).
    assert metric(edge, "canopy_archive_bytes") <= 3 * 2**20 + 2 * 600_000
    short = edge.recordings("short", **{"from": iso(t0 - 60)})
    long_ = edge.recordings("long", **{"from": iso(t0 - 60)})
    # The protected start of "short" is still there, then a hole, then recent footage.
    assert parse_iso(short["ranges"][0]["start"]) <= t0 + 1, short
    assert len(short["ranges"]) == 2, short
    # Both keep recording.
    for rec in (short, long_):
        assert rec["recording"] and parse_iso(rec["ranges"][-1]["end"]) > time.time() - 3
    # "long" keeps about twice as much unprotected footage as "short" (20 vs 10 days).
    short_recent = short["ranges"][-1]["duration_s"]
    long_recent = long_["ranges"][-1]["duration_s"]
    assert long_recent > 1.4 * short_recent, (short_recent, long_recent)
    # Deleting the protection lets it go.
    r = edge.d.request("DELETE", f"/api/v1/protected/{pid}",
                       headers={"Authorization": f"Bearer {edge.token}"})
    assert r.status == 204
    assert edge.d.request("DELETE", f"/api/v1/protected/{pid}",
                          headers={"Authorization": f"Bearer {edge.token}"}).status == 404
    edge.wait_for(lambda: len(edge.recordings("short", **{"from": iso(t0 - 60)})["ranges"]) == 1,
                  30, "unprotected footage deleted")


def test_protected_api_rejects_bad_bodies(edge_factory):
    edge = edge_factory([])
    h = {"Authorization": f"Bearer {edge.token}", "content-type": "application/json"}
    for body, why in [(b"", "JSON object"), (b"[]", "JSON object"),
                      (b'{"camera":"a","from":"x","to":"y"}', "RFC 3339"),
                      (b'{"camera":"a","from":"2026-01-02T00:00:00Z","to":"2026-01-01T00:00:00Z"}', "from < to"),
                      (b'{"camera":"a","from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z","x":1}', "unknown member 'x'")]:
        r = edge.d.request("POST", "/api/v1/protected", body=body, headers=h)
        assert r.status == 400 and why in r.json()["detail"], (body, r.text)
    r = edge.d.request("POST", "/api/v1/protected", body=b"{}", headers={"content-type": "application/json"})
    assert r.status == 401


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_pauses_recording_visibly_and_resumes(edge_factory, camera_factory, small_disk):
    cam = camera_factory(width=640, height=360, fps=15, gop=15, bitrate=1500)
    edge = edge_factory([camera_entry(cam, "lobby")], archive_dir=str(small_disk / "archive"),
                        segment_duration="2s", archive_max_percent=99, retention_interval="1s")
    edge.wait_state("lobby", "online")
    edge.wait_for(lambda: edge.camera("lobby")["status"]["recording"], 10, "recording")
    # All footage protected: retention cannot make room, so the disk really fills.
    now = time.time()
    r = edge.d.request("POST", "/api/v1/protected", headers={
        "Authorization": f"Bearer {edge.token}", "content-type": "application/json"},
        body=f'{{"camera":"lobby","from":"{iso(now - 3600)}","to":"{iso(now + 3600)}"}}'.encode())
    assert r.status == 201
    st = os.statvfs(small_disk)
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (st.f_bavail * st.f_frsize - 64 * 1024))
    cam_st = edge.wait_for(lambda: (c := edge.camera("lobby"))["status"]["disk_full"] and c, 30, "disk full")
    assert cam_st["status"]["state"] == "online"  # the stream stays up
    assert cam_st["status"]["recording"] is False
    assert 'canopy_camera_disk_full{camera="lobby"} 1' in edge.d.get("/metrics").text
    assert any(e["type"] == "recording.disk_full" for e in edge.events())
    # Retention says it is stuck rather than pretending.
    edge.wait_for(lambda: metric(edge, "canopy_archive_over_limit") == 1, 10, "over-limit flag")
    # Space comes back: recording resumes with no operator action on the edge.
    filler.unlink()
    edge.wait_for(lambda: (c := edge.camera("lobby"))["status"]["recording"] and
                  not c["status"]["disk_full"], 30, "recording resumed")
    assert any(e["type"] == "recording.resumed" for e in edge.events())
    assert edge.d.proc.poll() is None
