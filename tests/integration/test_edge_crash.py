"""canopy-edge killed with SIGKILL at random moments: the archive index and files always agree
afterwards, every segment decodes, and a crash costs at most the fragment in flight."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np

from fixtures.edge import camera_entry
from fixtures.framecode import read_framecode

W, H = 320, 180


def index_rows(edge):
    db = sqlite3.connect(f"file:{edge.data / 'index.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT id, camera, path, start_ms, end_ms, bytes, open FROM segments "
                          "ORDER BY start_ms").fetchall()
    finally:
        db.close()


def last_frame_utc_ms(path: Path) -> int:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "gray", "-"], capture_output=True, timeout=60).stdout
    n = len(raw) // (W * H)
    assert n > 0, f"{path} has no frames"
    last = np.frombuffer(raw[(n - 1) * W * H:n * W * H], np.uint8).reshape(H, W)
    return read_framecode(last)[1]


def decode_ok(path: Path) -> str:
    r = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"],
                       capture_output=True, text=True, timeout=60)
    return "" if r.returncode == 0 and not r.stderr.strip() else r.stderr


def test_kill_9_twenty_times(edge_factory, camera_factory):
    cams = [camera_factory(width=W, height=H, fps=15, gop=15, audio=a) for a in (None, "pcmu")]
    ids = ["k0", "k1"]
    edge = edge_factory([camera_entry(c, i) for c, i in zip(cams, ids)], segment_duration="4s",
                        rtsp_timeout="5s")
    rng = random.Random(20261121)
    worst_loss_ms = 0
    for round_no in range(20):
        for cid in ids:
            edge.wait_state(cid, "online", timeout=30)
        time.sleep(rng.uniform(1.0, 4.5))
        t_kill_ms = int(time.time() * 1000)
        edge.d.kill9()
        # What the index said was recorded at the moment of the crash.
        before = {r[2]: r for r in index_rows(edge)}
        edge.d.start()

        rows = index_rows(edge)
        # Index and files agree: every row's file exists with the indexed size, and every
        # file has a row (nothing orphaned).
        for (_id, cam, rel, start, end, size, is_open) in rows:
            f = edge.archive / rel
            assert f.exists(), f"round {round_no}: {rel} indexed but missing"
            if start < t_kill_ms - 1000 and rel in before:
                assert is_open == 0, f"round {round_no}: {rel} still open after recovery"
                assert f.stat().st_size == size, (rel, f.stat().st_size, size)
                assert end > start
        # A new segment's row follows its file within milliseconds; allow for that race.
        for _ in range(10):
            on_disk = {str(p.relative_to(edge.archive)) for p in edge.archive.glob("*/*/*.mp4")}
            paths = {r[2] for r in index_rows(edge)}
            if on_disk <= paths:
                break
            time.sleep(0.2)
        assert on_disk <= paths, f"round {round_no}: files without a row: {on_disk - paths}"
        # Nothing the index had listed before the crash was lost, and the segment open at
        # the crash ends at most about one fragment (1 s GOP) before the kill.
        for cid in ids:
            open_then = [r for r in before.values() if r[1] == cid and r[6] == 1]
            if not open_then:
                continue
            rel = open_then[0][2]
            now_row = [r for r in rows if r[2] == rel]
            if not now_row:
                # Dropped only when it held no complete fragment yet (just started).
                assert open_then[0][5] == 0, f"round {round_no}: {rel} dropped though it had data"
                continue
            assert now_row[0][4] >= open_then[0][4], (before[rel], now_row[0])
            loss = t_kill_ms - last_frame_utc_ms(edge.archive / rel)
            worst_loss_ms = max(worst_loss_ms, loss)
            # One GOP (1 s) in flight plus buffering and frame time.
            assert loss <= 2600, f"round {round_no}: {cid} lost {loss} ms before the kill"
    # Every closed segment decodes cleanly.
    for cid in ids:
        edge.wait_state(cid, "online", timeout=30)
    for (_id, cam, rel, start, end, size, is_open) in index_rows(edge):
        if not is_open:
            assert decode_ok(edge.archive / rel) == "", rel
    print(f"worst loss at a crash: {worst_loss_ms} ms")
