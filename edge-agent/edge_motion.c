/* edge_motion.c: motion detection by differencing 2x2-summed luma against an adaptive background, per grid cell. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_err.h"
#include "edge_motion.h"

/* Units: the analysis plane holds 2x2 sums, i.e. luma x4 ("q", quarter luma); the
 * background keeps BG_FRAC more bits (luma x64) so slow adaptation does not stall. */
enum {
	BG_FRAC = 4,
	QMAX = 1020,       /* largest 2x2 sum */
	BG_MAX = QMAX << BG_FRAC,
	LEARN_FRAMES = 4,  /* frames that only build the background */
	/* Unchanged pixels follow the frame at 1/32 per frame: slow enough to average over
	 * several GOPs, as compressed video freezes its noise between key frames. */
	K_BG = 5,
	K_FG = 9,          /* changed pixels at 1/512: objects passing barely stain it */
	NOISE_UP = 4,      /* the noise estimate rises at 1/4 of the gap (key frames) ... */
	NOISE_DOWN = 32,   /* ... and falls at 1/32 */
	NB = 16,           /* background-brightness bands for the lighting fit, 16 luma each */
	NB_SHIFT = 6,      /* background q >> NB_SHIFT = band */
	JBINS = 256,       /* per band, frame - background in 1-luma bins over +-128 luma */
	RBINS = 256,       /* |residual| histogram, q, for the noise measure */
	SAT_LO = 4 * 4,    /* a band whose frame level is outside 4..251 luma is clipped */
	SAT_HI = 251 * 4,
	CLIP_LO = 4,       /* a frame pixel at or below this is taken as clipped black ... */
	CLIP_HI = 251,     /* ... at or above this as clipped white */
	SUM_MASK = 0x3ff,  /* cur holds the 2x2 sum in its low bits ... */
	FLAG_LO = 1 << 12, /* ... and whether one of the 4 pixels was clipped black */
	FLAG_HI = 1 << 13, /* ... or white */
	FLAGS = FLAG_LO | FLAG_HI,
	BG_MASK = 0x3fff,  /* bg holds its level in the low bits ... */
	BG_LO = FLAG_LO << 2, /* ... and the clip flags of the frame it last learned from */
	BG_HI = FLAG_HI << 2,
	BG_FLAGS = BG_LO | BG_HI,
	REJECT_Q = 12,     /* a band 3 luma off the lighting line is not lighting */
	MODE_WIN = 16,     /* a band's level: median within 16 luma of its histogram peak */
	RELIGHT_Q = 8,     /* lighting steps from 2 luma are applied to the background */
	LIGHT_DIR_Q = 4,   /* a light change of 1 luma has a direction */
	HOT_MIN_PX = 2,    /* one changed pixel never makes a cell hot ... */
	HOT_FRAC_DIV = 20, /* ... nor does less than 5% of the cell */
	SUDDEN_FRAMES = 3, /* a scene change turns most of its area hot within 3 frames */
	STAT_PX = 3000,    /* global statistics want at least this many samples ... */
	MAX_STAT_SHIFT = 3, /* ... from at least every 8th row */
	MIN_CELL_PX = 4,   /* each cell must cover this many frame pixels across and down */
};

#define NOISE_K 3.0f         /* threshold margin above the noise, in sigmas */
/* The lower quartile of |residual| is 0.3186 sigma for Gaussian noise; unlike the median
 * it stays a noise measure while objects cover up to 3/4 of the view. */
#define Q1ABS_TO_SIGMA 3.139f
#define SENS_BASE_LUMA 1.5   /* threshold part at sensitivity 100 ... */
#define SENS_DOUBLING 20.0   /* ... doubling every this many points down */

struct cell {
	uint32_t changed; /* pixels off the background this frame */
	uint32_t moved;   /* pixels off the previous frame */
	int hot_frames;   /* consecutive detection frames hot, saturating at SUDDEN_FRAMES + 1 */
	int learn;        /* frames left relearning after an absorb; not analysed meanwhile */
	bool still;       /* hot but not moving since still_since */
	int64_t still_since;
};

struct edge_motion {
	struct edge_motion_cfg cfg; /* mask cleared outside the grid */
	int ww, wh;                 /* analysis plane size: the frame halved */
	uint16_t *cur, *prev;       /* 2x2 sums (q) and clip flags, this and the last frame */
	uint16_t *bg;               /* background, luma x64, and clip flags */
	uint16_t *planes;           /* the one block holding cur, prev and bg */
	/* Cell (r, c) covers analysis x in [cx[c], cx[c+1]) and y in [cy[r], cy[r+1]). */
	int cx[EDGE_MOTION_GRID_MAX_COLS + 1];
	int cy[EDGE_MOTION_GRID_MAX_ROWS + 1];
	int64_t analysed_px; /* analysis pixels in analysed cells */
	/* Global statistics (lighting, noise) take every (1 << shift)th analysed row,
	 * enough for their medians at a fraction of the cost; stat_n pixels this frame. */
	bool stat_row[EDGE_MOTION_MAX_DIM / 2];
	int64_t stat_px; /* analysed pixels on those rows */
	int64_t stat_n;  /* of which not clipped this frame */
	float sens_q;        /* sensitivity part of the threshold, q */
	float noise_q;       /* running noise sigma of the residual, q */
	bool noise_known;    /* noise_q has been measured */
	int learn;           /* frames learned since (re)start; detection from LEARN_FRAMES */
	struct cell cells[EDGE_MOTION_GRID_MAX_ROWS][EDGE_MOTION_GRID_MAX_COLS];
	/* lighting fit: per band, a histogram of frame - background (sampled rows) */
	uint32_t jh[NB][JBINS];
	uint32_t cum[NB][JBINS + 1]; /* jh summed up to each bin */
	uint32_t bn[NB];
	uint64_t bsum[NB];
	int16_t light[QMAX + 1]; /* expected frame - background (q) by background level */
	/* whether the light at that level rose (1) or fell (-1) before clipping to 0..QMAX;
	 * only then can clipping explain a difference */
	int8_t light_dir[QMAX + 1];
	bool relight;            /* the lighting step is big enough to apply to bg */
	uint32_t rh[RBINS];
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
	int rc, shift = 0;

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
	m->planes = calloc(3 * plane, sizeof(uint16_t));
	if (!m->planes)
		goto out_free_m;
	m->cur = m->planes;
	m->prev = m->cur + plane;
	m->bg = m->prev + plane;
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
	while (shift < MAX_STAT_SHIFT && (m->analysed_px >> (shift + 1)) >= STAT_PX)
		shift++;
	for (int r = 0, n = 0; r < cfg->grid_rows; r++) {
		if (!m->cfg.mask[r])
			continue;
		for (int y = m->cy[r]; y < m->cy[r + 1]; y++) {
			m->stat_row[y] = (n++ & ((1 << shift) - 1)) == 0;
			for (int c = 0; c < cfg->grid_cols && m->stat_row[y]; c++)
				if (m->cfg.mask[r] >> c & 1)
					m->stat_px += m->cx[c + 1] - m->cx[c];
		}
	}
	m->sens_q = (float)(4.0 * SENS_BASE_LUMA *
			    exp2((100 - cfg->sensitivity) / SENS_DOUBLING));
	*out = m;
	return 0;

out_free_m:
	free(m);
	return -ENOMEM;
}

static void forget_cells(struct edge_motion *m)
{
	for (int r = 0; r < EDGE_MOTION_GRID_MAX_ROWS; r++)
		for (int c = 0; c < EDGE_MOTION_GRID_MAX_COLS; c++)
			m->cells[r][c] = (struct cell){ 0 };
}

void edge_motion_reset(struct edge_motion *m)
{
	if (!m)
		return;
	m->learn = 0;
	m->consec = 0;
	forget_cells(m);
}

void edge_motion_free(struct edge_motion *m)
{
	if (!m)
		return;
	free(m->planes);
	free(m);
}

/* The background level in q, without flags. */
static int bg_q(uint16_t bg)
{
	return ((bg & BG_MASK) + (1 << (BG_FRAC - 1))) >> BG_FRAC;
}

/* The 2x2 sum at analysis x of the two frame rows, with the clip flags. Branch-free:
 * p >= CLIP_HI exactly when p + (256 - CLIP_HI) has bit 8 set, p <= CLIP_LO exactly
 * when p + (255 - CLIP_LO) has it clear (all sums stay below 512). */
static inline uint16_t block_sum(const uint8_t *p0, const uint8_t *p1, int x)
{
	unsigned a = p0[2 * x], b = p0[2 * x + 1], c = p1[2 * x], d = p1[2 * x + 1];
	unsigned hi = ((a + (256 - CLIP_HI)) | (b + (256 - CLIP_HI)) | (c + (256 - CLIP_HI)) |
		       (d + (256 - CLIP_HI))) & 256;
	unsigned lo = ~((a + (255 - CLIP_LO)) & (b + (255 - CLIP_LO)) & (c + (255 - CLIP_LO)) &
			(d + (255 - CLIP_LO))) & 256;

	return (uint16_t)((a + b + c + d) | (hi ? FLAG_HI : 0) | (lo ? FLAG_LO : 0));
}

/* Pass 1: 2x2 sums of the analysed cells into cur, and on sampled rows, for the
 * lighting fit, the histogram of frame - background per background-brightness band
 * (meaningless until a background exists; the caller then ignores it). */
static void sum_and_histogram(struct edge_motion *m, const uint8_t *luma, ptrdiff_t stride)
{
	memset(m->jh, 0, sizeof(m->jh));
	memset(m->bsum, 0, sizeof(m->bsum));
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
				if (!m->stat_row[y]) {
					for (int x = m->cx[c]; x < m->cx[c + 1]; x++)
						cur[x] = block_sum(p0, p1, x);
					continue;
				}
				for (int x = m->cx[c]; x < m->cx[c + 1]; x++) {
					int v = block_sum(p0, p1, x), s = v & SUM_MASK;
					int b = bg_q(bg[x]);
					/* d + 1024 > 0, so the shift is a plain division */
					int j = ((s - b + 1024) >> 2) - (256 - JBINS / 2);

					cur[x] = (uint16_t)v;
					/* clipped blocks say little about the light */
					if (v & (FLAG_LO | FLAG_HI))
						continue;
					j = j < 0 ? 0 : j >= JBINS ? JBINS - 1 : j;
					m->jh[b >> NB_SHIFT][j]++;
					m->bsum[b >> NB_SHIFT] += (uint64_t)b;
				}
			}
		}
	}
	m->stat_n = 0;
	for (int i = 0; i < NB; i++) {
		m->bn[i] = 0;
		for (int j = 0; j < JBINS; j++)
			m->bn[i] += m->jh[i][j];
		m->stat_n += m->bn[i];
	}
}

/* Interpolated value of the rank-th smallest sample of a histogram whose bin i covers
 * [lo + i*width, lo + (i+1)*width). */
static float hist_rank(const uint32_t *h, int bins, int64_t rank, float lo, float width)
{
	int64_t acc = 0;

	for (int i = 0; i < bins; i++) {
		if (h[i] && acc + h[i] >= rank)
			return lo + width * ((float)i + (float)(rank - acc) / (float)h[i]);
		acc += h[i];
	}
	return lo + width * (float)bins;
}

/* A band's typical frame - background (q): the median of the samples within MODE_WIN
 * of the histogram's peak. The peak is the band's background as long as no object in
 * it is both larger and more uniform; the window keeps other objects out of the median
 * while still holding the spread a gain change gives a 16-luma band. */
static float band_level(const uint32_t *h)
{
	int peak = 0, lo, hi;
	int64_t n = 0;

	for (int j = 1; j < JBINS; j++)
		if (h[j] > h[peak])
			peak = j;
	lo = peak - MODE_WIN < 0 ? 0 : peak - MODE_WIN;
	hi = peak + MODE_WIN >= JBINS ? JBINS - 1 : peak + MODE_WIN;
	for (int j = lo; j <= hi; j++)
		n += h[j];
	/* bin j holds differences [4j - 512, 4j - 508) q; integer values sit mid-bin */
	return hist_rank(h + lo, hi - lo + 1, (n + 1) / 2, -512.0f - 0.5f + 4.0f * (float)lo, 4.0f);
}

/* The lighting line's expected difference (q) for background level b, clipped as the
 * camera clips. */
static float line_at(float a, float s, float mid, float b)
{
	float v = a + s * (b - mid);

	return v < -b ? -b : v > (float)QMAX - b ? (float)QMAX - b : v;
}

/* Pixels whose difference lies within the line's reach: per band, noise plus the
 * spread the slope gives across the band's 16 luma. From cumulative histograms. */
static int64_t line_support(const struct edge_motion *m, const uint32_t (*cum)[JBINS + 1],
			    const float *c, float a, float s, float mid)
{
	float win = REJECT_Q + 2.0f * m->noise_q + fabsf(s) * (float)(1 << NB_SHIFT) / 2.0f;
	int64_t sup = 0;

	for (int i = 0; i < NB; i++) {
		float d;
		int lo, hi;

		if (!m->bn[i])
			continue;
		d = line_at(a, s, mid, c[i]);
		/* bin j holds differences [4j - 512, 4j - 508) q */
		lo = (int)floorf((d - win + 512.0f) / 4.0f);
		hi = (int)floorf((d + win + 512.0f) / 4.0f);
		lo = lo < 0 ? 0 : lo > JBINS ? JBINS : lo;
		hi = hi < -1 ? -1 : hi > JBINS - 1 ? JBINS - 1 : hi;
		if (hi >= lo)
			sup += cum[i][hi + 1] - cum[i][lo];
	}
	return sup;
}

/* Global lighting model: frame - background = a + s * (background - mid). Each
 * brightness band's level (band_level) is a point; candidate lines go through one
 * (offset only) or two of them. The candidate that the most pixels agree with wins if
 * that is more than half of them and more than agree with no change; no change wins
 * otherwise. Counting pixels, not bands, keeps a large object from passing for
 * lighting: its bands may agree with each other, but its pixels are a minority. The
 * winner is refined by weighted least squares over the bands whose level it explains. */
static void fit_light(struct edge_motion *m)
{
	uint32_t (*cum)[JBINS + 1] = m->cum;
	float c[NB], med[NB], w[NB];
	bool use[NB];
	float a = 0.0f, s = 0.0f, mid = 0.0f;
	float sw = 0, swc = 0, swm = 0, sxx = 0, sxy = 0;
	int64_t best, minpop = m->stat_n / 32;

	for (int i = 0; i < NB; i++) {
		c[i] = med[i] = w[i] = 0.0f;
		cum[i][0] = 0;
		for (int j = 0; j < JBINS; j++)
			cum[i][j + 1] = cum[i][j] + m->jh[i][j];
		use[i] = m->bn[i] > 0 && (int64_t)m->bn[i] >= minpop;
		if (!m->bn[i])
			continue;
		w[i] = (float)m->bn[i];
		c[i] = (float)m->bsum[i] / w[i];
		med[i] = band_level(m->jh[i]);
		/* A band the camera clips says nothing about gain, nor does one off the
		 * histogram. */
		if (c[i] + med[i] >= SAT_HI || c[i] + med[i] <= SAT_LO || med[i] <= -500.0f ||
		    med[i] >= 500.0f)
			use[i] = false;
	}
	best = line_support(m, cum, c, 0.0f, 0.0f, 0.0f);
	for (int i = 0; i < NB; i++) {
		for (int j = i; j < NB && use[i]; j++) {
			float cs = 0.0f;
			int64_t sup;

			if (!use[j])
				continue;
			if (j > i) {
				/* Bands are in brightness order; a slope needs 8 luma of spread,
				 * and gains beyond 0.25..4 in one step are not lighting. */
				if (c[j] - c[i] < 32.0f)
					continue;
				cs = (med[j] - med[i]) / (c[j] - c[i]);
				if (cs < -0.75f || cs > 3.0f)
					continue;
			}
			sup = line_support(m, cum, c, med[i], cs, c[i]);
			if (sup > best && sup * 2 > m->stat_n) {
				best = sup;
				a = med[i];
				s = cs;
				mid = c[i];
			}
		}
	}
	for (int i = 0; i < NB; i++)
		use[i] = use[i] && fabsf(med[i] - line_at(a, s, mid, c[i])) <= REJECT_Q;
	for (int i = 0; i < NB; i++)
		if (use[i]) {
			sw += w[i];
			swc += w[i] * c[i];
			swm += w[i] * med[i];
		}
	if (sw > 0.0f) {
		mid = swc / sw;
		a = swm / sw;
		for (int i = 0; i < NB; i++)
			if (use[i]) {
				sxx += w[i] * (c[i] - mid) * (c[i] - mid);
				sxy += w[i] * (c[i] - mid) * (med[i] - a);
			}
		/* weighted sd of the band levels of at least 4 luma, or no slope */
		s = sxx >= sw * 256.0f ? sxy / sxx : 0.0f;
		s = s < -0.75f ? -0.75f : s > 3.0f ? 3.0f : s;
	}
	m->relight = false;
	for (int i = 0; i < NB; i++)
		if (use[i] && fabsf(line_at(a, s, mid, c[i])) >= RELIGHT_Q)
			m->relight = true;
	for (int b = 0; b <= QMAX; b++) {
		float v = a + s * ((float)b - mid);

		m->light[b] = (int16_t)lrintf(line_at(a, s, mid, (float)b));
		m->light_dir[b] = (int8_t)(v >= LIGHT_DIR_Q ? 1 : v <= -LIGHT_DIR_Q ? -1 : 0);
	}
}

/* Pass 2: the residual is frame - background - lighting. Marks pixels whose residual
 * exceeds thresh and pixels that differ from the previous frame by more than move
 * (all q), counts both per cell, histograms |residual| on sampled rows for the noise
 * measure, and moves the background towards the frame: by 1/2^k_fg where changed,
 * 1/2^k_bg elsewhere (k 0 copies the frame).
 * A lighting step of RELIGHT_Q or more (anywhere in the used brightness range) is first
 * applied to every pixel, hidden or not, so the whole background stays lit like the
 * frame; smaller ones are left to the fit, as applying them every frame would let any
 * small bias of the fit build up under objects. All or none: a background lit in part
 * would no longer relate to the frame by one line. */
static void diff_and_update(struct edge_motion *m, int thresh, int move, int k_bg, int k_fg)
{
	/* restrict: the background stores must not make the compiler reload the tables */
	const int16_t *restrict light = m->light;
	const int8_t *restrict light_dir = m->light_dir;
	uint32_t *restrict rh = m->rh;
	int relight = m->relight ? 1 << BG_FRAC : 0;

	memset(m->rh, 0, sizeof(m->rh));
	for (int r = 0; r < m->cfg.grid_rows; r++) {
		uint32_t bits = m->cfg.mask[r];

		for (int c = 0; c < m->cfg.grid_cols; c++)
			m->cells[r][c].changed = m->cells[r][c].moved = 0;
		if (!bits)
			continue;
		for (int y = m->cy[r]; y < m->cy[r + 1]; y++) {
			const uint16_t *restrict cur = m->cur + (size_t)y * (size_t)m->ww;
			const uint16_t *restrict prev = m->prev + (size_t)y * (size_t)m->ww;
			uint16_t *restrict bg = m->bg + (size_t)y * (size_t)m->ww;
			bool stat = m->stat_row[y];

			for (int c = 0; c < m->cfg.grid_cols; c++) {
				uint32_t nch = 0, nmv = 0;
				int th = thresh, kb = k_bg, kf = k_fg;

				if (!(bits >> c & 1))
					continue;
				if (m->cells[r][c].learn) {
					/* like the first frames: 1/2, 1/4, 1/8 to all pixels */
					th = INT_MAX;
					kb = kf = LEARN_FRAMES - m->cells[r][c].learn;
				}
				for (int x = m->cx[c]; x < m->cx[c + 1]; x++) {
					int v = cur[x], s = v & SUM_MASK;
					int bv = bg[x], b = bv & BG_MASK, bq = bg_q((uint16_t)bv);
					int l = light[bq];
					int e = s - bq - l, res = abs(e);
					bool clip = false;
					int changed, k, delta;

					if ((v & FLAGS) | (bv & BG_FLAGS)) {
						int dir = light_dir[bq];

						/* Under more light, a frame block with a pixel
						 * clipped white may fall short of the expected
						 * level: the camera clipped it. Under less light,
						 * one whose background was clipped white may
						 * exceed it: the scene was brighter than the
						 * background showed. Likewise at black. Either way
						 * the frame shows what the camera will show at
						 * this light: take it as the background. */
						clip = (v & FLAG_HI && e < 0 && dir > 0) ||
						       (v & FLAG_LO && e > 0 && dir < 0) ||
						       (bv & BG_HI && e > 0 && dir < 0) ||
						       (bv & BG_LO && e < 0 && dir > 0);
						if (clip)
							res = 0;
						/* clipped pixels have no noise: they would hide it */
						else if (stat && !(v & FLAGS))
							rh[res < RBINS ? res : RBINS - 1]++;
					} else if (stat) {
						rh[res < RBINS ? res : RBINS - 1]++;
					}
					changed = res > th;
					k = clip ? 0 : changed ? kf : kb;
					b += l * relight;
					b = b < 0 ? 0 : b > BG_MAX ? BG_MAX : b;
					delta = (s << BG_FRAC) - b;
					nch += (uint32_t)changed;
					nmv += (uint32_t)(abs(s - (prev[x] & SUM_MASK)) > move);
					/* Rounded step; stays between b and the target, so in range. */
					bg[x] = (uint16_t)((b + ((delta + ((1 << k) >> 1)) >> k)) |
							   (changed ? bv & BG_FLAGS : (v & FLAGS) << 2));
				}
				m->cells[r][c].changed += nch;
				m->cells[r][c].moved += nmv;
			}
		}
	}
}

/* This frame's noise sigma (q) from the lower quartile of |residual| over unclipped
 * sampled pixels; false when too few are left to say (a view mostly black or white). */
static bool frame_noise(const struct edge_motion *m, float *sigma_q)
{
	int64_t n = 0;

	for (int i = 0; i < RBINS; i++)
		n += m->rh[i];
	if (n < 16 || n < m->stat_px / 4)
		return false;
	*sigma_q = Q1ABS_TO_SIGMA * hist_rank(m->rh, RBINS, (n + 3) / 4, -0.5f, 1.0f);
	return true;
}

/* Sets the background of cell (r, c), or of every analysed cell when r < 0, to the frame. */
static void learn_cells(struct edge_motion *m, int r, int c)
{
	int r0 = r < 0 ? 0 : r, r1 = r < 0 ? m->cfg.grid_rows : r + 1;

	for (int rr = r0; rr < r1; rr++) {
		int c0 = r < 0 ? 0 : c, c1 = r < 0 ? m->cfg.grid_cols : c + 1;

		for (int cc = c0; cc < c1; cc++) {
			if (!(m->cfg.mask[rr] >> cc & 1))
				continue;
			for (int y = m->cy[rr]; y < m->cy[rr + 1]; y++) {
				const uint16_t *cur = m->cur + (size_t)y * (size_t)m->ww;
				uint16_t *bg = m->bg + (size_t)y * (size_t)m->ww;

				for (int x = m->cx[cc]; x < m->cx[cc + 1]; x++)
					bg[x] = (uint16_t)((cur[x] & SUM_MASK) << BG_FRAC |
							   (cur[x] & FLAGS) << 2);
			}
		}
	}
}

/* Milliseconds from then to now (now >= then, as feed keeps time monotonic); unsigned so
 * that no pair of int64 values can overflow. */
static uint64_t elapsed(int64_t then, int64_t now)
{
	return (uint64_t)now - (uint64_t)then;
}

static int cell_px(const struct edge_motion *m, int r, int c)
{
	return (m->cx[c + 1] - m->cx[c]) * (m->cy[r + 1] - m->cy[r]);
}

static uint32_t hot_need(int px)
{
	return (uint32_t)(px / HOT_FRAC_DIV < HOT_MIN_PX ? HOT_MIN_PX : px / HOT_FRAC_DIV);
}

/* Hot cells: their area (analysis pixels), the part of it that turned hot within the
 * last SUDDEN_FRAMES frames, their number and bounding box. A hot cell where nothing
 * moves for EDGE_MOTION_ABSORB_MS is a lasting change (parked car, lamp): its background
 * becomes the frame. */
static int64_t hot_cells(struct edge_motion *m, int64_t ts_ms, int64_t *new_area, int *ncells,
			 struct edge_motion_result *box)
{
	int64_t area = 0;
	int r0 = INT_MAX, r1 = -1, c0 = INT_MAX, c1 = -1;

	*ncells = 0;
	*new_area = 0;
	for (int r = 0; r < m->cfg.grid_rows; r++) {
		for (int c = 0; c < m->cfg.grid_cols; c++) {
			struct cell *cl = &m->cells[r][c];
			int px = cell_px(m, r, c);

			if (!(m->cfg.mask[r] >> c & 1))
				continue;
			if (cl->learn > 0 || cl->changed < hot_need(px)) {
				if (cl->learn > 0)
					cl->learn--;
				cl->hot_frames = 0;
				cl->still = false;
				continue;
			}
			if (cl->hot_frames <= SUDDEN_FRAMES)
				cl->hot_frames++;
			if (cl->hot_frames <= SUDDEN_FRAMES)
				*new_area += px;
			if (cl->moved >= hot_need(px)) {
				cl->still = false;
			} else if (!cl->still) {
				cl->still = true;
				cl->still_since = ts_ms;
			} else if (elapsed(cl->still_since, ts_ms) >= EDGE_MOTION_ABSORB_MS) {
				/* a copy of one frame is noisy: average in the next few */
				learn_cells(m, r, c);
				cl->still = false;
				cl->learn = LEARN_FRAMES - 1;
			}
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
	float thresh_q, sigma_q;
	bool motion = false;
	uint16_t *swap;

	if (!m || !luma || !res || stride < m->cfg.width)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	if (m->have_ts && ts_ms < m->last_ts)
		ts_ms = m->last_ts;
	m->have_ts = true;
	m->last_ts = ts_ms;

	sum_and_histogram(m, luma, stride);
	if (m->learn > 0)
		fit_light(m);
	thresh_q = m->sens_q + NOISE_K * m->noise_q;
	res->threshold = thresh_q / 4.0f;
	if (m->learn < LEARN_FRAMES) {
		/* Frame 0 copies; later ones average in at 1/2, 1/4, 1/8. */
		diff_and_update(m, INT_MAX, INT_MAX, m->learn, 0);
		/* Measured against a young background, so first an overestimate that the
		 * running average then lowers. A relearn only raises it: compressed video
		 * repeats one frame's noise until the next key frame, so a background
		 * learned within one GOP would make the noise look like none at all. */
		if (m->learn > 0 && frame_noise(m, &sigma_q)) {
			m->noise_q = m->noise_known ? fmaxf(m->noise_q, sigma_q) : sigma_q;
			m->noise_known = true;
		}
		m->learn++;
		res->learning = true;
	} else {
		int64_t area, new_area;

		/* Frame-to-frame differences carry the noise of two frames: sqrt(2) more. */
		diff_and_update(m, (int)thresh_q, (int)(thresh_q * 1.5f), K_BG, K_FG);
		area = hot_cells(m, ts_ms, &new_area, &res->hot_cells, &box);
		res->area_permille = (int)((area * 1000 + m->analysed_px / 2) / m->analysed_px);
		if (area * 1000 > (int64_t)EDGE_MOTION_SCENE_CHANGE_PERMILLE * m->analysed_px &&
		    new_area * 2 >= area) {
			/* Not motion but a new scene: most of the view changed, most of it
			 * within a few frames (a big object moving in grows more slowly).
			 * Take this frame as the background and relearn. A key frame that
			 * renewed all the noise looks the same, so let the noise rise. */
			if (frame_noise(m, &sigma_q) && sigma_q > m->noise_q)
				m->noise_q += (fminf(sigma_q, 2.0f * m->noise_q + 2.0f) - m->noise_q) /
					      NOISE_UP;
			learn_cells(m, -1, 0);
			forget_cells(m);
			m->learn = 1;
			res->scene_change = true;
		} else {
			/* Key frames renew the noise at once, so the estimate rises fast,
			 * but by at most about twice itself: a frame that looks far noisier
			 * is more likely objects or light. It falls slowly. */
			if (frame_noise(m, &sigma_q)) {
				sigma_q = fminf(sigma_q, 2.0f * m->noise_q + 2.0f);
				m->noise_q += (sigma_q - m->noise_q) /
					      (sigma_q > m->noise_q ? NOISE_UP : NOISE_DOWN);
			}
			motion = area * 1000 >= (int64_t)m->cfg.min_area_permille * m->analysed_px;
		}
	}
	res->noise = m->noise_q / 4.0f;
	swap = m->prev;
	m->prev = m->cur;
	m->cur = swap;

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
		if (m->active && elapsed(m->last_motion_ts, ts_ms) >= (uint64_t)m->cfg.stop_ms) {
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
