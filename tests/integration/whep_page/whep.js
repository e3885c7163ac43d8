// WHEP (RFC 9725) test player: non-trickle offer (waits for complete ICE gathering),
// POST, answer, <video>.  window.whepState is refreshed every 250 ms from getStats():
//   status: "starting" | "gathering" | "posting" | "connecting" | "connected" | "failed"
//           | "closed" | "error"
//   error: message or null; httpStatus, location, etag: from the POST answer
//   framesDecoded, framesReceived, framesDropped, keyFramesDecoded, packetsLost,
//   frameWidth, frameHeight: inbound-rtp video
//   videoWidth, videoHeight: the <video> element;  codec: e.g. "video/H264", sdpFmtpLine
//   iceState, connectionState, pair: {local, remote} candidate types/addresses in use
// window.whepStop() sends DELETE to the session URL and closes the peer connection.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const endpoint = params.get("url");
  const token = params.get("token");
  const onlyCodec = params.get("codec");          // e.g. "H264": setCodecPreferences
  const wantAudio = params.get("audio") === "1";
  const video = document.getElementById("v");

  const state = window.whepState = {
    status: "starting", error: null, httpStatus: null, location: null, etag: null,
    framesDecoded: 0, framesReceived: 0, framesDropped: 0, keyFramesDecoded: 0,
    packetsLost: 0, frameWidth: 0, frameHeight: 0, videoWidth: 0, videoHeight: 0,
    codec: null, sdpFmtpLine: null, iceState: null, connectionState: null, pair: null,
    offer: null, answer: null, updated: 0,
  };
  let pc = null;
  let sessionUrl = null;

  function fail(msg) {
    state.status = "error";
    state.error = String(msg);
  }

  function waitGathering(pc, ms) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);  // post what we have rather than hang
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  async function start() {
    if (!endpoint) throw new Error("missing ?url=");
    // ice: the ice_servers of central's live call (JSON), when the test passes them
    // policy=relay: only TURN-relayed candidates (iceTransportPolicy)
    pc = new RTCPeerConnection({ iceServers: params.get("ice") ? JSON.parse(params.get("ice")) : [],
                                 iceTransportPolicy: params.get("policy") || "all" });
    const tv = pc.addTransceiver("video", { direction: "recvonly" });
    if (onlyCodec && tv.setCodecPreferences) {
      const caps = RTCRtpReceiver.getCapabilities("video").codecs.filter(
        (c) => c.mimeType.toLowerCase() === "video/" + onlyCodec.toLowerCase());
      if (!caps.length) throw new Error("this browser cannot receive " + onlyCodec);
      tv.setCodecPreferences(caps);
    }
    if (wantAudio) pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", (ev) => {
      const stream = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
      if (ev.track.kind === "video") {
        video.srcObject = stream;
        video.play().catch((e) => { state.playError = String(e); });
      }
    });
    pc.addEventListener("iceconnectionstatechange", () => { state.iceState = pc.iceConnectionState; });
    pc.addEventListener("connectionstatechange", () => {
      state.connectionState = pc.connectionState;
      if (["connecting", "connected", "failed", "closed"].includes(pc.connectionState)) {
        state.status = pc.connectionState;
      }
    });

    state.status = "gathering";
    await pc.setLocalDescription(await pc.createOffer());
    await waitGathering(pc, 5000);
    state.offer = pc.localDescription.sdp;

    state.status = "posting";
    const headers = { "Content-Type": "application/sdp" };
    if (token) headers["Authorization"] = "Bearer " + token;
    const r = await fetch(endpoint, { method: "POST", headers, body: pc.localDescription.sdp,
                                      mode: "cors", cache: "no-store" });
    state.httpStatus = r.status;
    state.location = r.headers.get("Location");
    state.etag = r.headers.get("ETag");
    const body = await r.text();
    if (r.status !== 201) {
      let detail = body;
      try { detail = JSON.parse(body).detail || body; } catch (e) { /* not JSON */ }
      throw new Error("POST " + r.status + ": " + detail);
    }
    if (!state.location) throw new Error("201 without a readable Location header (CORS Access-Control-Expose-Headers?)");
    sessionUrl = new URL(state.location, endpoint).href;
    state.answer = body;
    state.status = "connecting";
    await pc.setRemoteDescription({ type: "answer", sdp: body });
  }

  async function poll() {
    state.videoWidth = video.videoWidth;
    state.videoHeight = video.videoHeight;
    state.updated = Date.now();
    if (!pc) return;
    try {
      const stats = await pc.getStats();
      const byId = new Map();
      stats.forEach((s) => byId.set(s.id, s));
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && (s.kind === "video" || s.mediaType === "video")) {
          state.framesDecoded = s.framesDecoded || 0;
          state.framesReceived = s.framesReceived || 0;
          state.framesDropped = s.framesDropped || 0;
          state.keyFramesDecoded = s.keyFramesDecoded || 0;
          state.packetsLost = s.packetsLost || 0;
          state.frameWidth = s.frameWidth || 0;
          state.frameHeight = s.frameHeight || 0;
          state.decoderImplementation = s.decoderImplementation || null;
          const c = s.codecId && byId.get(s.codecId);
          if (c) { state.codec = c.mimeType; state.sdpFmtpLine = c.sdpFmtpLine || null; }
        }
        if (s.type === "transport" && s.selectedCandidatePairId) {
          const p = byId.get(s.selectedCandidatePairId);
          const l = p && byId.get(p.localCandidateId);
          const rc = p && byId.get(p.remoteCandidateId);
          if (l && rc) {
            state.pair = { local: l.candidateType + " " + (l.address || l.ip) + ":" + l.port,
                           remote: rc.candidateType + " " + (rc.address || rc.ip) + ":" + rc.port };
          }
        }
      });
    } catch (e) {
      state.statsError = String(e);
    }
  }

  window.whepStop = async function () {
    let status = null;
    if (sessionUrl) {
      const headers = token ? { "Authorization": "Bearer " + token } : {};
      try { status = (await fetch(sessionUrl, { method: "DELETE", headers, mode: "cors" })).status; }
      catch (e) { status = String(e); }
    }
    if (pc) pc.close();
    state.status = "closed";
    return status;
  };

  setInterval(poll, 250);
  start().catch((e) => fail(e && e.message ? e.message : e));
})();
