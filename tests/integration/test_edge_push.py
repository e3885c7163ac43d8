"""Camera alarm-server pushes to canopy-edge: Hikvision XML, multipart with pictures, generic JSON,
and a flood of malformed payloads that must all get a 4xx without hurting the edge."""

from __future__ import annotations

import random
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fixtures.edge import camera_entry, validate_events

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus" / "camevent"


def load(name: str) -> tuple[str, bytes]:
    raw = (CORPUS / name).read_bytes()
    ctype, _, body = raw.partition(b"\n")  # the fuzz seed format: content type, newline, body
    return ctype.decode(errors="replace"), body


def parse_iso(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def push(edge, cam: str, ctype: str, body: bytes):
    return edge.d.request("POST", f"/push/{cam}", body=body, headers={"content-type": ctype})


@pytest.fixture
def edge_with_camera(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180)
    edge = edge_factory([camera_entry(cam, "gate")])
    edge.wait_state("gate", "online")
    return edge


def test_each_kind_of_push_becomes_an_event(edge_with_camera):
    edge = edge_with_camera
    expected = {
        "valid-vmd.xml": "motion",
        "valid-linedetection-prefixed.xml": "line_crossing",
        "valid-fielddetection-cdata.xml": "intrusion",
        "valid-shelteralarm.xml": "tamper",
        "valid-videoloss-heartbeat.xml": "video_loss",
        "valid-anpr-multipart": "anpr",
        "valid-json-line-crossing.json": "line_crossing",
        "valid-json-custom.json": None,
    }
    seqs = []
    for name, etype in expected.items():
        ctype, body = load(name)
        r = push(edge, "gate", ctype, body)
        assert r.status == 200, (name, r.text)
        seqs.append(r.json()["seq"])
    assert seqs == sorted(seqs)
    events = [e for e in edge.events() if "source" in e]  # not the camera's own online event
    assert len(events) == len(expected)
    for ev, (name, etype) in zip(events, expected.items()):
        assert ev["camera"] == "gate"  # the edge's id, not the camera's channel number
        if etype:
            assert ev["type"] == etype, name
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", ev["time"])
        assert "local_time" in ev and "utc_offset_min" in ev
    anpr = [e for e in events if e["type"] == "anpr"][0]
    assert anpr["plate"]
    snap = edge.data / anpr["snapshot"]
    assert snap.read_bytes()[:3] == b"\xff\xd8\xff"  # the JPEG from the multipart push
    m = edge.d.get("/metrics").text
    assert f'canopy_camera_pushes_total{{result="accepted"}} {len(expected)}' in m
    validate_events(edge.events())


def test_pushes_are_refused_precisely(edge_with_camera):
    edge = edge_with_camera
    for name in sorted(p.name for p in CORPUS.iterdir() if p.name.startswith(("bad-", "crash-"))):
        ctype, body = load(name)
        r = push(edge, "gate", ctype, body)
        assert r.status in (400, 413), (name, r.status)
        assert r.json()["detail"], name
    ctype, body = load("valid-vmd.xml")
    r = push(edge, "nope", ctype, body)
    assert r.status == 404 and "no camera 'nope'" in r.json()["detail"]
    r = push(edge, "gate", "text/plain", b"hello")
    assert r.status == 400


def test_a_thousand_malformed_pushes(edge_with_camera):
    edge = edge_with_camera
    rng = random.Random(7)
    valid = [load(p.name) for p in CORPUS.iterdir() if p.name.startswith("valid-")]
    statuses = []
    for i in range(1000):
        ctype, body = rng.choice(valid)
        kind = i % 3
        if kind == 0:    # truncated
            body = body[:rng.randrange(1, len(body) * 4 // 5)]  # cut well before the end
        elif kind == 1:  # random bytes
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        else:            # a wrong content type for the body
            ctype = "application/xml" if ctype.startswith("application/json") else "application/json"
        st = push(edge, "gate", ctype, body).status
        assert st in (400, 413), (i, kind, ctype, body[:300])
        statuses.append(st)
    assert edge.d.get("/healthz").status == 200
    assert edge.d.proc.poll() is None
    m = edge.d.get("/metrics").text
    bad = sum(int(x) for x in re.findall(r'^canopy_camera_pushes_total{result="(?:malformed|too_big)"} (\d+)$', m, re.M))
    assert bad == 1000
    # The camera kept recording throughout.
    assert edge.camera("gate")["status"]["state"] == "online"


def test_events_mode_records_around_a_push(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180, fps=15, gop=15)
    edge = edge_factory([camera_entry(cam, "dock", recording="events", pre_record_s=3,
                                      post_record_s=3)], segment_duration="10s")
    edge.wait_state("dock", "online")
    time.sleep(5)
    assert edge.recordings("dock")["ranges"] == []  # nothing until an event
    ctype, body = load("valid-json-line-crossing.json")
    t_push = time.time()
    assert push(edge, "dock", ctype, body).status == 200
    time.sleep(6)
    rng = edge.recordings("dock")["ranges"]
    assert len(rng) == 1, rng
    start, end = parse_iso(rng[0]["start"]), parse_iso(rng[0]["end"])
    assert start <= t_push - 1.5, (start, t_push)      # pre-record
    assert t_push + 1.5 <= end <= t_push + 5.5, (end, t_push)  # post-record, then it stops
    assert edge.camera("dock")["status"]["recording"] is False
