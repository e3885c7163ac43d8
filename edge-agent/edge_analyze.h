/* edge_analyze.h: per-camera motion analysis thread: decodes the sub stream, or the recorder's own packets, at the analysis rate. */
#ifndef EDGE_ANALYZE_H
#define EDGE_ANALYZE_H

#include <libavcodec/codec_par.h>
#include <libavcodec/packet.h>
#include <libavutil/rational.h>

struct edge_ingest;

/* The recorder's packets for motion analysis of a camera without sub_url, so the camera
 * serves one RTSP session, not two. The ingest thread feeds it (never blocking: a full
 * tap drops and resumes at the next keyframe); the analysis thread consumes it. */
#define EDGE_MTAP_PACKETS 64
#define EDGE_MTAP_BYTES (16 * 1024 * 1024)

struct edge_mtap;

int edge_mtap_new(struct edge_mtap **out);
/* Both threads gone. Accepts NULL. */
void edge_mtap_free(struct edge_mtap *t);
/* Producer (ingest thread): a new stream session with these parameters. */
void edge_mtap_begin(struct edge_mtap *t, const AVCodecParameters *par, AVRational tb);
/* Producer: one video packet (a reference is queued only while the analyser wants it). */
void edge_mtap_feed(struct edge_mtap *t, const AVPacket *pkt);

/* Runs as the camera's second thread (started by edge_ingest_start): idle while motion is
 * disabled; otherwise decodes sub_url (its own RTSP session) or, without one, the main
 * stream's packets from the tap, feeds the detector and reports motion start/stop as
 * events and to the recorder. Exits when g->stop. */
void *edge_analyze_thread(void *ingest);

#endif
