"""canopy-relay SFU: one camera pulled once from its edge and fanned out to many viewers.

Set-up: canopy-testcam (RTSP) -> canopy-edge (WHEP) -> canopy-relay (SFU, plain-WHEP
upstream to the co-located edge: sfu_edge_url + sfu_edge_token_file) -> aiortc viewers at
POST /sfu/whep/<camera> (bearer sfu_viewer_token). Every viewer decodes for real and reads
the test camera's frame codes.

Contract under test: one upstream WebRTC session per camera however many viewers (the
edge's own counters: one WHEP session, one stream's worth of bytes), every viewer has its
own DTLS-SRTP, viewers' NACKs are served from the relay's buffer, a viewer that stops
reading does not stop the others, the upstream closes after the last viewer leaves.
"""

from __future__ import annotations

import re
import time

import pytest

from fixtures.edge import camera_entry
from fixtures.whep import WhepClient, close_all, http_request, make_offer, post_offer

CAM = "door"
TOKEN = "sfu-test-viewer-token-0123456789"


def metrics(d) -> dict:
    r = d.get("/metrics")
    assert r.status == 200
    out = {}
    for line in r.text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def wait_until(pred, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@pytest.fixture
def sfu(daemon_factory, edge_factory, camera_factory):
    cam = camera_factory(width=640, height=360, fps=15, gop=30, bitrate=800)
    edge = edge_factory([camera_entry(cam, CAM)], webrtc_addresses="127.0.0.1")
    edge.wait_state(CAM, "online")
    relay = daemon_factory("relay", sfu_edge_url=edge.d.base_url,
                           sfu_edge_token_file=str(edge.data / "admin.token"),
                           sfu_viewer_token=TOKEN, sfu_webrtc_addresses="127.0.0.1",
                           sfu_linger="1s")
    return edge, relay


@pytest.fixture
def viewers():
    made: list[WhepClient] = []

    def new(**kw) -> WhepClient:
        c = WhepClient(name=f"sfu{len(made)}", **kw)
        made.append(c)
        return c

    yield new
    close_all(made)


def edge_sessions(edge) -> list:
    return edge.camera(CAM)["viewers"]


def join(relay, new, **kw) -> WhepClient:
    return new(**kw).connect(relay.base_url + "/sfu", CAM, TOKEN)


def test_five_viewers_one_upstream(sfu, viewers):
    edge, relay = sfu
    clients = [join(relay, viewers) for _ in range(5)]
    for c in clients:
        codes = c.wait_frames(20, timeout=20)
        nums = [s.frame_no for s in codes]
        assert nums == sorted(nums), f"frames out of order: {nums[:40]}"
        # every decoded picture is whole: its frame code reads (a broken one would not)
        assert c.undecodable <= 1, c.summary()
    # viewers after the first start from the relay's keyframe cache, not the next keyframe
    # (GOP 2 s here)
    for c in clients[1:]:
        assert c.first_frame_latency_s < 1.0, [(x.first_frame_latency_s, x.codes[0]) for x in clients]
    # every viewer has its own DTLS association: distinct fingerprints are not ours to see,
    # but distinct ICE credentials and SSRCs in the answers are
    ufrags = {re.search(r"a=ice-ufrag:(\S+)", c.answer_sdp).group(1) for c in clients}
    ssrcs = {re.search(r"a=ssrc:(\d+)", c.answer_sdp).group(1) for c in clients}
    assert len(ufrags) == 5 and len(ssrcs) == 5

    # the edge serves exactly one session: the relay's upstream
    sess = edge_sessions(edge)
    assert len(sess) == 1, sess
    em = metrics(edge.d)
    assert em["canopy_whep_sessions"] == 1
    assert em["canopy_whep_sessions_total"] == 1

    # one stream's worth of bytes upstream, five downstream
    time.sleep(3)
    m0, e0 = metrics(relay), edge_sessions(edge)[0]["bytes_sent"]
    time.sleep(4)
    m1, e1 = metrics(relay), edge_sessions(edge)[0]["bytes_sent"]
    up = m1["canopy_sfu_upstream_bytes_total"] - m0["canopy_sfu_upstream_bytes_total"]
    down = m1["canopy_sfu_bytes_forwarded_total"] - m0["canopy_sfu_bytes_forwarded_total"]
    edge_bytes = e1 - e0
    assert up > 100_000, (up, m1)
    # the edge's count includes RTP headers and the SRTP tag (~3%); payload upstream is the rest
    assert 0.85 < up / edge_bytes < 1.02, (up, edge_bytes)
    assert 4.5 < down / up < 5.5, (down, up)
    assert m1["canopy_sfu_upstreams"] == 1
    assert m1["canopy_sfu_viewers"] == 5
    assert m1["canopy_sfu_upstreams_total"] == 1


def test_stalled_viewer_does_not_stop_others(sfu, viewers):
    edge, relay = sfu
    clients = [join(relay, viewers) for _ in range(3)]
    for c in clients:
        c.wait_frames(10, timeout=20)
    clients[0].vanish()  # no more packets out, nothing read: a frozen viewer
    before = [len(c.codes) for c in clients[1:]]
    for c, n in zip(clients[1:], before):
        new = c.wait_codes_after(n, 60, timeout=15)  # 4 s of frames at 15 fps
        nums = [s.frame_no for s in new]
        assert nums == sorted(nums)
    assert len(edge_sessions(edge)) == 1


class LossyClient(WhepClient):
    """Drops every 25th incoming RTP packet before aiortc sees it: aiortc NACKs the gap."""

    dropped = 0

    def drop_some(self):
        async def patch():
            for t in self._pc.getTransceivers():
                tr = t.receiver.transport
                orig = tr._handle_rtp_data
                count = [0]

                async def lossy(data, arrival_time_ms, _orig=orig, _c=count):
                    _c[0] += 1
                    if _c[0] % 25 == 0:
                        self.dropped += 1
                        return
                    await _orig(data, arrival_time_ms)

                tr._handle_rtp_data = lossy
        self._lt.run(patch(), 5)


def test_nacks_served_from_relay_buffer(sfu, viewers):
    edge, relay = sfu
    lossy = LossyClient(name="lossy")
    try:
        lossy.connect(relay.base_url + "/sfu", CAM, TOKEN)
        lossy.wait_frames(5, timeout=20)
        before = metrics(relay)["canopy_sfu_nacks_served_total"]
        lossy.drop_some()
        n0 = len(lossy.codes)
        lossy.wait_codes_after(n0, 45, timeout=15)
        wait_until(lambda: metrics(relay)["canopy_sfu_nacks_served_total"] > before, 10,
                   "NACKs served by the relay")
        assert lossy.dropped > 0
        # the edge heard none of it: the relay answered from its own buffer
        assert edge_sessions(edge)[0]["nacks"] == 0
    finally:
        lossy.close()


def test_last_viewer_leaves_upstream_closed(sfu, viewers):
    edge, relay = sfu
    clients = [join(relay, viewers) for _ in range(2)]
    for c in clients:
        c.wait_frames(5, timeout=20)
    assert len(edge_sessions(edge)) == 1
    clients[0].close()
    time.sleep(2)  # past sfu_linger: one viewer is left, the upstream stays
    assert metrics(relay)["canopy_sfu_upstreams"] == 1
    n = len(clients[1].codes)
    clients[1].wait_codes_after(n, 15, timeout=10)
    clients[1].close()
    wait_until(lambda: metrics(relay)["canopy_sfu_upstreams"] == 0, 10, "the upstream closed")
    wait_until(lambda: not edge_sessions(edge), 10, "the edge's session ended (WHEP DELETE)")
    m = metrics(relay)
    assert m["canopy_sfu_viewers"] == 0
    assert m["canopy_sfu_upstreams_closed_total"] == 1
    # a new viewer opens a new upstream
    c = join(relay, viewers)
    c.wait_frames(5, timeout=20)
    assert metrics(relay)["canopy_sfu_upstreams_total"] == 2


def test_refusals(sfu):
    edge, relay = sfu
    base = relay.base_url + "/sfu"
    offer = make_offer()
    r = post_offer(base, f"/whep/{CAM}", offer, None)
    assert r.status == 401
    r = post_offer(base, f"/whep/{CAM}", offer, "wrong")
    assert r.status == 401
    r = post_offer(base, f"/whep/{CAM}", "v=0\r\nbogus\r\n", TOKEN)
    assert r.status == 400 and "malformed offer" in r.detail
    r = post_offer(base, f"/whep/{CAM}", offer, TOKEN, content_type="text/plain")
    assert r.status == 415
    vp8 = make_offer(video_codecs=["VP8"])
    r = post_offer(base, f"/whep/{CAM}", vp8, TOKEN)
    assert r.status == 406
    # a camera the edge does not have: the edge's refusal comes back as 502
    r = post_offer(base, "/whep/nosuchcam", offer, TOKEN)
    assert r.status == 502 and "404" in r.detail, r.text
    r = http_request("DELETE", base + f"/whep/{CAM}/nosuchviewer", None,
                     {"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 404
    m = metrics(relay)
    assert m['canopy_sfu_rejected_total{reason="unauthorized"}'] >= 2
    assert m['canopy_sfu_rejected_total{reason="upstream"}'] >= 1
    assert not edge_sessions(edge)


def test_edge_gone_closes_viewers(sfu, viewers):
    edge, relay = sfu
    clients = [join(relay, viewers) for _ in range(2)]
    for c in clients:
        c.wait_frames(5, timeout=20)
    assert edge.d.stop() == 0  # the edge says goodbye (RTCP BYE) to its one viewer, the relay
    wait_until(lambda: metrics(relay)["canopy_sfu_upstreams"] == 0, 10, "the upstream closed")
    m = metrics(relay)
    assert m["canopy_sfu_viewers"] == 0, m
    # nobody to pull from now: the next viewer is told why
    r = post_offer(relay.base_url + "/sfu", f"/whep/{CAM}", make_offer(), TOKEN)
    assert r.status == 502 and "connect" in r.detail, r.text
    assert "canopy_sfu_upstream_bad_total" in m and "canopy_sfu_upstream_nacked_total" in m
