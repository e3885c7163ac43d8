"""janus_peer.py: Janus 1.x with only its streaming plugin, as the peer of the edge's WHEP live view.

Janus runs from a private configuration folder (janus.jcfg, the streaming plugin, the HTTP
transport on 127.0.0.1:<free port>; no other plugin, transport, logger or event handler;
no STUN; IPv4 host candidates on one address only, see host_ipv4). Its streaming plugin gets "rtp"
mountpoints for H.264 on local UDP ports, fed by GStreamer re-packetising the camera's
RTSP stream (rtspsrc ! rtph264depay ! rtph264pay ! multiudpsink), so Janus relays the
same H.264 the edge gets, without transcoding.

JanusClient speaks the Janus HTTP API (create a session, attach janus.plugin.streaming,
"watch" -> Janus's JSEP offer, "start" with the viewer's answer, long-poll for events).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import requests

JANUS = "/usr/bin/janus"
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
H264_FMTP = "profile-level-id=42e01f;packetization-mode=1"


def _free_udp_pair() -> int:
    """An even UDP port whose successor is free too (Janus binds RTP only, but be safe)."""
    import socket

    for _ in range(100):
        port = random.randrange(20000, 30000, 2)
        socks = []
        try:
            for p in (port, port + 1):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port pair")


def host_ipv4() -> str:
    """The first non-loopback IPv4 address: Janus never gathers loopback candidates (it
    skips IFF_LOOPBACK interfaces whatever ice_enforce_list says), so its ICE runs on
    this address; traffic to a local address stays on the loopback device all the same."""
    import netifaces

    for iface in netifaces.interfaces():
        for a in netifaces.ifaddresses(iface).get(netifaces.AF_INET, []):
            if not a["addr"].startswith("127."):
                return a["addr"]
    raise RuntimeError("Janus needs a non-loopback IPv4 address for its ICE candidates")


class Janus:
    """A private Janus. mountpoints: {id: {"name": str, "videobufferkf": bool}}."""

    def __init__(self, work: Path, http_port: int, mountpoints: dict[int, dict]):
        self.work = work
        self.http_port = http_port
        self.base = f"http://127.0.0.1:{http_port}/janus"
        self.ice_ip = host_ipv4()
        conf = work / "janus-conf"
        for sub in ("plugins", "transports", "none"):
            (conf / sub).mkdir(parents=True, exist_ok=True)
        # Only what we use is in the folders Janus scans: nothing else gets loaded.
        (conf / "plugins" / "libjanus_streaming.so").symlink_to(JANUS_LIB / "plugins" / "libjanus_streaming.so")
        (conf / "transports" / "libjanus_http.so").symlink_to(JANUS_LIB / "transports" / "libjanus_http.so")
        (conf / "janus.jcfg").write_text(f"""general: {{
	configs_folder = "{conf}"
	plugins_folder = "{conf}/plugins"
	transports_folder = "{conf}/transports"
	events_folder = "{conf}/none"
	loggers_folder = "{conf}/none"
	debug_level = 3
	server_name = "canopy-bench"
	session_timeout = 0
	interface = "{self.ice_ip}"
}}
certificates: {{
}}
media: {{
	ipv6 = false
	no_media_timer = 0
}}
nat: {{
	nice_debug = false
	ignore_mdns = true
	ice_enforce_list = "{self.ice_ip}"
}}
plugins: {{
}}
transports: {{
}}
loggers: {{
}}
events: {{
	broadcast = false
}}
""")
        (conf / "janus.transport.http.jcfg").write_text(f"""general: {{
	json = "plain"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
""")
        self.ports: dict[int, int] = {}
        lines = ["general: {\n}\n"]
        for mid, m in mountpoints.items():
            port = _free_udp_pair()
            self.ports[mid] = port
            lines.append(f"""{m["name"]}: {{
	type = "rtp"
	id = {mid}
	description = "{m["name"]}"
	audio = false
	video = true
	videoport = {port}
	videoiface = "127.0.0.1"
	videopt = 96
	videocodec = "h264"
	videofmtp = "{H264_FMTP}"
	videobufferkf = {"true" if m["videobufferkf"] else "false"}
}}
""")
        (conf / "janus.plugin.streaming.jcfg").write_text("".join(lines))
        self.log_path = work / "janus.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([JANUS, "-F", str(conf), "-o", "-N", "-L", str(self.log_path)],
                                     stdout=subprocess.DEVNULL, stderr=self.log, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("janus exited: " + self.log_text()[-3000:])
            try:
                info = requests.get(self.base + "/info", timeout=2).json()
                if "janus.plugin.streaming" in info.get("plugins", {}):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("janus did not start: " + self.log_text()[-3000:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


class Feeder:
    """GStreamer: the camera's RTSP stream (over TCP, as the edge pulls it), depayloaded and
    re-packetised as RTP (PT 96, SPS/PPS before every IDR) to the mountpoints' UDP ports."""

    def __init__(self, rtsp_url: str, ports: list[int], log_path: Path):
        clients = ",".join(f"127.0.0.1:{p}" for p in ports)
        self.argv = ["gst-launch-1.0", "-q", "rtspsrc", f"location={rtsp_url}", "latency=0", "protocols=tcp",
                     "!", "rtph264depay", "!", "rtph264pay", "config-interval=-1", "pt=96",
                     "!", "multiudpsink", f"clients={clients}", "sync=false", "async=false"]
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()


class JanusError(RuntimeError):
    pass


def _tid() -> str:
    return "%016x" % random.getrandbits(64)


class JanusClient:
    """One viewer's Janus session with a handle on the streaming plugin (blocking calls:
    run them in an executor from asyncio)."""

    def __init__(self, base: str):
        self.base = base
        self.http = requests.Session()
        r = self._post(base, {"janus": "create"})
        self.session = r["data"]["id"]
        r = self._post(f"{base}/{self.session}", {"janus": "attach", "plugin": "janus.plugin.streaming"})
        self.handle = r["data"]["id"]
        self.url = f"{base}/{self.session}/{self.handle}"
        self.pending: list[dict] = []

    def _post(self, url: str, body: dict) -> dict:
        body = dict(body, transaction=_tid())
        r = self.http.post(url, json=body, timeout=10).json()
        if r.get("janus") == "error":
            raise JanusError(r["error"])
        return r

    def _events(self, timeout: float) -> list[dict]:
        r = self.http.get(f"{self.base}/{self.session}", params={"maxev": 10, "rid": int(time.time() * 1000)},
                          timeout=timeout + 35).json()
        return r if isinstance(r, list) else [r]

    def wait_event(self, pred, timeout: float = 15) -> dict:
        """Long-polls until an event satisfies pred (keeps the others)."""
        deadline = time.time() + timeout
        while True:
            for i, ev in enumerate(self.pending):
                if pred(ev):
                    return self.pending.pop(i)
            if time.time() > deadline:
                raise JanusError(f"timed out; events so far: {self.pending[-5:]}")
            for ev in self._events(deadline - time.time()):
                if ev.get("janus") == "keepalive":
                    continue
                data = ev.get("plugindata", {}).get("data", {})
                if "error" in data:
                    raise JanusError(data["error"])
                self.pending.append(ev)

    def watch(self, mountpoint: int) -> str:
        """Asks to watch; returns Janus's SDP offer."""
        r = self._post(self.url, {"janus": "message", "body": {"request": "watch", "id": mountpoint}})
        if "jsep" in r:  # synchronous answer (not what 1.1.2 does, but allowed)
            return r["jsep"]["sdp"]
        return self.wait_event(lambda e: "jsep" in e)["jsep"]["sdp"]

    def start(self, answer_sdp: str) -> None:
        self._post(self.url, {"janus": "message", "body": {"request": "start"},
                              "jsep": {"type": "answer", "sdp": answer_sdp}})

    def close(self) -> None:
        try:
            self._post(f"{self.base}/{self.session}", {"janus": "destroy"})
        except (requests.RequestException, JanusError, ValueError):
            pass
        self.http.close()

