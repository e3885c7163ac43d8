/* test_sdp.c: SDP offer/answer (cn_sdp): real Chrome, Firefox and aiortc offers, answers round-tripped, every refusal. */
#include <stdlib.h>

#include "cn_buf.h"
#include "cn_err.h"
#include "cn_sdp.h"
#include "cn_test.h"

#define FP_CHROME                                                                            \
	"93:90:EF:32:AD:DF:32:BF:DE:A7:86:BC:1E:20:67:95:92:49:80:68:BC:BF:CD:35:7E:A1:0A:B6:4E:" \
	"A3:5E:47"
#define FP_FIREFOX                                                                           \
	"16:E5:F6:0F:20:7A:1A:00:73:45:1C:35:A9:D3:15:D1:7F:DC:17:D7:FA:B6:64:49:B0:0C:DF:AA:DC:" \
	"8B:24:9E"
#define FP_AIORTC_256                                                                        \
	"8B:9E:3D:73:71:EC:6D:CD:4B:46:84:35:47:C1:06:D6:E0:7E:5E:5E:38:05:E6:8B:6E:7A:CE:F6:3B:" \
	"24:DE:88"
#define FP_AIORTC_384                                                                        \
	"13:7B:91:78:2B:FB:54:09:29:2A:1B:57:0D:9A:29:01:88:80:EF:C5:BB:0A:04:97:17:4D:57:9C:53:" \
	"BF:AA:32:B8:5A:37:F8:1C:08:FC:FC:78:D9:25:E5:87:57:81:47"
#define FP_AIORTC_512                                                                        \
	"D7:2F:9C:B0:34:08:16:51:79:FD:89:44:D6:50:19:66:BB:1E:27:B1:51:7C:33:BD:2F:E4:4D:B9:35:" \
	"DC:80:54:66:65:06:EA:A0:3E:34:18:D0:62:6E:33:EE:93:65:D2:34:B0:B2:1E:95:EB:FE:E0:91:56:" \
	"0A:2C:6C:9D:A3:72"

/* Chrome's usual feedback for a video format. */
#define CHROME_FB(pt)                                                                        \
	"a=rtcp-fb:" pt " goog-remb\r\n"                                                     \
	"a=rtcp-fb:" pt " transport-cc\r\n"                                                  \
	"a=rtcp-fb:" pt " ccm fir\r\n"                                                       \
	"a=rtcp-fb:" pt " nack\r\n"                                                          \
	"a=rtcp-fb:" pt " nack pli\r\n"
#define CHROME_H264(pt, rtx, mode, plid)                                                     \
	"a=rtpmap:" pt " H264/90000\r\n" CHROME_FB(pt)                                        \
	"a=fmtp:" pt " level-asymmetry-allowed=1;packetization-mode=" mode                   \
	";profile-level-id=" plid "\r\n"                                                      \
	"a=rtpmap:" rtx " rtx/90000\r\n"                                                      \
	"a=fmtp:" rtx " apt=" pt "\r\n"
#define CHROME_TRANSPORT                                                                     \
	"c=IN IP4 0.0.0.0\r\n"                                                               \
	"a=rtcp:9 IN IP4 0.0.0.0\r\n"                                                        \
	"a=ice-ufrag:Hx3q\r\n"                                                               \
	"a=ice-pwd:1ZD8rHSodlm7KzcXPg3rD2Ym\r\n"                                             \
	"a=ice-options:trickle\r\n"                                                          \
	"a=fingerprint:sha-256 " FP_CHROME "\r\n"                                            \
	"a=setup:actpass\r\n"

/* Chrome 12x, a WHEP player with a talk-back microphone: video recvonly, audio sendrecv. */
static const char chrome_offer[] =
	"v=0\r\n"
	"o=- 4215775240449105457 2 IN IP4 127.0.0.1\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0 1\r\n"
	"a=extmap-allow-mixed\r\n"
	"a=msid-semantic: WMS 3f1c2b9e-6a1d-4a55-9f0e-1b2c3d4e5f60\r\n"
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125 39 40 45 46 "
	"98 99 100 101 112 113 116 117 118\r\n" CHROME_TRANSPORT
	"a=mid:0\r\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n"
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
	"a=extmap:3 urn:3gpp:video-orientation\r\n"
	"a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
	"a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
	"a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type\r\n"
	"a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing\r\n"
	"a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space\r\n"
	"a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
	"a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
	"a=recvonly\r\n"
	"a=rtcp-mux\r\n"
	"a=rtcp-rsize\r\n"
	"a=rtpmap:96 VP8/90000\r\n" CHROME_FB("96")
	"a=rtpmap:97 rtx/90000\r\n"
	"a=fmtp:97 apt=96\r\n"
	CHROME_H264("102", "103", "1", "42001f")
	CHROME_H264("104", "105", "0", "42001f")
	CHROME_H264("106", "107", "1", "42e01f")
	CHROME_H264("108", "109", "0", "42e01f")
	CHROME_H264("127", "125", "1", "4d001f")
	CHROME_H264("39", "40", "0", "4d001f")
	"a=rtpmap:45 AV1/90000\r\n" CHROME_FB("45")
	"a=fmtp:45 level-idx=5;profile=0;tier=0\r\n"
	"a=rtpmap:46 rtx/90000\r\n"
	"a=fmtp:46 apt=45\r\n"
	"a=rtpmap:98 VP9/90000\r\n" CHROME_FB("98")
	"a=fmtp:98 profile-id=0\r\n"
	"a=rtpmap:99 rtx/90000\r\n"
	"a=fmtp:99 apt=98\r\n"
	"a=rtpmap:100 VP9/90000\r\n" CHROME_FB("100")
	"a=fmtp:100 profile-id=2\r\n"
	"a=rtpmap:101 rtx/90000\r\n"
	"a=fmtp:101 apt=100\r\n"
	CHROME_H264("112", "113", "1", "64001f")
	"a=rtpmap:116 red/90000\r\n"
	"a=rtpmap:117 rtx/90000\r\n"
	"a=fmtp:117 apt=116\r\n"
	"a=rtpmap:118 ulpfec/90000\r\n"
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" CHROME_TRANSPORT
	"a=mid:1\r\n"
	"a=extmap:14 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
	"a=extmap:4 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
	"a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=sendrecv\r\n"
	"a=msid:3f1c2b9e-6a1d-4a55-9f0e-1b2c3d4e5f60 8d7e6f5a-4b3c-2d1e-0f9a-8b7c6d5e4f3a\r\n"
	"a=rtcp-mux\r\n"
	"a=rtcp-rsize\r\n"
	"a=rtpmap:111 opus/48000/2\r\n"
	"a=rtcp-fb:111 transport-cc\r\n"
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n"
	"a=rtpmap:63 red/48000/2\r\n"
	"a=fmtp:63 111/111\r\n"
	"a=rtpmap:9 G722/8000\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:13 CN/8000\r\n"
	"a=rtpmap:110 telephone-event/48000\r\n"
	"a=rtpmap:126 telephone-event/8000\r\n"
	"a=ssrc:2419706321 cname:Yk0m6c3aZ8l0ZbqV\r\n"
	"a=ssrc:2419706321 msid:3f1c2b9e-6a1d-4a55-9f0e-1b2c3d4e5f60 "
	"8d7e6f5a-4b3c-2d1e-0f9a-8b7c6d5e4f3a\r\n";

/* Chrome sending a camera of its own (sendonly video with RTX: a=ssrc-group) and H.265. */
static const char chrome_sendonly_offer[] =
	"v=0\r\n"
	"o=- 8034119732185730148 2 IN IP4 127.0.0.1\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0\r\n"
	"a=extmap-allow-mixed\r\n"
	"a=msid-semantic: WMS 0f3b1a2c-7d8e-4f90-a1b2-c3d4e5f60718\r\n"
	"m=video 9 UDP/TLS/RTP/SAVPF 49 50 102 103\r\n" CHROME_TRANSPORT
	"a=mid:0\r\n"
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
	"a=sendonly\r\n"
	"a=msid:0f3b1a2c-7d8e-4f90-a1b2-c3d4e5f60718 6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d\r\n"
	"a=rtcp-mux\r\n"
	"a=rtcp-rsize\r\n"
	"a=rtpmap:49 H265/90000\r\n" CHROME_FB("49")
	"a=fmtp:49 level-id=180;profile-id=1;tier-flag=0;tx-mode=SRST\r\n"
	"a=rtpmap:50 rtx/90000\r\n"
	"a=fmtp:50 apt=49\r\n"
	CHROME_H264("102", "103", "1", "42001f")
	"a=ssrc-group:FID 1351206785 2939183214\r\n"
	"a=ssrc:1351206785 cname:Yk0m6c3aZ8l0ZbqV\r\n"
	"a=ssrc:1351206785 msid:0f3b1a2c-7d8e-4f90-a1b2-c3d4e5f60718 "
	"6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d\r\n"
	"a=ssrc:2939183214 cname:Yk0m6c3aZ8l0ZbqV\r\n"
	"a=ssrc:2939183214 msid:0f3b1a2c-7d8e-4f90-a1b2-c3d4e5f60718 "
	"6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d\r\n";

#define FIREFOX_FB(pt)                                                                       \
	"a=rtcp-fb:" pt " nack\r\n"                                                          \
	"a=rtcp-fb:" pt " nack pli\r\n"                                                      \
	"a=rtcp-fb:" pt " ccm fir\r\n"                                                       \
	"a=rtcp-fb:" pt " goog-remb\r\n"                                                     \
	"a=rtcp-fb:" pt " transport-cc\r\n"

/* Firefox 128, recvonly video and audio: session-level fingerprint and ice-options,
 * attributes in alphabetical order (a=fmtp before a=rtpmap). */
static const char firefox_offer[] =
	"v=0\r\n"
	"o=mozilla...THIS_IS_SDPARTA-128.0 5043640476826349853 0 IN IP4 0.0.0.0\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=fingerprint:sha-256 " FP_FIREFOX "\r\n"
	"a=group:BUNDLE 0 1\r\n"
	"a=ice-options:trickle\r\n"
	"a=msid-semantic:WMS *\r\n"
	"m=video 9 UDP/TLS/RTP/SAVPF 120 124 121 125 126 127 97 98 123 122 119\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=recvonly\r\n"
	"a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=extmap:4 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
	"a=extmap:5 urn:ietf:params:rtp-hdrext:toffset\r\n"
	"a=extmap:6/recvonly http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n"
	"a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
	"a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n"
	"a=fmtp:97 profile-level-id=42e01f;level-asymmetry-allowed=1\r\n"
	"a=fmtp:120 max-fs=12288;max-fr=60\r\n"
	"a=fmtp:124 apt=120\r\n"
	"a=fmtp:121 max-fs=12288;max-fr=60\r\n"
	"a=fmtp:125 apt=121\r\n"
	"a=fmtp:127 apt=126\r\n"
	"a=fmtp:98 apt=97\r\n"
	"a=fmtp:119 apt=122\r\n"
	"a=ice-pwd:b5b0f3c0e9e5e2f1a6d3c4b7a8e9f0d1\r\n"
	"a=ice-ufrag:2a7b9c1d\r\n"
	"a=mid:0\r\n" FIREFOX_FB("120") FIREFOX_FB("121") FIREFOX_FB("126") FIREFOX_FB("97")
	"a=rtcp-mux\r\n"
	"a=rtcp-rsize\r\n"
	"a=rtpmap:120 VP8/90000\r\n"
	"a=rtpmap:124 rtx/90000\r\n"
	"a=rtpmap:121 VP9/90000\r\n"
	"a=rtpmap:125 rtx/90000\r\n"
	"a=rtpmap:126 H264/90000\r\n"
	"a=rtpmap:127 rtx/90000\r\n"
	"a=rtpmap:97 H264/90000\r\n"
	"a=rtpmap:98 rtx/90000\r\n"
	"a=rtpmap:123 ulpfec/90000\r\n"
	"a=rtpmap:122 red/90000\r\n"
	"a=rtpmap:119 rtx/90000\r\n"
	"a=setup:actpass\r\n"
	"a=ssrc:3226063386 cname:{5f0e2c1a-7b3d-4e9f-a1c2-3d4e5f6a7b8c}\r\n"
	"m=audio 9 UDP/TLS/RTP/SAVPF 109 9 0 8 101\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=recvonly\r\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
	"a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level\r\n"
	"a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1\r\n"
	"a=fmtp:101 0-15\r\n"
	"a=ice-pwd:b5b0f3c0e9e5e2f1a6d3c4b7a8e9f0d1\r\n"
	"a=ice-ufrag:2a7b9c1d\r\n"
	"a=mid:1\r\n"
	"a=rtcp-mux\r\n"
	"a=rtpmap:109 opus/48000/2\r\n"
	"a=rtpmap:9 G722/8000/1\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=rtpmap:101 telephone-event/8000/1\r\n"
	"a=setup:actpass\r\n"
	"a=ssrc:1743213582 cname:{5f0e2c1a-7b3d-4e9f-a1c2-3d4e5f6a7b8c}\r\n";

#define AIORTC_TRANSPORT                                                                     \
	"a=candidate:a0e1b2c3d4e5f60718293a4b5c6d7e8f 1 udp 2130706431 192.168.1.23 50215 typ "  \
	"host\r\n"                                                                            \
	"a=candidate:0f1e2d3c4b5a69788796a5b4c3d2e1f0 1 udp 1694498815 203.0.113.7 50215 typ "   \
	"srflx raddr 192.168.1.23 rport 50215\r\n"                                            \
	"a=end-of-candidates\r\n"                                                             \
	"a=ice-ufrag:Ay0d\r\n"                                                                \
	"a=ice-pwd:hGd9nX3ZkqK2r7WlPq0bTc\r\n"                                                \
	"a=fingerprint:sha-256 " FP_AIORTC_256 "\r\n"                                         \
	"a=fingerprint:sha-384 " FP_AIORTC_384 "\r\n"                                         \
	"a=fingerprint:sha-512 " FP_AIORTC_512 "\r\n"                                         \
	"a=setup:actpass\r\n"

/* aiortc (python), recvonly: candidates gathered before the offer (no trickle), RTX and
 * H.264 42001f/42e01f; 1.4 (Debian 12) sends one sha-256 fingerprint, later releases one
 * per hash, as here. */
static const char aiortc_offer[] =
	"v=0\r\n"
	"o=- 3911524546 3911524546 IN IP4 0.0.0.0\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=group:BUNDLE 0 1\r\n"
	"a=msid-semantic:WMS *\r\n"
	"m=video 50215 UDP/TLS/RTP/SAVPF 97 98 99 100 101 102\r\n"
	"c=IN IP4 192.168.1.23\r\n"
	"a=recvonly\r\n"
	"a=mid:0\r\n"
	"a=rtcp:9 IN IP4 0.0.0.0\r\n"
	"a=rtcp-mux\r\n"
	"a=ssrc-group:FID 2350611243 3129347466\r\n"
	"a=ssrc:2350611243 cname:9a3f7c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b\r\n"
	"a=ssrc:3129347466 cname:9a3f7c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b\r\n"
	"a=rtpmap:97 VP8/90000\r\n"
	"a=rtcp-fb:97 nack\r\n"
	"a=rtcp-fb:97 nack pli\r\n"
	"a=rtcp-fb:97 goog-remb\r\n"
	"a=rtpmap:98 rtx/90000\r\n"
	"a=fmtp:98 apt=97\r\n"
	"a=rtpmap:99 H264/90000\r\n"
	"a=rtcp-fb:99 nack\r\n"
	"a=rtcp-fb:99 nack pli\r\n"
	"a=rtcp-fb:99 goog-remb\r\n"
	"a=fmtp:99 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n"
	"a=rtpmap:100 rtx/90000\r\n"
	"a=fmtp:100 apt=99\r\n"
	"a=rtpmap:101 H264/90000\r\n"
	"a=rtcp-fb:101 nack\r\n"
	"a=rtcp-fb:101 nack pli\r\n"
	"a=rtcp-fb:101 goog-remb\r\n"
	"a=fmtp:101 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
	"a=rtpmap:102 rtx/90000\r\n"
	"a=fmtp:102 apt=101\r\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
	AIORTC_TRANSPORT
	"m=audio 50215 UDP/TLS/RTP/SAVPF 111 0 8\r\n"
	"c=IN IP4 192.168.1.23\r\n"
	"a=recvonly\r\n"
	"a=mid:1\r\n"
	"a=rtcp:9 IN IP4 0.0.0.0\r\n"
	"a=rtcp-mux\r\n"
	"a=ssrc:1593745093 cname:9a3f7c1e-2b4d-4e6f-8a0b-1c2d3e4f5a6b\r\n"
	"a=rtpmap:111 opus/48000/2\r\n"
	"a=rtpmap:0 PCMU/8000\r\n"
	"a=rtpmap:8 PCMA/8000\r\n"
	"a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
	"a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
	AIORTC_TRANSPORT;

/* GStreamer webrtcbin behind whepsrc: mids "video0"/"audio1", static PCMU without rtpmap
 * (what some gateways send), a=rtcp-fb:* and a data channel. */
static const char gst_offer[] =
	"v=0\r\n"
	"o=- 1471766485418329787 0 IN IP4 0.0.0.0\r\n"
	"s=-\r\n"
	"t=0 0\r\n"
	"a=ice-options:trickle\r\n"
	"a=group:BUNDLE video0 audio1 application2\r\n"
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=setup:actpass\r\n"
	"a=ice-ufrag:cXbVgl2C1FlbOf8PwqS2DBy5yAcBgcy1\r\n"
	"a=ice-pwd:Z2OwV8sJ+0q8y0hW2YnyfrCvkJ4N/u3Q\r\n"
	"a=rtcp-mux\r\n"
	"a=rtcp-rsize\r\n"
	"a=recvonly\r\n"
	"a=rtpmap:96 H264/90000\r\n"
	"a=rtcp-fb:* nack\r\n"
	"a=rtcp-fb:* nack pli\r\n"
	"a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"
	"a=mid:video0\r\n"
	"a=fingerprint:sha-256 " FP_CHROME "\r\n"
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=setup:actpass\r\n"
	"a=ice-ufrag:cXbVgl2C1FlbOf8PwqS2DBy5yAcBgcy1\r\n"
	"a=ice-pwd:Z2OwV8sJ+0q8y0hW2YnyfrCvkJ4N/u3Q\r\n"
	"a=rtcp-mux\r\n"
	"a=recvonly\r\n"
	"a=mid:audio1\r\n"
	"a=fingerprint:sha-256 " FP_CHROME "\r\n"
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	"c=IN IP4 0.0.0.0\r\n"
	"a=setup:actpass\r\n"
	"a=ice-ufrag:cXbVgl2C1FlbOf8PwqS2DBy5yAcBgcy1\r\n"
	"a=ice-pwd:Z2OwV8sJ+0q8y0hW2YnyfrCvkJ4N/u3Q\r\n"
	"a=mid:application2\r\n"
	"a=sctp-port:5000\r\n"
	"a=fingerprint:sha-256 " FP_CHROME "\r\n";

static struct cn_sdp offer, again;
static char err[256];

static int parse(const char *text)
{
	return cn_sdp_parse(text, strlen(text), &offer, err, sizeof(err));
}

/* Index of the format with payload type pt, or -1. */
static int fmt_of(const struct cn_sdp_media *m, int pt)
{
	for (int i = 0; i < m->nformats; i++)
		if (m->formats[i].pt == pt)
			return i;
	return -1;
}

TEST(sdp_chrome_offer)
{
	const struct cn_sdp_media *v = &offer.media[0], *a = &offer.media[1];
	const struct cn_sdp_format *f;
	int i;

	CHECK_INT(parse(chrome_offer), 0);
	CHECK_STR(err, "");
	CHECK_STR(offer.origin_user, "-");
	CHECK_STR(offer.session_id, "4215775240449105457");
	CHECK(offer.bundle && offer.trickle && !offer.ice_lite);
	CHECK_INT(offer.nbundle, 2);
	CHECK_STR(offer.bundle_mids[0], "0");
	CHECK_STR(offer.bundle_mids[1], "1");
	CHECK_INT(offer.nmedia, 2);

	CHECK_INT(v->kind, CN_SDP_VIDEO);
	CHECK_STR(v->kind_name, "video");
	CHECK_INT(v->port, 9);
	CHECK_STR(v->proto, "UDP/TLS/RTP/SAVPF");
	CHECK_STR(v->mid, "0");
	CHECK_INT(v->dir, CN_SDP_RECVONLY);
	CHECK(v->rtcp_mux && v->rtcp_rsize);
	CHECK_STR(v->ice_ufrag, "Hx3q");
	CHECK_STR(v->ice_pwd, "1ZD8rHSodlm7KzcXPg3rD2Ym");
	CHECK_STR(v->fingerprint_alg, "sha-256");
	CHECK_INT(v->fingerprint_len, 32);
	CHECK_INT(v->fingerprint[0], 0x93);
	CHECK_INT(v->fingerprint[31], 0x47);
	CHECK_INT(v->setup, CN_SDP_SETUP_ACTPASS);
	CHECK_INT(v->nformats, 25);
	CHECK_INT(v->nextmap, 11);
	CHECK_INT(v->ncandidates, 0);
	CHECK(!v->end_of_candidates);
	CHECK_INT(v->ssrc, 0);
	CHECK_INT(cn_sdp_find_extmap(v, CN_SDP_EXT_ABS_SEND_TIME), 2);
	CHECK_INT(cn_sdp_find_extmap(v, "urn:ietf:params:rtp-hdrext:sdes:mid"), 9);
	CHECK_INT(cn_sdp_find_extmap(v, "urn:nope"), 0);

	f = &v->formats[fmt_of(v, 102)];
	CHECK_INT(f->codec, CN_SDP_CODEC_H264);
	CHECK_STR(f->name, "H264");
	CHECK_INT(f->clock, 90000);
	CHECK_INT(f->channels, 0);
	CHECK_INT(f->packetization_mode, 1);
	CHECK_INT(f->profile_level_id, 0x42001f);
	CHECK(f->level_asymmetry_allowed);
	CHECK_INT(f->apt, -1);
	CHECK_STR(f->fmtp, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f");
	CHECK_INT(f->fb, CN_SDP_FB_NACK | CN_SDP_FB_PLI | CN_SDP_FB_FIR | CN_SDP_FB_REMB |
			 CN_SDP_FB_TRANSPORT_CC);
	f = &v->formats[fmt_of(v, 104)];
	CHECK_INT(f->packetization_mode, 0);
	f = &v->formats[fmt_of(v, 97)];
	CHECK_INT(f->codec, CN_SDP_CODEC_RTX);
	CHECK_INT(f->apt, 96);
	CHECK_INT(f->fb, 0);
	CHECK_INT(v->formats[fmt_of(v, 96)].codec, CN_SDP_CODEC_OTHER);
	CHECK_INT(v->formats[fmt_of(v, 45)].codec, CN_SDP_CODEC_OTHER);
	CHECK_STR(v->formats[fmt_of(v, 118)].name, "ulpfec");

	/* Picking: the camera's profile first, else level asymmetry, else any mode 1. */
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x42), fmt_of(v, 102));
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x4d), fmt_of(v, 127));
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x64), fmt_of(v, 112));
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0), fmt_of(v, 102));
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x58), fmt_of(v, 102));
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H265, 0), -ENOENT);
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_PCMU, 0), -ENOENT);
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_OTHER, 0), -ENOENT);
	CHECK_INT(cn_sdp_find_rtx(v, 102), fmt_of(v, 103));
	CHECK_INT(cn_sdp_find_rtx(v, 118), -ENOENT);

	CHECK_INT(a->kind, CN_SDP_AUDIO);
	CHECK_STR(a->mid, "1");
	CHECK_INT(a->dir, CN_SDP_SENDRECV);
	CHECK_INT(a->ssrc, 2419706321u);
	CHECK_INT(a->nformats, 8);
	CHECK_INT(a->nextmap, 4);
	i = fmt_of(a, 111);
	CHECK_STR(a->formats[i].name, "opus");
	CHECK_INT(a->formats[i].clock, 48000);
	CHECK_INT(a->formats[i].channels, 2);
	CHECK_INT(a->formats[i].fb, CN_SDP_FB_TRANSPORT_CC);
	CHECK_INT(cn_sdp_pick_format(a, CN_SDP_CODEC_PCMU, 0), fmt_of(a, 0));
	CHECK_INT(cn_sdp_pick_format(a, CN_SDP_CODEC_PCMA, 0), fmt_of(a, 8));
	CHECK_INT(cn_sdp_pick_format(a, CN_SDP_CODEC_H264, 0x42), -ENOENT);
}

TEST(sdp_chrome_sendonly_h265_offer)
{
	const struct cn_sdp_media *v = &offer.media[0];

	CHECK_INT(parse(chrome_sendonly_offer), 0);
	CHECK_INT(v->dir, CN_SDP_SENDONLY);
	CHECK_INT(v->ssrc, 1351206785u); /* the first a=ssrc, not the RTX one */
	CHECK_INT(v->formats[0].codec, CN_SDP_CODEC_H265);
	CHECK_INT(v->formats[0].packetization_mode, -1); /* only read for H.264 */
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H265, 0), 0);
	CHECK_INT(cn_sdp_find_rtx(v, 49), 1);
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x64), 2);
}

TEST(sdp_firefox_offer)
{
	const struct cn_sdp_media *v = &offer.media[0], *a = &offer.media[1];
	const struct cn_sdp_format *f;

	CHECK_INT(parse(firefox_offer), 0);
	CHECK_STR(offer.origin_user, "mozilla...THIS_IS_SDPARTA-128.0");
	CHECK(offer.trickle && offer.bundle);
	CHECK_INT(offer.nmedia, 2);
	/* the session-level fingerprint reaches both sections */
	for (int i = 0; i < 2; i++) {
		CHECK_STR(offer.media[i].fingerprint_alg, "sha-256");
		CHECK_INT(offer.media[i].fingerprint_len, 32);
		CHECK_INT(offer.media[i].fingerprint[0], 0x16);
		CHECK_STR(offer.media[i].ice_ufrag, "2a7b9c1d");
		CHECK_INT(offer.media[i].dir, CN_SDP_RECVONLY);
		CHECK_INT(offer.media[i].setup, CN_SDP_SETUP_ACTPASS);
	}
	CHECK_INT(v->nformats, 11);
	/* a=fmtp came before a=rtpmap: still read as H.264 */
	f = &v->formats[fmt_of(v, 126)];
	CHECK_INT(f->codec, CN_SDP_CODEC_H264);
	CHECK_INT(f->packetization_mode, 1);
	CHECK_INT(f->profile_level_id, 0x42e01f);
	CHECK_INT(f->fb, 0x1f);
	f = &v->formats[fmt_of(v, 97)];
	CHECK_INT(f->packetization_mode, -1);
	CHECK(f->level_asymmetry_allowed);
	CHECK_INT(v->formats[fmt_of(v, 127)].apt, 126);
	CHECK_INT(v->formats[fmt_of(v, 119)].apt, 122);
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x64), fmt_of(v, 126));
	CHECK_INT(cn_sdp_find_rtx(v, 126), fmt_of(v, 127));
	CHECK_INT(cn_sdp_find_extmap(v, CN_SDP_EXT_ABS_SEND_TIME), 4);
	CHECK_INT(cn_sdp_find_extmap(v, "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"),
		  6);
	CHECK_INT(v->ssrc, 3226063386u);
	CHECK_INT(a->formats[fmt_of(a, 9)].channels, 1);
	CHECK_STR(a->formats[fmt_of(a, 101)].fmtp, "0-15");
	CHECK_INT(cn_sdp_pick_format(a, CN_SDP_CODEC_PCMA, 0), fmt_of(a, 8));
	CHECK(!a->rtcp_rsize && a->rtcp_mux);
}

TEST(sdp_aiortc_offer)
{
	const struct cn_sdp_media *v = &offer.media[0], *a = &offer.media[1];

	CHECK_INT(parse(aiortc_offer), 0);
	CHECK(!offer.trickle);
	CHECK_INT(v->port, 50215);
	/* one fingerprint per hash: the strongest is kept */
	CHECK_STR(v->fingerprint_alg, "sha-512");
	CHECK_INT(v->fingerprint_len, 64);
	CHECK_INT(v->fingerprint[0], 0xD7);
	CHECK_INT(v->fingerprint[63], 0x72);
	CHECK_INT(v->ncandidates, 2);
	CHECK_STR(v->candidates[0],
		  "candidate:a0e1b2c3d4e5f60718293a4b5c6d7e8f 1 udp 2130706431 192.168.1.23 50215 typ host");
	CHECK(v->end_of_candidates && a->end_of_candidates);
	CHECK_INT(v->ssrc, 2350611243u);
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x42), fmt_of(v, 99));
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x64), fmt_of(v, 99));
	CHECK_INT(cn_sdp_find_rtx(v, 101), fmt_of(v, 102));
	CHECK_INT(cn_sdp_find_extmap(v, CN_SDP_EXT_ABS_SEND_TIME), 2);
	CHECK_INT(cn_sdp_find_extmap(a, CN_SDP_EXT_ABS_SEND_TIME), 0);
	CHECK_INT(cn_sdp_pick_format(a, CN_SDP_CODEC_PCMU, 0), 1);
	CHECK_INT(a->ncandidates, 2);
}

TEST(sdp_gstreamer_offer_star_fb_static_pt_datachannel)
{
	const struct cn_sdp_media *v = &offer.media[0], *a = &offer.media[1], *d = &offer.media[2];

	CHECK_INT(parse(gst_offer), 0);
	CHECK_INT(offer.nmedia, 3);
	CHECK_STR(offer.bundle_mids[2], "application2");
	CHECK_STR(v->ice_ufrag, "cXbVgl2C1FlbOf8PwqS2DBy5yAcBgcy1");
	CHECK_INT(v->formats[0].fb, CN_SDP_FB_NACK | CN_SDP_FB_PLI); /* from a=rtcp-fb:* */
	CHECK_INT(cn_sdp_pick_format(v, CN_SDP_CODEC_H264, 0x64), 0);
	/* PT 0 without a=rtpmap is PCMU/8000 */
	CHECK_STR(a->formats[0].name, "PCMU");
	CHECK_INT(a->formats[0].clock, 8000);
	CHECK_INT(a->formats[0].codec, CN_SDP_CODEC_PCMU);
	CHECK_INT(d->kind, CN_SDP_APPLICATION);
	CHECK_INT(d->nformats, 1);
	CHECK_STR(d->formats[0].name, "webrtc-datachannel");
	CHECK_INT(d->formats[0].codec, CN_SDP_CODEC_OTHER);
}

/* What the WHEP endpoint would answer: the picked format of each section, sendonly. */
static void answer_for(const struct cn_sdp *o, struct cn_sdp_answer *ans, int *picked)
{
	memset(ans, 0, sizeof(*ans));
	ans->session_id = 1735689600123456789ull;
	ans->session_version = 2;
	cn_strlcpy(ans->ice_ufrag, "Cn0p", sizeof(ans->ice_ufrag));
	cn_strlcpy(ans->ice_pwd, "Q2Fub3B5IHJlbGF5IHB3ZA", sizeof(ans->ice_pwd));
	ans->ice_lite = true;
	for (int i = 0; i < 32; i++)
		ans->fingerprint[i] = (uint8_t)(0xA0 + i);
	ans->setup = CN_SDP_SETUP_PASSIVE;
	ans->ncandidates = 2;
	cn_strlcpy(ans->candidates[0], "candidate:1 1 udp 2130706431 203.0.113.10 8189 typ host",
		   CN_SDP_CANDIDATE_LEN);
	cn_strlcpy(ans->candidates[1],
		   "candidate:2 1 tcp 1518280447 203.0.113.10 8189 typ host tcptype passive",
		   CN_SDP_CANDIDATE_LEN);
	ans->end_of_candidates = true;
	for (int i = 0; i < o->nmedia; i++) {
		const struct cn_sdp_media *m = &o->media[i];
		struct cn_sdp_answer_media *am = &ans->media[i];
		int f = -ENOENT;

		if (m->port && m->kind == CN_SDP_VIDEO)
			f = cn_sdp_pick_format(m, CN_SDP_CODEC_H264, 0x64);
		else if (m->port && m->kind == CN_SDP_AUDIO)
			f = cn_sdp_pick_format(m, CN_SDP_CODEC_PCMU, 0);
		picked[i] = f;
		if (f < 0)
			continue;
		am->accepted = true;
		am->format = f;
		am->fb = CN_SDP_FB_NACK | CN_SDP_FB_PLI | CN_SDP_FB_FIR;
		am->abs_send_time_id = cn_sdp_find_extmap(m, CN_SDP_EXT_ABS_SEND_TIME);
		am->dir = CN_SDP_SENDONLY;
		am->ssrc = 0x10000000u + (uint32_t)i;
		cn_strlcpy(am->cname, "canopy-cam12", sizeof(am->cname));
		cn_strlcpy(am->msid_stream, "cam12", sizeof(am->msid_stream));
		cn_strlcpy(am->msid_track, i ? "cam12-audio" : "cam12-video", sizeof(am->msid_track));
	}
}

/* Answers o, parses the answer back and checks it says what was meant. */
static void round_trip(const char *text, int expect_accepted)
{
	struct cn_sdp_answer ans;
	struct cn_buf out;
	int picked[CN_SDP_MAX_MEDIA], naccepted = 0, first = -1;

	CHECK_INT(cn_sdp_parse(text, strlen(text), &offer, err, sizeof(err)), 0);
	answer_for(&offer, &ans, picked);
	cn_buf_init(&out, 1 << 16);
	CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), 0);
	if (!out.data)
		return;
	CHECK_INT(cn_sdp_parse(out.data, out.len, &again, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_STR(again.session_id, "1735689600123456789");
	CHECK(again.ice_lite);
	CHECK_INT(again.nmedia, offer.nmedia);
	CHECK(strstr(out.data, "a=msid-semantic: WMS *\r\n") != NULL);
	for (int i = 0; i < offer.nmedia; i++) {
		const struct cn_sdp_media *om = &offer.media[i], *am = &again.media[i];

		CHECK_STR(am->kind_name, om->kind_name);
		CHECK_STR(am->proto, om->proto);
		CHECK_STR(am->mid, om->mid);
		if (picked[i] < 0) {
			CHECK_INT(am->port, 0);
			CHECK_INT(am->nformats, om->nformats);
			CHECK_INT(am->dir, CN_SDP_INACTIVE);
			continue;
		}
		naccepted++;
		if (first < 0)
			first = i;
		CHECK_INT(am->port, 9);
		CHECK_INT(am->nformats, 1);
		CHECK_INT(am->formats[0].pt, om->formats[picked[i]].pt);
		CHECK_STR(am->formats[0].name, om->formats[picked[i]].name);
		CHECK_STR(am->formats[0].fmtp, om->formats[picked[i]].fmtp);
		CHECK_INT(am->formats[0].codec, om->formats[picked[i]].codec);
		CHECK_INT(am->formats[0].fb,
			  om->formats[picked[i]].fb & (CN_SDP_FB_NACK | CN_SDP_FB_PLI | CN_SDP_FB_FIR));
		CHECK_INT(am->dir, CN_SDP_SENDONLY);
		CHECK_INT(am->setup, CN_SDP_SETUP_PASSIVE);
		CHECK_STR(am->ice_ufrag, "Cn0p");
		CHECK_STR(am->ice_pwd, "Q2Fub3B5IHJlbGF5IHB3ZA");
		CHECK_STR(am->fingerprint_alg, "sha-256");
		CHECK_INT(am->fingerprint_len, 32);
		CHECK_INT(am->fingerprint[31], 0xA0 + 31);
		CHECK_INT(am->rtcp_mux, om->rtcp_mux);
		CHECK_INT(am->rtcp_rsize, om->rtcp_rsize);
		CHECK_INT(am->ssrc, 0x10000000u + (uint32_t)i);
		CHECK_INT(cn_sdp_find_extmap(am, CN_SDP_EXT_ABS_SEND_TIME),
			  cn_sdp_find_extmap(om, CN_SDP_EXT_ABS_SEND_TIME));
		/* with BUNDLE the candidates go to the first (tagged) section only */
		CHECK_INT(am->ncandidates, i == first ? 2 : 0);
		CHECK(am->end_of_candidates == (i == first));
	}
	CHECK_INT(naccepted, expect_accepted);
	CHECK_INT(again.nbundle, naccepted);
	for (int i = 0; i < again.nbundle; i++)
		for (int k = 0; k < again.nmedia; k++)
			if (strcmp(again.media[k].mid, again.bundle_mids[i]) == 0)
				CHECK(again.media[k].port != 0);
	cn_buf_free(&out);
}

TEST(sdp_answers_round_trip)
{
	round_trip(chrome_offer, 2);
	round_trip(chrome_sendonly_offer, 1);
	round_trip(firefox_offer, 2);
	round_trip(aiortc_offer, 2);
	round_trip(gst_offer, 2); /* the data channel is rejected */
}

TEST(sdp_answer_exact_text)
{
	static const char text[] =
		"v=0\r\n"
		"o=- 1 1 IN IP4 0.0.0.0\r\n"
		"s=-\r\n"
		"t=0 0\r\n"
		"a=group:BUNDLE v a\r\n"
		"a=ice-options:trickle\r\n"
		"a=ice-ufrag:abcd\r\n"
		"a=ice-pwd:abcdefghijklmnopqrstuv\r\n"
		"a=fingerprint:sha-256 " FP_CHROME "\r\n"
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n"
		"c=IN IP4 0.0.0.0\r\n"
		"a=mid:v\r\n"
		"a=recvonly\r\n"
		"a=rtcp-mux\r\n"
		"a=rtcp-rsize\r\n"
		"a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
		"a=rtpmap:96 H264/90000\r\n"
		"a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
		"a=rtcp-fb:96 nack\r\n"
		"a=rtcp-fb:96 nack pli\r\n"
		"a=rtcp-fb:96 transport-cc\r\n"
		"a=rtpmap:97 rtx/90000\r\n"
		"a=fmtp:97 apt=96\r\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 8\r\n"
		"c=IN IP4 0.0.0.0\r\n"
		"a=mid:a\r\n"
		"a=recvonly\r\n"
		"a=rtcp-mux\r\n"
		"a=rtpmap:111 opus/48000/2\r\n";
	static const char expect[] =
		"v=0\r\n"
		"o=- 42 7 IN IP4 127.0.0.1\r\n"
		"s=-\r\n"
		"t=0 0\r\n"
		"a=group:BUNDLE v\r\n"
		"a=msid-semantic: WMS *\r\n"
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
		"c=IN IP4 0.0.0.0\r\n"
		"a=rtcp:9 IN IP4 0.0.0.0\r\n"
		"a=mid:v\r\n"
		"a=sendonly\r\n"
		"a=rtcp-mux\r\n"
		"a=rtcp-rsize\r\n"
		"a=ice-ufrag:Cn0p\r\n"
		"a=ice-pwd:Q2Fub3B5IHJlbGF5IHB3ZA\r\n"
		"a=ice-options:trickle\r\n"
		"a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:"
		"14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r\n"
		"a=setup:passive\r\n"
		"a=rtpmap:96 H264/90000\r\n"
		"a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
		"a=rtcp-fb:96 nack\r\n"
		"a=rtcp-fb:96 nack pli\r\n"
		"a=extmap:3 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
		"a=msid:cam1 cam1-v\r\n"
		"a=ssrc:305419896 cname:cn\r\n"
		"a=ssrc:305419896 msid:cam1 cam1-v\r\n"
		"a=candidate:1 1 udp 2130706431 192.0.2.1 8189 typ host\r\n"
		"a=end-of-candidates\r\n"
		"m=audio 0 UDP/TLS/RTP/SAVPF 111 8\r\n"
		"c=IN IP4 0.0.0.0\r\n"
		"a=mid:a\r\n"
		"a=inactive\r\n"
		"a=rtcp-mux\r\n"
		"a=ice-ufrag:Cn0p\r\n"
		"a=ice-pwd:Q2Fub3B5IHJlbGF5IHB3ZA\r\n"
		"a=ice-options:trickle\r\n"
		"a=fingerprint:sha-256 00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:"
		"14:15:16:17:18:19:1A:1B:1C:1D:1E:1F\r\n"
		"a=setup:passive\r\n"
		"a=rtpmap:111 opus/48000/2\r\n"
		"a=rtpmap:8 PCMA/8000\r\n";
	struct cn_sdp_answer ans;
	struct cn_buf out;

	CHECK_INT(parse(text), 0);
	memset(&ans, 0, sizeof(ans));
	ans.session_id = 42;
	ans.session_version = 7;
	cn_strlcpy(ans.ice_ufrag, "Cn0p", sizeof(ans.ice_ufrag));
	cn_strlcpy(ans.ice_pwd, "Q2Fub3B5IHJlbGF5IHB3ZA", sizeof(ans.ice_pwd));
	for (int i = 0; i < 32; i++)
		ans.fingerprint[i] = (uint8_t)i;
	ans.setup = CN_SDP_SETUP_PASSIVE;
	ans.ncandidates = 1;
	cn_strlcpy(ans.candidates[0], "candidate:1 1 udp 2130706431 192.0.2.1 8189 typ host",
		   CN_SDP_CANDIDATE_LEN);
	ans.end_of_candidates = true;
	ans.media[0].accepted = true;
	ans.media[0].format = 0;
	ans.media[0].fb = CN_SDP_FB_NACK | CN_SDP_FB_PLI | CN_SDP_FB_FIR; /* FIR not offered */
	ans.media[0].abs_send_time_id = 3;
	ans.media[0].dir = CN_SDP_SENDONLY;
	ans.media[0].ssrc = 0x12345678;
	cn_strlcpy(ans.media[0].cname, "cn", sizeof(ans.media[0].cname));
	cn_strlcpy(ans.media[0].msid_stream, "cam1", sizeof(ans.media[0].msid_stream));
	cn_strlcpy(ans.media[0].msid_track, "cam1-v", sizeof(ans.media[0].msid_track));
	cn_buf_init(&out, 1 << 16);
	CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), 0);
	CHECK_STR(out.data, expect);

	/* every section rejected: no BUNDLE group at all */
	cn_buf_reset(&out);
	ans.media[0].accepted = false;
	CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), 0);
	CHECK(out.data && !strstr(out.data, "a=group"));
	CHECK(out.data && strstr(out.data, "m=video 0 UDP/TLS/RTP/SAVPF 96 97\r\n"));
	CHECK_INT(cn_sdp_parse(out.data, out.len, &again, err, sizeof(err)), 0);
	cn_buf_free(&out);
}

TEST(sdp_answer_without_bundle_puts_candidates_everywhere)
{
	static const char text[] =
		"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
		"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\n"
		"a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33\r\n"
		"m=video 9 RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\n"
		"a=fmtp:96 packetization-mode=1\r\n"
		"m=audio 9 RTP/SAVPF 8\r\n";
	struct cn_sdp_answer ans;
	struct cn_buf out;
	int picked[CN_SDP_MAX_MEDIA];

	CHECK_INT(parse(text), 0);
	CHECK_STR(offer.media[1].fingerprint_alg, "sha-1");
	CHECK_INT(offer.media[1].fingerprint[10], 0xaa);
	CHECK_INT(offer.media[1].formats[0].codec, CN_SDP_CODEC_PCMA);
	answer_for(&offer, &ans, picked);
	ans.media[1].accepted = true;
	ans.media[1].format = 0;
	cn_buf_init(&out, 1 << 16);
	CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), 0);
	CHECK(out.data && !strstr(out.data, "a=group"));
	CHECK_INT(cn_sdp_parse(out.data, out.len, &again, err, sizeof(err)), 0);
	CHECK(!again.bundle);
	CHECK_INT(again.media[0].ncandidates, 2);
	CHECK_INT(again.media[1].ncandidates, 2);
	cn_buf_free(&out);
}

TEST(sdp_answer_refusals)
{
	struct cn_sdp_answer ans;
	struct cn_buf out;
	int picked[CN_SDP_MAX_MEDIA];

	CHECK_INT(parse(chrome_offer), 0);
	cn_buf_init(&out, 1 << 16);
	cn_buf_append_str(&out, "keep");

#define REFUSED(change, rc)                                                                  \
	do {                                                                                 \
		answer_for(&offer, &ans, picked);                                            \
		change;                                                                      \
		CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), rc);                      \
		CHECK_STR(out.data, "keep");                                                 \
	} while (0)
	REFUSED(ans.media[0].format = 25, -EINVAL);
	REFUSED(ans.media[0].format = -1, -EINVAL);
	REFUSED(ans.setup = CN_SDP_SETUP_ACTPASS, -EINVAL);
	REFUSED(ans.ice_ufrag[2] = '\0', -EINVAL);
	REFUSED(ans.ice_pwd[5] = ' ', -EINVAL);
	REFUSED(memset(ans.ice_ufrag, 'a', sizeof(ans.ice_ufrag)), -EINVAL);
	REFUSED(ans.ncandidates = 33, -EINVAL);
	REFUSED(ans.candidates[1][0] = 'x', -EINVAL);
	REFUSED(cn_strlcpy(ans.candidates[0], "candidate:1 1 udp 1 192.0.2.1 9 typ host\r\na=x",
			   CN_SDP_CANDIDATE_LEN),
		-EINVAL);
	REFUSED(ans.media[0].abs_send_time_id = 3, -EINVAL); /* id 3 is not abs-send-time */
	REFUSED(ans.media[0].dir = (enum cn_sdp_dir)9, -EINVAL);
	REFUSED(ans.media[0].cname[0] = '\0', -EINVAL);
	REFUSED(cn_strlcpy(ans.media[0].msid_track, "a b", 4), -EINVAL);
	REFUSED(offer.nmedia = 9, -EINVAL);
	offer.nmedia = 2;
	/* no room: -ENOBUFS, and the buffer is as it was */
	out.max = 600;
	REFUSED((void)0, -ENOBUFS);
	cn_buf_free(&out);

	/* a section the offerer disabled cannot be accepted */
	CHECK_INT(parse("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
			"m=video 0 UDP/TLS/RTP/SAVPF 96\r\n"),
		  0);
	answer_for(&offer, &ans, picked);
	ans.media[0].accepted = true;
	cn_buf_init(&out, 1 << 16);
	CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), -EINVAL);
	/* nor a data channel */
	CHECK_INT(parse(gst_offer), 0);
	answer_for(&offer, &ans, picked);
	ans.media[2].accepted = true;
	CHECK_INT(cn_sdp_write_answer(&offer, &ans, &out), -EINVAL);
	cn_buf_free(&out);
#undef REFUSED
}

/* ---- refusals: each with its precise message ---- */

#define HEAD "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"     /* lines 1-4 */
#define MV "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n" /* lines 5-6 */
#define UFRAG "a=ice-ufrag:abcd\r\n"                                 /* line 7 */
#define PWD "a=ice-pwd:abcdefghijklmnopqrstuv\r\n"                   /* line 8 */
#define FP "a=fingerprint:sha-256 " FP_CHROME "\r\n"                 /* line 9 */
#define RTPMAP "a=rtpmap:96 H264/90000\r\n"                          /* line 10 */
#define GOOD HEAD MV UFRAG PWD FP RTPMAP

struct bad_case {
	const char *text;
	int rc;
	const char *msg;
};

static const struct bad_case bad_cases[] = {
	{ HEAD MV PWD FP RTPMAP, CN_E_MALFORMED,
	  "line 5: m=video: no a=ice-ufrag in the section or at session level" },
	{ HEAD MV UFRAG FP RTPMAP, CN_E_MALFORMED,
	  "line 5: m=video: no a=ice-pwd in the section or at session level" },
	{ HEAD MV UFRAG PWD RTPMAP, CN_E_MALFORMED,
	  "line 5: m=video: no a=fingerprint in the section or at session level" },
	{ HEAD MV UFRAG PWD "a=fingerprint:sha-256 " FP_FIREFOX ":01\r\n", CN_E_MALFORMED,
	  "line 9: a=fingerprint: 'sha-256' needs 32 bytes, got 33" },
	{ HEAD MV UFRAG PWD "a=fingerprint:SHA-256 11:22\r\n", CN_E_MALFORMED,
	  "line 9: a=fingerprint: 'SHA-256' needs 32 bytes, got 2" },
	{ HEAD MV UFRAG PWD "a=fingerprint:sha-256 11:2G\r\n", CN_E_MALFORMED,
	  "line 9: a=fingerprint: '11:2G' is not hex byte pairs separated by ':'" },
	{ HEAD MV UFRAG PWD "a=fingerprint:sha-256 11:22:\r\n", CN_E_MALFORMED,
	  "line 9: a=fingerprint: '11:22:' is not hex byte pairs separated by ':'" },
	{ HEAD MV UFRAG PWD "a=fingerprint:sha-256 1122\r\n", CN_E_MALFORMED,
	  "line 9: a=fingerprint: '1122' is not hex byte pairs separated by ':'" },
	{ HEAD MV UFRAG PWD "a=fingerprint:md5 11:22\r\n", CN_E_MALFORMED,
	  "line 9: a=fingerprint: hash 'md5' is not sha-1, sha-224, sha-256, sha-384 or sha-512" },
	{ GOOD "a=rtpmap:97 rtx/90000\r\n", CN_E_MALFORMED,
	  "line 11: a=rtpmap: payload type 97 is not on the m= line" },
	{ GOOD "a=fmtp:97 apt=96\r\n", CN_E_MALFORMED,
	  "line 11: a=fmtp: payload type 97 is not on the m= line" },
	{ GOOD "a=rtcp-fb:97 nack\r\n", CN_E_MALFORMED,
	  "line 11: a=rtcp-fb: payload type 97 is not on the m= line" },
	{ GOOD "a=rtcp-fb:300 nack\r\n", CN_E_MALFORMED,
	  "line 11: a=rtcp-fb: payload type '300' is not 0 to 127" },
	{ GOOD "a=rtcp-fb:96\r\n", CN_E_MALFORMED,
	  "line 11: a=rtcp-fb: needs '<payload type or *> <feedback>'" },
	{ GOOD "a=rtpmap:96 H264/90000\r\n", CN_E_MALFORMED,
	  "line 11: a=rtpmap: payload type 96 mapped twice" },
	{ GOOD "a=fmtp:96 a=1\r\na=fmtp:96 b=2\r\n", CN_E_MALFORMED,
	  "line 12: a=fmtp: payload type 96 has a second a=fmtp" },
	{ HEAD MV UFRAG PWD FP "a=rtpmap:96 H264\r\n", CN_E_MALFORMED,
	  "line 10: a=rtpmap: needs '<payload type> <encoding>/<clock rate>'" },
	{ HEAD MV UFRAG PWD FP "a=rtpmap:96 opus/48000/0\r\n", CN_E_MALFORMED,
	  "line 10: a=rtpmap: channels are not 1 to 255" },
	{ HEAD MV UFRAG PWD FP, CN_E_MALFORMED, "line 5: m=video: payload type 96 has no a=rtpmap" },
	{ GOOD "a=fmtp:96 packetization-mode=3\r\n", CN_E_MALFORMED,
	  "line 11: a=fmtp:96: packetization-mode '3' is not 0, 1 or 2" },
	{ GOOD "a=fmtp:96 profile-level-id=42e01\r\n", CN_E_MALFORMED,
	  "line 11: a=fmtp:96: profile-level-id '42e01' is not 6 hex digits" },
	{ GOOD "a=fmtp:96 level-asymmetry-allowed=yes\r\n", CN_E_MALFORMED,
	  "line 11: a=fmtp:96: level-asymmetry-allowed 'yes' is not 0 or 1" },
	{ HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n" UFRAG PWD FP RTPMAP
	  "a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=x\r\n",
	  CN_E_MALFORMED, "line 11: a=fmtp:97: apt 'x' is not a payload type 0 to 127" },
	{ HEAD "m=video 70000 UDP/TLS/RTP/SAVPF 96\r\n", CN_E_MALFORMED,
	  "line 5: m=video: port '70000' is not 0 to 65535" },
	{ HEAD "m=video -1 UDP/TLS/RTP/SAVPF 96\r\n", CN_E_MALFORMED,
	  "line 5: m=video: port '-1' is not 0 to 65535" },
	{ HEAD "m=video 9 RTP/AVP 96\r\n", CN_E_MALFORMED,
	  "line 5: m=video: proto 'RTP/AVP' is not WebRTC's (UDP/TLS/RTP/SAVPF)" },
	{ HEAD "m=application 9 TCP/MSRP *\r\n", CN_E_MALFORMED,
	  "line 5: m=application: proto 'TCP/MSRP' is not WebRTC's (UDP/TLS/RTP/SAVPF or "
	  "UDP/DTLS/SCTP)" },
	{ HEAD "m=video 9 UDP/TLS/RTP/SAVPF\r\n", CN_E_MALFORMED,
	  "line 5: m=: needs '<media> <port> <proto> <fmt> ...'" },
	{ HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96 128\r\n", CN_E_MALFORMED,
	  "line 5: m=: payload type '128' is not 0 to 127" },
	{ HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96 96\r\n", CN_E_MALFORMED,
	  "line 5: m=: payload type 96 listed twice" },
	{ HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96  97\r\n", CN_E_MALFORMED,
	  "line 5: m=: payload type '' is not 0 to 127" },
	{ HEAD "m=video 9 UDP/TLS/RTP/SAVPF 96 \r\n", CN_E_MALFORMED,
	  "line 5: m=: payload type '' is not 0 to 127" },
	{ HEAD "m=video 9 UDP//SAVPF 96\r\n", CN_E_MALFORMED,
	  "line 5: m=: proto 'UDP//SAVPF' is not '<token>/<token>...' of 1 to 39 bytes" },
	{ HEAD "m=video-and-more-than-16 9 RTP/SAVPF 96\r\n", CN_E_MALFORMED,
	  "line 5: m=: media 'video-and-more-than-16' is not a token of 1 to 15 bytes" },
	{ GOOD "a=candidate:1 1 udp 2130706431 192.0.2.1 9 host\r\n", CN_E_MALFORMED,
	  "line 11: a=candidate: '1 1 udp 2130706431 192.0.2.1 9 host': no 'typ' after the port" },
	{ GOOD "a=candidate:1 0 udp 2130706431 192.0.2.1 9 typ host\r\n", CN_E_MALFORMED,
	  "line 11: a=candidate: '1 0 udp 2130706431 192.0.2.1 9 typ host': component id is not 1 to "
	  "256" },
	{ GOOD "a=candidate:1 1 udp 1 192.0.2.1 99999 typ host\r\n", CN_E_MALFORMED,
	  "line 11: a=candidate: '1 1 udp 1 192.0.2.1 99999 typ host': port is not 0 to 65535" },
	{ GOOD "a=candidate:1 1 udp 4294967296 192.0.2.1 9 typ host\r\n", CN_E_MALFORMED,
	  "line 11: a=candidate: '1 1 udp 4294967296 192.0.2.1 9 typ host': priority is not 0 to "
	  "4294967295" },
	{ GOOD "a=candidate:f:o 1 udp 1 192.0.2.1 9 typ host\r\n", CN_E_MALFORMED,
	  "line 11: a=candidate: 'f:o 1 udp 1 192.0.2.1 9 typ host': foundation is not 1 to 32 of "
	  "A-Z a-z 0-9 + /" },
	{ HEAD MV "a=ice-ufrag:abc\r\n", CN_E_MALFORMED,
	  "line 7: a=ice-ufrag: 'abc' is 3 characters, needs 4 to 63" },
	{ HEAD MV "a=ice-ufrag:ab-cd\r\n", CN_E_MALFORMED,
	  "line 7: a=ice-ufrag: 'ab-cd' has a character outside A-Z a-z 0-9 + /" },
	{ HEAD MV UFRAG "a=ice-pwd:short\r\n", CN_E_MALFORMED,
	  "line 8: a=ice-pwd: 'short' is 5 characters, needs 22 to 159" },
	{ HEAD MV UFRAG UFRAG, CN_E_MALFORMED, "line 8: a=ice-ufrag: given twice" },
	{ HEAD MV "a=ice-ufrag:0123456789012345678901234567890123456789012345678901234567890123\r\n",
	  CN_E_TOO_BIG,
	  "line 7: a=ice-ufrag: '0123456789012345678901234567890123456789...' is 64 characters, "
	  "needs 4 to 63" },
	{ GOOD "a=setup:holdconn\r\n", CN_E_MALFORMED,
	  "line 11: a=setup: 'holdconn' is not actpass, active or passive" },
	{ GOOD "a=recvonly\r\na=sendonly\r\n", CN_E_MALFORMED,
	  "line 12: a=sendonly: a second direction attribute" },
	{ GOOD "a=recvonly:x\r\n", CN_E_MALFORMED, "line 11: a=recvonly: takes no value" },
	{ GOOD "a=mid\r\n", CN_E_MALFORMED, "line 11: a=mid: needs a value" },
	{ GOOD "a=mid:\r\n", CN_E_MALFORMED, "line 11: a=mid: needs a value" },
	{ GOOD "a=mid:a\r\na=mid:b\r\n", CN_E_MALFORMED, "line 12: a=mid: given twice" },
	{ GOOD "a=mid:0\r\n" MV UFRAG PWD FP RTPMAP "a=mid:0\r\n", CN_E_MALFORMED,
	  "line 18: a=mid: '0' is already the mid of m= section 1" },
	{ GOOD "a=ice-lite\r\n", CN_E_MALFORMED, "line 11: a=ice-lite: only allowed at session level" },
	{ GOOD "a=group:BUNDLE 0\r\n", CN_E_MALFORMED, "line 11: a=group: only allowed at session level" },
	{ HEAD "a=mid:0\r\n", CN_E_MALFORMED, "line 5: a=mid: only allowed in an m= section" },
	{ HEAD "a=rtpmap:0 PCMU/8000\r\n", CN_E_MALFORMED,
	  "line 5: a=rtpmap: only allowed in an m= section" },
	{ HEAD "a=group:BUNDLE 0\r\n" GOOD, CN_E_MALFORMED,
	  "line 6: v= only allowed once, as line 1" },
	{ HEAD "o=- 1 1 IN IP4 0.0.0.0\r\n", CN_E_MALFORMED,
	  "line 5: o= only allowed once, as line 2" },
	{ "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" MV UFRAG PWD FP
	  RTPMAP "a=mid:0\r\n",
	  CN_E_MALFORMED, "line 5: a=group: no m= section has mid '1'" },
	{ HEAD "a=group:BUNDLE 0 0\r\n", CN_E_MALFORMED, "line 5: a=group: mid '0' listed twice" },
	{ HEAD "a=group:BUNDLE 0\r\na=group:BUNDLE 1\r\n", CN_E_MALFORMED,
	  "line 6: a=group: a second BUNDLE group is not supported" },
	{ GOOD "a=extmap:0 urn:x\r\n", CN_E_MALFORMED, "line 11: a=extmap: id '0' is not 1 to 255" },
	{ GOOD "a=extmap:256 urn:x\r\n", CN_E_MALFORMED, "line 11: a=extmap: id '256' is not 1 to 255" },
	{ GOOD "a=extmap:2/both urn:x\r\n", CN_E_MALFORMED,
	  "line 11: a=extmap: direction 'both' is not sendrecv, sendonly, recvonly or inactive" },
	{ GOOD "a=extmap:2 urn:x\r\na=extmap:2 urn:y\r\n", CN_E_MALFORMED,
	  "line 12: a=extmap: id 2 used twice" },
	{ GOOD "a=extmap:2\r\n", CN_E_MALFORMED, "line 11: a=extmap: needs '<id> <uri>'" },
	{ GOOD "a=ssrc:x cname:y\r\n", CN_E_MALFORMED,
	  "line 11: a=ssrc: needs '<ssrc 0 to 4294967295> <attribute>'" },
	{ GOOD "a=ice-options:trickle  ice2\r\n", CN_E_MALFORMED,
	  "line 11: a=ice-options: needs space-separated option tokens" },
	{ GOOD "a=:x\r\n", CN_E_MALFORMED, "line 11: a=: attribute name is not a token" },
	{ GOOD "hello\r\n", CN_E_MALFORMED, "line 11: 'hello' is not '<letter>=<value>'" },
	{ GOOD "A=1\r\n", CN_E_MALFORMED, "line 11: 'A=1' is not '<letter>=<value>'" },
	{ GOOD "a =1\r\n", CN_E_MALFORMED, "line 11: 'a =1' is not '<letter>=<value>'" },
	{ GOOD "x=1\r\n", CN_E_MALFORMED, "line 11: unknown line type 'x='" },
	{ GOOD "t=0 0\r\n", CN_E_MALFORMED, "line 11: t= only allowed at session level" },
	{ GOOD "v=0\r\n", CN_E_MALFORMED, "line 11: v= only allowed once, as line 1" },
	{ GOOD "\r\n", CN_E_MALFORMED, "line 11: empty line" },
	{ GOOD "a=mid:0", CN_E_MALFORMED, "line 11: last line does not end in CRLF or LF" },
	{ GOOD "a=mid:0\r", CN_E_MALFORMED, "line 11: last line does not end in CRLF or LF" },
	{ GOOD "a=mid:0\rx\r\n", CN_E_MALFORMED, "line 11: CR at column 8 not followed by LF" },
	{ "v=1\r\n", CN_E_MALFORMED, "line 1: v=: version '1' is not 0" },
	{ "o=- 1 1 IN IP4 0.0.0.0\r\n", CN_E_MALFORMED,
	  "line 1: an SDP description starts with v=, o=, s= lines, not o=" },
	{ "v=0\r\ns=-\r\n", CN_E_MALFORMED,
	  "line 2: an SDP description starts with v=, o=, s= lines, not s=" },
	{ "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n", CN_E_MALFORMED,
	  "line 2: ends before the v=, o= and s= lines" },
	{ "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n", CN_E_MALFORMED, "line 3: no t= line" },
	{ "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n" MV, CN_E_MALFORMED,
	  "line 4: m=: no t= line before the first m= section" },
	{ "v=0\r\no=- 1 1 IN IP4\r\n", CN_E_MALFORMED,
	  "line 2: o=: needs '<username> <sess-id> <sess-version> IN IP4|IP6 <address>'" },
	{ "v=0\r\no=- 12a 1 IN IP4 0.0.0.0\r\n", CN_E_MALFORMED,
	  "line 2: o=: session id '12a' is not 1 to 31 digits" },
	{ "v=0\r\no=- 1 1 IN IPX 0.0.0.0\r\n", CN_E_MALFORMED,
	  "line 2: o=: address type is not 'IN IP4' or 'IN IP6'" },
	{ "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=now\r\n", CN_E_MALFORMED,
	  "line 4: t=: needs '<start-time> <stop-time>' in digits" },
	{ HEAD "c=IN IP4\r\n", CN_E_MALFORMED, "line 5: c=: needs 'IN IP4|IP6 <address>'" },
	{ "", CN_E_MALFORMED, "offer is empty" },
};

TEST(sdp_refusals_say_why)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		int rc;

		memset(&offer, 0x55, sizeof(offer));
		rc = cn_sdp_parse(c->text, strlen(c->text), &offer, err, sizeof(err));
		if (rc != c->rc || strcmp(err, c->msg) != 0)
			cn_test_fail(__FILE__, __LINE__, "case %zu: rc %d \"%s\", expected %d \"%s\"",
				     i, rc, err, c->rc, c->msg);
		CHECK(offer.nmedia == 0 && offer.session_id[0] == '\0'); /* zeroed on refusal */
	}
}

TEST(sdp_the_good_base_parses)
{
	/* the base of the refusal cases is itself good; LF-only line ends are accepted */
	static const char lf[] = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\nm=video 9 "
				 "UDP/TLS/RTP/SAVPF 96\na=ice-ufrag:abcd\n"
				 "a=ice-pwd:abcdefghijklmnopqrstuv\na=fingerprint:sha-256 " FP_CHROME
				 "\na=rtpmap:96 H264/90000\n";

	CHECK_INT(parse(GOOD), 0);
	CHECK_INT(offer.media[0].formats[0].fmtp[0], 0);
	CHECK_INT(offer.media[0].formats[0].packetization_mode, -1);
	CHECK_INT(offer.media[0].formats[0].profile_level_id, 0);
	CHECK_INT(offer.media[0].dir, CN_SDP_SENDRECV);
	CHECK_INT(offer.media[0].setup, CN_SDP_SETUP_NONE);
	CHECK_INT(parse(lf), 0);
	CHECK_STR(offer.media[0].ice_ufrag, "abcd");
	/* a disabled section needs no transport and may carry any RTP proto */
	CHECK_INT(parse(HEAD "m=video 0 RTP/AVP 96 97\r\n"), 0);
	CHECK_INT(offer.media[0].port, 0);
	CHECK_INT(offer.media[0].formats[0].name[0], '\0');
	/* unknown attributes and lines are skipped */
	CHECK_INT(parse(GOOD "a=x-google-flag:conference\r\na=sctp-port:5000\r\nb=AS:2500\r\n"
			     "i=camera\r\n"),
		  0);
	/* two-byte extmap ids are checked but not kept */
	CHECK_INT(parse(GOOD "a=extmap:15 urn:x\r\na=extmap:14 urn:y\r\n"), 0);
	CHECK_INT(offer.media[0].nextmap, 1);
	CHECK_INT(offer.media[0].extmap[0].id, 14);
}

TEST(sdp_session_level_values_are_inherited)
{
	static const char text[] =
		"v=0\r\no=- 1 1 IN IP6 ::1\r\ns= \r\nt=0 0\r\n"
		"a=ice-lite\r\n"
		"a=ice-ufrag:sess\r\na=ice-pwd:sessionpasswordsession\r\n"
		"a=fingerprint:sha-256 " FP_CHROME "\r\n"
		"a=setup:passive\r\n"
		"a=sendonly\r\n"
		"a=extmap:5 " CN_SDP_EXT_ABS_SEND_TIME "\r\n"
		"a=end-of-candidates\r\n"
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
		"a=rtpmap:96 H264/90000\r\n"
		"a=extmap:1 urn:x\r\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
		"a=ice-ufrag:own1\r\n"
		"a=recvonly\r\n"
		"a=setup:active\r\n"
		"a=extmap:5 urn:own\r\n";

	CHECK_INT(parse(text), 0);
	CHECK(offer.ice_lite);
	CHECK_STR(offer.media[0].ice_ufrag, "sess");
	CHECK_STR(offer.media[1].ice_ufrag, "own1");
	CHECK_STR(offer.media[1].ice_pwd, "sessionpasswordsession");
	CHECK_INT(offer.media[0].setup, CN_SDP_SETUP_PASSIVE);
	CHECK_INT(offer.media[1].setup, CN_SDP_SETUP_ACTIVE);
	CHECK_INT(offer.media[0].dir, CN_SDP_SENDONLY);
	CHECK_INT(offer.media[1].dir, CN_SDP_RECVONLY);
	CHECK(offer.media[0].end_of_candidates && offer.media[1].end_of_candidates);
	CHECK_INT(cn_sdp_find_extmap(&offer.media[0], CN_SDP_EXT_ABS_SEND_TIME), 5);
	CHECK_INT(cn_sdp_find_extmap(&offer.media[0], "urn:x"), 1);
	CHECK_INT(cn_sdp_find_extmap(&offer.media[1], CN_SDP_EXT_ABS_SEND_TIME), 0);
	CHECK_INT(cn_sdp_find_extmap(&offer.media[1], "urn:own"), 5);
}

TEST(sdp_bundled_sections_share_the_tagged_transport)
{
	/* RFC 8843: a later offer may put the transport only in the tagged section */
	static const char text[] = HEAD "a=group:BUNDLE v a\r\n" MV UFRAG PWD FP RTPMAP
		"a=mid:v\r\n"
		"a=setup:actpass\r\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 8\r\n"
		"a=mid:a\r\n";

	CHECK_INT(parse(text), 0);
	CHECK_STR(offer.media[1].ice_ufrag, "abcd");
	CHECK_INT(offer.media[1].fingerprint_len, 32);
	CHECK_INT(offer.media[1].setup, CN_SDP_SETUP_ACTPASS);
	/* outside the group it is still missing */
	CHECK(parse(HEAD "a=group:BUNDLE v\r\n" MV UFRAG PWD FP RTPMAP "a=mid:v\r\n"
		    "m=audio 9 UDP/TLS/RTP/SAVPF 8\r\na=mid:a\r\n") == CN_E_MALFORMED);
	CHECK_STR(err, "line 13: m=audio: no a=ice-ufrag in the section or at session level");
}

TEST(sdp_bounds)
{
	struct cn_buf b;
	int i;

	/* 33 candidates */
	cn_buf_init(&b, 1 << 20);
	cn_buf_append_str(&b, GOOD);
	for (i = 0; i < 33; i++)
		cn_buf_printf(&b, "a=candidate:%d 1 udp 2130706431 192.0.2.%d 9 typ host\r\n", i, i);
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 43: a=candidate: more than 32 in one m= section");
	/* 32 are fine */
	b.len -= strlen("a=candidate:32 1 udp 2130706431 192.0.2.32 9 typ host\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), 0);
	CHECK_INT(offer.media[0].ncandidates, 32);

	/* a line of 2049 bytes */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, GOOD "a=x-long:");
	for (i = 0; i < 2049 - 9; i++)
		cn_buf_append_str(&b, "y");
	cn_buf_append_str(&b, "\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 11: longer than 2048 bytes");
	b.len -= 3; /* 2048 is fine */
	cn_buf_append_str(&b, "\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), 0);
	/* a long line without any line end is still "too long", not "no line end" */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, GOOD "a=x-long:");
	for (i = 0; i < 5000; i++)
		cn_buf_append_str(&b, "y");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 11: longer than 2048 bytes");

	/* 9 m= sections */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, HEAD UFRAG PWD FP);
	for (i = 0; i < 9; i++)
		cn_buf_printf(&b, "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 16: m=: more than 8 m= sections");

	/* 49 formats */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, HEAD "m=audio 9 UDP/TLS/RTP/SAVPF");
	for (i = 0; i < 49; i++)
		cn_buf_printf(&b, " %d", i);
	cn_buf_append_str(&b, "\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 5: m=: more than 48 formats");

	/* ids 1..14 are unique, so at most 14 extmaps are kept, session ones included */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, GOOD);
	for (i = 1; i <= 14; i++)
		cn_buf_printf(&b, "a=extmap:%d urn:x%d\r\n", i, i);
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), 0);
	cn_buf_reset(&b);
	cn_buf_append_str(&b, HEAD "a=extmap:1 urn:a\r\na=extmap:2 urn:b\r\na=extmap:3 urn:c\r\n" MV
			  UFRAG PWD FP RTPMAP);
	for (i = 4; i <= 14; i++)
		cn_buf_printf(&b, "a=extmap:%d urn:x%d\r\n", i, i);
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), 0);
	CHECK_INT(offer.media[0].nextmap, 14);

	/* fmtp longer than the field */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, GOOD "a=fmtp:96 x=");
	for (i = 0; i < 510; i++)
		cn_buf_append_str(&b, "1");
	cn_buf_append_str(&b, "\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 11: a=fmtp: parameters longer than 511 bytes");

	/* a candidate longer than the field */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, GOOD "a=candidate:1 1 udp 1 192.0.2.1 9 typ host x ");
	for (i = 0; i < 220; i++)
		cn_buf_append_str(&b, "z");
	cn_buf_append_str(&b, "\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 11: a=candidate: longer than 245 bytes");

	/* the whole offer */
	cn_buf_reset(&b);
	cn_buf_append_str(&b, GOOD);
	while (b.len <= CN_SDP_MAX_TEXT)
		cn_buf_append_str(&b, "a=x-pad:0123456789012345678901234567890123456789\r\n");
	CHECK_INT(cn_sdp_parse(b.data, b.len, &offer, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK(strstr(err, "more than 65536") != NULL);

	/* a NUL byte */
	CHECK_INT(cn_sdp_parse(GOOD "a=mid:0\0x\r\n", sizeof(GOOD "a=mid:0\0x\r\n") - 1, &offer, err,
			       sizeof(err)),
		  CN_E_MALFORMED);
	CHECK_STR(err, "line 11: NUL byte at column 8");
	cn_buf_free(&b);
}

TEST(sdp_messages_quote_safely)
{
	/* control bytes and long values are shown as '?' and cut, never as they came */
	CHECK_INT(parse(GOOD "a=setup:\x1b[31mred-and-very-long-so-long-that-it-is-cut-somewhere\r\n"),
		  CN_E_MALFORMED);
	CHECK_STR(err, "line 11: a=setup: '?[31mred-and-very-long-so-long-that-it-i...' is not "
		       "actpass, active or passive");
	/* a short err buffer is cut, NUL-terminated */
	{
		char small[8];

		CHECK_INT(cn_sdp_parse("x", 1, &offer, small, sizeof(small)), CN_E_MALFORMED);
		CHECK_INT(strlen(small), 7);
		CHECK_INT(cn_sdp_parse("x", 1, &offer, NULL, 0), CN_E_MALFORMED);
	}
}

/* ---- trickle fragments ---- */

TEST(sdp_frag_rfc8840_example)
{
	/* RFC 8840 section 4.4 (with its m= line) and the WHIP/WHEP PATCH shape */
	static const char rfc[] = "a=ice-options:trickle\r\n"
				  "a=group:BUNDLE foo bar\r\n"
				  "m=audio 9 RTP/AVP 0\r\n"
				  "a=mid:foo\r\n"
				  "a=ice-ufrag:EsAw\r\n"
				  "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
				  "a=candidate:1 1 UDP 2130706431 198.51.100.1 41654 typ host\r\n"
				  "a=candidate:1 2 UDP 2130706431 198.51.100.1 41654 typ host\r\n"
				  "a=end-of-candidates\r\n";
	static const char whep[] =
		"a=ice-ufrag:EsAw\r\n"
		"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n"
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
		"a=mid:0\r\n"
		"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 "
		"ufrag EsAw network-id 1\r\n"
		"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 "
		"ufrag EsAw network-id 2\r\n"
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
		"a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active\r\n"
		"a=mid:1\r\n"
		"a=x-unknown:ignored\r\n";
	struct cn_sdp_frag frag;

	CHECK_INT(cn_sdp_parse_frag(rfc, strlen(rfc), &frag, err, sizeof(err)), 0);
	CHECK_STR(frag.ice_ufrag, "EsAw");
	CHECK_STR(frag.ice_pwd, "P2uYro0UCOQ4zxjKXaWCBui1");
	CHECK_INT(frag.ncandidates, 2);
	CHECK_STR(frag.candidates[1], "candidate:1 2 UDP 2130706431 198.51.100.1 41654 typ host");
	CHECK_STR(frag.candidate_mid[0], "foo");
	CHECK_STR(frag.candidate_mid[1], "foo");
	CHECK(frag.end_of_candidates);

	CHECK_INT(cn_sdp_parse_frag(whep, strlen(whep), &frag, err, sizeof(err)), 0);
	CHECK_INT(frag.ncandidates, 3);
	CHECK_STR(frag.candidate_mid[0], "0");
	CHECK_STR(frag.candidate_mid[2], "1"); /* a=mid after the candidate still counts */
	CHECK(!frag.end_of_candidates);

	/* end of candidates alone; an empty fragment */
	CHECK_INT(cn_sdp_parse_frag("a=end-of-candidates\r\n", strlen("a=end-of-candidates\r\n"),
				    &frag, err, sizeof(err)),
		  0);
	CHECK(frag.end_of_candidates && frag.ncandidates == 0);
	CHECK_INT(cn_sdp_parse_frag("", 0, &frag, err, sizeof(err)), 0);
	/* a candidate at session level has no mid */
	CHECK_INT(cn_sdp_parse_frag("a=candidate:1 1 udp 1 192.0.2.1 9 typ host\n",
				    strlen("a=candidate:1 1 udp 1 192.0.2.1 9 typ host\n"), &frag, err,
				    sizeof(err)),
		  0);
	CHECK_STR(frag.candidate_mid[0], "");
}

static const struct bad_case bad_frags[] = {
	{ "v=0\r\n", CN_E_MALFORMED, "line 1: v= does not belong in a trickle ICE fragment" },
	{ "a=ice-ufrag:EsAw\r\na=ice-ufrag:Other\r\n", CN_E_MALFORMED,
	  "line 2: a=ice-ufrag: 'Other' differs from the earlier 'EsAw'" },
	{ "a=ice-pwd:short\r\n", CN_E_MALFORMED,
	  "line 1: a=ice-pwd: 'short' is 5 characters, needs 22 to 159" },
	{ "a=candidate:1 1 udp 1 192.0.2.1 9 typ\r\n", CN_E_MALFORMED,
	  "line 1: a=candidate: '1 1 udp 1 192.0.2.1 9 typ': candidate type is missing" },
	{ "a=mid:0\r\n", CN_E_MALFORMED, "line 1: a=mid: only allowed in an m= section" },
	{ "m=audio 9 RTP/AVP 0\r\na=mid:0\r\na=mid:1\r\n", CN_E_MALFORMED,
	  "line 3: a=mid: given twice" },
	{ "m=audio 9 RTP/AVP 0\r\na=group:BUNDLE 0\r\n", CN_E_MALFORMED,
	  "line 2: a=group: only allowed at session level" },
	{ "m=audio x RTP/AVP 0\r\n", CN_E_MALFORMED, "line 1: m=audio: port 'x' is not 0 to 65535" },
	{ "a=end-of-candidates:now\r\n", CN_E_MALFORMED,
	  "line 1: a=end-of-candidates: takes no value" },
	{ "a=candidate\r\n", CN_E_MALFORMED, "line 1: a=candidate: needs a value" },
	{ "a=candidate:1 1 udp 1 192.0.2.1 9 typ host", CN_E_MALFORMED,
	  "line 1: last line does not end in CRLF or LF" },
};

TEST(sdp_frag_refusals)
{
	struct cn_sdp_frag frag;
	struct cn_buf b;

	for (size_t i = 0; i < sizeof(bad_frags) / sizeof(bad_frags[0]); i++) {
		const struct bad_case *c = &bad_frags[i];
		int rc = cn_sdp_parse_frag(c->text, strlen(c->text), &frag, err, sizeof(err));

		if (rc != c->rc || strcmp(err, c->msg) != 0)
			cn_test_fail(__FILE__, __LINE__, "case %zu: rc %d \"%s\", expected %d \"%s\"",
				     i, rc, err, c->rc, c->msg);
		CHECK(frag.ncandidates == 0 && frag.ice_ufrag[0] == '\0');
	}
	cn_buf_init(&b, 1 << 20);
	for (int i = 0; i < 33; i++)
		cn_buf_printf(&b, "a=candidate:%d 1 udp 1 192.0.2.1 9 typ host\r\n", i);
	CHECK_INT(cn_sdp_parse_frag(b.data, b.len, &frag, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 33: a=candidate: more than 32 in one fragment");
	cn_buf_reset(&b);
	for (int i = 0; i < 9; i++)
		cn_buf_printf(&b, "m=audio 9 RTP/AVP 0\r\n");
	CHECK_INT(cn_sdp_parse_frag(b.data, b.len, &frag, err, sizeof(err)), CN_E_TOO_BIG);
	CHECK_STR(err, "line 9: m=: more than 8 m= sections");
	cn_buf_free(&b);
}
