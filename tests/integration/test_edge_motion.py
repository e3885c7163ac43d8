"""canopy-edge motion detection on real streams: a moving scene gets motion events and motion-mode
recordings (with pre-record); a static scene gets none."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime, timezone

from fixtures.edge import camera_entry, validate_events


def parse_iso(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# 22x18 grid; the test camera burns a frame code into the top rows and clocks into the
# bottom rows, so those are masked out, as an operator masks a camera's OSD.
MASK = ["0" * 22] * 2 + ["1" * 22] * 10 + ["0" * 22] * 6


def motion_camera(cam, cam_id):
    return camera_entry(cam, cam_id, recording="motion", pre_record_s=3, post_record_s=2,
                        motion={"enabled": True, "mask": MASK, "sensitivity": 50,
                                "min_area_permille": 10, "fps": 5})


def test_moving_scene_triggers_motion_and_static_scene_does_not(edge_factory, camera_factory):
    moving = camera_factory(width=640, height=360, fps=15, gop=15, pattern="ball")
    still = camera_factory(width=640, height=360, fps=15, gop=15, pattern="smpte")
    edge = edge_factory([motion_camera(moving, "moving"), motion_camera(still, "still")],
                        segment_duration="5s")
    edge.wait_state("moving", "online")
    edge.wait_state("still", "online")
    t0 = time.time()
    ev = edge.wait_for(lambda: [e for e in edge.events() if e["type"] == "motion"], 20,
                       "a motion event")
    time.sleep(10)
    events = [e for e in edge.events() if e["type"] == "motion"]
    assert events and all(e["camera"] == "moving" for e in events), events
    first = events[0]
    assert first["state"] == "active"
    x, y, w, h = (float(v) for v in first["region"].split(","))
    assert 0 <= x <= 1 and 0 <= y <= 1 and 0 < w <= 1 and 0 < h <= 1
    # Motion mode recorded the moving camera, starting before the event (pre-record)...
    rec = edge.recordings("moving", **{"from": iso(t0 - 60)})
    assert rec["ranges"], rec
    started = parse_iso(rec["ranges"][0]["start"])
    assert started <= parse_iso(first["time"]) - 1.0, (rec["ranges"][0], first)
    # ...and nothing of the static one.
    assert edge.recordings("still", **{"from": iso(t0 - 60)})["ranges"] == []
    assert edge.camera("still")["status"]["recording"] is False
    validate_events(edge.events())


def rtsp_sessions(cam) -> int:
    """Established TCP connections to the camera's RTSP port (one per RTSP session over TCP)."""
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{cam.port} )"],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return len([ln for ln in out.splitlines() if ln.strip()])


def test_motion_without_sub_url_uses_the_recorders_session(edge_factory, camera_factory):
    moving = camera_factory(width=640, height=360, fps=15, gop=15, pattern="ball")
    still = camera_factory(width=640, height=360, fps=15, gop=15, pattern="smpte")
    edge = edge_factory([motion_camera(moving, "moving"), motion_camera(still, "still")],
                        segment_duration="5s")
    edge.wait_state("moving", "online")
    edge.wait_state("still", "online")
    edge.wait_for(lambda: [e for e in edge.events() if e["type"] == "motion"], 20, "a motion event")
    # Motion analysis decodes the recorder's own packets: one RTSP session per camera.
    for _ in range(5):
        assert rtsp_sessions(moving) == 1
        assert rtsp_sessions(still) == 1
        time.sleep(1)
    events = [e for e in edge.events() if e["type"] == "motion"]
    assert events and all(e["camera"] == "moving" for e in events), events
    assert edge.camera("moving")["status"]["recording"] is True
    assert edge.camera("still")["status"]["recording"] is False
    # Switched off live, the analyser lets go of the tap; back on, it takes it up again.
    cams = [motion_camera(moving, "moving"), motion_camera(still, "still")]
    cams[0]["motion"]["enabled"] = False
    edge.write_cameras(cams, version=2)
    edge.wait_for(lambda: edge.events()[-1]["type"] == "motion" and
                  edge.events()[-1]["state"] == "inactive", 15, "motion stopped after disabling")
    n = len(edge.events())
    time.sleep(4)
    assert len(edge.events()) == n
    cams[0]["motion"]["enabled"] = True
    edge.write_cameras(cams, version=3)
    edge.wait_for(lambda: [e for e in edge.events()[n:] if e["type"] == "motion" and
                           e["state"] == "active"], 20, "motion again after re-enabling")
    assert rtsp_sessions(moving) == 1
    validate_events(edge.events())
