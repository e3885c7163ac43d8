"""canopy-edge WHEP (RFC 9725): live view and archive playback over WebRTC, to aiortc and
to headless Chromium, with the errors, limits and timeouts of the endpoint.

Contract under test: POST /whep/<camera>[?stream=main|sub&start=<unix ms|RFC 3339>&speed=1|2|4]
(Content-Type: application/sdp, Authorization: Bearer <admin or viewer token>) -> 201 with
the complete answer (all the edge's candidates, on webrtc_addresses), Location
/whep/<camera>/<session> and ETag; PATCH (trickle-ice-sdpfrag) -> 204; DELETE -> 200;
RFC 9457 problems otherwise (400/401/403/404/406/415/503 + Retry-After).
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from fixtures.browser import browser  # noqa: F401  (fixture)
from fixtures.edge import camera_entry
from fixtures.netutil import free_port, wait_for_port
from fixtures.whep import (WhepClient, WhepHTTPError, close_all, delete_session, http_request,
                           make_offer, post_offer, whep_path)

W, H = 640, 360
WHEP_CONF = {"webrtc_addresses": "127.0.0.1"}
PROBLEM = "application/problem+json"


@pytest.fixture
def viewers(daemon_factory):
    """new(**kw) -> WhepClient; every client is closed (DELETE) before the edge stops."""
    made: list[WhepClient] = []

    def new(**kw) -> WhepClient:
        c = WhepClient(name=f"whep{len(made)}", **kw)
        made.append(c)
        return c

    yield new
    close_all(made)


def start_edge(edge_factory, camera_factory, cam_id="door", cam_kw=None, **conf):
    cam = camera_factory(width=W, height=H, **(cam_kw or {}))
    edge = edge_factory([camera_entry(cam, cam_id)], **{**WHEP_CONF, **conf})
    edge.wait_state(cam_id, "online")
    return edge, cam


def viewer_token(edge, camera: str, ttl_s: int = 300, archive_depth_s: int = 0) -> str:
    r = edge.d.request("POST", "/api/v1/viewer-tokens",
                       body=f'{{"camera": "{camera}", "ttl_s": {ttl_s}, '
                            f'"archive_depth_s": {archive_depth_s}}}'.encode(),
                       headers={"Authorization": f"Bearer {edge.token}",
                                "Content-Type": "application/json"})
    assert r.status in (200, 201), r.text
    return r.json()["token"]


def viewer_count(edge, cam_id: str) -> int:
    """The camera's "viewers" in GET /api/v1/cameras: a list of sessions or a number."""
    v = edge.camera(cam_id).get("viewers")
    assert v is not None, f"no 'viewers' in the camera entry: {edge.camera(cam_id)}"
    return len(v) if isinstance(v, list) else int(v)


def whep_sessions_gauge(edge) -> float:
    m = edge.d.get("/metrics").text
    vals = re.findall(r"^canopy_whep_sessions(?:\{[^}]*\})? ([0-9.eE+-]+)$", m, re.M)
    assert vals, "no canopy_whep_sessions gauge in /metrics"
    return sum(float(v) for v in vals)


def assert_problem(r, status: int):
    assert r.status == status, r
    assert r.content_type == PROBLEM, r
    assert isinstance(r.detail, str) and r.detail.strip(), r
    return r.detail


def answer_candidates(sdp: str) -> list[str]:
    """Connection addresses of the a=candidate lines of an SDP."""
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def strictly_increasing(xs) -> bool:
    return all(b > a for a, b in zip(xs, xs[1:]))


def playback_rate(codes, skip_s: float = 1.0, min_span_s: float = 2.5) -> float:
    """Frame-code time per receive time over the frames after the first skip_s seconds
    (which may be a catch-up burst)."""
    t0 = codes[0].recv_ms + skip_s * 1000
    steady = [c for c in codes if c.recv_ms >= t0]
    assert len(steady) >= 2 and steady[-1].recv_ms - steady[0].recv_ms >= min_span_s * 1000, \
        f"not enough steady frames: {codes[:3]} ... {codes[-3:]}"
    return (steady[-1].wall_ms - steady[0].wall_ms) / (steady[-1].recv_ms - steady[0].recv_ms)


def collect_for(client: WhepClient, seconds: float, timeout: float = 15) -> list:
    """Waits for the first frame code, then for `seconds` more; returns the codes."""
    client.wait_frames(1, timeout=timeout)
    time.sleep(seconds)
    return list(client.codes)


# --------------------------------------------------------------------------------------
# a. live view
# --------------------------------------------------------------------------------------


def test_live_view_decodes_every_frame_in_order_with_low_latency(edge_factory, camera_factory,
                                                                 viewers):
    edge, cam = start_edge(edge_factory, camera_factory, cam_kw={"fps": 15, "gop": 15})
    c = viewers()
    c.connect(edge.d.base_url, "door", edge.token)
    r = c.reply
    assert r.status == 201 and r.content_type == "application/sdp"
    assert re.fullmatch(r"/whep/door/[^/?#]+", c.location), c.location
    assert c.etag, "201 without an ETag"
    # Non-trickle on the edge's side: its candidates are all in the answer, on the
    # configured webrtc_addresses only.
    cands = answer_candidates(c.answer_sdp)
    assert cands and set(cands) == {"127.0.0.1"}, c.answer_sdp
    assert re.search(r"^a=rtpmap:\d+ H264/90000", c.answer_sdp, re.M), c.answer_sdp

    codes = collect_for(c, 5.0, timeout=15)
    assert len(codes) >= 60, c.summary()
    assert c.sizes == {(W, H)}, c.summary()
    nos = [x.frame_no for x in codes]
    assert strictly_increasing(nos), nos
    # Loopback: nothing lost; allow a couple of frames the decoder may have refused.
    missing = nos[-1] - nos[0] + 1 - len(nos)
    assert missing <= 2, (missing, nos)
    assert c.undecodable == 0, c.summary()
    # Latency camera -> edge -> WebRTC -> decoded, once past the cached GOP at the start
    # (whose frames are up to a GOP old by design).
    steady = [x for x in codes if x.recv_ms >= codes[0].recv_ms + 1500]
    lat = [x.recv_ms - x.wall_ms for x in steady]
    assert len(steady) >= 15, codes
    assert max(lat) < 1500, f"latency ms: max {max(lat)}, median {statistics.median(lat)}"
    assert max(x.recv_ms - x.wall_ms for x in codes) < 1500 + 1000 * cam.gop / cam.fps + 500
    assert 0.85 <= playback_rate(codes, skip_s=1.5, min_span_s=2) <= 1.15  # real time

    # Trickle PATCH is accepted (we have nothing to add but end-of-candidates).
    assert c.patch(c.ice_sdpfrag()).status == 204
    assert viewer_count(edge, "door") == 1
    assert whep_sessions_gauge(edge) == 1
    r = c.close()
    assert r.status == 200, r
    edge.wait_for(lambda: viewer_count(edge, "door") == 0, 5, "the session gone after DELETE")
    assert whep_sessions_gauge(edge) == 0


# --------------------------------------------------------------------------------------
# b. first frame fast, whatever the GOP (the edge keeps the current GOP)
# --------------------------------------------------------------------------------------


def test_first_frame_arrives_fast_whatever_the_gop(edge_factory, camera_factory, viewers):
    edge, cam = start_edge(edge_factory, camera_factory, cam_kw={"fps": 15, "gop": 60})  # 4 s GOP
    time.sleep(5)  # a full GOP in the cache
    latencies = []
    for attempt in range(5):
        c = viewers()
        c.connect(edge.d.base_url, "door", edge.token)
        latencies.append(c.wait_first_frame(timeout=10))
        c.wait_frames(1, timeout=5)  # and it is a whole picture, frame code readable
        assert c.close().status == 200
        time.sleep(0.9)  # the next attempt lands elsewhere in the 4 s GOP
    assert max(latencies) < 1.5, f"POST -> first decoded frame (s): {latencies}"


def test_sub_stream_is_pulled_on_demand_and_shared(edge_factory, camera_factory, viewers):
    main = camera_factory(width=W, height=H, fps=15, gop=15)
    sub = camera_factory(width=320, height=180, fps=15, gop=15)
    edge = edge_factory([camera_entry(main, "door", sub_url=sub.url)], **WHEP_CONF)
    edge.wait_state("door", "online")
    a, b = viewers(), viewers()
    # The first sub viewer waits for the on-demand RTSP session's first keyframe.
    a.connect(edge.d.base_url, "door", edge.token, stream="sub", timeout=20)
    a.wait_frames(10, timeout=15)
    assert a.sizes == {(320, 180)}, a.summary()
    # The second shares that session and starts on its cached keyframe.
    b.connect(edge.d.base_url, "door", edge.token, stream="sub")
    assert b.wait_first_frame(timeout=10) < 1.5
    b.wait_frames(10, timeout=15)
    assert b.sizes == {(320, 180)}
    # Main and sub side by side: the main viewer is unaffected.
    m = viewers()
    m.connect(edge.d.base_url, "door", edge.token)
    m.wait_frames(10, timeout=15)
    assert m.sizes == {(W, H)}
    assert viewer_count(edge, "door") == 3
    # The archive holds the main stream: playback of the sub stream is a clear 400;
    # a camera without sub_url too.
    offer = make_offer()
    now_ms = int(time.time() * 1000)
    detail = assert_problem(post_offer(edge.d.base_url, whep_path("door", stream="sub", start=now_ms - 1000),
                                       offer, edge.token), 400)
    assert "main" in detail, detail


def test_g711_audio_is_passed_through(edge_factory, camera_factory, viewers):
    edge, _ = start_edge(edge_factory, camera_factory, cam_kw={"audio": "pcmu"})
    c = viewers()
    c.connect(edge.d.base_url, "door", edge.token, audio=True)
    assert re.search(r"^m=audio [1-9]\d* ", c.answer_sdp, re.M), c.answer_sdp
    assert re.search(r"^a=rtpmap:0 PCMU/8000", c.answer_sdp, re.M), c.answer_sdp
    c.wait_frames(15, timeout=15)
    deadline = time.monotonic() + 10
    while c.audio_frames < 50 and time.monotonic() < deadline:  # 20 ms frames: 1 s of tone
        time.sleep(0.2)
    assert c.audio_frames >= 50, c.summary()
    assert c.close().status == 200
    # A camera without audio: the audio section is declined (port 0), video still plays.
    edge2, _ = start_edge(edge_factory, camera_factory, cam_id="yard")
    v = viewers()
    v.connect(edge2.d.base_url, "yard", edge2.token, audio=True)
    assert re.search(r"^m=audio 0 ", v.answer_sdp, re.M), v.answer_sdp
    v.wait_frames(15, timeout=15)
    assert v.audio_frames == 0


def test_lost_packets_are_resent_on_nack(edge_factory, camera_factory, viewers, monkeypatch):
    """aiortc loses every 20th video packet the first time it arrives (before SRTP, as
    the network would); its NACKs must bring each back from the edge's retransmission
    buffer, so every frame still decodes."""
    from aioice.ice import Connection

    original = Connection.recv
    dropped: set[int] = set()

    async def lossy(self):
        while True:
            data = await original(self)
            # SRTP keeps the RTP header in the clear: version 2, PT >= 96 is video here
            if len(data) > 12 and 128 <= data[0] < 192 and (data[1] & 0x7f) >= 96 \
                    and not 192 <= data[1] <= 223:
                seq = int.from_bytes(data[2:4], "big")
                if seq % 20 == 0 and seq not in dropped:
                    dropped.add(seq)
                    continue
            return data

    monkeypatch.setattr(Connection, "recv", lossy)
    edge, _ = start_edge(edge_factory, camera_factory, cam_kw={"fps": 15, "gop": 30})
    c = viewers()
    c.connect(edge.d.base_url, "door", edge.token)
    codes = collect_for(c, 6.0, timeout=15)
    assert len(dropped) >= 10, len(dropped)
    nos = [x.frame_no for x in codes]
    assert strictly_increasing(nos), nos
    assert nos[-1] - nos[0] + 1 - len(nos) <= 2, "frames lost despite NACK"
    v = edge.camera("door")["viewers"][0]
    assert v["nacks"] >= len(dropped) * 0.8, (v, len(dropped))
    assert v["retransmits"] >= len(dropped) * 0.8, (v, len(dropped))


def test_removing_the_camera_ends_all_its_viewers(edge_factory, camera_factory, viewers):
    cams = [camera_factory(width=W, height=H) for _ in range(2)]
    edge = edge_factory([camera_entry(cams[0], "door"), camera_entry(cams[1], "yard")],
                        **WHEP_CONF)
    edge.wait_state("door", "online")
    edge.wait_state("yard", "online")
    door = [viewers() for _ in range(3)]
    for c in door:
        c.connect(edge.d.base_url, "door", edge.token)
        c.wait_frames(5, timeout=15)
    yard = viewers()
    yard.connect(edge.d.base_url, "yard", edge.token)
    yard.wait_frames(5, timeout=15)
    assert whep_sessions_gauge(edge) == 4
    edge.write_cameras([camera_entry(cams[1], "yard")], version=2)
    # Every viewer of the removed camera is ended (not only the first), the other stays.
    edge.wait_for(lambda: whep_sessions_gauge(edge) == 1, 15, "door's three sessions ended")
    n = len(yard.codes)
    yard.wait_codes_after(n, 15, timeout=10)
    assert_problem(delete_session(edge.d.base_url, door[1].location, edge.token), 404)


@pytest.fixture
def turn_server(tmp_path):
    """coturn (Debian's turnserver) on 127.0.0.1 with one long-term user; yields (port, log)."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    port = free_port()
    lo = free_port()
    log = tmp_path / "turnserver.log"
    proc = subprocess.Popen(
        [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
         f"--listening-port={port}", "--allow-loopback-peers", "--lt-cred-mech",
         "--user=viewer:s3cret", "--realm=canopy", "--no-tls", "--no-dtls", "--no-cli",
         f"--min-port={40000 + lo % 20000}", f"--max-port={40000 + lo % 20000 + 50}",
         "--log-file=stdout", "--simple-log", "--verbose"],
        stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=10)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_media_through_a_turn_relay(edge_factory, camera_factory, viewers, turn_server, transport):
    port, log = turn_server
    edge, _ = start_edge(edge_factory, camera_factory, webrtc_turn=f"127.0.0.1:{port}",
                         webrtc_turn_transport=transport, webrtc_turn_user="viewer",
                         webrtc_turn_password="s3cret", webrtc_relay_only=True)
    c = viewers()
    c.connect(edge.d.base_url, "door", edge.token)
    cands = [line for line in c.answer_sdp.splitlines() if line.startswith("a=candidate:")]
    # Relay only: the edge's own addresses are not in the answer.
    assert cands and all(" typ relay " in line for line in cands), c.answer_sdp
    c.wait_frames(30, timeout=15)
    assert c.sizes == {(W, H)}
    assert viewer_count(edge, "door") == 1
    text = log.read_text(errors="replace")
    assert re.search(r"ALLOCATE.*success|allocation.*success", text, re.I | re.S), text[-2000:]
    assert c.close().status == 200


def test_turn_settings_are_checked_at_start(daemon_factory):
    # libnice takes IP literals only: a name is refused when the edge starts, not at the
    # first viewer.
    d = daemon_factory("edge", launch=False, webrtc_turn="turn.example.com:3478")
    d.start(wait=False)
    assert d.proc.wait(timeout=20) not in (0, None)
    assert "webrtc_turn" in d.log() and "turn.example.com" in d.log(), d.log()
    # relay only without a TURN server cannot work either.
    d2 = daemon_factory("edge", launch=False, webrtc_relay_only=True)
    d2.start(wait=False)
    assert d2.proc.wait(timeout=20) not in (0, None)
    assert "webrtc_relay_only" in d2.log(), d2.log()


def test_bad_parameters_are_named(edge_factory, camera_factory):
    edge, _ = start_edge(edge_factory, camera_factory)
    base, tok, offer = edge.d.base_url, edge.token, make_offer()
    for query, word in (({"stream": "third"}, "stream"), ({"stream": "sub"}, "sub_url"),
                        ({"start": "yesterday"}, "start"),
                        ({"start": str(int(time.time() * 1000) + 60_000)}, "future"),
                        ({"start": str(int(time.time() * 1000) - 5000), "speed": "3"}, "speed"),
                        ({"speed": "2"}, "playback")):
        path = "/whep/door?" + "&".join(f"{k}={v}" for k, v in query.items())
        detail = assert_problem(post_offer(base, path, offer, tok), 400)
        assert word in detail, (query, detail)
    # An offer whose only video section is sendonly cannot receive.
    sendonly = offer.replace("a=recvonly", "a=sendonly")
    assert sendonly != offer
    assert "receive" in assert_problem(post_offer(base, whep_path("door"), sendonly, tok), 400)
    assert viewer_count(edge, "door") == 0


# --------------------------------------------------------------------------------------
# c. playback from the archive, 1x and 2x
# --------------------------------------------------------------------------------------


def test_playback_from_the_archive_in_real_time_and_at_twice_the_speed(edge_factory,
                                                                      camera_factory, viewers):
    edge, cam = start_edge(edge_factory, camera_factory, cam_kw={"fps": 15, "gop": 15})
    gop_ms = 1000 * cam.gop / cam.fps
    time.sleep(20)

    start_ms = int(time.time() * 1000) - 10_000
    c = viewers()
    c.connect(edge.d.base_url, "door", edge.token, start=start_ms)
    codes = collect_for(c, 4.0, timeout=15)
    first = codes[0]
    assert start_ms - gop_ms - 100 <= first.wall_ms <= start_ms + 3000, (start_ms, first)
    assert strictly_increasing([x.frame_no for x in codes]), codes
    assert strictly_increasing([x.wall_ms for x in codes]), codes
    assert c.sizes == {(W, H)}
    # From the archive, not live: the pictures stay about 10 s behind.
    assert all(x.recv_ms - x.wall_ms > 7000 for x in codes[-10:]), codes[-10:]
    rate = playback_rate(codes)
    assert 0.85 <= rate <= 1.15, rate
    assert c.close().status == 200

    # 2x, with the start as RFC 3339 UTC.
    start2 = datetime.now(timezone.utc) - timedelta(seconds=15)
    start2_ms = int(start2.timestamp() * 1000)
    c2 = viewers()
    c2.connect(edge.d.base_url, "door", edge.token, start=start2, speed=2)
    codes2 = collect_for(c2, 4.5, timeout=15)
    assert start2_ms - gop_ms - 100 <= codes2[0].wall_ms <= start2_ms + 3000, (start2_ms, codes2[0])
    assert strictly_increasing([x.wall_ms for x in codes2]), codes2
    rate2 = playback_rate(codes2)
    assert 1.7 <= rate2 <= 2.3, f"speed=2 played at {rate2:.2f}x"
    assert c2.close().status == 200


def test_playback_carries_the_recorded_g711_audio(edge_factory, camera_factory, viewers):
    edge, cam = start_edge(edge_factory, camera_factory, cam_kw={"fps": 15, "gop": 15, "audio": "pcma"})
    time.sleep(12)
    start_ms = int(time.time() * 1000) - 8_000
    c = viewers()
    c.connect(edge.d.base_url, "door", edge.token, start=start_ms, audio=True)
    assert re.search(r"^m=audio [1-9]\d* ", c.answer_sdp, re.M), c.answer_sdp
    assert re.search(r"^a=rtpmap:8 PCMA/8000", c.answer_sdp, re.M), c.answer_sdp
    codes = collect_for(c, 4.0, timeout=15)
    assert all(x.recv_ms - x.wall_ms > 5000 for x in codes[-10:]), codes[-10:]  # the archive
    # Recorded audio comes at the pace of the picture: about 4 s of 20 ms frames.
    assert 150 <= c.audio_frames <= 260, c.summary()
    assert c.close().status == 200
    # At twice the speed there is no sound to send: the audio section is declined.
    c2 = viewers()
    c2.connect(edge.d.base_url, "door", edge.token, start=start_ms, speed=2, audio=True)
    assert re.search(r"^m=audio 0 ", c2.answer_sdp, re.M), c2.answer_sdp
    c2.wait_frames(15, timeout=15)
    assert c2.audio_frames == 0


# --------------------------------------------------------------------------------------
# d. errors
# --------------------------------------------------------------------------------------


def test_bad_requests_get_precise_problems(edge_factory, camera_factory):
    edge, _ = start_edge(edge_factory, camera_factory)
    base, tok = edge.d.base_url, edge.token
    offer = make_offer()
    path = whep_path("door")

    # 400: not SDP at all, empty, a broken m= line.
    assert_problem(post_offer(base, path, "hello, edge", tok), 400)
    assert_problem(post_offer(base, path, "", tok), 400)
    broken = re.sub(r"^m=video \d+ ", "m=video port ", offer, count=1, flags=re.M)
    assert broken != offer
    assert_problem(post_offer(base, path, broken, tok), 400)
    # 406: nothing the edge can send (VP8 only).
    vp8 = make_offer(video_codecs=["VP8"])
    assert "H264" not in vp8
    assert_problem(post_offer(base, path, vp8, tok), 406)
    # 415: a valid offer under the wrong media type.
    for ctype in ("text/plain", "application/json", "application/x-www-form-urlencoded"):
        assert_problem(post_offer(base, path, offer, tok, content_type=ctype), 415)
    # 404: unknown camera; unknown sessions (DELETE and PATCH).
    assert_problem(post_offer(base, whep_path("no-such-camera"), offer, tok), 404)
    assert_problem(delete_session(base, "/whep/door/no-such-session", tok), 404)
    r = http_request("PATCH", base + "/whep/door/no-such-session", "a=end-of-candidates\r\n",
                     {"Authorization": f"Bearer {tok}",
                      "Content-Type": "application/trickle-ice-sdpfrag"})
    assert_problem(r, 404)
    # None of that left a session behind.
    assert viewer_count(edge, "door") == 0


def test_tokens_admit_only_their_camera_and_archive_depth(edge_factory, camera_factory,
                                                          viewers):
    cams = [camera_factory(width=W, height=H) for _ in range(2)]
    edge = edge_factory([camera_entry(cams[0], "door"), camera_entry(cams[1], "yard")],
                        **WHEP_CONF)
    edge.wait_state("door", "online")
    edge.wait_state("yard", "online")
    base = edge.d.base_url
    offer = make_offer()

    # 401: no token, a garbage token.
    r = post_offer(base, whep_path("door"), offer, None)
    assert_problem(r, 401)
    r = post_offer(base, whep_path("door"), offer, "not.a.token")
    assert_problem(r, 401)
    # A viewer token works for its camera, for live view ...
    door = viewer_token(edge, "door", ttl_s=300, archive_depth_s=60)
    c = viewers()
    c.connect(base, "door", door)
    c.wait_frames(10, timeout=15)
    assert c.close().status == 200
    # ... and is refused for another camera: 403.
    detail = assert_problem(post_offer(base, whep_path("yard"), offer, door), 403)
    assert "yard" in detail or "camera" in detail, detail
    # Playback: within the token's archive depth is fine, beyond it is 403.
    time.sleep(12)
    now_ms = int(time.time() * 1000)
    c = viewers()
    c.connect(base, "door", door, start=now_ms - 10_000)
    c.wait_frames(5, timeout=15)
    assert c.close().status == 200
    shallow = viewer_token(edge, "door", ttl_s=300, archive_depth_s=5)
    assert_problem(post_offer(base, whep_path("door", start=now_ms - 10_000), offer, shallow), 403)
    # Without archive_depth_s a viewer token is for live view only.
    live_only = viewer_token(edge, "door", ttl_s=300)
    assert_problem(post_offer(base, whep_path("door", start=now_ms - 10_000), offer, live_only), 403)
    assert viewer_count(edge, "door") == 0


def test_expired_viewer_token_is_refused(edge_factory, camera_factory, viewers):
    edge, _ = start_edge(edge_factory, camera_factory)
    issued = time.time()
    tok = viewer_token(edge, "door", ttl_s=10)
    c = viewers()
    c.connect(edge.d.base_url, "door", tok)  # valid now
    assert c.close().status == 200
    # ttl 10 s plus the edge's 30 s of clock-skew leeway on "exp".
    time.sleep(max(0.0, issued + 10 + 30 + 2 - time.time()))
    assert_problem(post_offer(edge.d.base_url, whep_path("door"), make_offer(), tok), 401)


def test_viewer_limit_per_camera(edge_factory, camera_factory, viewers):
    edge, _ = start_edge(edge_factory, camera_factory, whep_max_viewers=2)
    base, tok = edge.d.base_url, edge.token
    a, b = viewers(), viewers()
    a.connect(base, "door", tok)
    b.connect(base, "door", tok)
    a.wait_frames(5, timeout=15)
    b.wait_frames(5, timeout=15)
    assert viewer_count(edge, "door") == 2
    # The third is refused, with a hint when to come back.
    r = post_offer(base, whep_path("door"), make_offer(), tok)
    assert_problem(r, 503)
    assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers
    assert int(r.headers["Retry-After"]) >= 1
    with pytest.raises(WhepHTTPError) as ei:
        viewers().connect(base, "door", tok)
    assert ei.value.reply.status == 503
    # One leaves: a newcomer gets in, and gets pictures.
    assert a.close().status == 200
    assert_problem(delete_session(base, a.location, tok), 404)  # already gone
    edge.wait_for(lambda: viewer_count(edge, "door") == 1, 5, "one viewer left")
    c = viewers()
    c.connect(base, "door", tok)
    c.wait_frames(10, timeout=15)
    assert viewer_count(edge, "door") == 2
    b.wait_codes_after(len(b.codes), 10, timeout=10)  # the other one never stopped


# --------------------------------------------------------------------------------------
# e. a viewer that vanishes is dropped after whep_session_timeout
# --------------------------------------------------------------------------------------


def test_vanished_viewer_is_dropped_after_the_session_timeout(edge_factory, camera_factory,
                                                             viewers):
    edge, _ = start_edge(edge_factory, camera_factory, whep_session_timeout="3s")
    base, tok = edge.d.base_url, edge.token
    keep, gone = viewers(), viewers()
    keep.connect(base, "door", tok)
    gone.connect(base, "door", tok)
    keep.wait_frames(15, timeout=15)
    gone.wait_frames(15, timeout=15)
    assert viewer_count(edge, "door") == 2
    assert whep_sessions_gauge(edge) == 2

    t0 = time.monotonic()
    gone.vanish()  # not one more packet: no DELETE, no RTCP, no STUN consent
    edge.wait_for(lambda: viewer_count(edge, "door") == 1, 10, "the vanished viewer dropped")
    dropped_after = time.monotonic() - t0
    # Not before its timeout: 3 s since its last packet (RTCP every 0.5-1.5 s).
    assert dropped_after >= 1.0, dropped_after
    assert whep_sessions_gauge(edge) == 1
    assert_problem(delete_session(base, gone.location, tok), 404)
    # The viewer that keeps talking stays, and keeps getting pictures, well past 3 s.
    n = len(keep.codes)
    time.sleep(6)  # 90 frames at 15 fps; 60 leaves room for a loaded machine
    assert len(keep.codes) >= n + 60, keep.summary()
    assert viewer_count(edge, "door") == 1
    assert keep.connection_state == "connected", keep.summary()


# --------------------------------------------------------------------------------------
# f. Chromium
# --------------------------------------------------------------------------------------


def test_chromium_plays_the_live_view(edge_factory, camera_factory, browser):  # noqa: F811
    edge, _ = start_edge(edge_factory, camera_factory, cam_kw={"fps": 15, "gop": 30})
    tok = viewer_token(edge, "door")  # what a browser gets, not the admin token
    # The page is another origin: the preflight Chromium will send must pass.
    r = edge.d.request("OPTIONS", "/whep/door", headers={
        "Origin": browser.pages.origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert r.status in (200, 204), r.text
    assert r.headers.get("Access-Control-Allow-Origin") in ("*", browser.pages.origin)
    methods = (r.headers.get("Access-Control-Allow-Methods") or "").upper()
    assert "POST" in methods and "DELETE" in methods, methods
    allowed = (r.headers.get("Access-Control-Allow-Headers") or "").lower()
    assert "authorization" in allowed and "content-type" in allowed, allowed

    page = browser.open_whep(edge.d.base_url + "/whep/door", tok)
    try:
        before, after = page.wait_frames_growing(2.0, min_growth=15, timeout=20)
    except AssertionError as e:
        raise AssertionError(f"{e}\nedge viewers: {edge.camera('door').get('viewers')}\n"
                             f"edge log:\n{edge.d.log()[-3000:]}") from None
    assert (after["videoWidth"], after["videoHeight"]) == (W, H), after
    assert (after["codec"] or "").lower() == "video/h264", after
    assert re.fullmatch(r"/whep/door/[^/?#]+", after["location"] or ""), after  # exposed
    assert viewer_count(edge, "door") == 1
    assert page.stop() == 200  # DELETE from the page, through CORS
    edge.wait_for(lambda: viewer_count(edge, "door") == 0, 5, "the browser's session gone")
