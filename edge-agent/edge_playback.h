/* edge_playback.h: one viewer's archive reader: a thread that reads recorded segments from a time and paces them at 1x, 2x or 4x. */
#ifndef EDGE_PLAYBACK_H
#define EDGE_PLAYBACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <glib.h>

#include "edge_live.h"

struct edge_playback;

/* Told on the loop. info: the stream was found (err 0) or not (err < 0 with msg). frame:
 * the next frame, paced (frames before the requested time come at once, flagged
 * catch-up by pts_us < start). end: no more footage. */
struct edge_playback_cb {
	void (*info)(const struct edge_stream_info *info, int err, const char *msg, void *arg);
	void (*frame)(struct edge_frame *f, bool catchup, void *arg);
	void (*end)(const char *why, void *arg);
	void *arg;
};

int edge_playback_start(const char *archive_dir, const char *index_path, const char *camera,
			int64_t start_ms, int speed, const struct edge_playback_cb *cb,
			struct edge_playback **out);
/* The same, and with want_audio also the recording's G.711 audio: frames with f->audio
 * set, paced like the video, at speed 1 only, none catch-up; info.audio_codec says which.
 * edge_playback_start delivers video only. */
int edge_playback_start_av(const char *archive_dir, const char *index_path, const char *camera,
			   int64_t start_ms, int speed, bool want_audio, const struct edge_playback_cb *cb,
			   struct edge_playback **out);
/* Detaches the callbacks and asks the thread to stop; the object is reaped (joined and
 * freed) by edge_playback_reap once the thread has exited. On the loop. */
void edge_playback_stop(struct edge_playback *p);
/* Joins and frees stopped readers whose threads have exited; all of them with wait. */
void edge_playback_reap(bool wait);

#endif
