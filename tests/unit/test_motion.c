/* test_motion.c: the edge motion detector on synthetic noisy frames: events, box, mask, sensitivity, area, lighting, config. */
#include <stdlib.h>
#include <time.h>

#include "../../edge-agent/edge_motion.h"
#include "cn_err.h"
#include "cn_test.h"

#define W 320
#define H 180
#define STRIDE 336   /* padded rows, as decoders produce; the padding is garbage */
#define FRAME_MS 200 /* 5 fps, the edge's analysis rate */

/* A textured static scene (8x8 checker on a ramp), optional lighting change, one
 * rectangular object, and sensor noise: the sum of 4 uniform draws in [-noise, noise]
 * (Gaussian-ish; noise 2 gives +-8 luma, sigma 2.8). */
struct scene {
	uint8_t buf[STRIDE * H];
	uint32_t rng;
	int noise;
	int offset;   /* added to the scene */
	int gain_pct; /* scene brightness, 100 = as is ... */
	int grad_pct; /* ... plus this much more at the right edge (uneven light) */
	int wx, wy, ww, wh; /* a bright window (luma 235 before gain), drawn when ww > 0 */
	int ox, oy, ow, oh; /* object rectangle, drawn when ow > 0 (may be partly outside) */
	int oval;     /* object luma, when oadd is 0 */
	int oadd;     /* else the object adds this to the scene (a faint object) */
};

struct tally {
	int starts, stops, scenes, motion_frames;
	int start_frame, stop_frame;
	struct edge_motion_result at_start;
};

static uint32_t rnd(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

static void scene_init(struct scene *sc, uint32_t seed)
{
	memset(sc, 0, sizeof(*sc));
	sc->rng = seed;
	sc->noise = 2;
	sc->gain_pct = 100;
}

static int base_luma(int x, int y)
{
	return 50 + (((x >> 3) + (y >> 3)) & 1) * 30 + x / 8;
}

/* Scenes are too big for the stack; tests stop at once if memory runs out. */
static struct scene *scene_new(void)
{
	struct scene *sc = malloc(sizeof(*sc));

	if (!sc)
		abort();
	return sc;
}

static bool in_rect(int x, int y, int rx, int ry, int rw, int rh)
{
	return rw > 0 && x >= rx && x < rx + rw && y >= ry && y < ry + rh;
}

static void render(struct scene *sc)
{
	int span = 2 * sc->noise + 1;

	for (int y = 0; y < H; y++) {
		uint8_t *row = sc->buf + (size_t)y * STRIDE;

		for (int x = 0; x < STRIDE; x++) {
			uint32_t r = rnd(&sc->rng);
			int v;

			if (x >= W) {
				row[x] = (uint8_t)r;
				continue;
			}
			v = in_rect(x, y, sc->wx, sc->wy, sc->ww, sc->wh) ? 235 : base_luma(x, y);
			v = v * (sc->gain_pct + sc->grad_pct * x / W) / 100 + sc->offset;
			if (in_rect(x, y, sc->ox, sc->oy, sc->ow, sc->oh))
				v = sc->oadd ? v + sc->oadd : sc->oval;
			for (int i = 0; i < 4; i++)
				v += (int)((r >> (8 * i)) & 0xff) % span - sc->noise;
			row[x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
	}
}

static void feed(struct edge_motion *m, struct scene *sc, int frame, struct tally *t,
		 struct edge_motion_result *res)
{
	render(sc);
	CHECK_INT(edge_motion_feed(m, sc->buf, STRIDE, (int64_t)frame * FRAME_MS, res), 0);
	if (res->started) {
		if (t->starts == 0) {
			t->start_frame = frame;
			t->at_start = *res;
		}
		t->starts++;
	}
	if (res->stopped) {
		t->stops++;
		t->stop_frame = frame;
	}
	t->scenes += res->scene_change;
	t->motion_frames += res->motion;
}

static struct edge_motion *new_motion(const struct edge_motion_cfg *cfg)
{
	struct edge_motion *m = NULL;

	CHECK_INT(edge_motion_new(cfg, &m), 0);
	if (!m)
		abort();
	return m;
}

/* True when the box contains the rectangle, allowing a pixel of rounding. */
static bool box_holds(const struct edge_motion_result *r, int x, int y, int w, int h)
{
	float e = 1.5f / W;

	return r->x <= (float)x / W + e && r->y <= (float)y / H + e &&
	       r->x + r->w >= (float)(x + w) / W - e && r->y + r->h >= (float)(y + h) / H - e;
}

TEST(motion_static_noise)
{
	/* default; most sensitive with a 2-cell area; very sensitive with a 1-cell area */
	static const int sens[] = { 50, 100, 80 }, area[] = { 5, 5, 1 };

	for (size_t i = 0; i < sizeof(sens) / sizeof(sens[0]); i++) {
		struct edge_motion_cfg cfg;
		struct edge_motion_result res;
		struct tally t = { 0 };
		struct scene *sc = scene_new();
		struct edge_motion *m;

		edge_motion_cfg_defaults(&cfg);
		cfg.sensitivity = sens[i];
		cfg.min_area_permille = area[i];
		m = new_motion(&cfg);
		scene_init(sc, 12345 + (uint32_t)i);
		for (int f = 0; f < 300; f++) {
			feed(m, sc, f, &t, &res);
			CHECK_INT(res.learning, f < 4);
		}
		CHECK_INT(t.starts, 0);
		CHECK_INT(t.scenes, 0);
		CHECK(!res.active);
		/* 2x2 sums halve sigma 2.83 to 1.41; the background adds a little. */
		CHECK(res.noise > 1.2f && res.noise < 1.8f);
		if (i == 0)
			printf("    static: noise %.2f luma, threshold %.2f luma, %d motion frames\n",
			       (double)res.noise, (double)res.threshold, t.motion_frames);
		edge_motion_free(m);
		free(sc);
	}
}

/* From frame f0: after 10 quiet frames, a bright 20x20 square crosses rows y..y+19
 * from left to right, 4 px a frame (entering at frame f0 + 10), then 30 quiet frames.
 * Returns the frame the square was last seen on. */
static int run_square(struct edge_motion *m, struct scene *sc, struct tally *t, int f0, int y,
		      bool check_box)
{
	struct edge_motion_result res;
	int f = f0, gone = -1;

	sc->ow = 0;
	for (; f < f0 + 10; f++)
		feed(m, sc, f, t, &res);
	sc->ow = sc->oh = 20;
	sc->oy = y;
	sc->oval = 220;
	for (int x = -20; x <= W; x += 4, f++) {
		sc->ox = x;
		feed(m, sc, f, t, &res);
		if (check_box && res.motion && x >= 0 && x + 20 <= W)
			CHECK(box_holds(&res, x, y, 20, 20));
		if (check_box && res.motion && (res.w > 0.25f || res.h > 0.35f))
			cn_test_fail(__FILE__, __LINE__, "box %.3f %.3f %.3f %.3f too big at x %d",
				     (double)res.x, (double)res.y, (double)res.w, (double)res.h,
				     x);
	}
	gone = f - 1;
	sc->ow = 0;
	for (int i = 0; i < 30; i++, f++)
		feed(m, sc, f, t, &res);
	return gone;
}

TEST(motion_moving_square)
{
	struct edge_motion_cfg cfg;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;
	int gone, sx, enter = 10 + 5; /* frame at which the square is first wholly inside */

	edge_motion_cfg_defaults(&cfg);
	m = new_motion(&cfg);
	scene_init(sc, 777);
	gone = run_square(m, sc, &t, 0, 80, true);
	CHECK_INT(t.starts, 1);
	CHECK_INT(t.stops, 1);
	CHECK(t.start_frame > 10 && t.start_frame <= enter + 2);
	/* The box at "started" holds the visible part of the square. */
	sx = (t.start_frame - 10) * 4 - 20;
	CHECK(box_holds(&t.at_start, sx < 0 ? 0 : sx, 80, sx < 0 ? 20 + sx : 20, 20));
	/* Stopped stop_ms after the last frame showing (enough of) the square. */
	CHECK((t.stop_frame - gone) * FRAME_MS >= cfg.stop_ms - 3 * FRAME_MS);
	CHECK((t.stop_frame - gone) * FRAME_MS <= cfg.stop_ms);
	printf("    square: started at frame %d (wholly in at %d), box %.3f,%.3f %.3fx%.3f; "
	       "stopped %d ms after it left\n",
	       t.start_frame, enter, (double)t.at_start.x, (double)t.at_start.y,
	       (double)t.at_start.w, (double)t.at_start.h, (t.stop_frame - gone) * FRAME_MS);
	edge_motion_free(m);
	free(sc);
}

TEST(motion_masked_cells)
{
	struct edge_motion_cfg cfg;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;

	/* Grid rows are 10 px high here: rows 7..10 cover y 70..109, the square's band. */
	edge_motion_cfg_defaults(&cfg);
	for (int r = 7; r <= 10; r++)
		cfg.mask[r] = 0;
	m = new_motion(&cfg);
	scene_init(sc, 4242);
	run_square(m, sc, &t, 0, 80, false);
	CHECK_INT(t.starts, 0);
	CHECK_INT(t.motion_frames, 0);
	edge_motion_free(m);

	/* Left half of the columns masked: the event starts only on the right half, and the
	 * box never reaches into the masked half. */
	memset(&t, 0, sizeof(t));
	edge_motion_cfg_defaults(&cfg);
	for (int r = 0; r < cfg.grid_rows; r++)
		cfg.mask[r] = ~(uint32_t)0x7ff; /* columns 0..10 off */
	m = new_motion(&cfg);
	scene_init(sc, 4243);
	run_square(m, sc, &t, 0, 80, false);
	CHECK_INT(t.starts, 1);
	CHECK_INT(t.stops, 1);
	CHECK(t.at_start.x >= 0.5f - 0.001f);
	CHECK((t.start_frame - 10) * 4 - 20 + 20 > W / 2);
	edge_motion_free(m);
	free(sc);
}

/* A faint 30x30 blob (+6 luma under +-8 noise) crossing the frame 3 px a frame. */
static struct tally run_faint(int sensitivity)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;
	int f = 0;

	edge_motion_cfg_defaults(&cfg);
	cfg.sensitivity = sensitivity;
	m = new_motion(&cfg);
	scene_init(sc, 99);
	for (; f < 20; f++)
		feed(m, sc, f, &t, &res);
	sc->ow = sc->oh = 30;
	sc->oy = 60;
	sc->oadd = 6;
	for (int x = 0; x + 30 <= W; x += 3, f++) {
		sc->ox = x;
		feed(m, sc, f, &t, &res);
	}
	edge_motion_free(m);
	free(sc);
	return t;
}

TEST(motion_sensitivity)
{
	struct tally lo = run_faint(30), hi = run_faint(100);

	CHECK_INT(lo.starts, 0);
	CHECK_INT(lo.motion_frames, 0);
	CHECK_INT(hi.starts, 1);
	printf("    faint blob: sensitivity 30: %d motion frames; 100: %d motion frames, "
	       "started at frame %d\n",
	       lo.motion_frames, hi.motion_frames, hi.start_frame);
}

/* A bright 3x3 dot crossing the middle of the frame 2 px a frame. */
static struct tally run_dot(int min_area)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;
	int f = 0;

	edge_motion_cfg_defaults(&cfg);
	cfg.min_area_permille = min_area;
	m = new_motion(&cfg);
	scene_init(sc, 31337);
	for (; f < 10; f++)
		feed(m, sc, f, &t, &res);
	sc->ow = sc->oh = 3;
	sc->oy = 88;
	sc->oval = 230;
	for (int x = 40; x < 280; x += 2, f++) {
		sc->ox = x;
		feed(m, sc, f, &t, &res);
		if (res.motion && res.area_permille > 10)
			cn_test_fail(__FILE__, __LINE__, "dot covers %d permille", res.area_permille);
	}
	edge_motion_free(m);
	free(sc);
	return t;
}

TEST(motion_min_area)
{
	struct tally big = run_dot(20), small = run_dot(1);

	CHECK_INT(big.starts, 0);
	CHECK_INT(big.motion_frames, 0);
	CHECK_INT(small.starts, 1);
	printf("    3x3 dot: min area 20: %d motion frames; 1: %d of 120 frames\n",
	       big.motion_frames, small.motion_frames);
}

TEST(motion_slow_ramp)
{
	static const int sens[] = { 50, 100 };

	for (size_t i = 0; i < sizeof(sens) / sizeof(sens[0]); i++) {
		struct edge_motion_cfg cfg;
		struct edge_motion_result res;
		struct tally t = { 0 };
		struct scene *sc = scene_new();
		struct edge_motion *m;
		int f = 0;

		edge_motion_cfg_defaults(&cfg);
		cfg.sensitivity = sens[i];
		m = new_motion(&cfg);
		scene_init(sc, 5150 + (uint32_t)i);
		for (; f < 10; f++)
			feed(m, sc, f, &t, &res);
		for (int k = 1; k <= 100; k++, f++) {
			sc->offset = k; /* scene tops out at 119 + 100 + noise: no clipping */
			feed(m, sc, f, &t, &res);
		}
		for (int k = 0; k < 20; k++, f++)
			feed(m, sc, f, &t, &res);
		CHECK_INT(t.starts, 0);
		CHECK_INT(t.motion_frames, 0);
		CHECK_INT(t.scenes, 0);

		/* A gain ramp (a cloud), +0.5% a frame for 60 frames: not uniform in luma. */
		sc->offset = 0;
		edge_motion_reset(m);
		for (int k = 0; k < 10; k++, f++)
			feed(m, sc, f, &t, &res);
		for (int k = 1; k <= 60; k++, f++) {
			sc->gain_pct = 100 + k / 2;
			feed(m, sc, f, &t, &res);
		}
		CHECK_INT(t.starts, 0);
		CHECK_INT(t.scenes, 0);
		edge_motion_free(m);
		free(sc);
	}
}

TEST(motion_sudden_change)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;
	int f = 0, sq;

	edge_motion_cfg_defaults(&cfg);
	m = new_motion(&cfg);
	scene_init(sc, 8080);
	/* A uniform step and an exposure doubling: global lighting, nothing to report. */
	for (; f < 10; f++)
		feed(m, sc, f, &t, &res);
	sc->offset = 60;
	for (int k = 0; k < 20; k++, f++)
		feed(m, sc, f, &t, &res);
	sc->offset = 0;
	sc->gain_pct = 200;
	for (int k = 0; k < 20; k++, f++)
		feed(m, sc, f, &t, &res);
	CHECK_INT(t.starts, 0);
	CHECK_INT(t.motion_frames, 0);
	CHECK_INT(t.scenes, 0);

	/* Lights on unevenly (1.3x on the left to 2.8x on the right): no lighting line
	 * explains it, nearly every cell is hot at once: a scene change, not motion. */
	sc->gain_pct = 100;
	edge_motion_reset(m);
	for (int k = 0; k < 10; k++, f++)
		feed(m, sc, f, &t, &res);
	sc->gain_pct = 130;
	sc->grad_pct = 150;
	feed(m, sc, f++, &t, &res);
	CHECK(res.scene_change);
	CHECK(!res.motion);
	for (int k = 0; k < 30; k++, f++)
		feed(m, sc, f, &t, &res);
	CHECK_INT(t.starts, 0);
	CHECK_INT(t.scenes, 1);
	CHECK_INT(t.motion_frames, 0);

	/* The same with auto-exposure catching up over 3 frames: at most one short event. */
	sc->gain_pct = 100;
	sc->grad_pct = 0;
	edge_motion_reset(m);
	for (int k = 0; k < 10; k++, f++)
		feed(m, sc, f, &t, &res);
	t.scenes = t.motion_frames = 0;
	for (int k = 1; k <= 3; k++, f++) {
		sc->gain_pct = 100 + k * 30 / 3;
		sc->grad_pct = k * 150 / 3;
		feed(m, sc, f, &t, &res);
	}
	for (int k = 0; k < 30; k++, f++)
		feed(m, sc, f, &t, &res);
	CHECK(t.starts <= 1);
	CHECK_INT(t.stops, t.starts);
	CHECK(!res.active);
	CHECK(t.motion_frames <= 3);
	printf("    uneven lights on over 3 frames: %d events, %d scene changes, %d motion frames\n",
	       t.starts, t.scenes, t.motion_frames);

	/* The relearned, brighter scene still shows motion. */
	sq = t.starts;
	run_square(m, sc, &t, f, 40, true);
	CHECK_INT(t.starts, sq + 1);
	CHECK_INT(t.stops, sq + 1);
	edge_motion_free(m);
	free(sc);
}

TEST(motion_lasting_change)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;
	int f = 0, parked, end;

	/* A dark car drives in and parks: one event, ending EDGE_MOTION_ABSORB_MS + stop_ms
	 * after it stopped moving, then quiet while it stays. */
	edge_motion_cfg_defaults(&cfg);
	m = new_motion(&cfg);
	scene_init(sc, 6060);
	for (; f < 10; f++)
		feed(m, sc, f, &t, &res);
	sc->ow = 40;
	sc->oh = 30;
	sc->oy = 100;
	sc->oval = 30;
	for (int x = -40; x <= 150; x += 5, f++) {
		sc->ox = x;
		feed(m, sc, f, &t, &res);
	}
	parked = f - 1;
	end = parked + (EDGE_MOTION_ABSORB_MS + cfg.stop_ms) / FRAME_MS + 100;
	for (; f < end; f++)
		feed(m, sc, f, &t, &res);
	CHECK_INT(t.starts, 1);
	CHECK_INT(t.stops, 1);
	CHECK((t.stop_frame - parked) * FRAME_MS >= EDGE_MOTION_ABSORB_MS);
	CHECK((t.stop_frame - parked) * FRAME_MS <= EDGE_MOTION_ABSORB_MS + cfg.stop_ms + 1000);
	CHECK(!res.active && res.hot_cells == 0);
	printf("    parked car: event ended %d ms after it stopped\n",
	       (t.stop_frame - parked) * FRAME_MS);

	/* It drives off: motion again, and its old place is relearned the same way. */
	memset(&t, 0, sizeof(t));
	for (int x = 150; x <= W; x += 5, f++) {
		sc->ox = x;
		feed(m, sc, f, &t, &res);
	}
	sc->ow = 0;
	end = f + (EDGE_MOTION_ABSORB_MS + cfg.stop_ms) / FRAME_MS + 20;
	for (; f < end; f++)
		feed(m, sc, f, &t, &res);
	CHECK_INT(t.starts, 1);
	CHECK_INT(t.stops, 1);
	CHECK(!res.active);
	edge_motion_free(m);
	free(sc);
}

TEST(motion_clipped_exposure)
{
	static const int sens[] = { 50, 100 };

	/* A bright window clips when the exposure rises by 30%: the blocks that hold
	 * clipped pixels fall short of the lighting line, and that is not motion. */
	for (size_t i = 0; i < sizeof(sens) / sizeof(sens[0]); i++) {
		struct edge_motion_cfg cfg;
		struct edge_motion_result res;
		struct tally t = { 0 };
		struct scene *sc = scene_new();
		struct edge_motion *m;
		int f = 0;

		edge_motion_cfg_defaults(&cfg);
		cfg.sensitivity = sens[i];
		m = new_motion(&cfg);
		scene_init(sc, 4711 + (uint32_t)i);
		sc->wx = 180;
		sc->wy = 20;
		sc->ww = 101; /* odd edges: blocks half window, half wall */
		sc->wh = 61;
		for (; f < 30; f++)
			feed(m, sc, f, &t, &res);
		sc->gain_pct = 130;
		for (int k = 0; k < 40; k++, f++)
			feed(m, sc, f, &t, &res);
		sc->gain_pct = 100;
		for (int k = 0; k < 40; k++, f++)
			feed(m, sc, f, &t, &res);
		CHECK_INT(t.starts, 0);
		CHECK_INT(t.scenes, 0);
		CHECK_INT(t.motion_frames, 0);
		edge_motion_free(m);
		free(sc);
	}
}

TEST(motion_keyframe_noise)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;

	/* Compressed video: the noise stays frozen between key frames (every 10 frames
	 * here) and all of it changes at once on each. At the highest sensitivity that may
	 * give one event before the noise estimate has seen a key frame, none after. */
	edge_motion_cfg_defaults(&cfg);
	cfg.sensitivity = 100;
	m = new_motion(&cfg);
	scene_init(sc, 0);
	for (int f = 0; f < 300; f++) {
		sc->rng = 0x9e3779b9u * (uint32_t)(f / 10 + 1);
		feed(m, sc, f, &t, &res);
		if (f == 39) {
			CHECK(t.starts <= 1);
			CHECK_INT(t.stops, t.starts);
			memset(&t, 0, sizeof(t));
		}
	}
	CHECK_INT(t.starts, 0);
	CHECK_INT(t.scenes, 0);
	CHECK_INT(t.motion_frames, 0);
	CHECK(res.noise > 1.0f);
	printf("    key-frame noise: noise %.2f luma, threshold %.2f luma\n", (double)res.noise,
	       (double)res.threshold);
	edge_motion_free(m);
	free(sc);
}

TEST(motion_reset_and_time)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct tally t = { 0 };
	struct scene *sc = scene_new();
	struct edge_motion *m;
	int f = 0;

	edge_motion_cfg_defaults(&cfg);
	cfg.start_frames = 1;
	m = new_motion(&cfg);
	scene_init(sc, 2024);
	for (; f < 10; f++)
		feed(m, sc, f, &t, &res);
	sc->ow = sc->oh = 40;
	sc->ox = sc->oy = 60;
	sc->oval = 200;
	feed(m, sc, f++, &t, &res);
	CHECK(res.started && res.active && res.motion);
	CHECK(box_holds(&res, 60, 60, 40, 40));
	/* A stream restart: relearning, the open event ends stop_ms after the last motion. */
	sc->ow = 0;
	edge_motion_reset(m);
	for (int k = 0; k < 4; k++, f++) {
		feed(m, sc, f, &t, &res);
		CHECK(res.learning && !res.motion && res.active);
		CHECK(box_holds(&res, 60, 60, 40, 40)); /* the last motion frame's box */
	}
	for (int k = 0; k < 20; k++, f++)
		feed(m, sc, f, &t, &res);
	CHECK_INT(t.starts, 1);
	CHECK_INT(t.stops, 1);
	CHECK_INT((t.stop_frame - 10) * FRAME_MS, cfg.stop_ms);
	CHECK(!res.active && res.w == 0.0f);

	/* Time going backwards counts as no time passing. */
	feed(m, sc, f, &t, &res);
	CHECK(!res.motion);
	sc->ow = 40;
	feed(m, sc, f + 1, &t, &res);
	CHECK(res.started);
	sc->ow = 0;
	for (int k = 0; k < 40; k++) {
		render(sc);
		CHECK_INT(edge_motion_feed(m, sc->buf, STRIDE, 1000, &res), 0);
		CHECK(res.active && !res.stopped);
	}
	render(sc);
	CHECK_INT(edge_motion_feed(m, sc->buf, STRIDE,
				   (int64_t)(f + 1) * FRAME_MS + cfg.stop_ms, &res), 0);
	CHECK(res.stopped && !res.active);
	edge_motion_free(m);
	free(sc);
}

TEST(motion_bad_args)
{
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct edge_motion *m = (struct edge_motion *)&cfg;
	static uint8_t frame[W * H];

	edge_motion_cfg_defaults(&cfg);
	CHECK_INT(edge_motion_new(NULL, &m), -EINVAL);
	CHECK(m == NULL);
	CHECK_INT(edge_motion_new(&cfg, NULL), -EINVAL);
	cfg.sensitivity = 0;
	m = (struct edge_motion *)&cfg;
	CHECK_INT(edge_motion_new(&cfg, &m), CN_E_CONFIG);
	CHECK(m == NULL);
	cfg.sensitivity = 50;
	m = new_motion(&cfg);
	CHECK_INT(edge_motion_feed(m, frame, W - 1, 0, &res), -EINVAL);
	CHECK_INT(edge_motion_feed(m, NULL, W, 0, &res), -EINVAL);
	CHECK_INT(edge_motion_feed(m, frame, W, 0, NULL), -EINVAL);
	CHECK_INT(edge_motion_feed(NULL, frame, W, 0, &res), -EINVAL);
	CHECK_INT(edge_motion_feed(m, frame, W, 0, &res), 0);
	CHECK(res.learning);
	edge_motion_reset(NULL);
	edge_motion_free(m);
	edge_motion_free(NULL);

	/* An odd size and a grid at its smallest cells: runs, every frame quiet. */
	cfg.width = 89;
	cfg.height = 73;
	m = new_motion(&cfg);
	for (int f = 0; f < 10; f++)
		CHECK_INT(edge_motion_feed(m, frame, 89, f * FRAME_MS, &res), 0);
	CHECK(!res.motion && !res.learning);
	edge_motion_free(m);
}

struct bad_case {
	const char *field;
	void (*set)(struct edge_motion_cfg *cfg);
};

static void set_w0(struct edge_motion_cfg *c) { c->width = 0; }
static void set_w_big(struct edge_motion_cfg *c) { c->width = EDGE_MOTION_MAX_DIM + 1; }
static void set_w_grid(struct edge_motion_cfg *c) { c->width = 87; }
static void set_h0(struct edge_motion_cfg *c) { c->height = -4; }
static void set_h_grid(struct edge_motion_cfg *c) { c->height = 71; }
static void set_cols0(struct edge_motion_cfg *c) { c->grid_cols = 0; }
static void set_cols33(struct edge_motion_cfg *c) { c->grid_cols = 33; }
static void set_rows0(struct edge_motion_cfg *c) { c->grid_rows = 0; }
static void set_rows33(struct edge_motion_cfg *c) { c->grid_rows = 33; }
static void set_mask0(struct edge_motion_cfg *c)
{
	/* Bits only outside the 22x18 grid: nothing analysed. */
	for (int r = 0; r < EDGE_MOTION_GRID_MAX_ROWS; r++)
		c->mask[r] = r < 18 ? ~(uint32_t)0x3fffff : UINT32_MAX;
}
static void set_sens0(struct edge_motion_cfg *c) { c->sensitivity = 0; }
static void set_sens101(struct edge_motion_cfg *c) { c->sensitivity = 101; }
static void set_area0(struct edge_motion_cfg *c) { c->min_area_permille = 0; }
static void set_area_big(struct edge_motion_cfg *c) { c->min_area_permille = 1000; }
static void set_start0(struct edge_motion_cfg *c) { c->start_frames = 0; }
static void set_start_big(struct edge_motion_cfg *c) { c->start_frames = 101; }
static void set_stop_neg(struct edge_motion_cfg *c) { c->stop_ms = -1; }
static void set_stop_big(struct edge_motion_cfg *c) { c->stop_ms = EDGE_MOTION_MAX_STOP_MS + 1; }

TEST(motion_cfg_check)
{
	static const struct bad_case cases[] = {
		{ "width", set_w0 },
		{ "width", set_w_big },
		{ "width 87 is too small for grid_cols 22", set_w_grid },
		{ "height", set_h0 },
		{ "height 71 is too small for grid_rows 18", set_h_grid },
		{ "grid_cols", set_cols0 },
		{ "grid_cols", set_cols33 },
		{ "grid_rows", set_rows0 },
		{ "grid_rows", set_rows33 },
		{ "mask", set_mask0 },
		{ "sensitivity 0 is outside 1..100", set_sens0 },
		{ "sensitivity", set_sens101 },
		{ "min_area_permille", set_area0 },
		{ "min_area_permille 1000 is outside 1..700", set_area_big },
		{ "start_frames", set_start0 },
		{ "start_frames", set_start_big },
		{ "stop_ms -1", set_stop_neg },
		{ "stop_ms", set_stop_big },
	};
	struct edge_motion_cfg cfg;
	char err[160], tiny[8];

	edge_motion_cfg_defaults(&cfg);
	CHECK_INT(edge_motion_cfg_check(&cfg, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(edge_motion_cfg_check(&cfg, NULL, 0), 0);
	CHECK_INT(edge_motion_cfg_check(NULL, err, sizeof(err)), -EINVAL);
	/* Smallest grid cells and extreme legal values pass. */
	cfg.width = 88;
	cfg.height = 72;
	cfg.sensitivity = 1;
	cfg.min_area_permille = 700;
	cfg.start_frames = 100;
	cfg.stop_ms = 0;
	CHECK_INT(edge_motion_cfg_check(&cfg, err, sizeof(err)), 0);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		edge_motion_cfg_defaults(&cfg);
		cases[i].set(&cfg);
		CHECK_INT(edge_motion_cfg_check(&cfg, err, sizeof(err)), CN_E_CONFIG);
		if (!strstr(err, cases[i].field))
			cn_test_fail(__FILE__, __LINE__, "case %zu: \"%s\" does not name \"%s\"", i,
				     err, cases[i].field);
		CHECK_INT(edge_motion_cfg_check(&cfg, NULL, 0), CN_E_CONFIG);
		CHECK_INT(edge_motion_cfg_check(&cfg, tiny, sizeof(tiny)), CN_E_CONFIG);
		CHECK_INT(strlen(tiny), sizeof(tiny) - 1);
	}
	edge_motion_cfg_defaults(&cfg);
	cfg.stop_ms = -1;
	CHECK_INT(edge_motion_cfg_check(&cfg, err, sizeof(err)), CN_E_CONFIG);
	CHECK_STR(err, "motion stop_ms -1 is outside 0..3600000");
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

TEST(motion_timing)
{
	enum { NFRAMES = 1000, NPRE = 16 };
	struct edge_motion_cfg cfg;
	struct edge_motion_result res;
	struct scene *sc = scene_new();
	uint8_t *frames = malloc((size_t)NPRE * STRIDE * H);
	struct edge_motion *m;
	int64_t t0, t1;
	int motion = 0;

	if (!frames)
		abort();
	/* Pre-rendered noisy frames with a moving square, so the timing is the detector's. */
	scene_init(sc, 1);
	sc->ow = sc->oh = 20;
	sc->oy = 100;
	sc->oval = 220;
	for (int i = 0; i < NPRE; i++) {
		sc->ox = 20 + i * 16;
		render(sc);
		memcpy(frames + (size_t)i * STRIDE * H, sc->buf, (size_t)STRIDE * H);
	}
	edge_motion_cfg_defaults(&cfg);
	m = new_motion(&cfg);
	t0 = now_ns();
	for (int f = 0; f < NFRAMES; f++) {
		CHECK_INT(edge_motion_feed(m, frames + (size_t)(f % NPRE) * STRIDE * H, STRIDE,
					   (int64_t)f * FRAME_MS, &res), 0);
		motion += res.motion;
	}
	t1 = now_ns();
	CHECK(motion > 0);
	printf("    timing: %lld ns/frame at %dx%d (%d motion frames of %d)\n",
	       (long long)((t1 - t0) / NFRAMES), W, H, motion, NFRAMES);
	edge_motion_free(m);
	free(frames);
	free(sc);
}
