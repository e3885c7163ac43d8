"""Analytics workers talking to canopy-edge over nanomsg: detections become events, events are
published to subscribers, bad messages are refused and counted, and a silent worker makes its
camera record continuously until it is back."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone

from fixtures.edge import camera_entry, validate_events
from fixtures.netutil import free_port
from fixtures.nn import NN_PUSH, NN_SUB, Socket


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def msg(**kw) -> bytes:
    return json.dumps({"v": 1, "worker": "w1", **kw}).encode()


def test_worker_detections_events_and_silence(edge_factory, camera_factory):
    cam = camera_factory(width=320, height=180, fps=15, gop=15)
    pull, pub = free_port(), free_port()
    edge = edge_factory([camera_entry(cam, "lot", recording="events", post_record_s=1)],
                        analytics_listen=f"tcp://127.0.0.1:{pull}",
                        analytics_publish=f"tcp://127.0.0.1:{pub}", analytics_silence="3s")
    edge.wait_state("lot", "online")
    sub = Socket(NN_SUB, f"tcp://127.0.0.1:{pub}", subscribe=b"event.lot ")
    worker = Socket(NN_PUSH, f"tcp://127.0.0.1:{pull}")
    time.sleep(0.5)  # let both connections settle
    worker.send(msg(type="heartbeat", cameras=["lot"]))
    worker.send(msg(type="detection", camera="lot", time=now_iso(), kind="object", label="person",
                    confidence=0.91, box=[0.1, 0.2, 0.3, 0.4]))
    worker.send(msg(type="detection", camera="lot", time=now_iso(), kind="plate", plate="AB123CD",
                    confidence=0.8))
    worker.send(msg(type="detection", camera="lot", time=now_iso(), kind="face", confidence=0.7,
                    embedding=[0.01] * 512, model="arcface-r100"))
    got = edge.wait_for(lambda: [e for e in edge.events() if e["type"].startswith("analytics.")], 10,
                        "analytics events")
    edge.wait_for(lambda: len([e for e in edge.events() if e["type"].startswith("analytics.")]) == 3, 10,
                  "three detections")
    got = {e["type"]: e for e in edge.events() if e["type"].startswith("analytics.")}
    assert got["analytics.object"]["label"] == "person" and got["analytics.object"]["box"] == [0.1, 0.2, 0.3, 0.4]
    assert got["analytics.plate"]["plate"] == "AB123CD"
    assert got["analytics.face"]["embedding_dim"] == 512 and got["analytics.face"]["model"] == "arcface-r100"
    # Subscribers hear them too (after whatever else of this camera was published, such as
    # its camera.online if that was published after we subscribed).
    wanted = {"analytics.object", "analytics.plate", "analytics.face"}
    heard = set()
    for _ in range(20):
        if wanted <= heard:
            break
        topic, _, body = sub.recv().partition(b" ")  # 5 s receive timeout
        assert topic == b"event.lot"
        heard.add(json.loads(body)["type"])
    assert wanted <= heard, heard

    # Bad messages: refused and counted, the endpoint keeps working.
    for bad in [b"not json", b"[]", msg(type="detection"), msg(type="detection", camera="lot", kind="ghost",
                time=now_iso(), confidence=0.5), msg(type="detection", camera="lot", kind="object",
                time=now_iso(), confidence=7), msg(type="heartbeat"), msg(type="x", extra=1),
                msg(type="detection", camera="lot", kind="face", time=now_iso(), confidence=0.5)]:
        worker.send(bad)
    worker.send(msg(type="detection", camera="nope", time=now_iso(), kind="object", confidence=0.5))
    edge.wait_for(lambda: re.search(r'canopy_analytics_messages_total{result="malformed"} 8$',
                                    edge.d.get("/metrics").text, re.M), 10, "malformed count")
    m = edge.d.get("/metrics").text
    assert 'canopy_analytics_messages_total{result="unknown_camera"} 1' in m
    assert 'canopy_analytics_messages_total{result="accepted"} 4' in m

    # The worker falls silent: the camera records continuously, visibly.
    assert edge.camera("lot")["status"]["recording"] is False
    edge.wait_for(lambda: any(e["type"] == "analytics.worker_lost" for e in edge.events()), 10, "worker lost")
    edge.wait_for(lambda: edge.camera("lot")["status"]["recording"], 10, "fallback recording")
    assert 'canopy_analytics_worker_silent{camera="lot"} 1' in edge.d.get("/metrics").text
    # Back: the fallback ends and, with no event to record, so does the recording.
    worker.send(msg(type="heartbeat", cameras=["lot"]))
    edge.wait_for(lambda: any(e["type"] == "analytics.worker_back" for e in edge.events()), 10, "worker back")
    for _ in range(6):  # keep the worker alive while we watch
        worker.send(msg(type="heartbeat", cameras=["lot"]))
        time.sleep(0.5)
    assert edge.camera("lot")["status"]["recording"] is False
    validate_events(edge.events())
    worker.close()
    sub.close()
