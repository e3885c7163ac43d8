/* edge_motion.c: motion detection by differencing 2x2-summed luma against an adaptive background, per grid cell. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "edge_motion.h"

/* Units: the analysis plane holds 2x2 sums, i.e. luma x4 ("quarter luma", q); the
 * background keeps BG_FRAC more bits (luma x64) so slow adaptation does not stall. */
enum {
	BG_FRAC = 4,
	LEARN_FRAMES = 4,   /* frames that only build the background */
	K_BG = 3,           /* unchanged pixels follow the frame at 1/8 per frame */
	K_FG = 7,           /* changed pixels at 1/128: objects barely stain the background */
	NOISE_RATE = 16,    /* noise estimate follows each frame's measure at 1/16 */
	HIST_HALF = 512,    /* histogram of frame - background covers -511..511 q */
	HOT_MIN_PX = 2,     /* one changed pixel never makes a cell hot ... */
	HOT_FRAC_DIV = 20,  /* ... nor does less than 5% of the cell */
	MIN_CELL_PX = 4,    /* each cell must cover this many frame pixels across and down */
};

#define NOISE_K 2.5f        /* threshold margin above the noise, in sigmas */
#define MAD_TO_SIGMA 1.4826f /* median absolute deviation to sigma, for Gaussian noise */
#define SENS_BASE_LUMA 1.5   /* threshold part at sensitivity 100 ... */
#define SENS_DOUBLING 20.0   /* ... doubling every this many points down */

struct edge_motion {
	struct edge_motion_cfg cfg; /* mask cleared outside the grid */
	int ww, wh;                 /* analysis plane size: the frame halved */
	uint16_t *cur;              /* this frame's 2x2 sums (q), analysed cells only */
	uint16_t *bg;               /* background, luma x64; shares cur's allocation */
	/* Cell (r, c) covers analysis x in [cx[c], cx[c+1]) and y in [cy[r], cy[r+1]). */
	int cx[EDGE_MOTION_GRID_MAX_COLS + 1];
	int cy[EDGE_MOTION_GRID_MAX_ROWS + 1];
	int64_t analysed_px; /* analysis pixels in analysed cells */
	float sens_q;        /* sensitivity part of the threshold, q */
	float noise_q;       /* running noise sigma of the difference, q */
	int learn;           /* frames learned since (re)start; detection from LEARN_FRAMES */
	uint32_t cnt[EDGE_MOTION_GRID_MAX_ROWS][EDGE_MOTION_GRID_MAX_COLS]; /* changed px */
	uint32_t hist[2 * HIST_HALF];
	/* event state */
	bool active;
	bool have_ts;
	int consec; /* consecutive motion frames, saturating at start_frames */
	int64_t last_ts, last_motion_ts;
	float bx, by, bw, bh; /* box of the last motion frame */
};

void edge_motion_cfg_defaults(struct edge_motion_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->width = 320;
	cfg->height = 180;
	cfg->grid_cols = 22;
	cfg->grid_rows = 18;
	for (int r = 0; r < EDGE_MOTION_GRID_MAX_ROWS; r++)
		cfg->mask[r] = UINT32_MAX;
	cfg->sensitivity = 50;
	cfg->min_area_permille = 5;
	cfg->start_frames = 2;
	cfg->stop_ms = 3000;
}

static uint32_t col_bits(int cols)
{
	return cols >= 32 ? UINT32_MAX : ((uint32_t)1 << cols) - 1;
}

static int range_err(char *err, size_t errcap, const char *field, long v, long lo, long hi)
{
	if (errcap > 0)
		snprintf(err, errcap, "motion %s %ld is outside %ld..%ld", field, v, lo, hi);
	return CN_E_CONFIG;
}

int edge_motion_cfg_check(const struct edge_motion_cfg *cfg, char *err, size_t errcap)
{
	uint32_t any = 0;

	if (errcap > 0)
		err[0] = '\0';
	if (!cfg) {
		if (errcap > 0)
			snprintf(err, errcap, "motion configuration missing");
		return -EINVAL;
	}
	if (cfg->width < EDGE_MOTION_MIN_DIM || cfg->width > EDGE_MOTION_MAX_DIM)
		return range_err(err, errcap, "width", cfg->width, EDGE_MOTION_MIN_DIM,
				 EDGE_MOTION_MAX_DIM);
	if (cfg->height < EDGE_MOTION_MIN_DIM || cfg->height > EDGE_MOTION_MAX_DIM)
		return range_err(err, errcap, "height", cfg->height, EDGE_MOTION_MIN_DIM,
				 EDGE_MOTION_MAX_DIM);
	if (cfg->grid_cols < 1 || cfg->grid_cols > EDGE_MOTION_GRID_MAX_COLS)
		return range_err(err, errcap, "grid_cols", cfg->grid_cols, 1,
				 EDGE_MOTION_GRID_MAX_COLS);
	if (cfg->grid_rows < 1 || cfg->grid_rows > EDGE_MOTION_GRID_MAX_ROWS)
		return range_err(err, errcap, "grid_rows", cfg->grid_rows, 1,
				 EDGE_MOTION_GRID_MAX_ROWS);
	if (cfg->width < MIN_CELL_PX * cfg->grid_cols) {
		if (errcap > 0)
			snprintf(err, errcap,
				 "motion width %d is too small for grid_cols %d (each cell needs %d pixels across)",
				 cfg->width, cfg->grid_cols, MIN_CELL_PX);
		return CN_E_CONFIG;
	}
	if (cfg->height < MIN_CELL_PX * cfg->grid_rows) {
		if (errcap > 0)
			snprintf(err, errcap,
				 "motion height %d is too small for grid_rows %d (each cell needs %d pixels down)",
				 cfg->height, cfg->grid_rows, MIN_CELL_PX);
		return CN_E_CONFIG;
	}
	for (int r = 0; r < cfg->grid_rows; r++)
		any |= cfg->mask[r] & col_bits(cfg->grid_cols);
	if (!any) {
		if (errcap > 0)
			snprintf(err, errcap, "motion mask analyses no cell of the %dx%d grid",
				 cfg->grid_cols, cfg->grid_rows);
		return CN_E_CONFIG;
	}
	if (cfg->sensitivity < 1 || cfg->sensitivity > 100)
		return range_err(err, errcap, "sensitivity", cfg->sensitivity, 1, 100);
	if (cfg->min_area_permille < 1 ||
	    cfg->min_area_permille > EDGE_MOTION_SCENE_CHANGE_PERMILLE)
		return range_err(err, errcap, "min_area_permille", cfg->min_area_permille, 1,
				 EDGE_MOTION_SCENE_CHANGE_PERMILLE);
	if (cfg->start_frames < 1 || cfg->start_frames > EDGE_MOTION_MAX_START_FRAMES)
		return range_err(err, errcap, "start_frames", cfg->start_frames, 1,
				 EDGE_MOTION_MAX_START_FRAMES);
	if (cfg->stop_ms < 0 || cfg->stop_ms > EDGE_MOTION_MAX_STOP_MS)
		return range_err(err, errcap, "stop_ms", cfg->stop_ms, 0, EDGE_MOTION_MAX_STOP_MS);
	return 0;
}

int edge_motion_new(const struct edge_motion_cfg *cfg, struct edge_motion **out)
{
	struct edge_motion *m;
	size_t plane;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		return -EINVAL;
	rc = edge_motion_cfg_check(cfg, NULL, 0);
	if (rc)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->ww = cfg->width / 2;
	m->wh = cfg->height / 2;
	/* Bounded by EDGE_MOTION_MAX_DIM, so this cannot overflow. */
	plane = (size_t)m->ww * (size_t)m->wh;
	m->cur = calloc(2 * plane, sizeof(uint16_t));
	if (!m->cur)
		goto out_free_m;
	m->bg = m->cur + plane;
	for (int c = 0; c <= cfg->grid_cols; c++)
		m->cx[c] = c * m->ww / cfg->grid_cols;
	for (int r = 0; r <= cfg->grid_rows; r++)
		m->cy[r] = r * m->wh / cfg->grid_rows;
	for (int r = 0; r < EDGE_MOTION_GRID_MAX_ROWS; r++) {
		m->cfg.mask[r] = r < cfg->grid_rows ? cfg->mask[r] & col_bits(cfg->grid_cols) : 0;
		for (int c = 0; c < cfg->grid_cols; c++)
			if (m->cfg.mask[r] >> c & 1)
				m->analysed_px += (int64_t)(m->cx[c + 1] - m->cx[c]) *
						  (m->cy[r + 1] - m->cy[r]);
	}
	m->sens_q = (float)(4.0 * SENS_BASE_LUMA *
			    exp2((100 - cfg->sensitivity) / SENS_DOUBLING));
	*out = m;
	return 0;

out_free_m:
	free(m);
	return -ENOMEM;
}

void edge_motion_reset(struct edge_motion *m)
{
	if (!m)
		return;
	m->learn = 0;
	m->consec = 0;
}

void edge_motion_free(struct edge_motion *m)
{
	if (!m)
		return;
	free(m->cur);
	free(m);
}

/* Pass 1: 2x2 sums of the analysed cells into cur, and the histogram of frame minus
 * background (meaningless until the background exists; the caller then ignores it). */
static void sum_and_histogram(struct edge_motion *m, const uint8_t *luma, ptrdiff_t stride)
{
	uint32_t *hist = m->hist;

	memset(m->hist, 0, sizeof(m->hist));
	for (int r = 0; r < m->cfg.grid_rows; r++) {
		uint32_t bits = m->cfg.mask[r];

		if (!bits)
			continue;
		for (int y = m->cy[r]; y < m->cy[r + 1]; y++) {
			const uint8_t *p0 = luma + 2 * (ptrdiff_t)y * stride;
			const uint8_t *p1 = p0 + stride;
			uint16_t *cur = m->cur + (size_t)y * (size_t)m->ww;
			const uint16_t *bg = m->bg + (size_t)y * (size_t)m->ww;

			for (int c = 0; c < m->cfg.grid_cols; c++) {
				if (!(bits >> c & 1))
					continue;
				for (int x = m->cx[c]; x < m->cx[c + 1]; x++) {
					int s = p0[2 * x] + p0[2 * x + 1] + p1[2 * x] + p1[2 * x + 1];
					int d = s - ((bg[x] + (1 << (BG_FRAC - 1))) >> BG_FRAC);

					cur[x] = (uint16_t)s;
					d = d < -(HIST_HALF - 1) ? -(HIST_HALF - 1) : d;
					d = d > HIST_HALF - 1 ? HIST_HALF - 1 : d;
					hist[d + HIST_HALF]++;
				}
			}
		}
	}
}

/* Median of the difference (the global offset, q) and its median absolute deviation
 * (q, interpolated within the bin so small noise is not rounded away). */
static void hist_stats(const uint32_t *hist, int64_t n, int *offset, float *mad)
{
	int64_t half = (n + 1) / 2, acc = 0;
	int med = 0;

	for (med = 0; med < 2 * HIST_HALF - 1; med++) {
		acc += hist[med];
		if (acc >= half)
			break;
	}
	*offset = med - HIST_HALF;
	acc = hist[med];
	if (acc >= half) {
		/* Bin 0 spans deviations 0..0.5. */
		*mad = 0.5f * (float)half / (float)acc;
		return;
	}
	for (int j = 1; j < 2 * HIST_HALF; j++) {
		int64_t h = 0;

		if (med + j < 2 * HIST_HALF)
			h += hist[med + j];
		if (med - j >= 0)
			h += hist[med - j];
		if (acc + h >= half) {
			*mad = (float)j - 0.5f + (float)(half - acc) / (float)h;
			return;
		}
		acc += h;
	}
	*mad = (float)HIST_HALF;
}

/* Pass 2: marks pixels whose difference, less the global offset, exceeds thresh (q),
 * counts them per cell, and moves the background towards the frame: by 1/2^k_fg where
 * changed, 1/2^k_bg elsewhere (k 0 copies the frame). */
static void diff_and_update(struct edge_motion *m, int offset, int thresh, int k_bg, int k_fg)
{
	for (int r = 0; r < m->cfg.grid_rows; r++) {
		uint32_t bits = m->cfg.mask[r];

		memset(m->cnt[r], 0, sizeof(m->cnt[r]));
		if (!bits)
			continue;
		for (int y = m->cy[r]; y < m->cy[r + 1]; y++) {
			const uint16_t *cur = m->cur + (size_t)y * (size_t)m->ww;
			uint16_t *bg = m->bg + (size_t)y * (size_t)m->ww;

			for (int c = 0; c < m->cfg.grid_cols; c++) {
				uint32_t n = 0;

				if (!(bits >> c & 1))
					continue;
				for (int x = m->cx[c]; x < m->cx[c + 1]; x++) {
					int s = cur[x], b = bg[x];
					int d = s - ((b + (1 << (BG_FRAC - 1))) >> BG_FRAC) - offset;
					int changed = d > thresh || d < -thresh;
					int k = changed ? k_fg : k_bg;
					int delta = (s << BG_FRAC) - b;

					n += (uint32_t)changed;
					/* Rounded step; stays between b and the target, so in range. */
					bg[x] = (uint16_t)(b + ((delta + ((1 << k) >> 1)) >> k));
				}
				m->cnt[r][c] += n;
			}
		}
	}
}

/* Hot cells from the counts: their area (analysis pixels), number and bounding box. */
static int64_t hot_cells(const struct edge_motion *m, int *ncells, struct edge_motion_result *box)
{
	int64_t area = 0;
	int r0 = INT_MAX, r1 = -1, c0 = INT_MAX, c1 = -1;

	*ncells = 0;
	for (int r = 0; r < m->cfg.grid_rows; r++) {
		int ch = m->cy[r + 1] - m->cy[r];

		if (!m->cfg.mask[r])
			continue;
		for (int c = 0; c < m->cfg.grid_cols; c++) {
			int px = (m->cx[c + 1] - m->cx[c]) * ch;
			int need = px / HOT_FRAC_DIV;

			if (!(m->cfg.mask[r] >> c & 1))
				continue;
			if (need < HOT_MIN_PX)
				need = HOT_MIN_PX;
			if (m->cnt[r][c] < (uint32_t)need)
				continue;
			area += px;
			(*ncells)++;
			r0 = r < r0 ? r : r0;
			r1 = r > r1 ? r : r1;
			c0 = c < c0 ? c : c0;
			c1 = c > c1 ? c : c1;
		}
	}
	if (*ncells) {
		box->x = (float)m->cx[c0] / (float)m->ww;
		box->w = (float)(m->cx[c1 + 1] - m->cx[c0]) / (float)m->ww;
		box->y = (float)m->cy[r0] / (float)m->wh;
		box->h = (float)(m->cy[r1 + 1] - m->cy[r0]) / (float)m->wh;
	}
	return area;
}

int edge_motion_feed(struct edge_motion *m, const uint8_t *luma, int stride, int64_t ts_ms,
		     struct edge_motion_result *res)
{
	struct edge_motion_result box = { 0 };
	bool motion = false;
	int offset = 0;
	float mad = 0.0f;

	if (!m || !luma || !res || stride < m->cfg.width)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	if (m->have_ts && ts_ms < m->last_ts)
		ts_ms = m->last_ts;
	m->have_ts = true;
	m->last_ts = ts_ms;

	sum_and_histogram(m, luma, stride);
	if (m->learn < LEARN_FRAMES) {
		/* Frame 0 copies; later ones average in at 1/2, 1/4, 1/8. The noise measured
		 * meanwhile is against a young, noisier background: a safe overestimate that
		 * the running average then lowers. */
		if (m->learn > 0) {
			hist_stats(m->hist, m->analysed_px, &offset, &mad);
			if (m->learn == 1)
				m->noise_q = MAD_TO_SIGMA * mad;
			else
				m->noise_q = (m->noise_q + MAD_TO_SIGMA * mad) / 2.0f;
		}
		diff_and_update(m, 0, INT_MAX, m->learn, 0);
		m->learn++;
		res->learning = true;
		res->threshold = (m->sens_q + NOISE_K * m->noise_q) / 4.0f;
	} else {
		float thresh_q = m->sens_q + NOISE_K * m->noise_q;
		int64_t area;

		hist_stats(m->hist, m->analysed_px, &offset, &mad);
		res->threshold = thresh_q / 4.0f;
		diff_and_update(m, offset, (int)thresh_q, K_BG, K_FG);
		area = hot_cells(m, &res->hot_cells, &box);
		res->area_permille = (int)((area * 1000 + m->analysed_px / 2) / m->analysed_px);
		if (area * 1000 > (int64_t)EDGE_MOTION_SCENE_CHANGE_PERMILLE * m->analysed_px) {
			/* Not motion but a new scene: take this frame as the background and
			 * re-estimate the noise, which this frame's statistics say nothing about. */
			diff_and_update(m, 0, INT_MAX, 0, 0);
			m->learn = 1;
			res->scene_change = true;
		} else {
			m->noise_q += (MAD_TO_SIGMA * mad - m->noise_q) / NOISE_RATE;
			motion = area * 1000 >= (int64_t)m->cfg.min_area_permille * m->analysed_px;
		}
	}
	res->noise = m->noise_q / 4.0f;

	if (motion) {
		m->last_motion_ts = ts_ms;
		m->bx = box.x;
		m->by = box.y;
		m->bw = box.w;
		m->bh = box.h;
		if (m->consec < m->cfg.start_frames)
			m->consec++;
		if (!m->active && m->consec >= m->cfg.start_frames) {
			m->active = true;
			res->started = true;
		}
	} else {
		m->consec = 0;
		if (m->active && ts_ms - m->last_motion_ts >= m->cfg.stop_ms) {
			m->active = false;
			res->stopped = true;
		}
	}
	res->motion = motion;
	res->active = m->active;
	if (motion || m->active) {
		res->x = m->bx;
		res->y = m->by;
		res->w = m->bw;
		res->h = m->bh;
	}
	return 0;
}
