/* testcam.c: RTSP test camera for Canopy integration tests (gst-rtsp-server, H.264, frame-code barcode). */

/*
 * canopy-testcam serves one live H.264 stream over RTSP on 127.0.0.1:
 *
 *   videotestsrc is-live=true (moving pattern, default "ball")
 *     ! video/x-raw,format=I420,width=W,height=H,framerate=FPS/1
 *     -> [pad probe: burns the FRAME CODE into the Y plane, see below]
 *     ! clockoverlay (wall clock, bottom right) ! timeoverlay (running time, bottom left)
 *     ! x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max=GOP bitrate=KBPS
 *       [main: cabac=true; high: cabac=true dct8x8=true]
 *     ! video/x-h264[,profile=P]
 *     ! rtph264pay name=pay0 pt=96 config-interval=-1
 *
 * threads=1 keeps one slice per picture: with zerolatency's sliced threads
 * x264 emits several slices per picture, and rtph264pay config-interval=-1
 * then inserts SPS/PPS between the slices of an IDR picture, which splits the
 * access unit and corrupts every picture of the GOP in ffmpeg-based clients.
 * ultrafast also disables scene-cut detection, so keyframes come exactly
 * every GOP frames.
 *
 * The media factory is shared: all clients of the URL see the same pipeline.
 * The pipeline reports itself as not seekable, so a client's PLAY (with its
 * usual "Range: npt=0.000-") joins the running stream instead of seeking it
 * (see seeking_query_probe).  The pipeline starts with the first client and
 * stops when the last one leaves; a later client gets a new pipeline.
 * On start it prints exactly one line "READY rtsp://127.0.0.1:<port><path>" to
 * stdout, then runs until SIGTERM/SIGINT and exits 0.  Errors go to stderr
 * with a non-zero exit status (2 = bad usage, 1 = runtime failure).
 *
 * FRAME CODE LAYOUT (mirrored by tests/integration/fixtures/framecode.py)
 * ----------------------------------------------------------------------
 * Block size B (pixels, square) depends on the frame width only:
 *     B = the largest of 16, 8, 4, 2 with 64 * B <= width
 *     (width >= 128 is required; 640 -> 8, 1280 -> 16, 320 -> 4).
 * The code occupies the top-left corner: two rows of 64 blocks each,
 * row 0 at y = [0, B), row 1 at y = [B, 2B), block i at x = [i*B, (i+1)*B).
 * A black quiet strip of height B/2 (at least 1 px) lies under row 1
 * (y = [2B, 2B + B/2), x = [0, 64B)).
 * Block value 1 = Y 235 (white), 0 = Y 16 (black); U and V under the whole
 * code area are set to 128 (no colour), so any grey conversion works.
 *
 * Each row, block index: content (bits MSB first)
 *     0..3    start guard: row 0 = 1 0 1 0, row 1 = 1 1 0 0
 *     4..51   48-bit payload, big-endian, MSB first
 *     52..59  CRC-8 of the payload (poly 0x07, init 0x00, no reflection,
 *             no final xor; computed over the 6 payload bytes big-endian)
 *     60..63  end guard: 0 1 0 1
 * Row 0 payload: frame number.  A per-process counter starting at 0 that is
 *                incremented for every frame produced, also across pipeline
 *                restarts (so it never repeats within one testcam process).
 *                Frames used for preroll count too, so the first frame a
 *                client sees is usually not 0.
 * Row 1 payload: UTC wall clock in milliseconds since the Unix epoch
 *                (g_get_real_time() / 1000) at the moment the frame was
 *                produced by the live source (before encoding).
 * A decoder samples the centre half of each block, thresholds halfway between
 * the white and black start-guard blocks, and accepts a row only if both
 * guards match and the CRC checks.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/rtsp-server/rtsp-server.h>

#define FC_BLOCKS_PER_ROW 64
#define FC_GUARD_BLOCKS 4
#define FC_PAYLOAD_BITS 48
#define FC_CRC_BITS 8
#define FC_Y_ONE 235
#define FC_Y_ZERO 16
#define FC_C_NEUTRAL 128

#define MIN_WIDTH 128
#define MAX_WIDTH 7680
#define MIN_HEIGHT 64
#define MAX_HEIGHT 4320

typedef struct {
    long port;
    const char *path;
    long width;
    long height;
    long fps;
    long gop;
    long bitrate;
    const char *user;
    const char *password;
    const char *profile;
    const char *pattern;
    const char *file; /* serve this pre-encoded H.264 MP4 instead of encoding (benchmarks) */
    const char *audio; /* NULL, "pcmu" or "pcma": a 440 Hz tone as a second stream */
} CamConfig;

static const guint8 fc_start_guard[2][FC_GUARD_BLOCKS] = {{1, 0, 1, 0}, {1, 1, 0, 0}};
static const guint8 fc_end_guard[FC_GUARD_BLOCKS] = {0, 1, 0, 1};

/* Global so the counter keeps increasing when the shared media is rebuilt. */
static atomic_uint_fast64_t g_frame_counter;

static guint8 crc8_payload(guint64 value)
{
    guint8 crc = 0;
    for (int byte = 5; byte >= 0; byte--) {
        crc ^= (guint8)((value >> (8 * byte)) & 0xffu);
        for (int bit = 0; bit < 8; bit++) {
            if (crc & 0x80u)
                crc = (guint8)((crc << 1) ^ 0x07u);
            else
                crc = (guint8)(crc << 1);
        }
    }
    return crc;
}

static int fc_block_size(int width)
{
    static const int sizes[] = {16, 8, 4, 2};
    for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
        if (FC_BLOCKS_PER_ROW * sizes[i] <= width)
            return sizes[i];
    }
    return 0;
}

static void fill_plane(GstVideoFrame *frame, guint plane, int x0, int y0, int w, int h,
                       guint8 value)
{
    int pw = GST_VIDEO_FRAME_COMP_WIDTH(frame, plane);
    int ph = GST_VIDEO_FRAME_COMP_HEIGHT(frame, plane);
    int stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, plane);
    guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(frame, plane);

    if (x0 < 0 || y0 < 0 || x0 >= pw || y0 >= ph)
        return;
    if (x0 + w > pw)
        w = pw - x0;
    if (y0 + h > ph)
        h = ph - y0;
    for (int y = y0; y < y0 + h; y++)
        memset(data + (size_t)y * (size_t)stride + (size_t)x0, value, (size_t)w);
}

static void fc_draw_row(GstVideoFrame *frame, int row, int bs, guint64 payload)
{
    guint8 bits[FC_BLOCKS_PER_ROW];
    int n = 0;
    guint8 crc = crc8_payload(payload);

    for (int i = 0; i < FC_GUARD_BLOCKS; i++)
        bits[n++] = fc_start_guard[row][i];
    for (int i = FC_PAYLOAD_BITS - 1; i >= 0; i--)
        bits[n++] = (guint8)((payload >> i) & 1u);
    for (int i = FC_CRC_BITS - 1; i >= 0; i--)
        bits[n++] = (guint8)((crc >> i) & 1u);
    for (int i = 0; i < FC_GUARD_BLOCKS; i++)
        bits[n++] = fc_end_guard[i];

    for (int i = 0; i < FC_BLOCKS_PER_ROW; i++) {
        if (bits[i])
            fill_plane(frame, 0, i * bs, row * bs, bs, bs, FC_Y_ONE);
    }
}

static void fc_draw(GstVideoFrame *frame, guint64 frame_no, guint64 utc_ms)
{
    int width = GST_VIDEO_FRAME_WIDTH(frame);
    int bs = fc_block_size(width);
    if (bs == 0)
        return;
    int quiet = bs / 2 > 0 ? bs / 2 : 1;
    int code_w = FC_BLOCKS_PER_ROW * bs;
    int code_h = 2 * bs + quiet;

    fill_plane(frame, 0, 0, 0, code_w, code_h, FC_Y_ZERO);
    /* I420: chroma planes are half size in both directions, round up. */
    fill_plane(frame, 1, 0, 0, (code_w + 1) / 2, (code_h + 1) / 2, FC_C_NEUTRAL);
    fill_plane(frame, 2, 0, 0, (code_w + 1) / 2, (code_h + 1) / 2, FC_C_NEUTRAL);
    fc_draw_row(frame, 0, bs, frame_no & G_GUINT64_CONSTANT(0xffffffffffff));
    fc_draw_row(frame, 1, bs, utc_ms & G_GUINT64_CONSTANT(0xffffffffffff));
}

static GstPadProbeReturn framecode_probe(GstPad *pad, GstPadProbeInfo *info,
                                         gpointer user_data)
{
    (void)user_data;
    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (buf == NULL)
        return GST_PAD_PROBE_OK;

    guint64 frame_no = (guint64)atomic_fetch_add(&g_frame_counter, 1);
    gint64 now_us = g_get_real_time();
    guint64 utc_ms = now_us > 0 ? (guint64)(now_us / 1000) : 0;

    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (caps == NULL)
        return GST_PAD_PROBE_OK;
    GstVideoInfo vinfo;
    gboolean ok = gst_video_info_from_caps(&vinfo, caps);
    gst_caps_unref(caps);
    if (!ok || GST_VIDEO_INFO_FORMAT(&vinfo) != GST_VIDEO_FORMAT_I420)
        return GST_PAD_PROBE_OK;

    buf = gst_buffer_make_writable(buf);
    GST_PAD_PROBE_INFO_DATA(info) = buf;

    GstVideoFrame frame;
    if (!gst_video_frame_map(&frame, &vinfo, buf, GST_MAP_WRITE))
        return GST_PAD_PROBE_OK;
    fc_draw(&frame, frame_no, utc_ms);
    gst_video_frame_unmap(&frame);
    return GST_PAD_PROBE_OK;
}

/* A live camera cannot seek.  videotestsrc nevertheless answers the SEEKING
 * query with "seekable", and gst-rtsp-server then turns the
 * "Range: npt=0.000-" that ffmpeg and most clients send with PLAY into a
 * flushing seek of the SHARED pipeline: every client that joins rewinds the
 * timestamps of the others, and concurrent PLAYs can deadlock or hit the
 * g_assert in gst_rtsp_media_get_rates().  Answering "not seekable" makes PLAY
 * simply join the running stream, like a real camera. */
static GstPadProbeReturn seeking_query_probe(GstPad *pad, GstPadProbeInfo *info,
                                             gpointer user_data)
{
    (void)pad;
    (void)user_data;
    GstQuery *query = GST_PAD_PROBE_INFO_QUERY(info);
    if (query == NULL || GST_QUERY_TYPE(query) != GST_QUERY_SEEKING)
        return GST_PAD_PROBE_OK;
    GstFormat format;
    gst_query_parse_seeking(query, &format, NULL, NULL, NULL);
    gst_query_set_seeking(query, format, FALSE, 0, -1);
    return GST_PAD_PROBE_HANDLED;
}

static void on_media_configure(GstRTSPMediaFactory *factory, GstRTSPMedia *media,
                               gpointer user_data)
{
    (void)factory;
    (void)user_data;
    GstElement *bin = gst_rtsp_media_get_element(media);
    if (bin == NULL)
        return;
    GstElement *parse = gst_bin_get_by_name(GST_BIN(bin), "fileparse");
    if (parse != NULL) {
        /* Clip mode: only keep joining clients from rewinding the shared pipeline. */
        GstPad *pad = gst_element_get_static_pad(parse, "src");
        if (pad != NULL) {
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_QUERY_UPSTREAM, seeking_query_probe,
                              NULL, NULL);
            gst_object_unref(pad);
        }
        gst_object_unref(parse);
        gst_object_unref(bin);
        return;
    }
    GstElement *caps = gst_bin_get_by_name(GST_BIN(bin), "rawcaps");
    if (caps == NULL) {
        fprintf(stderr, "testcam: element 'rawcaps' not found in media pipeline\n");
    } else {
        GstPad *pad = gst_element_get_static_pad(caps, "src");
        if (pad != NULL) {
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, framecode_probe, NULL, NULL);
            gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_QUERY_UPSTREAM, seeking_query_probe,
                              NULL, NULL);
            gst_object_unref(pad);
        }
        gst_object_unref(caps);
    }
    gst_object_unref(bin);
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "Usage: %s [options]\n"
            "RTSP test camera serving H.264 with a frame-code barcode on 127.0.0.1.\n"
            "  --port N          TCP port on 127.0.0.1 (0 = pick a free port; default 0)\n"
            "  --path /cam       mount path (default /cam)\n"
            "  --width N         frame width, even, %d..%d (default 640)\n"
            "  --height N        frame height, even, %d..%d (default 360)\n"
            "  --fps N           frames per second, 1..120 (default 15)\n"
            "  --gop N           keyframe interval in frames, 1..3600 (default 30)\n"
            "  --bitrate N       target bitrate in kbit/s, 16..100000 (default 800)\n"
            "  --user U          require RTSP digest auth with this user\n"
            "  --password P      password for --user\n"
            "  --profile P       H.264 profile: baseline, main or high\n"
            "  --pattern NAME    videotestsrc pattern (default ball)\n"
            "  --file PATH       serve a pre-encoded H.264 MP4 clip instead (no frame code)\n"
            "  --audio CODEC     add G.711 audio (pcmu or pcma, 8 kHz tone) as a second stream\n"
            "  --help            show this help\n"
            "Prints \"READY rtsp://127.0.0.1:<port><path>\" when serving; stops on SIGTERM/SIGINT.\n",
            prog, MIN_WIDTH, MAX_WIDTH, MIN_HEIGHT, MAX_HEIGHT);
}

static gboolean parse_long(const char *name, const char *text, long min, long max, long *out)
{
    char *end = NULL;
    if (text == NULL || *text == '\0') {
        fprintf(stderr, "testcam: --%s needs a value\n", name);
        return FALSE;
    }
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        fprintf(stderr, "testcam: --%s: not an integer: '%s'\n", name, text);
        return FALSE;
    }
    if (v < min || v > max) {
        fprintf(stderr, "testcam: --%s: %ld out of range %ld..%ld\n", name, v, min, max);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

static gboolean valid_path(const char *p)
{
    size_t len = strlen(p);
    if (len < 2 || len > 128 || p[0] != '/')
        return FALSE;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        gboolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '/' || c == '_' || c == '-' || c == '.';
        if (!ok)
            return FALSE;
    }
    if (strstr(p, "//") != NULL || p[len - 1] == '/')
        return FALSE;
    return TRUE;
}

static gboolean valid_word(const char *s)
{
    if (*s == '\0' || strlen(s) > 32)
        return FALSE;
    for (const char *c = s; *c != '\0'; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-'))
            return FALSE;
    }
    return TRUE;
}

static gboolean valid_credential(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > 128)
        return FALSE;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x21 || c > 0x7e || c == '"' || c == '\\')
            return FALSE;
    }
    return TRUE;
}

/* Returns 0 on success, 1 for --help, -1 on a usage error. */
static int parse_args(int argc, char **argv, CamConfig *cfg)
{
    enum {
        OPT_PORT = 1000, OPT_PATH, OPT_WIDTH, OPT_HEIGHT, OPT_FPS, OPT_GOP, OPT_BITRATE,
        OPT_USER, OPT_PASSWORD, OPT_PROFILE, OPT_PATTERN, OPT_FILE, OPT_AUDIO, OPT_HELP
    };
    static const struct option opts[] = {
        {"port", required_argument, NULL, OPT_PORT},
        {"path", required_argument, NULL, OPT_PATH},
        {"width", required_argument, NULL, OPT_WIDTH},
        {"height", required_argument, NULL, OPT_HEIGHT},
        {"fps", required_argument, NULL, OPT_FPS},
        {"gop", required_argument, NULL, OPT_GOP},
        {"bitrate", required_argument, NULL, OPT_BITRATE},
        {"user", required_argument, NULL, OPT_USER},
        {"password", required_argument, NULL, OPT_PASSWORD},
        {"profile", required_argument, NULL, OPT_PROFILE},
        {"pattern", required_argument, NULL, OPT_PATTERN},
        {"file", required_argument, NULL, OPT_FILE},
        {"audio", required_argument, NULL, OPT_AUDIO},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };

    cfg->port = 0;
    cfg->path = "/cam";
    cfg->width = 640;
    cfg->height = 360;
    cfg->fps = 15;
    cfg->gop = 30;
    cfg->bitrate = 800;
    cfg->user = NULL;
    cfg->password = NULL;
    cfg->profile = NULL;
    cfg->pattern = "ball";
    cfg->file = NULL;
    cfg->audio = NULL;

    opterr = 1; /* getopt_long reports unknown options and missing values itself */
    for (;;) {
        int c = getopt_long(argc, argv, "", opts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case OPT_PORT:
            if (!parse_long("port", optarg, 0, 65535, &cfg->port))
                return -1;
            break;
        case OPT_PATH:
            cfg->path = optarg;
            break;
        case OPT_WIDTH:
            if (!parse_long("width", optarg, MIN_WIDTH, MAX_WIDTH, &cfg->width))
                return -1;
            break;
        case OPT_HEIGHT:
            if (!parse_long("height", optarg, MIN_HEIGHT, MAX_HEIGHT, &cfg->height))
                return -1;
            break;
        case OPT_FPS:
            if (!parse_long("fps", optarg, 1, 120, &cfg->fps))
                return -1;
            break;
        case OPT_GOP:
            if (!parse_long("gop", optarg, 1, 3600, &cfg->gop))
                return -1;
            break;
        case OPT_BITRATE:
            if (!parse_long("bitrate", optarg, 16, 100000, &cfg->bitrate))
                return -1;
            break;
        case OPT_USER:
            cfg->user = optarg;
            break;
        case OPT_PASSWORD:
            cfg->password = optarg;
            break;
        case OPT_PROFILE:
            cfg->profile = optarg;
            break;
        case OPT_PATTERN:
            cfg->pattern = optarg;
            break;
        case OPT_FILE:
            /* It goes into a gst-launch string: keep to plain path characters. */
            for (const char *ch = optarg; *ch; ch++) {
                if (!((*ch >= 'a' && *ch <= 'z') || (*ch >= 'A' && *ch <= 'Z') ||
                      (*ch >= '0' && *ch <= '9') || strchr("/._-", *ch))) {
                    fprintf(stderr, "testcam: --file: use only [A-Za-z0-9/._-] in the path\n");
                    return -1;
                }
            }
            cfg->file = optarg;
            break;
        case OPT_AUDIO:
            if (strcmp(optarg, "pcmu") != 0 && strcmp(optarg, "pcma") != 0) {
                fprintf(stderr, "testcam: --audio must be pcmu or pcma\n");
                return -1;
            }
            cfg->audio = optarg;
            break;
        case OPT_HELP:
            return 1;
        case '?':
        default:
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "testcam: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cfg->width % 2 != 0 || cfg->height % 2 != 0) {
        fprintf(stderr, "testcam: --width and --height must be even (I420)\n");
        return -1;
    }
    if (!valid_path(cfg->path)) {
        fprintf(stderr, "testcam: --path must look like /name[/name...] using [A-Za-z0-9_.-]\n");
        return -1;
    }
    if ((cfg->user == NULL) != (cfg->password == NULL)) {
        fprintf(stderr, "testcam: --user and --password must be given together\n");
        return -1;
    }
    if (cfg->user != NULL &&
        (!valid_credential(cfg->user) || !valid_credential(cfg->password) ||
         strchr(cfg->user, ':') != NULL)) {
        fprintf(stderr, "testcam: --user/--password must be 1..128 printable ASCII characters "
                        "without spaces, quotes or backslashes (and no ':' in the user)\n");
        return -1;
    }
    if (cfg->profile != NULL && strcmp(cfg->profile, "baseline") != 0 &&
        strcmp(cfg->profile, "main") != 0 && strcmp(cfg->profile, "high") != 0) {
        fprintf(stderr, "testcam: --profile must be baseline, main or high\n");
        return -1;
    }
    if (!valid_word(cfg->pattern)) {
        fprintf(stderr, "testcam: --pattern must be a videotestsrc pattern name\n");
        return -1;
    }
    return 0;
}

static gchar *build_launch(const CamConfig *cfg)
{
    /* A pre-encoded clip costs the camera side almost nothing: for benchmarks of the
     * recorder with many cameras. No frame code (the bytes are not re-encoded). */
    if (cfg->file != NULL)
        return g_strdup_printf("( filesrc location=%s ! qtdemux ! h264parse name=fileparse "
                               "! rtph264pay name=pay0 pt=96 config-interval=-1 )",
                               cfg->file);
    gchar *profile_caps = cfg->profile != NULL
                              ? g_strdup_printf("video/x-h264,profile=%s", cfg->profile)
                              : g_strdup("video/x-h264");
    /* x264 signals the lowest profile its coding tools need, and ultrafast
     * turns CABAC and 8x8 transforms off (= constrained baseline), so turn the
     * tools that define main/high back on. */
    const char *tools = "";
    if (cfg->profile != NULL && strcmp(cfg->profile, "main") == 0)
        tools = "cabac=true ";
    else if (cfg->profile != NULL && strcmp(cfg->profile, "high") == 0)
        tools = "cabac=true dct8x8=true ";
    gchar *audio = cfg->audio == NULL ? g_strdup("")
                   : g_strdup_printf("audiotestsrc is-live=true wave=sine freq=440 "
                                     "! audio/x-raw,rate=8000,channels=1 ! %s ! %s name=pay1 pt=%d ",
                                     strcmp(cfg->audio, "pcmu") == 0 ? "mulawenc" : "alawenc",
                                     strcmp(cfg->audio, "pcmu") == 0 ? "rtppcmupay" : "rtppcmapay",
                                     strcmp(cfg->audio, "pcmu") == 0 ? 0 : 8);
    gchar *launch = g_strdup_printf(
        "( videotestsrc is-live=true pattern=%s "
        "! capsfilter name=rawcaps caps=video/x-raw,format=I420,width=%ld,height=%ld,"
        "framerate=%ld/1,pixel-aspect-ratio=1/1 "
        "! clockoverlay halignment=right valignment=bottom shaded-background=true "
        "time-format=\"%%Y-%%m-%%d %%H:%%M:%%S\" "
        "! timeoverlay halignment=left valignment=bottom shaded-background=true "
        "! x264enc tune=zerolatency speed-preset=ultrafast threads=1 key-int-max=%ld bitrate=%ld "
        "%s! %s "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 %s)",
        cfg->pattern, cfg->width, cfg->height, cfg->fps, cfg->gop, cfg->bitrate, tools,
        profile_caps, audio);
    g_free(profile_caps);
    g_free(audio);
    return launch;
}

/* Instantiate the pipeline once so that bad patterns or missing plugins fail at start. */
static gboolean check_launch(const gchar *launch)
{
    GError *err = NULL;
    GstElement *el = gst_parse_launch_full(launch, NULL, GST_PARSE_FLAG_FATAL_ERRORS, &err);
    if (el == NULL || err != NULL) {
        fprintf(stderr, "testcam: cannot build pipeline: %s\n",
                err != NULL ? err->message : "unknown error");
        if (err != NULL)
            g_error_free(err);
        if (el != NULL)
            gst_object_unref(el);
        return FALSE;
    }
    gst_object_unref(el);
    return TRUE;
}

static gboolean on_quit_signal(gpointer user_data)
{
    g_main_loop_quit((GMainLoop *)user_data);
    return G_SOURCE_CONTINUE;
}

static gboolean cleanup_sessions(gpointer user_data)
{
    GstRTSPServer *server = user_data;
    GstRTSPSessionPool *pool = gst_rtsp_server_get_session_pool(server);
    gst_rtsp_session_pool_cleanup(pool);
    g_object_unref(pool);
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    CamConfig cfg;
    int rc = parse_args(argc, argv, &cfg);
    if (rc == 1) {
        usage(stdout, argv[0]);
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "testcam: try '%s --help'\n", argv[0]);
        return 2;
    }

    gst_init(NULL, NULL);

    gchar *launch = build_launch(&cfg);
    if (!check_launch(launch)) {
        g_free(launch);
        return 1;
    }

    GMainLoop *loop = g_main_loop_new(NULL, FALSE);
    GstRTSPServer *server = gst_rtsp_server_new();
    char service[16];
    snprintf(service, sizeof service, "%ld", cfg.port);
    gst_rtsp_server_set_address(server, "127.0.0.1");
    gst_rtsp_server_set_service(server, service);

    GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(factory, launch);
    gst_rtsp_media_factory_set_shared(factory, TRUE);
    g_signal_connect(factory, "media-configure", G_CALLBACK(on_media_configure), NULL);

    if (cfg.user != NULL) {
        GstRTSPAuth *auth = gst_rtsp_auth_new();
        gst_rtsp_auth_set_supported_methods(auth, GST_RTSP_AUTH_DIGEST);
        GstRTSPToken *token = gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE,
                                                 G_TYPE_STRING, "camuser", NULL);
        gst_rtsp_auth_add_digest(auth, cfg.user, cfg.password, token);
        gst_rtsp_token_unref(token);
        gst_rtsp_media_factory_add_role(factory, "camuser",
                                        GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
                                        GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN,
                                        TRUE, NULL);
        gst_rtsp_server_set_auth(server, auth);
        g_object_unref(auth);
    }

    GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(server);
    gst_rtsp_mount_points_add_factory(mounts, cfg.path, factory); /* takes factory */
    g_object_unref(mounts);

    GError *err = NULL;
    guint server_src = gst_rtsp_server_attach(server, NULL);
    if (server_src == 0) {
        /* attach() only logs; create the socket ourselves to get the reason. */
        GSocket *sock = gst_rtsp_server_create_socket(server, NULL, &err);
        fprintf(stderr, "testcam: cannot listen on 127.0.0.1:%ld: %s\n", cfg.port,
                err != NULL ? err->message : "unknown error");
        if (err != NULL)
            g_error_free(err);
        if (sock != NULL)
            g_object_unref(sock);
        g_object_unref(server);
        g_main_loop_unref(loop);
        g_free(launch);
        return 1;
    }

    int port = gst_rtsp_server_get_bound_port(server);
    if (port <= 0) {
        fprintf(stderr, "testcam: cannot determine bound port\n");
        g_source_remove(server_src);
        g_object_unref(server);
        g_main_loop_unref(loop);
        g_free(launch);
        return 1;
    }

    guint sig_term = g_unix_signal_add(SIGTERM, on_quit_signal, loop);
    guint sig_int = g_unix_signal_add(SIGINT, on_quit_signal, loop);
    guint cleanup_src = g_timeout_add_seconds(2, cleanup_sessions, server);

    printf("READY rtsp://127.0.0.1:%d%s\n", port, cfg.path);
    fflush(stdout);

    g_main_loop_run(loop);

    g_source_remove(cleanup_src);
    g_source_remove(sig_term);
    g_source_remove(sig_int);
    g_source_remove(server_src);
    g_object_unref(server);
    g_main_loop_unref(loop);
    g_free(launch);
    return 0;
}
