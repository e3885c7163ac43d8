#!/usr/bin/python3
"""demo.py: runs the whole Canopy system on this machine under var/demo (make demo, demo-stop, demo-reset).

    deploy/demo/demo.py start    start (first run: create everything), or resume after stop
    deploy/demo/demo.py stop     stop every process; the data stays
    deploy/demo/demo.py reset    stop, then delete the state directory
    deploy/demo/demo.py status   show what runs

What runs: a private PostgreSQL cluster, canopy-central (HTTPS, its own CA), a canopy-relay,
two canopy-edge nodes (sites "HQ" and "Store 12" of tenant "Demo", enrolled with one-time
tokens) and four GStreamer RTSP test cameras (canopy-testcam), two per edge, configured
at central and pushed to the edges. `make demo` installs missing packages and builds first;
this script only uses what is built.

Environment (all optional):
    CANOPY_DEMO_DIR           state directory (default <repo>/var/demo)
    CANOPY_BIN_DIR            canopy-{central,edge,relay} (default <repo>/build/bin)
    CANOPY_TESTCAM            test camera binary (default <repo>/build/bin/canopy-testcam)
    CANOPY_PG_BINDIR          PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
    CANOPY_DEMO_PG_PORT       PostgreSQL             (default 8632)
    CANOPY_DEMO_CENTRAL_PORT  central HTTPS          (default 8600)
    CANOPY_DEMO_RELAY_PORT    relay HTTP             (default 8580)
    CANOPY_DEMO_TURN_PORT     relay TURN, UDP+TCP    (default 8578; used when the relay enrols)
    CANOPY_DEMO_EDGE1_PORT    edge of site HQ        (default 8610)
    CANOPY_DEMO_EDGE2_PORT    edge of site Store 12  (default 8611)
    CANOPY_DEMO_CAMERA_PORT   first of four consecutive RTSP ports (default 8654)

Every process runs in its own session and outlives this script; pid files are in
<state>/run. A port already taken stops the start before anything runs, naming the port
and the variable that moves it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("CANOPY_DEMO_DIR") or REPO / "var" / "demo").resolve()
BIN = Path(os.environ.get("CANOPY_BIN_DIR") or REPO / "build" / "bin").resolve()
TESTCAM = Path(os.environ.get("CANOPY_TESTCAM") or REPO / "build" / "bin" / "canopy-testcam")
PG_BINDIR = Path(os.environ.get("CANOPY_PG_BINDIR", "/usr/lib/postgresql/15/bin"))
HOST = "127.0.0.1"

# (key in state.json, environment variable, default, what uses it)
PORTS = [
    ("pg", "CANOPY_DEMO_PG_PORT", 8632, "PostgreSQL"),
    ("central", "CANOPY_DEMO_CENTRAL_PORT", 8600, "canopy-central"),
    ("relay", "CANOPY_DEMO_RELAY_PORT", 8580, "canopy-relay"),
    ("turn", "CANOPY_DEMO_TURN_PORT", 8578, "the relay's TURN listener (UDP and TCP)"),
    ("edge1", "CANOPY_DEMO_EDGE1_PORT", 8610, "canopy-edge of site HQ"),
    ("edge2", "CANOPY_DEMO_EDGE2_PORT", 8611, "canopy-edge of site Store 12"),
    ("camera", "CANOPY_DEMO_CAMERA_PORT", 8654, "the test cameras"),
]
NCAMERAS = 4

TENANT = "Demo"
DEMO_USER = "demo"
# edge name -> site, port key, cameras (key, name, videotestsrc pattern)
EDGES = [
    ("edge-hq", "HQ", "edge1", [("entrance", "HQ entrance", "ball"),
                                ("parking", "HQ parking", "smpte")]),
    ("edge-store12", "Store 12", "edge2", [("door", "Store 12 door", "pinwheel"),
                                           ("till", "Store 12 till", "gamut")]),
]


class DemoError(RuntimeError):
    pass


def say(msg: str) -> None:
    print(f"demo: {msg}", flush=True)


# -- state -------------------------------------------------------------------------------

def state_file() -> Path:
    return STATE / "state.json"


def load_state() -> dict:
    try:
        return json.loads(state_file().read_text())
    except FileNotFoundError:
        return {}


def save_state(st: dict) -> None:
    tmp = state_file().with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(st, f, indent=1)
    tmp.replace(state_file())


def write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def render_conf(values: dict) -> str:
    out = ["# written by deploy/demo/demo.py at every start; edits are overwritten"]
    for k, v in values.items():
        if isinstance(v, bool):
            v = "true" if v else "false"
        elif isinstance(v, str):
            v = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{k} = {v}")
    return "\n".join(out) + "\n"


def resolve_ports(st: dict) -> dict:
    """The environment wins; otherwise the ports of the first run; otherwise the defaults."""
    ports = {}
    for key, var, default, _ in PORTS:
        raw = os.environ.get(var)
        if raw:
            try:
                ports[key] = int(raw)
            except ValueError:
                raise DemoError(f"{var}={raw!r} is not a port number")
            last = ports[key] + (NCAMERAS - 1 if key == "camera" else 0)
            if not 1 <= ports[key] or last > 65535:
                raise DemoError(f"{var}={raw} is out of range")
        else:
            ports[key] = st.get("ports", {}).get(key, default)
    return ports


def check_ports(ports: dict) -> None:
    """Every port we are about to listen on must be free now; the first taken one ends the start."""
    wanted = []
    for key, var, _, what in PORTS:
        if key == "camera":
            base = ports[key]
            for i in range(NCAMERAS):
                wanted.append((base + i, what + f" (camera {i + 1} of {NCAMERAS} uses "
                               f"{base}+{i})", var))
        else:
            wanted.append((ports[key], what, var))
    seen = {}
    for port, what, var in wanted:
        if port in seen:
            raise DemoError(f"port {port} is given to both {seen[port]} and {what}; "
                            f"set {var} to another port")
        seen[port] = what
    for port, what, var in wanted:
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if "UDP" in what else [])
        for kind in kinds:
            s = socket.socket(socket.AF_INET, kind)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((HOST, port))
            except OSError as e:
                proto = "UDP" if kind == socket.SOCK_DGRAM else "TCP"
                raise DemoError(f"{proto} port {port} on {HOST} is already in use "
                                f"({e.strerror}); it is for {what}. Stop what uses it, or "
                                f"choose another port: {var}=<port> make demo") from None
            finally:
                s.close()


# -- processes ---------------------------------------------------------------------------

def run_dir() -> Path:
    return STATE / "run"


def log_dir() -> Path:
    return STATE / "logs"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def read_pidfile(name: str) -> tuple[int | None, list[str]]:
    """(pid, argv it was started with) if that process still runs with that argv."""
    try:
        rec = json.loads((run_dir() / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None, []
    pid, argv = rec.get("pid"), rec.get("argv", [])
    # guard against a reused pid: the same command line must be running
    if isinstance(pid, int) and pid_alive(pid) and cmdline(pid) == argv:
        return pid, argv
    return None, argv


# The processes this run started, by name: their exit status explains an early exit.
CHILDREN: dict[str, subprocess.Popen] = {}


def spawn(name: str, argv: list[str]) -> int:
    run_dir().mkdir(parents=True, exist_ok=True)
    log_dir().mkdir(parents=True, exist_ok=True)
    out = open(log_dir() / f"{name}.log", "ab")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, cwd=STATE)
    finally:
        out.close()
    (run_dir() / f"{name}.pid").write_text(json.dumps({"pid": proc.pid, "argv": argv}))
    CHILDREN[name] = proc
    return proc.pid


def how_it_ended(name: str) -> str:
    """' (exit status N)' or ' (killed by SIGX)' for a process this run started and that
    has ended; a crash leaves nothing in its log, so the message must say it."""
    proc = CHILDREN.get(name)
    rc = proc.poll() if proc else None
    if rc is None:
        return ""
    if rc < 0:
        try:
            return f" (killed by {signal.Signals(-rc).name})"
        except ValueError:
            return f" (killed by signal {-rc})"
    return f" (exit status {rc})"


def stop_process(name: str, timeout: float = 15) -> bool:
    pid, _ = read_pidfile(name)
    if pid is None:
        (run_dir() / f"{name}.pid").unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        say(f"{name} (pid {pid}) did not stop within {timeout:.0f}s of SIGTERM; killing it")
        os.kill(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.05)
    (run_dir() / f"{name}.pid").unlink(missing_ok=True)
    return True


def log_tail(name: str, n: int = 20) -> str:
    try:
        lines = (log_dir() / f"{name}.log").read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def wait_for(pred, timeout: float, what: str, name: str | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name is not None and read_pidfile(name)[0] is None:
            raise DemoError(f"{name} exited{how_it_ended(name)} while waiting for {what}; its log "
                            f"({log_dir() / (name + '.log')}) ends with:\n{log_tail(name)}")
        try:
            v = pred()
        except (OSError, ValueError, KeyError):
            v = None
        if v:
            return v
        time.sleep(interval)
    tail = f"; {name}'s log ends with:\n{log_tail(name)}" if name else ""
    raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}{tail}")


def listens(name: str, port: int) -> bool:
    """True when our process `name` itself holds the listening socket on port: a health
    answer from someone who took the port after the check must not pass for ours."""
    pid, _ = read_pidfile(name)
    if pid is None:
        return False
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                inodes.add(inode)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def ours_and_healthy(name: str, port: int, cafile: Path | None = None) -> bool:
    scheme = "https" if cafile else "http"
    return listens(name, port) and Http(f"{scheme}://{HOST}:{port}", cafile).healthy()


# -- PostgreSQL --------------------------------------------------------------------------

def pg_os_user() -> str | None:
    """initdb refuses root: as root the cluster runs as the postgres system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise DemoError("running as root but there is no 'postgres' system user "
                        "(deploy/install-deps.sh installs PostgreSQL, which creates it)")
    return "postgres"


def pg_base() -> Path:
    """The cluster's directory: <state>/pg, or (as root, when the postgres user cannot reach
    the state directory, e.g. under /root) a directory in /var/tmp that <state>/pg links to."""
    link = STATE / "pg"
    if link.is_symlink():
        return Path(os.readlink(link))
    if link.exists():
        return link
    user = pg_os_user()
    if user is None or _reachable_by(user, STATE):
        link.mkdir(mode=0o700)
        return link
    tag = hashlib.sha256(str(STATE).encode()).hexdigest()[:12]
    outside = Path("/var/tmp") / f"canopy-demo-pg-{tag}"
    outside.mkdir(mode=0o700, exist_ok=True)
    link.symlink_to(outside)
    say(f"the postgres user cannot reach {STATE}; the cluster lives in {outside}")
    return outside


def _reachable_by(user: str, path: Path) -> bool:
    r = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)],
                       capture_output=True)
    return r.returncode == 0


def pg_cmd(argv: list[str]) -> list[str]:
    user = pg_os_user()
    return argv if user is None else ["runuser", "-u", user, "--"] + argv


def pg_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LANG="C.UTF-8", TZ="UTC")
    return env


def pg_chown(base: Path) -> None:
    user = pg_os_user()
    if user is None:
        return
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(base):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for n in files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)


def pg_write_port(data: Path, port: int) -> None:
    """postgresql.auto.conf-style override that later starts rewrite (last setting wins)."""
    conf = data / "demo.conf"
    conf.write_text(f"port = {port}\n")
    pg_chown(conf.parent)


def pg_start(st: dict, ports: dict) -> None:
    for tool in ("initdb", "pg_ctl", "postgres", "createdb"):
        if not os.access(PG_BINDIR / tool, os.X_OK):
            raise DemoError(f"{PG_BINDIR / tool} not found: install PostgreSQL 15 "
                            "(deploy/install-deps.sh) or set CANOPY_PG_BINDIR")
    base = pg_base()
    data = base / "data"
    pwfile = STATE / "pg-password"
    if not (data / "PG_VERSION").exists():
        say(f"creating the PostgreSQL cluster in {data}")
        shutil.rmtree(data, ignore_errors=True)
        password = secrets.token_hex(16)
        write_secret(pwfile, password)
        tmp_pw = base / "initdb-pw"
        tmp_pw.write_text(password + "\n")
        (base / "sock").mkdir(exist_ok=True)
        pg_chown(base)
        r = subprocess.run(pg_cmd([str(PG_BINDIR / "initdb"), "-D", str(data), "-U", "canopy",
                                   "--pwfile", str(tmp_pw), "-E", "UTF8", "--locale=C",
                                   "--auth-local=trust", "--auth-host=scram-sha-256"]),
                           env=pg_env(), capture_output=True, text=True, cwd=base)
        tmp_pw.unlink(missing_ok=True)
        if r.returncode != 0:
            raise DemoError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        with open(data / "postgresql.conf", "a") as f:
            f.write("\n# canopy demo cluster: loopback only; the port is in demo.conf\n"
                    f"listen_addresses = '{HOST}'\n"
                    f"unix_socket_directories = '{base / 'sock'}'\n"
                    "max_connections = 50\n"
                    "shared_buffers = 64MB\n"
                    "timezone = 'UTC'\n"
                    "log_timezone = 'UTC'\n"
                    "include_if_exists = 'demo.conf'\n")
        st["pg_created"] = False
    pg_write_port(data, ports["pg"])
    pg_chown(base)
    r = subprocess.run(pg_cmd([str(PG_BINDIR / "pg_ctl"), "-D", str(data), "-l",
                               str(base / "postgres.log"), "-w", "-t", "60", "start"]),
                       env=pg_env(), capture_output=True, text=True, cwd=base)
    if r.returncode != 0:
        try:
            tail = (base / "postgres.log").read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        raise DemoError(f"PostgreSQL did not start:\n{r.stdout}{r.stderr}\n{tail}")
    if not st.get("pg_created"):
        env = pg_env()
        env["PGPASSWORD"] = pwfile.read_text().strip()
        r = subprocess.run([str(PG_BINDIR / "createdb"), "-h", HOST, "-p", str(ports["pg"]),
                            "-U", "canopy", "canopy"], env=env, capture_output=True, text=True)
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise DemoError(f"createdb failed: {r.stderr}")
        st["pg_created"] = True
        save_state(st)


def pg_stop() -> bool:
    link = STATE / "pg"
    if not (link.exists() or link.is_symlink()):
        return False
    data = pg_base() / "data"
    if not (data / "postmaster.pid").exists():
        return False
    for mode in ("fast", "immediate"):
        r = subprocess.run(pg_cmd([str(PG_BINDIR / "pg_ctl"), "-D", str(data), "-m", mode,
                                   "-w", "-t", "30", "stop"]),
                           env=pg_env(), capture_output=True, text=True)
        if r.returncode == 0:
            return True
    say(f"pg_ctl stop failed: {r.stdout}{r.stderr}")
    return False


def pg_running() -> bool:
    link = STATE / "pg"
    if not (link.exists() or link.is_symlink()):
        return False
    data = pg_base() / "data"
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    return pid_alive(pid) and str(data) in cmdline(pid)


# -- HTTP --------------------------------------------------------------------------------

class Http:
    def __init__(self, base: str, cafile: Path | None = None):
        self.base = base.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=str(cafile)) if cafile else None

    def call(self, method: str, path: str, body=None, token: str | None = None,
             timeout: float = 15):
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"detail": raw.decode(errors="replace")}

    def ok(self, method: str, path: str, body=None, token: str | None = None):
        status, doc = self.call(method, path, body, token)
        if status not in (200, 201, 204):
            detail = (doc or {}).get("detail") if isinstance(doc, dict) else doc
            raise DemoError(f"{method} {path}: {status} {detail}")
        return doc

    def healthy(self) -> bool:
        try:
            return self.call("GET", "/healthz", timeout=2)[0] == 200
        except (OSError, ssl.SSLError):
            return False


def gen_password() -> str:
    """Meets central's policy: 8-64 characters, at least three classes, not the user name."""
    while True:
        pw = secrets.token_urlsafe(12) + "-" + str(secrets.randbelow(90) + 10) + "Qz"
        if DEMO_USER not in pw.lower() and "admin" not in pw.lower():
            return pw


# -- components --------------------------------------------------------------------------

def binary(component: str) -> Path:
    p = BIN / f"canopy-{component}"
    if not os.access(p, os.X_OK):
        raise DemoError(f"{p} is not built: run `make` (or `make demo`, which builds first)")
    return p


def central_paths() -> dict:
    d = STATE / "central"
    return {"dir": d, "conf": d / "central.conf", "data": d / "data",
            "ca": d / "data" / "ca.pem", "admin_pw": d / "data" / "initial-admin-password"}


def start_cameras(ports: dict) -> None:
    if not os.access(TESTCAM, os.X_OK):
        raise DemoError(f"{TESTCAM} is not built: run `make`")
    i = 0
    for edge, _, _, cams in EDGES:
        for key, _, pattern in cams:
            port = ports["camera"] + i
            i += 1
            name = f"camera-{edge}-{key}"
            # small and slow on purpose: four encoders on a laptop next to everything else
            argv = [str(TESTCAM), "--port", str(port), "--path", "/cam", "--width", "640",
                    "--height", "360", "--fps", "15", "--gop", "30", "--bitrate", "500",
                    "--pattern", pattern]
            spawn(name, argv)
    i = 0
    for edge, _, _, cams in EDGES:
        for key, _, _ in cams:
            port = ports["camera"] + i
            i += 1
            name = f"camera-{edge}-{key}"
            wait_for(lambda n=name, p=port: listens(n, p), 20, f"test camera on port {port}",
                     name)


def camera_url(ports: dict, edge: str, key: str) -> str:
    i = 0
    for e, _, _, cams in EDGES:
        for k, _, _ in cams:
            if (e, k) == (edge, key):
                return f"rtsp://{HOST}:{ports['camera'] + i}/cam"
            i += 1
    raise KeyError(key)


def start_central(ports: dict) -> Http:
    p = central_paths()
    p["dir"].mkdir(exist_ok=True)
    pg_password = (STATE / "pg-password").read_text().strip()
    conf = {
        "node_name": "central-demo",
        "data_dir": str(p["data"]),
        "http_listen": HOST,
        "http_port": ports["central"],
        "db": f"host={HOST} port={ports['pg']} dbname=canopy user=canopy "
              f"password={pg_password}",
        "tls": True,
        "tls_names": "127.0.0.1,localhost",
        "log_level": "info",
    }
    if knows("central", "console_connect_src"):
        # the console's player POSTs WHEP to the relay; central adds relays' origins to its
        # policy by itself, but only every 10 s: named here, the console works at once
        conf["console_connect_src"] = f"http://{HOST}:{ports['relay']}"
    write_secret(p["conf"], render_conf(conf).rstrip("\n"))
    spawn("central", [str(binary("central")), "--config", str(p["conf"])])
    wait_for(lambda: p["ca"].exists(), 30, "central's CA certificate", "central")
    api = Http(f"https://{HOST}:{ports['central']}", p["ca"])
    wait_for(lambda: ours_and_healthy("central", ports["central"], p["ca"]), 30,
             "central /healthz", "central")
    return api


def login(api: Http, user: str, password: str) -> str:
    return api.ok("POST", "/api/v1/auth/login", {"username": user, "password": password,
                                                 "client_type": "demo"})["access_token"]


def provision(api: Http, st: dict, ports: dict) -> None:
    """Creates what is missing (tenant, user, sites, nodes, cameras) and brings camera URLs
    in line with the ports of this run. Ids are kept in state.json, so this is idempotent."""
    p = central_paths()
    if "tenant_id" not in st:
        admin_pw = p["admin_pw"].read_text().strip()
        tok = login(api, "admin", admin_pw)
        demo_pw = gen_password()
        write_secret(STATE / "demo-password", demo_pw)
        t = api.ok("POST", "/api/v1/tenants", {"name": TENANT, "username": DEMO_USER,
                                               "password": demo_pw,
                                               "display_name": "Demo administrator"},
                   token=tok)
        st["tenant_id"] = t["id"]
        st["first_run"] = True
        save_state(st)
    tok = login(api, DEMO_USER, (STATE / "demo-password").read_text().strip())
    st.setdefault("sites", {})
    st.setdefault("nodes", {})
    st.setdefault("cameras", {})
    for edge, site, _, cams in EDGES:
        if site not in st["sites"]:
            st["sites"][site] = api.ok("POST", "/api/v1/sites", {"name": site}, tok)["id"]
            save_state(st)
        if edge not in st["nodes"]:
            n = api.ok("POST", "/api/v1/nodes", {"site_id": st["sites"][site], "kind": "edge",
                                                 "name": edge}, tok)
            st["nodes"][edge] = n["id"]
            save_state(st)
        for key, name, _ in cams:
            cid = st["cameras"].get(f"{edge}/{key}")
            url = camera_url(ports, edge, key)
            if cid is None:
                c = api.ok("POST", "/api/v1/cameras", {
                    "node_id": st["nodes"][edge], "key": key, "name": name,
                    "config": {"main_url": url, "recording": "continuous",
                               "retention_days": 1}}, tok)
                st["cameras"][f"{edge}/{key}"] = c["id"]
                save_state(st)
            else:
                c = api.ok("GET", f"/api/v1/cameras/{cid}", token=tok)
                if c["config"].get("main_url") != url:
                    cfg = dict(c["config"], main_url=url)
                    api.ok("PATCH", f"/api/v1/cameras/{cid}", {"config": cfg}, tok)


def edge_paths(edge: str) -> dict:
    d = STATE / edge
    return {"dir": d, "conf": d / "edge.conf", "data": d / "data",
            "token": d / "data" / "admin.token", "enrolled": d / "data" / "uplink.json"}


def start_edges(api: Http, st: dict, ports: dict) -> None:
    tok = login(api, DEMO_USER, (STATE / "demo-password").read_text().strip())
    for edge, _, pkey, _ in EDGES:
        p = edge_paths(edge)
        p["dir"].mkdir(parents=True, exist_ok=True)  # data_dir: the edge makes it 0700
        conf = {
            "node_name": edge,
            "data_dir": str(p["data"]),
            "http_listen": HOST,
            "http_port": ports[pkey],
            "central_url": f"wss://{HOST}:{ports['central']}/uplink",
            "central_ca": str(central_paths()["ca"]),
            # footage of a demo is not precious: keep the disk from filling
            "archive_quota": "2G",
            # everything of the demo is on loopback, WebRTC media included
            "webrtc_addresses": HOST,
            "log_level": "info",
        }
        if not p["enrolled"].exists():
            # a fresh one-time token for every start until the edge has enrolled
            conf["enrol_token"] = api.ok(
                "POST", f"/api/v1/nodes/{st['nodes'][edge]}/enrolment-tokens", {}, tok)["token"]
        write_secret(p["conf"], render_conf(conf).rstrip("\n"))
        spawn(edge, [str(binary("edge")), "--config", str(p["conf"])])
    for edge, _, pkey, _ in EDGES:
        wait_for(lambda e=edge, port=ports[pkey]: ours_and_healthy(e, port), 30,
                 f"{edge} /healthz", edge)


def relay_paths() -> dict:
    d = STATE / "relay"
    return {"dir": d, "conf": d / "relay.conf", "data": d / "data"}


def knows(component: str, directive: str) -> bool:
    """Whether this build of a binary has a directive (its -t prints every one)."""
    r = subprocess.run([str(binary(component)), "-t"], capture_output=True, text=True,
                       timeout=10)
    return r.returncode == 0 and f"\n{directive} = " in r.stdout


def relay_enrols() -> bool:
    """Whether this canopy-relay can enrol into central (its config knows central_url)."""
    return knows("relay", "central_url")


def start_relay(api: Http, st: dict, ports: dict) -> None:
    """The relay, enrolled into central as a node of site HQ when the binary can enrol (then
    central hands it to the edges, which register with it, and answers live calls with it);
    standalone otherwise."""
    p = relay_paths()
    p["dir"].mkdir(exist_ok=True)
    conf = {
        "node_name": "relay-demo",
        "data_dir": str(p["data"]),
        "http_listen": HOST,
        "http_port": ports["relay"],
        "log_level": "info",
    }
    enrolled = st.get("relay_enrolled", False)
    if relay_enrols():
        tok = login(api, DEMO_USER, (STATE / "demo-password").read_text().strip())
        if "relay-demo" not in st["nodes"]:
            st["nodes"]["relay-demo"] = api.ok("POST", "/api/v1/nodes", {
                "site_id": st["sites"]["HQ"], "kind": "relay", "name": "relay-demo"}, tok)["id"]
            save_state(st)
        conf.update(central_url=f"wss://{HOST}:{ports['central']}/uplink",
                    central_ca=str(central_paths()["ca"]),
                    public_url=f"http://{HOST}:{ports['relay']}",
                    sfu_webrtc_addresses=HOST,
                    # TURN for viewers who cannot reach the edge directly (credentials come
                    # with central's live call)
                    turn_listen=f"{HOST}:{ports['turn']}",
                    ice_urls=f"turn:{HOST}:{ports['turn']}?transport=udp",
                    # central learns the relay's load (and that it is there) from these
                    load_report="2s")
        if not (p["data"] / "uplink.json").exists():
            conf["enrol_token"] = api.ok(
                "POST", f"/api/v1/nodes/{st['nodes']['relay-demo']}/enrolment-tokens", {},
                tok)["token"]
        enrolled = True
    st["relay_enrolled"] = enrolled
    save_state(st)
    write_secret(p["conf"], render_conf(conf).rstrip("\n"))
    spawn("relay", [str(binary("relay")), "--config", str(p["conf"])])
    wait_for(lambda: ours_and_healthy("relay", ports["relay"]), 20, "relay /healthz",
             "relay")
    if enrolled:
        wait_for(lambda: Http(f"http://{HOST}:{ports['relay']}").call("GET", "/health")[1]
                 .get("configured"), 20, "relay configured by central", "relay")


def wait_registered(st: dict, ports: dict, timeout: float) -> None:
    """Both edges hold their outbound registration to the relay (central told them of it)."""
    relay_id = st["nodes"]["relay-demo"]
    for edge, _, pkey, _ in EDGES:
        def registered(edge=edge, pkey=pkey):
            token = edge_paths(edge)["token"].read_text().strip()
            doc = Http(f"http://{HOST}:{ports[pkey]}").ok("GET", "/api/v1/cameras", token=token)
            return any(r.get("id") == relay_id and r.get("state") == "registered"
                       for r in doc.get("relays") or [])
        wait_for(registered, timeout, f"{edge} registered with the relay", edge)


def wait_live(api: Http, st: dict, timeout: float) -> None:
    """Central answers the live call (it has heard the relay report the edges)."""
    tok = login(api, DEMO_USER, (STATE / "demo-password").read_text().strip())
    cam = st["cameras"]["edge-hq/entrance"]
    wait_for(lambda: api.call("POST", f"/api/v1/cameras/{cam}/live", {}, tok)[0] == 200,
             timeout, "central's live call to answer with the relay", "relay", interval=0.5)


def wait_online(api: Http, st: dict, timeout: float) -> list[dict]:
    tok = login(api, DEMO_USER, (STATE / "demo-password").read_text().strip())

    def check():
        items = api.ok("GET", "/api/v1/cameras?limit=100", token=tok)["items"]
        return items if len(items) == NCAMERAS and all(c["state"] == "online"
                                                       for c in items) else None
    try:
        return wait_for(check, timeout, "the four cameras online at central")
    except DemoError:
        items = api.ok("GET", "/api/v1/cameras?limit=100", token=tok)["items"]
        for c in items:
            say(f"  camera {c['key']}: {c['state']} {c.get('state_reason') or ''}")
        raise


# -- commands ----------------------------------------------------------------------------

PROCESS_NAMES = ([e for e, _, _, _ in EDGES] + ["relay", "central"] +
                 [f"camera-{e}-{k}" for e, _, _, cams in EDGES for k, _, _ in cams])


def running() -> dict:
    out = {n: read_pidfile(n)[0] for n in PROCESS_NAMES}
    out["postgresql"] = pg_running()
    return out


def cmd_start() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE, 0o755)  # the postgres user may need to traverse it
    st = load_state()
    now = running()
    if all(now.values()):
        say("already running")
        print_info(st, resolve_ports(st), first=False)
        return 0
    if any(now.values()):
        say("some processes were still running; stopping them for a clean start")
        cmd_stop(quiet=True)
    ports = resolve_ports(st)
    check_ports(ports)
    for c in ("central", "edge", "relay"):
        binary(c)
    resumed = "tenant_id" in st
    st["ports"] = ports
    save_state(st)
    say(("resuming" if resumed else "starting") + f" in {STATE}")
    try:
        pg_start(st, ports)
        say(f"PostgreSQL on {HOST}:{ports['pg']}")
        start_cameras(ports)
        say(f"{NCAMERAS} test cameras on rtsp://{HOST}:{ports['camera']}..{ports['camera'] + NCAMERAS - 1}")
        api = start_central(ports)
        say(f"central on https://{HOST}:{ports['central']}")
        provision(api, st, ports)
        start_edges(api, st, ports)
        say(f"edges on {HOST}:{ports['edge1']} (HQ) and {HOST}:{ports['edge2']} (Store 12)")
        start_relay(api, st, ports)
        say(f"relay on {HOST}:{ports['relay']}"
            + (" (enrolled; the edges register with it)" if st.get("relay_enrolled")
               else " (standalone)"))
        if st.get("relay_enrolled"):
            wait_registered(st, ports, 30)
            wait_live(api, st, 30)
        wait_online(api, st, 60)
        say("the four cameras are online at central")
    except BaseException:
        say("start failed; stopping what was started (data kept; logs in "
            f"{log_dir()})")
        cmd_stop(quiet=True)
        raise
    first = st.pop("first_run", False)
    save_state(st)
    print_info(st, ports, first)
    return 0


def print_info(st: dict, ports: dict, first: bool) -> None:
    p = central_paths()
    demo_pw_file = STATE / "demo-password"
    url = f"https://{HOST}:{ports['central']}"
    print()
    print("Canopy demo is running.")
    print(f"  console     {url}/   (certificate from central's own CA: accept it in the")
    print(f"              browser, or import {p['ca']})")
    if first:
        print(f"  login       {DEMO_USER} / {demo_pw_file.read_text().strip()}"
              f"   (administrator of tenant \"{TENANT}\": sites HQ and Store 12)")
        print(f"  operator    admin / {p['admin_pw'].read_text().strip()}"
              "   (system tenant: creates tenants; sees none of their sites)")
        print("              these passwords are shown once; they are stored (mode 0600) in")
        print(f"              {demo_pw_file} and {p['admin_pw']}")
    else:
        print(f"  login       {DEMO_USER} / (password in {demo_pw_file})")
        print(f"  operator    admin / (password in {p['admin_pw']})")
    print(f"  logs        {log_dir()}")
    print("  stop        make demo-stop   (data kept; `make demo` resumes)")
    print("  wipe        make demo-reset")
    print()
    print("REST example (log in, then list the cameras):")
    print("--- rest example ---")
    print(rest_example(ports))
    print("--- end ---")
    print()
    if st.get("relay_enrolled"):
        print("WHEP example (live view through the relay: central's live call for camera HQ")
        print("entrance answers the relay's WHEP URL and a short-lived viewer token; the relay")
        print("brokers the session to the edge):")
        print("--- whep example ---")
        print(live_example(ports))
    else:
        print("WHEP example (live view straight from the HQ edge; this relay binary cannot")
        print("enrol into central yet, so it runs standalone):")
        print("--- whep example ---")
        print(whep_example(ports))
    print("--- end ---")
    print()


def rest_example(ports: dict) -> str:
    ca = shlex.quote(str(central_paths()["ca"]))
    pw = shlex.quote(str(STATE / "demo-password"))
    url = f"https://{HOST}:{ports['central']}/api/v1"
    return (
        f"TOKEN=$(curl -sf --cacert {ca} -H 'content-type: application/json' \\\n"
        f"  -d '{{\"username\":\"{DEMO_USER}\",\"password\":\"'\"$(cat {pw})\"'\"}}' \\\n"
        f"  {url}/auth/login | jq -r .access_token)\n"
        f"curl -sf --cacert {ca} -H \"Authorization: Bearer $TOKEN\" \\\n"
        f"  '{url}/cameras' | jq '.items[] | {{key, name, state}}'")


def whep_example(ports: dict) -> str:
    edge, _, pkey, cams = EDGES[0]
    cam = cams[0][0]
    admin_token = shlex.quote(str(edge_paths(edge)["token"]))
    base = f"http://{HOST}:{ports[pkey]}"
    page = urllib.parse.quote(str(REPO / "tests" / "integration" / "whep_page" / "whep.html"))
    return (
        "# a 10-minute viewer token for one camera (the edge's admin token stays on the box)\n"
        f"VIEWER=$(curl -sf -H \"Authorization: Bearer $(cat {admin_token})\" \\\n"
        f"  -H 'content-type: application/json' -d '{{\"camera\":\"{cam}\",\"ttl_s\":600}}' \\\n"
        f"  {base}/api/v1/viewer-tokens | jq -r .token)\n"
        "# any WHEP player: endpoint + bearer token; e.g. open this page in Chromium or Firefox\n"
        f"echo \"file://{page}?url={base}/whep/{cam}&token=$VIEWER\"")


def live_example(ports: dict) -> str:
    ca = shlex.quote(str(central_paths()["ca"]))
    url = f"https://{HOST}:{ports['central']}/api/v1"
    page = urllib.parse.quote(str(REPO / "tests" / "integration" / "whep_page" / "whep.html"))
    return (
        "# with $TOKEN from the REST example: the camera's id, then central's live call\n"
        f"CAM=$(curl -sf --cacert {ca} -H \"Authorization: Bearer $TOKEN\" \\\n"
        f"  '{url}/cameras?limit=100' | jq -r '.items[] | select(.key==\"entrance\") | .id')\n"
        f"LIVE=$(curl -sf --cacert {ca} -H \"Authorization: Bearer $TOKEN\" \\\n"
        f"  -H 'content-type: application/json' -d '{{}}' {url}/cameras/$CAM/live)\n"
        "# any WHEP player: endpoint + bearer token; e.g. open this page in Chromium or Firefox\n"
        f"echo \"file://{page}?url=$(jq -rn --argjson l \"$LIVE\" '$l.whep_url|@uri')"
        "&token=$(jq -rn --argjson l \"$LIVE\" '$l.token')\"")


def cmd_stop(quiet: bool = False) -> int:
    if not STATE.exists():
        if not quiet:
            say(f"nothing to stop ({STATE} does not exist)")
        return 0
    stopped = [n for n in PROCESS_NAMES if stop_process(n)]
    if pg_stop():
        stopped.append("postgresql")
    if not quiet:
        say(("stopped " + ", ".join(stopped)) if stopped else "nothing was running")
        say(f"data kept in {STATE}; `make demo` resumes, `make demo-reset` wipes it")
    return 0


def cmd_reset() -> int:
    cmd_stop(quiet=True)
    link = STATE / "pg"
    if link.is_symlink():
        shutil.rmtree(os.readlink(link), ignore_errors=True)
    shutil.rmtree(STATE, ignore_errors=True)
    say(f"removed {STATE}")
    return 0


def cmd_status() -> int:
    now = running()
    for n, v in now.items():
        print(f"{n:28s} {'running' if v else 'stopped'}")
    return 0 if all(now.values()) else 1


def main(argv: list[str]) -> int:
    cmds = {"start": cmd_start, "stop": cmd_stop, "reset": cmd_reset, "status": cmd_status}
    if len(argv) != 2 or argv[1] not in cmds:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        return cmds[argv[1]]()
    except DemoError as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv))
