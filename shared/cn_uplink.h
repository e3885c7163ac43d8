/* cn_uplink.h: the child side of the uplink: enrol or prove the node key, heartbeat, reconnect with backoff. */
#ifndef CN_UPLINK_H
#define CN_UPLINK_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"
#include "cn_crypto.h"
#include "cn_envelope.h"
#include "cn_loop.h"

/* Signed with the parent's nonce and the node id or enrolment token (docs/uplink.md). */
#define CN_UPLINK_SIG_LABEL "canopy-uplink-v1\n"

struct cn_uplink;

struct cn_uplink_conf {
	const char *url;         /* wss://host:port/uplink */
	const char *ca_path;     /* the parent's CA certificate (PEM) */
	const char *enrol_token; /* used when no identity is stored yet */
	const char *kind;        /* "edge", "relay", "central" */
	const char *name;
	const char *software;
	const char *state_path;  /* where the enrolled node id is kept (JSON); NULL: nowhere */
	const char *node_id;     /* an identity known beforehand (load tools); NULL: state_path */
	const struct cn_ed25519 *key;
};

/* All called on the loop. */
struct cn_uplink_ops {
	void (*on_ready)(struct cn_uplink *u, void *arg); /* welcome received */
	/* any other message from the parent (config, events.ack, ...) */
	void (*on_message)(struct cn_uplink *u, const struct cn_envelope *env, void *arg);
	void (*on_down)(struct cn_uplink *u, void *arg); /* a ready link ended */
	/* fills a heartbeat's body (applied version, status) */
	void (*heartbeat)(struct cn_uplink *u, cJSON *body, void *arg);
};

int cn_uplink_start(struct cn_loop *l, const struct cn_uplink_conf *conf,
		    const struct cn_uplink_ops *ops, void *arg, struct cn_uplink **out);
/* Sends a message (takes body, NULL for {}); -ENOTCONN unless ready. */
int cn_uplink_send(struct cn_uplink *u, const char *type, cJSON *body);
bool cn_uplink_ready(const struct cn_uplink *u);
/* "connecting", "authenticating", "ready", "waiting" (backing off) or "refused" */
const char *cn_uplink_state(const struct cn_uplink *u);
/* Why the last attempt failed ("" when none). */
const char *cn_uplink_error(const struct cn_uplink *u);
/* The node id given at enrolment ("" until then). */
const char *cn_uplink_node_id(const struct cn_uplink *u);
/* Adds {"state","error","node_id","url","connects"} to obj under "uplink". */
int cn_uplink_describe(const struct cn_uplink *u, cJSON *obj);
void cn_uplink_stop(struct cn_uplink *u);
/* cn_metrics collector: state, connects, failures. */
int cn_uplink_metrics(struct cn_buf *out, void *arg);

#endif
