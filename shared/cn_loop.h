/* cn_loop.h: the process's one GLib main loop, with libwebsockets driven by its glib event lib. */
#ifndef CN_LOOP_H
#define CN_LOOP_H

#include <glib.h>
#include <libwebsockets.h>

#define CN_LOOP_MAX_AT_DESTROY 8

struct cn_loop {
	GMainContext *ctx;
	GMainLoop *loop;
	struct lws_context *lws;
	guint sig_term;
	guint sig_int;
	int stop_signal; /* the signal that ended run, 0 if stopped by code */
	struct {
		void (*fn)(void *arg);
		void *arg;
	} at_destroy[CN_LOOP_MAX_AT_DESTROY];
	int n_at_destroy;
};

/* Creates the loop on the default GMainContext and an lws context attached to it with
 * explicit vhosts (listeners are added by cn_http_listen and friends). */
int cn_loop_init(struct cn_loop *l);
/* Runs until SIGTERM, SIGINT or cn_loop_stop. */
void cn_loop_run(struct cn_loop *l);
void cn_loop_stop(struct cn_loop *l);
/* Calls fn every interval_ms on the loop until it returns G_SOURCE_REMOVE; returns the id. */
guint cn_loop_every(struct cn_loop *l, unsigned interval_ms, GSourceFunc fn, void *arg);
/* Has cn_loop_destroy call fn(arg) once the lws context is gone: for state a module keeps
 * per loop beside lws (cn_ws's client vhosts). -ENOSPC past CN_LOOP_MAX_AT_DESTROY. */
int cn_loop_at_destroy(struct cn_loop *l, void (*fn)(void *arg), void *arg);
/* Destroys the lws context (closing every connection) and the loop. Accepts a zeroed l. */
void cn_loop_destroy(struct cn_loop *l);

#endif
