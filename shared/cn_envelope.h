/* cn_envelope.h: the uplink message envelope {v, type, id, seq, time, body}; schemas/uplink-envelope.schema.json. */
#ifndef CN_ENVELOPE_H
#define CN_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cn_buf.h"

#define CN_ENV_VERSION 1
#define CN_ENV_MAX_BYTES (1024 * 1024) /* one WebSocket frame */
#define CN_ENV_MAX_DEPTH 32
#define CN_ENV_TYPE_MAX 64
#define CN_ENV_ID_MAX 64

struct cn_envelope {
	char type[CN_ENV_TYPE_MAX + 1]; /* "heartbeat", "event.batch": [a-z][a-z0-9_.]* */
	char id[CN_ENV_ID_MAX + 1];     /* unique per sender: [A-Za-z0-9_-]+ */
	uint64_t seq;                   /* per-link sequence, 0..2^53-1 */
	int64_t time_ms;                /* sender's UTC clock at send */
	cJSON *body;                    /* always an object; owned by the envelope */
};

/* Strict decode: unknown members, wrong types, bad names or times are errors with a
 * precise message in err. On success the caller owns env->body (cn_envelope_clear). */
int cn_envelope_decode(const char *p, size_t n, struct cn_envelope *env, char *err,
		       size_t errcap);
/* Appends the JSON text of env to out; checks the same rules as decode. */
int cn_envelope_encode(const struct cn_envelope *env, struct cn_buf *out);
/* Fills type, a random id, seq, the current time and takes ownership of body (an
 * object, or NULL for {}). */
int cn_envelope_make(struct cn_envelope *env, const char *type, uint64_t seq, cJSON *body);
void cn_envelope_clear(struct cn_envelope *env);

#endif
