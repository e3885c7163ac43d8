// console.js: the Canopy web console (login, site tree, live grid over WHEP, alarms, playback).
// Plain ES module, no framework, no build step. Talks only to this central's REST API
// (/api/v1), its live stream (/api/v1/stream) and the WHEP endpoints the API hands out.
"use strict";

const $ = (id) => document.getElementById(id);
const API = "/api/v1";
const TREE_POLL_MS = 10000;
const OPEN_STATES = new Set(["new", "missed"]);

// Everything the page knows; window.canopyConsole exposes it read-only for tests and debugging.
const S = {
  access: null, refresh: null, expiresAt: 0, me: null,
  sites: [], nodes: [], cameras: [], alarms: new Map(),
  expanded: new Set(), focusId: null, treeTimer: 0, refreshTimer: 0,
  ws: null, wsBackoff: 1000, wsTimer: 0, cursor: null, seen: new Set(),
  tiles: [], layout: 4, player: null,
};
// Also playGrant(camera, grant): plays a WHEP grant in the next free tile as if the live
// call had answered it (tests of the player against any WHEP server; within the CSP).
window.canopyConsole = { state: S };

class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

// ---- tokens and REST ---------------------------------------------------------------

function saveTokens(t) {
  S.access = t.access_token;
  S.refresh = t.refresh_token;
  S.expiresAt = Date.now() + t.expires_in * 1000;
  sessionStorage.setItem("canopy.tokens", JSON.stringify({ access: S.access, refresh: S.refresh,
                                                           expiresAt: S.expiresAt }));
  clearTimeout(S.refreshTimer);
  // Refresh at 80% of the token's life; the stream gets the new token too.
  S.refreshTimer = setTimeout(() => refreshTokens().catch(() => {}),
                              Math.max(10000, t.expires_in * 800));
}

async function send(method, path, body, token) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return fetch(API + path, { method, headers, cache: "no-store",
                             body: body === undefined ? undefined : JSON.stringify(body) });
}

async function decode(r) {
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!r.ok) throw new ApiError(r.status, (data && (data.detail || data.title)) || text);
  return data;
}

let refreshing = null;
async function refreshTokens() {
  if (!S.refresh) return false;
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const t = await decode(await send("POST", "/auth/refresh", { refresh_token: S.refresh }));
        saveTokens(t);
        if (S.ws && S.ws.readyState === WebSocket.OPEN)
          S.ws.send(JSON.stringify({ type: "auth", token: S.access }));
        return true;
      } catch (e) {
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

async function api(method, path, body) {
  let r = await send(method, path, body, S.access);
  if (r.status === 401 && await refreshTokens()) r = await send(method, path, body, S.access);
  if (r.status === 401) {
    endSession("Your session has ended. Please log in again.");
    throw new ApiError(401, "session ended");
  }
  return decode(r);
}

async function all(path) {
  const items = [];
  for (let offset = 0; ; ) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=1000&offset=${offset}`);
    items.push(...page.items);
    offset += page.items.length;
    if (!page.items.length || offset >= page.total) return items;
  }
}

// ---- login / logout ----------------------------------------------------------------

async function login(ev) {
  ev.preventDefault();
  const user = $("login-user"), pass = $("login-pass"), err = $("login-error");
  err.hidden = true;
  if (!user.value || !pass.value) {
    showLoginError("Enter your user name and password.");
    (user.value ? pass : user).focus();
    return;
  }
  $("login-submit").disabled = true;
  try {
    const r = await send("POST", "/auth/login", { username: user.value, password: pass.value,
                                                  client_type: "console" });
    if (r.status === 401) throw new ApiError(401, "Wrong user name or password.");
    if (r.status === 429) throw new ApiError(429, "Too many failed logins: try again in a few minutes.");
    saveTokens(await decode(r));
    pass.value = "";
    await enterApp();
  } catch (e) {
    showLoginError(e.status === 401 || e.status === 429 ? e.message
      : `Login failed: ${e.message || e}`);
    pass.focus();
  } finally {
    $("login-submit").disabled = false;
  }
}

function showLoginError(msg) {
  const err = $("login-error");
  err.textContent = msg;
  err.hidden = false;
}

async function logout() {
  try { await api("POST", "/auth/logout"); } catch (e) { /* ended anyway */ }
  endSession("You have logged out.");
}

function endSession(message) {
  clearTimeout(S.refreshTimer);
  clearInterval(S.treeTimer);
  clearTimeout(S.wsTimer);
  if (S.ws) { S.ws.onclose = null; S.ws.close(1000); S.ws = null; }
  stopAllTiles();
  stopPlayer();
  sessionStorage.removeItem("canopy.tokens");
  sessionStorage.removeItem("canopy.cursor");
  Object.assign(S, { access: null, refresh: null, me: null, cursor: null });
  S.alarms.clear();
  S.seen.clear();
  $("app").hidden = true;
  $("login-view").hidden = false;
  if (message) showLoginError(message);
  $("login-user").focus();
}

async function enterApp() {
  S.me = await api("GET", "/me");
  $("who").textContent = `${S.me.user.display_name || S.me.user.username} · ${S.me.tenant.name}`;
  $("login-view").hidden = true;
  $("login-error").hidden = true;
  $("app").hidden = false;
  buildGrid();
  await Promise.all([loadTree(), loadAlarms()]);
  connectStream();
  S.treeTimer = setInterval(() => loadTree().catch(() => {}), TREE_POLL_MS);
  $("main").focus();
}

// ---- site tree ---------------------------------------------------------------------

const STATE_CLASS = {
  online: "ok", recording: "ok",
  pending: "idle", stale: "idle", unknown: "idle", disabled: "idle", starting: "idle",
  unauthorized: "warn",
};
function stateClass(s) { return STATE_CLASS[s] || "bad"; }

async function loadTree() {
  const [sites, nodes, cameras] = await Promise.all([all("/sites"), all("/nodes"), all("/cameras")]);
  const first = !S.sites.length && !S.nodes.length;
  Object.assign(S, { sites, nodes, cameras });
  if (first) {
    S.expanded.add("tenant");
    for (const s of sites) S.expanded.add(s.id);
    for (const n of nodes) S.expanded.add(n.id);
  }
  renderTree();
  fillCameraSelect();
  $("tree-status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

function treeModel() {
  const byName = (a, b) => a.name.localeCompare(b.name);
  const kidsOf = new Map();
  const push = (k, v) => { if (!kidsOf.has(k)) kidsOf.set(k, []); kidsOf.get(k).push(v); };
  const siteIds = new Set(S.sites.map((s) => s.id));
  const nodeIds = new Set(S.nodes.map((n) => n.id));
  for (const s of [...S.sites].sort(byName))
    push(s.parent_id && siteIds.has(s.parent_id) ? s.parent_id : "tenant",
         { id: s.id, kind: "site", label: s.name, state: s.stale ? "stale" : null });
  for (const n of [...S.nodes].sort(byName))
    push(siteIds.has(n.site_id) ? n.site_id : "tenant",
         { id: n.id, kind: n.kind, label: n.name, state: n.state, reason: n.state_reason });
  for (const c of [...S.cameras].sort((a, b) => (a.name || a.key).localeCompare(b.name || b.key)))
    push(nodeIds.has(c.node_id) ? c.node_id : (siteIds.has(c.site_id) ? c.site_id : "tenant"),
         { id: c.id, kind: "camera", label: c.name || c.key, state: c.state, reason: c.state_reason,
           camera: c });
  return { id: "tenant", kind: "tenant", label: S.me.tenant.name, kids: kidsOf };
}

function renderTree() {
  const tree = $("tree");
  const hadFocus = tree.contains(document.activeElement);
  const model = treeModel();
  const make = (item, level) => {
    const kids = model.kids.get(item.id) || [];
    const open = S.expanded.has(item.id);
    const li = el("li", { role: "treeitem", id: "t-" + item.id, "data-id": item.id,
                          "data-kind": item.kind, "aria-level": String(level),
                          "aria-expanded": kids.length ? String(open) : null,
                          "aria-selected": String(S.focusId === item.id), tabindex: "-1" });
    const row = el("span", { class: "row" }, el("span", { class: "twisty", "aria-hidden": "true" }),
                   el("span", { class: "label", text: item.label }),
                   item.kind !== "site" && item.kind !== "tenant" && item.kind !== "camera"
                     ? el("span", { class: "kind", text: item.kind }) : null);
    if (item.state) {
      row.append(el("span", { class: "state " + stateClass(item.state), text: item.state,
                              title: item.reason || null }));
    }
    li.append(row);
    if (item.camera) li.dataset.camera = item.camera.id;
    if (kids.length && open) {
      const ul = el("ul", { role: "group" });
      for (const k of kids) ul.append(make(k, level + 1));
      li.append(ul);
    }
    return li;
  };
  const root = make(model, 1);
  tree.replaceChildren(root);
  const focusEl = (S.focusId && $("t-" + S.focusId)) || root;
  S.focusId = focusEl.dataset.id;
  focusEl.tabIndex = 0;
  focusEl.setAttribute("aria-selected", "true");
  if (hadFocus) focusEl.focus();
}

function visibleItems() { return [...$("tree").querySelectorAll('[role="treeitem"]')]
  .filter((li) => li.offsetParent !== null || li.closest("[hidden]") === null); }

function focusItem(li) {
  if (!li) return;
  for (const x of $("tree").querySelectorAll('[role="treeitem"][tabindex="0"]')) {
    x.tabIndex = -1;
    x.setAttribute("aria-selected", "false");
  }
  li.tabIndex = 0;
  li.setAttribute("aria-selected", "true");
  S.focusId = li.dataset.id;
  li.focus();
}

function toggle(li, open) {
  const id = li.dataset.id;
  if (!li.hasAttribute("aria-expanded")) return false;
  const now = S.expanded.has(id);
  const want = open === undefined ? !now : open;
  if (want === now) return false;
  if (want) S.expanded.add(id); else S.expanded.delete(id);
  S.focusId = id;
  renderTree();
  $("t-" + id).focus();
  return true;
}

function activate(li) {
  if (li.dataset.kind === "camera") {
    const cam = S.cameras.find((c) => c.id === li.dataset.camera);
    if (cam) showLive(cam);
  } else {
    toggle(li);
  }
}

function treeKey(ev) {
  const li = ev.target.closest('[role="treeitem"]');
  if (!li) return;
  const items = visibleItems();
  const i = items.indexOf(li);
  switch (ev.key) {
  case "ArrowDown": focusItem(items[i + 1]); break;
  case "ArrowUp": focusItem(items[i - 1]); break;
  case "Home": focusItem(items[0]); break;
  case "End": focusItem(items[items.length - 1]); break;
  case "ArrowRight":
    if (!toggle(li, true) && li.getAttribute("aria-expanded") === "true")
      focusItem(li.querySelector('[role="treeitem"]'));
    break;
  case "ArrowLeft":
    if (!toggle(li, false)) focusItem(li.parentElement.closest('[role="treeitem"]'));
    break;
  case "Enter": case " ": activate(li); break;
  default: return;
  }
  ev.preventDefault();
}

function treeClick(ev) {
  const li = ev.target.closest('[role="treeitem"]');
  if (!li) return;
  focusItem(li);
  if (ev.target.classList.contains("twisty")) toggle(li);
  else if (li.dataset.kind === "camera") activate(li);
}

// ---- WHEP player (live and playback) ----------------------------------------------

// Plays one WHEP session into a <video>: recvonly video and audio, the offer sent once ICE
// gathering is done (or after 1.5 s: later candidates follow by PATCH), DELETE on stop.
class WhepPlayer {
  constructor(video, onStatus) {
    this.video = video;
    this.onStatus = onStatus;
    this.pc = null;
    this.session = null;
    this.token = null;
    this.stats = { framesDecoded: 0, width: 0, height: 0 };
    this.timer = 0;
    this.stopped = false;
  }

  async start(grant) {
    const { whep_url: url, token } = grant;
    if (!url) throw new Error("the answer carries no whep_url");
    this.token = token;
    const pc = this.pc = new RTCPeerConnection({ iceServers: grant.ice_servers || [] });
    const stream = new MediaStream();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", (ev) => {
      stream.addTrack(ev.track);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
      this.video.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") this.onStatus("connection failed", true);
      else if (pc.connectionState === "connected") this.onStatus("connected");
    });
    const late = [];
    let posted = false;
    pc.addEventListener("icecandidate", (ev) => {
      if (posted && ev.candidate && ev.candidate.candidate) late.push(ev.candidate);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const t = setTimeout(resolve, 1500);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
    if (this.stopped) return;
    posted = true;
    const headers = { "Content-Type": "application/sdp" };
    if (token) headers.Authorization = "Bearer " + token;
    const r = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp,
                                 mode: "cors", cache: "no-store" });
    const answer = await r.text();
    if (r.status !== 201 && r.status !== 200) {
      let detail = answer;
      try { detail = JSON.parse(answer).detail || answer; } catch (e) { /* plain text */ }
      throw new Error(`relay answered ${r.status}: ${detail}`.slice(0, 300));
    }
    const loc = r.headers.get("Location");
    if (loc) this.session = new URL(loc, url).href;
    if (this.stopped) { this.stop(); return; }
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    if (late.length && this.session) this.trickle(late).catch(() => {});
    this.timer = setInterval(() => this.poll(), 1000);
  }

  // RFC 8840 fragment with the candidates found after the offer went out.
  async trickle(cands) {
    const sdp = this.pc.localDescription.sdp;
    const ufrag = (sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
    const pwd = (sdp.match(/a=ice-pwd:(\S+)/) || [])[1];
    let frag = `a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\n`;
    const byMid = new Map();
    for (const c of cands) {
      if (!byMid.has(c.sdpMid)) byMid.set(c.sdpMid, []);
      byMid.get(c.sdpMid).push(c.candidate);
    }
    for (const [mid, list] of byMid) {
      frag += `m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:${mid}\r\n`;
      for (const c of list) frag += `a=${c}\r\n`;
    }
    const headers = { "Content-Type": "application/trickle-ice-sdpfrag" };
    if (this.token) headers.Authorization = "Bearer " + this.token;
    await fetch(this.session, { method: "PATCH", headers, body: frag, mode: "cors" });
  }

  async poll() {
    if (!this.pc) return;
    const stats = await this.pc.getStats().catch(() => null);
    if (!stats) return;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && (s.kind || s.mediaType) === "video") {
        this.stats = { framesDecoded: s.framesDecoded || 0, width: s.frameWidth || 0,
                       height: s.frameHeight || 0 };
      }
    });
    if (this.stats.framesDecoded > 0) {
      this.onStatus(`playing ${this.stats.width}×${this.stats.height}`, false, this.stats);
    }
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.session) {
      const headers = this.token ? { Authorization: "Bearer " + this.token } : {};
      fetch(this.session, { method: "DELETE", headers, mode: "cors", keepalive: true })
        .catch(() => {});
      this.session = null;
    }
    if (this.pc) { this.pc.close(); this.pc = null; }
    this.video.srcObject = null;
  }
}

// ---- live grid ---------------------------------------------------------------------

function buildGrid() {
  const grid = $("grid");
  const n = S.layout;
  grid.className = "grid g" + n;
  while (S.tiles.length > n) stopTile(S.tiles.length - 1, true);
  S.tiles.length = Math.min(S.tiles.length, n);
  for (let i = 0; i < n; i++) if (!S.tiles[i]) S.tiles[i] = null;
  grid.replaceChildren(...S.tiles.map((t, i) => t ? t.li : emptyTile(i)));
}

function emptyTile(i) {
  return el("li", { class: "tile empty", "data-tile": String(i), text: `Tile ${i + 1}: empty` });
}

function showLive(cam) {
  let i = S.tiles.findIndex((t) => t && t.cam.id === cam.id);
  if (i >= 0) { S.tiles[i].li.querySelector("button").focus(); return; }
  i = S.tiles.findIndex((t) => !t);
  if (i < 0) i = S.tiles.length - 1; // grid full: the last tile is replaced
  if (S.tiles[i]) stopTile(i, false);
  selectTab("live");
  startTile(i, cam);
}

// grant: the answer of POST /cameras/{id}/live; fetched here unless given.
function startTile(i, cam, grant) {
  const name = cam.name || cam.key;
  const status = el("span", { class: "status", text: "starting" });
  const msg = el("p", { class: "msg", role: "status" });
  const video = el("video", { muted: true, autoplay: true, playsInline: true,
                              "aria-label": `Live video of ${name}` });
  video.muted = true;
  const stopBtn = el("button", { type: "button", text: "✕", "aria-label": `Stop ${name}`,
                                 onclick: () => { stopTile(i, false); $("layout").focus(); } });
  const li = el("li", { class: "tile", "data-tile": String(i), "data-camera": cam.id,
                        "data-state": "starting", "data-frames": "0" },
                el("div", { class: "cap" }, el("span", { class: "name", text: name }), status, stopBtn),
                video, msg);
  const player = new WhepPlayer(video, (text, bad, st) => {
    status.textContent = text;
    if (bad) li.dataset.state = "error";
    else if (st && st.framesDecoded > 0) {
      li.dataset.state = "playing";
      li.dataset.frames = String(st.framesDecoded);
    } else li.dataset.state = "connecting";
  });
  const tile = { cam, li, player };
  S.tiles[i] = tile;
  $("grid").children[i].replaceWith(li);
  (async () => {
    try {
      if (!grant) grant = await api("POST", `/cameras/${cam.id}/live`, {});
      if (S.tiles[i] !== tile) return;
      li.dataset.state = "connecting";
      status.textContent = "connecting";
      await player.start(grant);
    } catch (e) {
      if (S.tiles[i] !== tile) return;
      li.dataset.state = "error";
      status.textContent = "unavailable";
      msg.textContent = e.status === 404 ? "Live view is not available for this camera here."
        : e.status === 403 ? "You may not view this camera live."
        : String(e.message || e);
      li.dataset.error = msg.textContent;
    }
  })();
}

window.canopyConsole.playGrant = (cam, grant) => {
  let i = S.tiles.findIndex((t) => !t);
  if (i < 0) { i = S.tiles.length - 1; stopTile(i, false); }
  startTile(i, cam, grant);
  return i;
};

function stopTile(i, dropping) {
  const t = S.tiles[i];
  if (!t) return;
  t.player.stop();
  S.tiles[i] = null;
  if (!dropping) $("grid").children[i].replaceWith(emptyTile(i));
}

function stopAllTiles() {
  for (let i = 0; i < S.tiles.length; i++) stopTile(i, true);
  S.tiles = [];
}

// ---- recordings and playback -------------------------------------------------------

function fillCameraSelect() {
  const sel = $("rec-camera");
  const keep = sel.value;
  sel.replaceChildren(...S.cameras.map((c) => el("option", { value: c.id, text: c.name || c.key })));
  if (keep) sel.value = keep;
}

function localInput(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// The recorded ranges come from the camera's edge through its relay, with a playback
// grant's token (central never sees the archive index): grant.recordings_url.
async function loadRecordings(grant) {
  const id = $("rec-camera").value;
  const list = $("rec-list");
  if (!id) { list.replaceChildren(); return; }
  if (!$("rec-start").value) $("rec-start").value = localInput(new Date(Date.now() - 10 * 60000));
  const seq = S.recSeq = (S.recSeq || 0) + 1;
  try {
    if (!grant || !grant.recordings_url) {
      // a start a few seconds back is within any archive depth the user may have
      grant = await api("POST", `/cameras/${id}/playback`,
                        { start: new Date(Date.now() - 5000).toISOString() });
    }
    if (!grant.recordings_url) throw new ApiError(404, "no recordings_url");
    const q = new URLSearchParams({ from: new Date(Date.now() - 24 * 3600e3).toISOString() });
    const r = await decode(await fetch(`${grant.recordings_url}?${q}`, {
      headers: { Authorization: "Bearer " + grant.token }, cache: "no-store" }));
    if (seq !== S.recSeq || id !== $("rec-camera").value) return;
    const items = (r && r.ranges) || [];
    list.replaceChildren(...items.slice(-200).reverse().map((it) => {
      const start = new Date(it.start), end = new Date(it.end);
      const label = `${start.toLocaleString()} – ${end.toLocaleTimeString()}`;
      return el("li", { class: "rec-range" },
        el("time", { datetime: it.start, text: start.toLocaleString() }), " – ",
        el("time", { datetime: it.end, text: end.toLocaleTimeString() }), " ",
        el("button", {
          type: "button", class: "rec-play", text: "Play from here",
          "aria-label": `Play from here: ${label}`,
          onclick: () => { $("rec-start").value = localInput(start); $("rec-form").requestSubmit(); },
        }));
    }));
    $("rec-status").textContent = items.length ? `${items.length} recorded periods` : "No recordings listed.";
  } catch (e) {
    if (seq !== S.recSeq) return;
    list.replaceChildren();
    if (e.status === 404)
      $("rec-status").textContent = "Recordings are not listed for this camera: choose a time to play from.";
    else if (e.status === 403)
      $("rec-status").textContent = `Recordings: not allowed (${e.message})`;
    else $("rec-status").textContent = `Recordings: ${e.message || e}`;
  }
}

function stopPlayer() {
  if (S.player) { S.player.stop(); S.player = null; }
  $("rec-player").replaceChildren();
}

async function playRecording(ev) {
  ev.preventDefault();
  const id = $("rec-camera").value, when = $("rec-start").value;
  if (!id || !when) { $("rec-status").textContent = "Choose a camera and a time."; return; }
  stopPlayer();
  const cam = S.cameras.find((c) => c.id === id);
  const name = cam ? cam.name || cam.key : id;
  const status = el("span", { class: "status", text: "starting" });
  const video = el("video", { muted: true, autoplay: true, playsInline: true, controls: true,
                              "aria-label": `Recording of ${name}` });
  const box = el("div", { class: "tile", "data-state": "starting" },
                 el("div", { class: "cap" }, el("span", { class: "name", text: name }), status), video);
  $("rec-player").replaceChildren(box);
  const player = S.player = new WhepPlayer(video, (text, bad, st) => {
    status.textContent = text;
    box.dataset.state = bad ? "error" : st && st.framesDecoded > 0 ? "playing" : "connecting";
    if (st && st.framesDecoded > 0) box.dataset.frames = String(st.framesDecoded);
  });
  try {
    const start = new Date(when).toISOString();
    const grant = await api("POST", `/cameras/${id}/playback`,
                            { start, speed: Number($("rec-speed").value) });
    if (S.player !== player) return;
    $("rec-status").textContent = `Playing from ${new Date(when).toLocaleString()}`;
    if (!$("rec-list").children.length) loadRecordings(grant); // the same token lists them
    await player.start(grant);
  } catch (e) {
    box.dataset.state = "error";
    status.textContent = "unavailable";
    $("rec-status").textContent = e.status === 404 ? "Playback is not available for this camera here."
      : `Playback: ${e.message || e}`;
  }
}

function selectTab(which) {
  for (const [tab, panel, name] of [["tab-live", "live-panel", "live"], ["tab-rec", "rec-panel", "rec"]]) {
    const on = name === which;
    $(tab).setAttribute("aria-selected", String(on));
    $(tab).tabIndex = on ? 0 : -1;
    $(panel).hidden = !on;
  }
  if (which === "rec") loadRecordings();
}

function tabKey(ev) {
  if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
  const next = ev.target.id === "tab-live" ? "rec" : "live";
  selectTab(next);
  $("tab-" + next).focus();
  ev.preventDefault();
}

// ---- alarms ------------------------------------------------------------------------

async function loadAlarms() {
  const q = $("alarm-all").checked ? "/alarms?limit=200" : "/alarms?state=open&limit=200";
  try {
    const page = await api("GET", q);
    S.alarms.clear();
    for (const a of page.items) S.alarms.set(a.id, a);
    renderAlarms();
    $("alarm-status").textContent = "";
  } catch (e) {
    $("alarm-status").textContent = e.status === 403 || e.status === 404
      ? "You may not see alarms." : `Alarms: ${e.message}`;
  }
}

const ACTIONS = [["accepted", "Accept"], ["false", "False alarm"], ["ignored", "Ignore"]];
const TITLES = { accepted: "Accept alarm", false: "Mark as false alarm", ignored: "Ignore alarm" };

// "2026-11-21T15:30:00.000+05:30" -> "2026-11-21 15:30:00 (UTC+05:30)": the camera's time.
function fmtTime(t) {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$/.exec(t || "");
  if (!m) return t || "";
  return `${m[1]} ${m[2]} (UTC${m[3] === "Z" || !m[3] ? "" : m[3]})`;
}

function alarmItem(a, fresh) {
  const when = fmtTime(a.local_time || a.time);
  const where = [a.site_path, a.camera_name || a.camera].filter(Boolean).join(" · ");
  const li = el("li", { class: `alarm sev${a.severity}${fresh ? " fresh" : ""}`, id: "a-" + a.id,
                        "data-alarm": a.id, "data-state": a.state, "data-event": a.event_id || "" },
    el("h3", {}, el("span", { text: `Severity ${a.severity}` }), el("span", { text: a.type }),
       el("span", { class: "st " + a.state, text: a.state })),
    where ? el("p", { class: "where", text: where }) : null,
    el("p", { class: "when" }, el("time", { datetime: a.time, text: when })));
  if (a.handled_by) {
    li.append(el("p", { class: "handled",
                        text: `${a.state} by ${a.handled_by}${a.comment ? ": " + a.comment : ""}` }));
  }
  const actions = el("div", { class: "actions" });
  if (OPEN_STATES.has(a.state)) {
    for (const [st, label] of ACTIONS) {
      actions.append(el("button", { type: "button", text: label, "data-action": st,
                                    "aria-label": `${label}: ${a.type} at ${where || "unknown place"}`,
                                    onclick: (ev) => openHandle(a.id, st, ev.currentTarget) }));
    }
  }
  const cam = a.camera_id && S.cameras.find((c) => c.id === a.camera_id);
  if (cam) actions.append(el("button", { type: "button", text: "Live",
                                         "aria-label": `Show ${cam.name || cam.key} live`,
                                         onclick: () => showLive(cam) }));
  if (actions.children.length) li.append(actions);
  return li;
}

function renderAlarms(freshId) {
  const showAll = $("alarm-all").checked;
  const list = [...S.alarms.values()]
    .filter((a) => showAll || OPEN_STATES.has(a.state))
    .sort((a, b) => (b.created_at || b.time).localeCompare(a.created_at || a.time));
  const ul = $("alarms");
  const active = document.activeElement;
  const keep = active && ul.contains(active) ? [active.closest("li")?.dataset.alarm,
                                                active.dataset.action] : null;
  ul.replaceChildren(...list.map((a) => alarmItem(a, a.id === freshId)));
  const open = [...S.alarms.values()].filter((a) => OPEN_STATES.has(a.state)).length;
  $("alarm-count").textContent = `(${open} open)`;
  if (!list.length) ul.append(el("li", { class: "muted", text: "No open alarms." }));
  if (keep) {
    const li = $("a-" + keep[0]);
    const target = li && (li.querySelector(`[data-action="${keep[1]}"]`) || li.querySelector("button"));
    if (target) target.focus();
  }
}

function onAlarmMessage(m) {
  const a = m.alarm;
  if (!a || !a.id) return;
  const isNew = m.type === "alarm.created" && !S.alarms.has(a.id);
  const prev = S.alarms.get(a.id);
  if (prev && prev.version > a.version) return; // an older change arriving late
  S.alarms.set(a.id, a);
  renderAlarms(isNew ? a.id : null);
  if (isNew) {
    $("announce").textContent = `New alarm: ${a.type}, severity ${a.severity}` +
      (a.site_path ? `, ${a.site_path}` : "") + (a.camera_name ? `, ${a.camera_name}` : "");
  } else if (m.type === "alarm.escalated" && m.notify) {
    $("announce").textContent = `Alarm escalated to you: ${a.type} at ${a.site_path || "unknown site"}`;
  }
}

// ---- the handle dialog -------------------------------------------------------------

let handling = null;

function openHandle(id, state, opener) {
  const a = S.alarms.get(id);
  if (!a) return;
  handling = { id, state, opener };
  $("handle-title").textContent = TITLES[state];
  $("handle-desc").textContent = `${a.type}, severity ${a.severity}` +
    (a.site_path ? ` at ${a.site_path}` : "") + (a.camera_name ? ` (${a.camera_name})` : "") +
    `, ${fmtTime(a.local_time || a.time)}.`;
  $("handle-req").textContent = a.comment_required ? "(required)" : "(optional)";
  $("handle-comment").required = !!a.comment_required;
  $("handle-comment").value = "";
  $("handle-error").hidden = true;
  $("handle-ok").textContent = ACTIONS.find((x) => x[0] === state)[1];
  $("handle-ok").disabled = false;
  $("handle-dialog").showModal();
  $("handle-comment").focus();
}

function closeHandle() {
  const d = $("handle-dialog");
  if (d.open) d.close();
}

function afterClose() {
  // Focus returns to where it came from, or to the alarm, or to the list.
  const h = handling;
  handling = null;
  if (!h) return;
  if (h.opener && h.opener.isConnected) h.opener.focus();
  else {
    const li = $("a-" + h.id);
    const target = (li && li.querySelector("button")) || $("alarm-title");
    if (target === $("alarm-title")) target.tabIndex = -1;
    target.focus();
  }
}

async function submitHandle(ev) {
  ev.preventDefault();
  if (!handling) return;
  const comment = $("handle-comment").value.trim();
  const a = S.alarms.get(handling.id);
  const err = $("handle-error");
  if (a && a.comment_required && !comment) {
    err.textContent = "This alarm needs a comment.";
    err.hidden = false;
    $("handle-comment").focus();
    return;
  }
  $("handle-ok").disabled = true;
  try {
    const body = { state: handling.state };
    if (comment) body.comment = comment;
    const updated = await api("POST", `/alarms/${handling.id}/state`, body);
    S.alarms.set(updated.id, updated);
    renderAlarms();
    $("announce").textContent = `Alarm ${updated.state}.`;
    closeHandle();
  } catch (e) {
    const m = /already (\w+) \(by (.*)\)/.exec(e.detail || "");
    err.textContent = e.status === 409 && m ? `Already ${m[1]} by ${m[2]}.`
      : e.status === 409 ? `Already handled: ${e.detail}`
      : e.status === 403 ? "You may not handle this alarm."
      : `Not saved: ${e.message}`;
    err.hidden = false;
    $("handle-ok").disabled = false;
    if (e.status === 409) {
      api("GET", `/alarms/${handling.id}`).then((x) => { S.alarms.set(x.id, x); renderAlarms(); })
        .catch(() => {});
    }
  }
}

// ---- live stream -------------------------------------------------------------------

function streamState(text, ok) {
  const p = $("stream-state");
  p.textContent = "alarms: " + text;
  p.className = "pill " + (ok ? "ok" : "bad");
  p.dataset.state = text;
}

function connectStream() {
  clearTimeout(S.wsTimer);
  if (!S.access) return;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + API + "/stream";
  const ws = S.ws = new WebSocket(url);
  streamState("connecting", false);
  ws.onopen = () => {
    const cursor = Number(sessionStorage.getItem("canopy.cursor")) || null;
    ws.send(JSON.stringify({ type: "auth", token: S.access, cursor }));
  };
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (x) { return; }
    if (typeof m.cursor === "number" && m.cursor > (S.cursor || 0)) {
      S.cursor = m.cursor;
      sessionStorage.setItem("canopy.cursor", String(m.cursor));
    }
    if (m.type === "ready") { streamState("live", true); S.wsBackoff = 1000; }
    else if (m.type === "reset") loadAlarms();
    else if (typeof m.type === "string" && m.type.startsWith("alarm.")) {
      if (S.seen.has(m.id)) return;
      S.seen.add(m.id);
      if (S.seen.size > 5000) S.seen.clear();
      onAlarmMessage(m);
    }
  };
  ws.onclose = async (e) => {
    S.ws = null;
    if (!S.access) return;
    if (e.code === 4403) { streamState("not permitted", false); return; }
    streamState("reconnecting", false);
    if (e.code === 4401 && !(await refreshTokens())) {
      endSession("Your session has ended. Please log in again.");
      return;
    }
    S.wsTimer = setTimeout(connectStream, S.wsBackoff);
    S.wsBackoff = Math.min(S.wsBackoff * 2, 30000);
  };
}

// ---- start -------------------------------------------------------------------------

function init() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("tree").addEventListener("keydown", treeKey);
  $("tree").addEventListener("click", treeClick);
  $("layout").addEventListener("change", () => { S.layout = Number($("layout").value); buildGrid(); });
  $("live-stop-all").addEventListener("click", () => { stopAllTiles(); buildGrid(); });
  $("tab-live").addEventListener("click", () => selectTab("live"));
  $("tab-rec").addEventListener("click", () => selectTab("rec"));
  $("tab-live").addEventListener("keydown", tabKey);
  $("tab-rec").addEventListener("keydown", tabKey);
  $("rec-form").addEventListener("submit", playRecording);
  $("rec-stop").addEventListener("click", stopPlayer);
  $("rec-camera").addEventListener("change", () => loadRecordings());
  $("alarm-all").addEventListener("change", loadAlarms);
  $("handle-form").addEventListener("submit", submitHandle);
  $("handle-cancel").addEventListener("click", closeHandle);
  $("handle-dialog").addEventListener("close", afterClose);
  window.addEventListener("pagehide", () => { for (const t of S.tiles) if (t) t.player.stop(); });

  const saved = JSON.parse(sessionStorage.getItem("canopy.tokens") || "null");
  if (saved && saved.refresh) {
    Object.assign(S, { access: saved.access, refresh: saved.refresh, expiresAt: saved.expiresAt });
    (async () => {
      // A reload keeps the tab's session: a fresh access token, then the app.
      if (await refreshTokens()) await enterApp().catch(() => endSession());
      else endSession("Your session has ended. Please log in again.");
    })();
  }
}

init();
