/* cn_loop.c: GLib main loop setup, signal handling and the lws glib event-lib binding. */
#include "cn_loop.h"

#include <glib-unix.h>
#include <signal.h>
#include <string.h>

#include "cn_err.h"
#include "cn_log.h"

struct sig_ctx {
	struct cn_loop *l;
	int sig;
};

static struct sig_ctx sig_term_ctx, sig_int_ctx;

static gboolean on_signal(gpointer data)
{
	struct sig_ctx *s = data;

	cn_log_info("loop", "received %s, shutting down", s->sig == SIGTERM ? "SIGTERM" : "SIGINT");
	s->l->stop_signal = s->sig;
	g_main_loop_quit(s->l->loop);
	return G_SOURCE_CONTINUE;
}

/* lws logs arrive here so all output goes through one logging family. */
static void lws_emit(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		cn_log_write(CN_LOG_ERROR, "lws", "libwebsockets", 0, "%.*s", (int)n, line);
	else if (level & LLL_WARN)
		cn_log_warn("lws", "%.*s", (int)n, line);
	else
		cn_log_debug("lws", "%.*s", (int)n, line);
}

int cn_loop_init(struct cn_loop *l)
{
	struct lws_context_creation_info info;
	void *foreign[1];

	memset(l, 0, sizeof(*l));
	l->ctx = g_main_context_default();
	l->loop = g_main_loop_new(l->ctx, FALSE);
	lws_set_log_level(LLL_ERR | LLL_WARN | (cn_log_debug_enabled("lws") ? LLL_NOTICE | LLL_INFO : 0),
			  lws_emit);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	/* VALIDATE_UTF8 is read from the context in lws 4.1: WebSocket text that is not UTF-8
	 * closes the connection with 1007. */
	info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_VALIDATE_UTF8;
	foreign[0] = l->loop;
	info.foreign_loops = foreign;
	l->lws = lws_create_context(&info);
	if (!l->lws) {
		cn_log_error("loop", "cannot create libwebsockets context on the glib loop");
		g_main_loop_unref(l->loop);
		l->loop = NULL;
		return -EIO;
	}
	sig_term_ctx = (struct sig_ctx){ l, SIGTERM };
	sig_int_ctx = (struct sig_ctx){ l, SIGINT };
	l->sig_term = g_unix_signal_add(SIGTERM, on_signal, &sig_term_ctx);
	l->sig_int = g_unix_signal_add(SIGINT, on_signal, &sig_int_ctx);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

void cn_loop_run(struct cn_loop *l)
{
	g_main_loop_run(l->loop);
}

void cn_loop_stop(struct cn_loop *l)
{
	g_main_loop_quit(l->loop);
}

guint cn_loop_every(struct cn_loop *l, unsigned interval_ms, GSourceFunc fn, void *arg)
{
	GSource *s = g_timeout_source_new(interval_ms);
	guint id;

	g_source_set_callback(s, fn, arg, NULL);
	id = g_source_attach(s, l->ctx);
	g_source_unref(s);
	return id;
}

int cn_loop_at_destroy(struct cn_loop *l, void (*fn)(void *arg), void *arg)
{
	if (l->n_at_destroy == CN_LOOP_MAX_AT_DESTROY)
		return -ENOSPC;
	l->at_destroy[l->n_at_destroy].fn = fn;
	l->at_destroy[l->n_at_destroy].arg = arg;
	l->n_at_destroy++;
	return 0;
}

void cn_loop_destroy(struct cn_loop *l)
{
	if (l->sig_term)
		g_source_remove(l->sig_term);
	if (l->sig_int)
		g_source_remove(l->sig_int);
	l->sig_term = l->sig_int = 0;
	if (l->lws) {
		struct lws_context *ctx = l->lws;
		/* Callbacks run during the destroy (connections closing); cleared first, so
		 * whatever they start meets a loop that is going away. */
		l->lws = NULL;
		lws_context_destroy(ctx);
	}
	for (int i = l->n_at_destroy - 1; i >= 0; i--)
		l->at_destroy[i].fn(l->at_destroy[i].arg);
	l->n_at_destroy = 0;
	/* Let sources that lws or others released finish their teardown. */
	if (l->ctx)
		while (g_main_context_iteration(l->ctx, FALSE))
			;
	if (l->loop) {
		g_main_loop_unref(l->loop);
		l->loop = NULL;
	}
}
