"""canopy-edge's packet-loss metric end to end: a camera over RTP/UDP in a network namespace of
its own, where iptables drops a random 5 % of the UDP packets the edge receives.

The camera, the edge and this test's HTTP requests all live in the namespace (the test
thread enters it with setns(2); processes it starts inherit it, as with ``ip netns exec``),
so nothing in the host's network changes. ``canopy_camera_packets_lost_total`` must stay 0
without the rule, and with it must match what iptables says it dropped, while recording
goes on."""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import subprocess
import time
from datetime import datetime, timezone

import pytest

from fixtures.edge import camera_entry

CLONE_NEWNET = 0x40000000
PREFIX = "canopy-loss-"
_libc = ctypes.CDLL(None, use_errno=True)


def _sh(argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {r.returncode}: {r.stderr.strip()}")
    return r


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


class LossNs:
    def __init__(self, name: str):
        self.name = name

    def run(self, *argv: str, check=True):
        return _sh(["ip", "netns", "exec", self.name, *argv], check=check)

    @contextlib.contextmanager
    def inside(self):
        """Moves the calling thread into the namespace for the block."""
        back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
        try:
            _setns(fd)
            try:
                yield self
            finally:
                _setns(back)
        finally:
            os.close(fd)
            os.close(back)

    def udp_counters(self) -> tuple[int, int]:
        """(UDP packets seen by INPUT, UDP packets the random rule dropped)."""
        out = self.run("iptables-save", "-c", "-t", "filter").stdout
        seen = dropped = 0
        for line in out.splitlines():
            m = re.match(r"^\[(\d+):\d+\] -A INPUT -p udp(.*)$", line)
            if m:
                if "-j DROP" in m.group(2):
                    dropped = int(m.group(1))
                else:
                    seen = int(m.group(1))
        return seen, dropped


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespace, iptables)"
    for tool in ("ip", "iptables"):
        if not shutil.which(tool):
            return f"{tool} is not installed (deploy/install-deps.sh)"
    return None


@pytest.fixture
def lossns():
    """A fresh network namespace with lo up and a counting UDP rule; deleted at the end
    (requested before the camera and edge fixtures, so it outlives their processes)."""
    why = _unavailable()
    if why:
        pytest.skip(why)
    # leftovers of a killed run (their pid gone)
    for n in os.listdir("/run/netns") if os.path.isdir("/run/netns") else []:
        m = re.match(re.escape(PREFIX) + r"(\d+)-", n)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            _sh(["ip", "netns", "del", n], check=False)
    name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}"
    r = _sh(["ip", "netns", "add", name], check=False)
    if r.returncode != 0:
        pytest.skip(f"network namespaces unavailable: {r.stderr.strip()}")
    ns = LossNs(name)
    try:
        ns.run("ip", "link", "set", "lo", "up")
        r = ns.run("iptables", "-A", "INPUT", "-p", "udp", check=False)  # counts every UDP packet
        if r.returncode != 0:
            pytest.skip(f"iptables unusable in a namespace: {r.stderr.strip()}")
        yield ns
    finally:
        _sh(["ip", "netns", "del", name], check=False)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_iso(s: str) -> float:
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def lost_metric(edge, cam_id: str) -> int:
    m = edge.d.get("/metrics").text
    return int(re.search(rf'^canopy_camera_packets_lost_total{{camera="{cam_id}"}} (\d+)$', m,
                         re.M).group(1))


def test_packet_loss_is_counted_end_to_end(lossns, edge_factory, camera_factory):
    with lossns.inside():
        cam = camera_factory(width=640, height=360, fps=15, gop=15, bitrate=1200)
        edge = edge_factory([camera_entry(cam, "lossy", transport="udp")], segment_duration="5s",
                            rtsp_timeout="5s")
        edge.wait_state("lossy", "online")
        t_online = time.time()

        # Without the rule: nothing is lost on loopback.
        time.sleep(10)
        seen0, _ = lossns.udp_counters()
        assert seen0 > 500, f"only {seen0} UDP packets: is the camera really on RTP/UDP?"
        assert lost_metric(edge, "lossy") == 0
        assert edge.camera("lossy")["status"]["counters"]["packets_lost"] == 0

        lossns.run("iptables", "-A", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
                   "--probability", "0.05", "-j", "DROP")
        time.sleep(25)
        seen1, dropped = lossns.udp_counters()
        lossns.run("iptables", "-D", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random",
                   "--probability", "0.05", "-j", "DROP")
        time.sleep(3)  # FFmpeg reports a gap when the packet after it arrives (or its queue times out)
        lost = lost_metric(edge, "lossy")
        rate = dropped / (seen1 - seen0)
        print(f"udp packets {seen1 - seen0}, dropped {dropped} ({rate:.3%}), reported lost {lost}")
        assert 0.03 <= rate <= 0.07, rate  # iptables did what was asked
        assert lost > 0
        # The metric counts what was dropped: RTCP packets (about one a second) are dropped
        # too but are not in the RTP sequence, and a gap in a burst counts once per packet.
        assert 0.8 * dropped - 5 <= lost <= dropped + 5, (lost, dropped)

        # Recording went on through the loss and after it.
        time.sleep(3)
        st = edge.camera("lossy")["status"]
        assert st["state"] == "online" and st["recording"] is True, st
        assert st["counters"]["packets_lost"] == lost
        rec = edge.recordings("lossy", **{"from": iso(t_online - 60)})
        assert rec["ranges"], rec
        assert parse_iso(rec["ranges"][-1]["end"]) > time.time() - 8, rec
        assert parse_iso(rec["ranges"][0]["start"]) < t_online + 2, rec
        assert len(rec["ranges"]) == 1, rec  # no gap in the coverage
