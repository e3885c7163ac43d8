#!/usr/bin/env bash
# install-deps.sh: installs every Debian package Canopy's build, tests and demo need. Idempotent.
# Usage: deploy/install-deps.sh               update package lists and install everything
#        deploy/install-deps.sh --if-missing  do nothing when all packages are already there
#        deploy/install-deps.sh --list        print the package list
set -euo pipefail

packages=(
	# build: compiler, pkg-config, libraries of the shared library and daemons
	build-essential pkg-config git
	libssl-dev libglib2.0-dev libwebsockets-dev libcjson-dev libexpat1-dev
	# edge: FFmpeg for RTSP ingest, fMP4 muxing and motion decoding; SQLite for its index
	libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libsqlite3-dev
	# edge: nanomsg for analytics workers on the site LAN (ipc:// or tcp://)
	libnanomsg-dev
	# central: PostgreSQL client; argon2id password hashing (memory-hard KDF); libcurl
	# (multi interface) for webhook delivery
	libpq-dev libargon2-dev libcurl4-openssl-dev
	# WebRTC live view: ICE (libnice), SRTP (libsrtp); DTLS is OpenSSL's
	libnice-dev libsrtp2-dev
	# fuzzing: clang with libFuzzer and the sanitizer runtimes
	clang libclang-rt-14-dev
	# integration tests: pytest and friends under Debian's /usr/bin/python3
	python3 python3-pytest python3-psycopg2 python3-numpy
	# independent implementations the codecs are checked against (PyJWT, jsonschema)
	python3-jwt python3-jsonschema python3-cryptography
	# independent WebSocket and HTTP clients for the uplink and REST tests
	python3-websockets python3-requests
	# independent WebRTC clients for WHEP: aiortc, and headless Chromium driven by Selenium
	python3-aiortc chromium chromium-driver python3-selenium
	# a TURN server (coturn) the edge's relayed candidates are tested against; its
	# turnutils_uclient and turnserver test and benchmark canopy-relay's TURN server
	coturn
	# private PostgreSQL clusters for tests and the demo
	postgresql
	# RTSP test cameras (GStreamer RTSP server, x264 encoder, clock overlay) and probes
	libgstrtspserver-1.0-dev libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
	gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
	gstreamer1.0-x ffmpeg
	# make bench: h264parse (serving a pre-encoded clip); interop tests of our RTP
	# packetisers: x265enc (bad) and GStreamer's FFmpeg decoders (libav)
	gstreamer1.0-plugins-bad gstreamer1.0-libav
	# GStreamer from Python (the interop test's decoder) and gst-launch (Janus's feeder)
	python3-gi gir1.2-gstreamer-1.0 gstreamer1.0-tools
	# HTTP client for tests and examples; HTTP load generator and MQTT broker (the peer
	# a node fleet is measured against) for make bench
	curl wrk mosquitto
	# make demo: its printed REST and WHEP examples read JSON with jq
	jq
	# the relay's NAT lab test: network namespaces (ip netns) and NAT (iptables MASQUERADE)
	iproute2 iptables
	# make bench: Janus, the WebRTC server live view is measured against
	janus
)

missing() {
	local p out=()
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || out+=("$p")
	done
	echo "${out[@]:-}"
}

case "${1:-}" in
--list)
	printf '%s\n' "${packages[@]}"
	exit 0
	;;
--if-missing)
	need=$(missing)
	[ -z "$need" ] && exit 0
	echo "install-deps: missing packages: $need"
	;;
"") ;;
*)
	echo "usage: $0 [--if-missing | --list]" >&2
	exit 2
	;;
esac

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install packages" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q "${packages[@]}"
need=$(missing)
if [ -n "$need" ]; then
	echo "install-deps: still missing after install: $need" >&2
	exit 1
fi
echo "install-deps: all ${#packages[@]} packages present"
