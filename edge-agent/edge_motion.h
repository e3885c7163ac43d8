/* edge_motion.h: motion detection on small luma frames: adaptive background, noise-aware threshold, grid mask, debounced start/stop events. */
#ifndef EDGE_MOTION_H
#define EDGE_MOTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * How it works (pure computation: no I/O, no threads, no allocation after _new):
 *
 * - Each frame is halved by 2x2 box sums, which averages out sensor noise and quarters
 *   the work; everything below runs on that half-size plane, on analysed cells only.
 * - Background: a per-pixel running average in fixed point. Unchanged pixels follow the
 *   frame at 1/32 per frame (slow enough to average over several key-frame intervals,
 *   as compressed video repeats one frame's noise until the next key frame); changed
 *   pixels at 1/512, so objects passing by barely stain it.
 * - Lighting: auto-exposure, clouds and lights act on the whole view as roughly
 *   frame = gain * background + offset. Per 16-luma band of background brightness, the
 *   typical frame - background is taken (median near the histogram peak); candidate
 *   lines through one or two of those points are scored by how many pixels they
 *   explain, the best one wins if it explains more than half of the pixels (else "no
 *   change"), and is refined by least squares. Only the residual (frame - background -
 *   that line, clipped at black and white like the camera) is tested, so global light
 *   changes of any speed and size are not motion, while a large object, being a
 *   minority of the pixels, cannot pass for lighting. Steps from 2 luma are applied to
 *   the whole background at once. A 2x2 block holding a clipped pixel is not counted as
 *   changed in the direction clipping explains.
 * - Noise: the lower quartile of |residual| (a sample of rows, clipped pixels left out)
 *   gives the frame's noise sigma; it stays a noise measure while objects cover up to
 *   3/4 of the view. The running estimate rises fast (1/4 of the gap, key frames renew
 *   the noise) and falls slowly (1/32). A pixel is changed when |residual| > sens + 3
 *   sigma, with sens = 1.5 luma at sensitivity 100, doubling every 20 points down (8.5
 *   luma at 50, 46 at 1).
 * - A cell is hot when at least 5% of its pixels (and at least 2) changed. The hot-cell
 *   area, permille of the analysed area, is the frame's motion measure; the frame has
 *   motion when it reaches min_area_permille. The box is the union of the hot cells.
 * - Lasting changes: a cell that stays hot while almost nothing in it moves from frame to
 *   frame for EDGE_MOTION_ABSORB_MS (a parked car, a lamp switched on in a corner) takes
 *   the frame as its background, so no change makes an endless event.
 * - Scene change: when more than EDGE_MOTION_SCENE_CHANGE_PERMILLE of the analysed area
 *   is hot and at least half of it turned hot within the last 3 frames (lights switched
 *   on unevenly, IR cut filter, camera moved or covered), the frame is not motion: the
 *   background is replaced by the frame and relearned, and the result says scene_change
 *   (a tamper hint for the caller). A big object moving in grows more slowly and stays
 *   motion; one that fills most of the view within 3 frames is learned, not reported.
 * - Learning: the first 4 frames after _new, _reset or a scene change only build the
 *   background and the noise estimate; they never count as motion.
 * - Events: "started" after start_frames consecutive motion frames; "stopped" once
 *   stop_ms have passed since the last motion frame.
 *
 * Limits: light changes that differ across the view (one lamp among several) but leave
 * less than 70% hot are reported as motion until absorbed; a large untextured object
 * that stops for EDGE_MOTION_ABSORB_MS is learned.
 *
 * An instance is used by one thread at a time; instances are independent. Cost is linear
 * in the analysed area: about 0.13 ms for 320x180 on one core of a small x86 box.
 */

#define EDGE_MOTION_GRID_MAX_COLS 32
#define EDGE_MOTION_GRID_MAX_ROWS 32
#define EDGE_MOTION_MIN_DIM 8
#define EDGE_MOTION_MAX_DIM 4096
/* Hot area above this (permille) is a scene change, not motion; bounds min_area_permille. */
#define EDGE_MOTION_SCENE_CHANGE_PERMILLE 700
/* A hot cell where nothing moves for this long is learned into the background. */
#define EDGE_MOTION_ABSORB_MS 10000
#define EDGE_MOTION_MAX_START_FRAMES 100
#define EDGE_MOTION_MAX_STOP_MS 3600000

struct edge_motion_cfg {
	/* Analysis frame size (luma), EDGE_MOTION_MIN_DIM..EDGE_MOTION_MAX_DIM, e.g. 320x180.
	 * Each grid cell must cover at least 4x4 pixels. An odd last column or row is ignored. */
	int width, height;
	/* Grid over the frame, 1..EDGE_MOTION_GRID_MAX_*, e.g. 22x18 like common cameras. */
	int grid_cols, grid_rows;
	/* Bit c of mask[r] set: cell (row r, column c) is analysed. Bits outside the grid are
	 * ignored, so all ones is the whole frame. At least one cell must be analysed. */
	uint32_t mask[EDGE_MOTION_GRID_MAX_ROWS];
	/* 1..100: higher means a smaller luma change counts (see the threshold above). */
	int sensitivity;
	/* 1..EDGE_MOTION_SCENE_CHANGE_PERMILLE: hot-cell area, permille of the analysed area,
	 * that makes a frame a motion frame. With a 22x18 grid one cell is about 2.5. */
	int min_area_permille;
	/* 1..EDGE_MOTION_MAX_START_FRAMES consecutive motion frames before "started". */
	int start_frames;
	/* 0..EDGE_MOTION_MAX_STOP_MS without a motion frame before "stopped". */
	int stop_ms;
};

struct edge_motion_result {
	bool started;      /* an event began on this frame */
	bool stopped;      /* the event ended on this frame */
	bool active;       /* an event is open after this frame */
	bool motion;       /* this frame alone reached min_area (before start debounce) */
	bool learning;     /* frame only taught the background; no detection was done */
	bool scene_change; /* most of the view changed at once: background relearned */
	/* Box of the hot cells, fractions 0..1 of the frame: this frame's when motion, else
	 * the last motion frame's while active; all 0 otherwise. */
	float x, y, w, h;
	int area_permille; /* hot-cell area this frame, permille of the analysed area */
	int hot_cells;     /* number of hot cells this frame */
	float noise;       /* estimated noise sigma of the residual, luma */
	float threshold;   /* per-pixel change threshold used on this frame, luma */
};

struct edge_motion;

/* Fills cfg with usable defaults: 320x180, 22x18 grid, whole frame, sensitivity 50,
 * min area 5 permille, start after 2 frames, stop after 3000 ms. */
void edge_motion_cfg_defaults(struct edge_motion_cfg *cfg);

/* 0, or CN_E_CONFIG with a message naming the bad field in err (always NUL-terminated
 * when errcap > 0; err may be NULL when errcap is 0); -EINVAL when cfg is NULL. */
int edge_motion_cfg_check(const struct edge_motion_cfg *cfg, char *err, size_t errcap);

/* Allocates a detector for cfg (copied). -EINVAL on NULL arguments, CN_E_CONFIG when
 * edge_motion_cfg_check refuses cfg, -ENOMEM. The caller frees *out with edge_motion_free. */
int edge_motion_new(const struct edge_motion_cfg *cfg, struct edge_motion **out);

/* Analyses one frame: luma is width x height 8-bit samples, rows stride bytes apart
 * (stride >= width; padding is never read). ts_ms is a monotonic clock in milliseconds
 * (e.g. g_get_monotonic_time() / 1000); a value earlier than the previous frame's is
 * taken as equal to it. Fills *res. 0, or -EINVAL on bad arguments (nothing changes). */
int edge_motion_feed(struct edge_motion *m, const uint8_t *luma, int stride, int64_t ts_ms,
		     struct edge_motion_result *res);

/* After a stream restart or a camera move: relearns the background from the next frames.
 * An open event stays open and still ends with "stopped" after stop_ms, so every
 * "started" a caller saw gets its "stopped". */
void edge_motion_reset(struct edge_motion *m);

/* Accepts NULL. */
void edge_motion_free(struct edge_motion *m);

#endif
