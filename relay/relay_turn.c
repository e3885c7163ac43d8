/* relay_turn.c: the relay's TURN server (RFC 8656) over UDP and TCP: allocations, permissions, channels, REST credentials, quotas, peer policy. */
#include "relay_turn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "cn_addrpolicy.h"
#include "cn_base64.h"
#include "cn_crypto.h"
#include "cn_err.h"
#include "cn_log.h"
#include "cn_metrics.h"
#include "cn_stun.h"
#include "cn_time.h"
#include "relay.h"

#define LOG "turn"

#define BATCH 32            /* datagrams per recvmmsg */
#define TXBATCH 128         /* datagrams per sendmmsg */
#define RXPOOL 256          /* receive buffers: queued sends point into them until flushed */
#define RXBUF 4096          /* largest datagram relayed; longer ones are dropped and counted */
#define TX_OWN 512          /* room for a response or an indication header in a send slot */
#define NBUCKETS 4096       /* UDP allocations hash, per worker */
#define MAX_PERMS 32        /* permissions per allocation */
#define MAX_CHANS 32        /* channels per allocation */
#define MAX_TENANTS 1024    /* tenants with their own metric labels; the rest are "other" */
#define MAX_RESERVATIONS 64 /* EVEN-PORT R=1 reservations per worker */
#define CONN_IN 16384       /* TCP: largest frame accepted from a client */
#define CONN_OUT_MAX (512 * 1024) /* TCP: data messages are dropped past this much backlog */
#define CONN_IDLE_MS 60000  /* TCP: a connection without an allocation is closed after this */
#define PERM_MS 300000
#define CHAN_MS 600000
#define DEFAULT_LIFETIME_S 600
#define RESERVATION_MS 30000
#define NONCE_LEN 24        /* 8 hex digits of expiry, 16 of MAC */
#define MAX_USERNAME 256

/* Why an authenticated request was refused; the label of canopy_turn_auth_failures_total. */
enum auth_fail {
	AF_STALE_NONCE,
	AF_BAD_USERNAME,
	AF_EXPIRED,
	AF_NO_SECRET,
	AF_BAD_INTEGRITY,
	AF_COUNT,
};

static const char *const auth_fail_names[AF_COUNT] = {
	"stale_nonce", "bad_username", "expired", "no_secret", "bad_integrity",
};

/* TAG_DEAD: freed during this loop turn; later events of the same epoll batch skip it and
 * the memory is released at the end of the turn. */
enum tag_kind { TAG_UDP, TAG_TCP_LISTEN, TAG_CONN, TAG_RELAY, TAG_WAKE, TAG_DEAD };

struct tag {
	enum tag_kind kind;
};

struct tenant {
	char name[64];
	atomic_llong allocs;       /* live */
	atomic_llong allocs_total; /* sessions made */
	atomic_llong bytes[2];     /* [0] to peers, [1] to clients */
	atomic_llong pkts[2];
};

/* A permission names an IP only: kept compact (16 bytes of address, IPv4 in the first 4)
 * because every allocation carries MAX_PERMS of them. */
struct perm {
	int family;
	uint8_t ip[16];
	int64_t expires;
};

struct chan {
	uint16_t num;
	struct sockaddr_storage peer;
	int64_t expires;
};

struct tconn;

struct alloc {
	struct tag tag; /* TAG_RELAY: the relayed socket's events */
	int fd;
	struct sockaddr_storage client;
	socklen_t clen;
	struct tconn *conn; /* TCP control connection, or NULL for UDP */
	struct sockaddr_storage relay;
	int64_t expires;
	uint8_t alloc_tid[12]; /* the Allocate that made it: a retransmission gets the same answer */
	uint32_t lifetime_s;
	char user[MAX_USERNAME + 1];
	char *subject; /* points into user */
	struct tenant *tenant;
	uint8_t key[CN_STUN_KEY_LEN];
	struct perm perms[MAX_PERMS];
	int nperms;
	struct chan chans[MAX_CHANS];
	int nchans;
	uint64_t bytes[2], pkts[2]; /* not yet added to the tenant */
	struct alloc *hnext;        /* UDP hash chain */
	struct alloc *prev, *next;  /* worker's list */
};

struct tconn {
	struct tag tag;
	int fd;
	struct sockaddr_storage peer;
	socklen_t plen;
	struct alloc *alloc;
	int64_t last_active;
	bool want_out;
	size_t inlen;
	uint8_t in[CONN_IN];
	uint8_t *out;
	size_t outlen, outcap;
	struct tconn *prev, *next;
};

struct txslot {
	struct sockaddr_storage to;
	struct iovec iov[3];
	uint8_t own[TX_OWN];
};

/* A batch of datagrams for one socket, sent with one sendmmsg. */
struct txq {
	int fd;
	int n;
	struct mmsghdr mm[TXBATCH];
	struct txslot s[TXBATCH];
};

struct reservation {
	uint8_t token[8];
	int fd;
	int64_t expires;
};

struct worker {
	struct relay_turn *t;
	int id;
	pthread_t th;
	bool running;
	int ep, udp_fd, tcp_fd, wake_fd;
	struct tag udp_tag, tcp_tag, wake_tag;
	struct alloc *buckets[NBUCKETS];
	struct alloc *allocs;
	struct tconn *conns;
	int nconns;
	struct alloc *dead_allocs; /* through hnext */
	struct tconn *dead_conns;  /* through next */
	int64_t now;      /* monotonic ms, once per loop turn */
	int64_t now_wall; /* unix s */
	int64_t next_sweep;
	uint64_t rng;
	/* receive batch */
	struct mmsghdr rmm[BATCH];
	struct iovec riov[BATCH];
	struct sockaddr_storage rfrom[BATCH];
	uint8_t rbuf[RXPOOL][RXBUF];
	int rx_used; /* rbuf[0..rx_used) may be referenced by queued sends */
	struct txq to_client; /* on udp_fd */
	struct txq to_peer;   /* on whichever relayed socket; flushed when that changes */
};

struct relay_turn {
	/* settings, read-only once the workers run */
	char realm[128];
	struct cn_addrpolicy policy;
	struct sockaddr_storage listen;
	socklen_t listen_len;
	struct sockaddr_storage relay_ip;
	bool tcp;
	int64_t user_quota, tenant_quota, max_allocs;
	int64_t max_lifetime_s, nonce_lifetime_s;
	uint8_t nonce_key[32];
	int nworkers;
	struct worker **workers;
	atomic_bool stop;

	pthread_mutex_t lock; /* secret, users, tenant inserts */
	char secret[257];
	GHashTable *users; /* subject -> live allocations (GINT_TO_POINTER) */
	struct tenant tenants[MAX_TENANTS + 1]; /* the last is "other" */
	atomic_int ntenants;
	/* EVEN-PORT reservations: the RTCP Allocate may come from a socket another worker
	 * reads, so they are shared (under lock) */
	struct reservation res[MAX_RESERVATIONS];
	int nres;

	atomic_llong live;
	atomic_llong auth_fail[AF_COUNT];
	atomic_llong challenges, policy_refusals, malformed, quota_refusals, dropped,
		oversize, capacity_refusals, send_failures, classic_bindings;
};

static void add(atomic_llong *c, long long v)
{
	atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static long long get(const atomic_llong *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- small helpers ---- */

static socklen_t sa_len(const struct sockaddr_storage *s)
{
	return s->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static uint16_t port_of(const struct sockaddr_storage *s)
{
	return s->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)s)->sin6_port
					: ((const struct sockaddr_in *)s)->sin_port;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	return same_ip(a, b) && port_of(a) == port_of(b);
}

static void addr_text(const struct sockaddr_storage *s, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (s->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)s)->sin_addr, ip, sizeof(ip));
	else if (s->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)s)->sin6_addr, ip, sizeof(ip));
	snprintf(out, cap, s->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ntohs(port_of(s)));
}

static unsigned hash_addr(const struct sockaddr_storage *s)
{
	const uint8_t *p;
	size_t n;
	uint32_t h = 2166136261u;

	if (s->ss_family == AF_INET) {
		p = (const uint8_t *)&((const struct sockaddr_in *)s)->sin_addr;
		n = 4;
	} else {
		p = ((const struct sockaddr_in6 *)s)->sin6_addr.s6_addr;
		n = 16;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	h = (h ^ port_of(s)) * 16777619u;
	return (h ^ (h >> 15)) % NBUCKETS;
}

static uint64_t rng_next(struct worker *w)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return w->rng;
}

/* "IP:port" or "[IPv6]:port". */
static int parse_hostport(const char *s, struct sockaddr_storage *out)
{
	char host[64];
	const char *colon;
	size_t hl;
	long port;
	char *end;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (rb == NULL || rb[1] != ':')
			return -EINVAL;
		hl = (size_t)(rb - s - 1);
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		hl = (size_t)(colon - s);
		memcpy(host, s, hl);
	}
	host[hl] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535)
		return -EINVAL;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)out)->sin_addr) == 1) {
		out->ss_family = AF_INET;
		((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)out)->sin6_addr) == 1) {
		out->ss_family = AF_INET6;
		((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
	} else {
		return -EINVAL;
	}
	return 0;
}

static bool is_wildcard(const struct sockaddr_storage *s)
{
	static const uint8_t zero[16];

	if (s->ss_family == AF_INET)
		return ((const struct sockaddr_in *)s)->sin_addr.s_addr == 0;
	return memcmp(&((const struct sockaddr_in6 *)s)->sin6_addr, zero, 16) == 0;
}

/* ---- tenants and users (shared between workers) ---- */

static struct tenant *tenant_get(struct relay_turn *t, const char *name, size_t len)
{
	int n;

	if (len >= sizeof(t->tenants[0].name))
		len = sizeof(t->tenants[0].name) - 1;
	pthread_mutex_lock(&t->lock);
	n = atomic_load(&t->ntenants);
	for (int i = 0; i < n; i++) {
		if (strlen(t->tenants[i].name) == len && memcmp(t->tenants[i].name, name, len) == 0) {
			pthread_mutex_unlock(&t->lock);
			return &t->tenants[i];
		}
	}
	if (n == MAX_TENANTS) {
		pthread_mutex_unlock(&t->lock);
		return &t->tenants[MAX_TENANTS];
	}
	memcpy(t->tenants[n].name, name, len);
	t->tenants[n].name[len] = '\0';
	atomic_store(&t->ntenants, n + 1); /* the collector reads names below ntenants */
	pthread_mutex_unlock(&t->lock);
	return &t->tenants[n];
}

/* Counts one more allocation for subject unless it is at its quota. */
static bool user_take(struct relay_turn *t, const char *subject)
{
	gpointer v;
	long n;
	bool ok;

	pthread_mutex_lock(&t->lock);
	v = g_hash_table_lookup(t->users, subject);
	n = GPOINTER_TO_INT(v);
	ok = n < t->user_quota;
	if (ok)
		g_hash_table_replace(t->users, g_strdup(subject), GINT_TO_POINTER((int)(n + 1)));
	pthread_mutex_unlock(&t->lock);
	return ok;
}

static void user_release(struct relay_turn *t, const char *subject)
{
	long n;

	pthread_mutex_lock(&t->lock);
	n = GPOINTER_TO_INT(g_hash_table_lookup(t->users, subject));
	if (n <= 1)
		g_hash_table_remove(t->users, subject);
	else
		g_hash_table_replace(t->users, g_strdup(subject), GINT_TO_POINTER((int)(n - 1)));
	pthread_mutex_unlock(&t->lock);
}

/* ---- sending ---- */

/* Sends the batch; what the kernel refuses is counted in *failed. */
static void txq_flush(struct txq *q, atomic_llong *failed)
{
	int off = 0;

	while (off < q->n) {
		int r = sendmmsg(q->fd, q->mm + off, (unsigned)(q->n - off), MSG_DONTWAIT);

		if (r > 0) {
			off += r;
		} else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			add(failed, q->n - off); /* the socket is full: the rest is lost, as UDP may be */
			break;
		} else {
			add(failed, 1); /* this one failed (ICMP error, bad address): skip it */
			off++;
		}
	}
	q->n = 0;
}

/* A slot for one datagram to `to` on fd (flushing first when the batch is for another
 * socket or full); the caller fills iov and calls txq_commit. */
static struct txslot *txq_slot(struct worker *w, struct txq *q, int fd,
			       const struct sockaddr_storage *to)
{
	struct txslot *s;

	if (q->n > 0 && (q->fd != fd || q->n == TXBATCH))
		txq_flush(q, &w->t->send_failures);
	q->fd = fd;
	s = &q->s[q->n];
	memcpy(&s->to, to, sa_len(to));
	return s;
}

static void txq_commit(struct txq *q, int niov)
{
	struct mmsghdr *m = &q->mm[q->n];
	struct txslot *s = &q->s[q->n];

	memset(m, 0, sizeof(*m));
	m->msg_hdr.msg_name = &s->to;
	m->msg_hdr.msg_namelen = sa_len(&s->to);
	m->msg_hdr.msg_iov = s->iov;
	m->msg_hdr.msg_iovlen = (size_t)niov;
	q->n++;
}

static void conn_close(struct worker *w, struct tconn *c);
static void flush_all(struct worker *w);

static void conn_want_out(struct worker *w, struct tconn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = &c->tag };

	if (c->want_out == on)
		return;
	c->want_out = on;
	epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes a whole frame or queues what the socket does not take. A data frame (droppable)
 * is dropped when the backlog is already large; a response never is. */
static void conn_send(struct worker *w, struct tconn *c, const struct iovec *iov, int niov,
		      bool droppable)
{
	size_t total = 0, done = 0;
	ssize_t r;

	for (int i = 0; i < niov; i++)
		total += iov[i].iov_len;
	if (c->outlen > 0) {
		if (droppable && c->outlen + total > CONN_OUT_MAX) {
			add(&w->t->dropped, 1);
			return;
		}
	} else {
		r = writev(c->fd, iov, niov);
		if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return; /* the read side sees the error and closes */
		done = r > 0 ? (size_t)r : 0;
		if (done == total)
			return;
	}
	if (c->outlen + total - done > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 16384;
		uint8_t *nb;

		while (cap < c->outlen + total - done)
			cap *= 2;
		nb = realloc(c->out, cap);
		if (nb == NULL) {
			add(&w->t->dropped, 1);
			return;
		}
		c->out = nb;
		c->outcap = cap;
	}
	for (int i = 0; i < niov; i++) {
		size_t l = iov[i].iov_len;
		const uint8_t *p = iov[i].iov_base;

		if (done >= l) {
			done -= l;
			continue;
		}
		memcpy(c->out + c->outlen, p + done, l - done);
		c->outlen += l - done;
		done = 0;
	}
	conn_want_out(w, c, true);
}

static void conn_flush_out(struct worker *w, struct tconn *c)
{
	ssize_t r;

	while (c->outlen > 0) {
		r = write(c->fd, c->out, c->outlen);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_close(w, c);
			return;
		}
		memmove(c->out, c->out + r, c->outlen - (size_t)r);
		c->outlen -= (size_t)r;
	}
	conn_want_out(w, c, false);
}

/* Where a client message came from: a TCP connection or a UDP address. */
struct src {
	struct tconn *conn;
	const struct sockaddr_storage *addr;
};

static void reply(struct worker *w, const struct src *s, const uint8_t *buf, size_t len)
{
	if (s->conn) {
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

		conn_send(w, s->conn, &iov, 1, false);
		return;
	}
	if (len > TX_OWN) {
		sendto(w->udp_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)s->addr,
		       sa_len(s->addr));
		return;
	}
	{
		struct txslot *slot = txq_slot(w, &w->to_client, w->udp_fd, s->addr);

		memcpy(slot->own, buf, len);
		slot->iov[0].iov_base = slot->own;
		slot->iov[0].iov_len = len;
		txq_commit(&w->to_client, 1);
	}
}

/* ---- nonces: stateless, "<expiry hex><MAC hex>" bound to the client's IP ---- */

static void nonce_mac(const struct relay_turn *t, uint32_t expiry, const struct sockaddr_storage *ip,
		      char out[17])
{
	uint8_t msg[4 + 16], mac[CN_SHA256_LEN];
	size_t n = 4;

	msg[0] = (uint8_t)(expiry >> 24);
	msg[1] = (uint8_t)(expiry >> 16);
	msg[2] = (uint8_t)(expiry >> 8);
	msg[3] = (uint8_t)expiry;
	if (ip->ss_family == AF_INET) {
		memcpy(msg + 4, &((const struct sockaddr_in *)ip)->sin_addr, 4);
		n += 4;
	} else {
		memcpy(msg + 4, &((const struct sockaddr_in6 *)ip)->sin6_addr, 16);
		n += 16;
	}
	memset(mac, 0, sizeof(mac));
	cn_hmac_sha256(t->nonce_key, sizeof(t->nonce_key), msg, n, mac);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
}

static void nonce_make(const struct worker *w, const struct sockaddr_storage *ip, char out[NONCE_LEN + 1])
{
	uint32_t expiry = (uint32_t)(w->now_wall + w->t->nonce_lifetime_s);

	snprintf(out, 9, "%08x", expiry);
	nonce_mac(w->t, expiry, ip, out + 8);
}

static bool nonce_valid(const struct worker *w, const struct sockaddr_storage *ip,
			const uint8_t *v, size_t len)
{
	char hex[9], mac[17];
	unsigned long expiry;
	char *end;

	if (len != NONCE_LEN)
		return false;
	memcpy(hex, v, 8);
	hex[8] = '\0';
	expiry = strtoul(hex, &end, 16);
	if (*end != '\0')
		return false;
	nonce_mac(w->t, (uint32_t)expiry, ip, mac);
	if (!cn_ct_equal(mac, v + 8, 16))
		return false;
	return (int64_t)expiry > w->now_wall;
}

/* ---- responses ---- */

struct req {
	const struct src *src;
	const struct cn_stun_msg *m;
	const uint8_t *key; /* set once authenticated: responses carry MESSAGE-INTEGRITY */
};

static void finish_and_send(struct worker *w, const struct req *r, struct cn_stun_writer *wr)
{
	int n;

	if (r->key)
		cn_stun_add_integrity(wr, r->key, CN_STUN_KEY_LEN);
	if (r->m->fingerprint >= 0)
		cn_stun_add_fingerprint(wr);
	n = cn_stun_end(wr);
	if (n < 0) {
		cn_log_warn(LOG, "response not written: %s", cn_strerror(n));
		return;
	}
	reply(w, r->src, wr->buf, (size_t)n);
}

static void send_error(struct worker *w, const struct req *r, int code, const char *reason)
{
	uint8_t buf[TX_OWN];
	struct cn_stun_writer wr;

	cn_stun_begin(&wr, buf, sizeof(buf), r->m->method, CN_STUN_ERROR, r->m->tid);
	cn_stun_add_error(&wr, code, reason);
	finish_and_send(w, r, &wr);
}

/* 401 or 438: the realm and a fresh nonce, no integrity (we may not know the key). */
static void send_challenge(struct worker *w, const struct req *r, int code)
{
	uint8_t buf[TX_OWN];
	char nonce[NONCE_LEN + 1];
	struct cn_stun_writer wr;
	struct req plain = *r;

	plain.key = NULL;
	nonce_make(w, r->src->addr, nonce);
	cn_stun_begin(&wr, buf, sizeof(buf), r->m->method, CN_STUN_ERROR, r->m->tid);
	cn_stun_add_error(&wr, code, NULL);
	cn_stun_add(&wr, CN_STUN_A_REALM, w->t->realm, strlen(w->t->realm));
	cn_stun_add(&wr, CN_STUN_A_NONCE, nonce, NONCE_LEN);
	finish_and_send(w, &plain, &wr);
}

/* ---- authentication (long-term, REST-style credentials) ---- */

struct auth {
	char user[MAX_USERNAME + 1];
	const char *subject;
	uint8_t key[CN_STUN_KEY_LEN];
};

/* 0 with a->key set, else the error was sent and counted. When the 5-tuple already has an
 * allocation with the same username its key is reused. */
static int authenticate(struct worker *w, const struct req *r, struct alloc *existing, struct auth *a)
{
	struct relay_turn *t = w->t;
	const uint8_t *user, *nonce;
	size_t ulen, nlen;
	char *colon, *end;
	long long expiry;

	user = cn_stun_find(r->m, CN_STUN_A_USERNAME, &ulen);
	nonce = cn_stun_find(r->m, CN_STUN_A_NONCE, &nlen);
	if (r->m->integrity < 0 || user == NULL || nonce == NULL ||
	    cn_stun_find(r->m, CN_STUN_A_REALM, NULL) == NULL) {
		add(&t->challenges, 1);
		send_challenge(w, r, 401);
		return -EACCES;
	}
	if (!nonce_valid(w, r->src->addr, nonce, nlen)) {
		add(&t->auth_fail[AF_STALE_NONCE], 1);
		send_challenge(w, r, 438);
		return -EACCES;
	}
	if (ulen == 0 || ulen > MAX_USERNAME || memchr(user, '\0', ulen)) {
		add(&t->auth_fail[AF_BAD_USERNAME], 1);
		send_challenge(w, r, 401);
		return -EACCES;
	}
	memcpy(a->user, user, ulen);
	a->user[ulen] = '\0';
	colon = strchr(a->user, ':');
	/* digits only: strtoll alone would take blanks and a sign */
	expiry = colon && a->user[0] >= '0' && a->user[0] <= '9' ? strtoll(a->user, &end, 10) : -1;
	if (colon == NULL || expiry < 0 || end != colon || colon[1] == '\0') {
		add(&t->auth_fail[AF_BAD_USERNAME], 1);
		send_challenge(w, r, 401);
		return -EACCES;
	}
	a->subject = colon + 1;
	if (expiry < w->now_wall) {
		add(&t->auth_fail[AF_EXPIRED], 1);
		cn_log_debug(LOG, "expired credentials for %s", a->subject);
		send_challenge(w, r, 401);
		return -EACCES;
	}
	if (existing && strcmp(existing->user, a->user) == 0) {
		memcpy(a->key, existing->key, sizeof(a->key));
	} else {
		char secret[sizeof(t->secret)], pass[64];
		uint8_t mac[CN_SHA1_LEN];
		size_t plen;

		pthread_mutex_lock(&t->lock);
		memcpy(secret, t->secret, sizeof(secret));
		pthread_mutex_unlock(&t->lock);
		if (secret[0] == '\0') {
			add(&t->auth_fail[AF_NO_SECRET], 1);
			send_challenge(w, r, 401);
			return -EACCES;
		}
		cn_hmac_sha1(secret, strlen(secret), a->user, ulen, mac);
		cn_base64_encode(CN_B64_STD, mac, sizeof(mac), pass, sizeof(pass), &plen);
		cn_stun_long_term_key(a->user, t->realm, pass, a->key);
		explicit_bzero(secret, sizeof(secret));
	}
	if (cn_stun_check_integrity(r->m, a->key, sizeof(a->key)) != 0) {
		add(&t->auth_fail[AF_BAD_INTEGRITY], 1);
		send_challenge(w, r, 401);
		return -EACCES;
	}
	return 0;
}

/* ---- allocations ---- */

static struct alloc *alloc_find(struct worker *w, const struct src *s)
{
	if (s->conn)
		return s->conn->alloc;
	for (struct alloc *a = w->buckets[hash_addr(s->addr)]; a; a = a->hnext)
		if (same_addr(&a->client, s->addr))
			return a;
	return NULL;
}

static void alloc_flush_counts(struct alloc *a)
{
	for (int d = 0; d < 2; d++) {
		if (a->bytes[d]) {
			add(&a->tenant->bytes[d], (long long)a->bytes[d]);
			add(&a->tenant->pkts[d], (long long)a->pkts[d]);
			a->bytes[d] = a->pkts[d] = 0;
		}
	}
}

static void alloc_free(struct worker *w, struct alloc *a)
{
	struct relay_turn *t = w->t;

	/* queued datagrams may name this socket: out they go before its number is reused */
	flush_all(w);
	alloc_flush_counts(a);
	if (a->conn) {
		a->conn->alloc = NULL;
	} else {
		struct alloc **pp = &w->buckets[hash_addr(&a->client)];

		while (*pp && *pp != a)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = a->hnext;
	}
	if (a->prev)
		a->prev->next = a->next;
	else
		w->allocs = a->next;
	if (a->next)
		a->next->prev = a->prev;
	close(a->fd);
	add(&a->tenant->allocs, -1);
	add(&t->live, -1);
	user_release(t, a->subject);
	cn_log_debug(LOG, "allocation of %s ended", a->subject);
	a->tag.kind = TAG_DEAD;
	a->hnext = w->dead_allocs;
	w->dead_allocs = a;
}

/* A UDP socket on the relay address: an even port when asked, and the next port reserved
 * under a token when asked (EVEN-PORT with R, RFC 8656 section 14.6). */
static int relay_socket(struct worker *w, bool even, bool reserve, int *res_fd)
{
	struct sockaddr_storage a = w->t->relay_ip;
	socklen_t alen;

	*res_fd = -1;
	for (int tries = 0; tries < (even ? 64 : 1); tries++) {
		int fd = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -errno;
		if (a.ss_family == AF_INET)
			((struct sockaddr_in *)&a)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&a)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&a, sa_len(&a)) < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
		alen = sizeof(a);
		getsockname(fd, (struct sockaddr *)&a, &alen);
		if (!even)
			return fd;
		if (ntohs(port_of(&a)) % 2 == 0) {
			if (!reserve)
				return fd;
			{
				struct sockaddr_storage b = a;
				int fd2 = socket(a.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

				if (b.ss_family == AF_INET)
					((struct sockaddr_in *)&b)->sin_port = htons(ntohs(port_of(&a)) + 1);
				else
					((struct sockaddr_in6 *)&b)->sin6_port = htons(ntohs(port_of(&a)) + 1);
				if (fd2 >= 0 && bind(fd2, (struct sockaddr *)&b, sa_len(&b)) == 0) {
					*res_fd = fd2;
					return fd;
				}
				if (fd2 >= 0)
					close(fd2);
			}
		}
		close(fd);
	}
	return -EADDRINUSE;
}

static void send_alloc_success(struct worker *w, const struct req *r, const struct alloc *a,
			       const uint8_t *token)
{
	uint8_t buf[TX_OWN];
	struct cn_stun_writer wr;

	cn_stun_begin(&wr, buf, sizeof(buf), CN_TURN_ALLOCATE, CN_STUN_SUCCESS, r->m->tid);
	cn_stun_add_xaddr(&wr, CN_TURN_A_XOR_RELAYED_ADDRESS, (const struct sockaddr *)&a->relay);
	cn_stun_add_u32(&wr, CN_TURN_A_LIFETIME, a->lifetime_s);
	if (token)
		cn_stun_add(&wr, CN_TURN_A_RESERVATION_TOKEN, token, 8);
	cn_stun_add_xaddr(&wr, CN_STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)r->src->addr);
	finish_and_send(w, r, &wr);
}

static uint32_t pick_lifetime(const struct worker *w, const struct cn_stun_msg *m)
{
	size_t len;
	const uint8_t *v = cn_stun_find(m, CN_TURN_A_LIFETIME, &len);
	uint32_t want = DEFAULT_LIFETIME_S;

	if (v && len == 4)
		want = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
	if (want == 0)
		return 0;
	if (want < DEFAULT_LIFETIME_S)
		want = DEFAULT_LIFETIME_S;
	if (want > w->t->max_lifetime_s)
		want = (uint32_t)w->t->max_lifetime_s;
	return want;
}

static void on_allocate(struct worker *w, struct req *r)
{
	struct relay_turn *t = w->t;
	const struct cn_stun_msg *m = r->m;
	struct alloc *a = alloc_find(w, r->src);
	struct epoll_event ev;
	struct auth au;
	const uint8_t *v, *token;
	const char *slash;
	size_t len, tlen;
	bool even = false, reserve = false;
	int fd = -1, res_fd = -1;
	uint8_t new_token[8];
	struct sockaddr_storage rel;
	socklen_t rlen = sizeof(rel);

	if (authenticate(w, r, a, &au) < 0)
		return;
	r->key = au.key;
	if (a) {
		if (memcmp(a->alloc_tid, m->tid, 12) == 0)
			send_alloc_success(w, r, a, NULL); /* a retransmission */
		else
			send_error(w, r, 437, NULL);
		return;
	}
	v = cn_stun_find(m, CN_TURN_A_REQUESTED_TRANSPORT, &len);
	if (v == NULL || len != 4) {
		send_error(w, r, 400, "REQUESTED-TRANSPORT missing");
		return;
	}
	if (v[0] != IPPROTO_UDP) {
		send_error(w, r, 442, NULL);
		return;
	}
	token = cn_stun_find(m, CN_TURN_A_RESERVATION_TOKEN, &tlen);
	/* without REQUESTED-ADDRESS-FAMILY the client wants IPv4 (RFC 8656 section 7.2),
	 * unless it names a reservation, whose socket has its family already */
	v = cn_stun_find(m, CN_TURN_A_REQUESTED_ADDRESS_FAMILY, &len);
	if (v && token) {
		send_error(w, r, 400, "RESERVATION-TOKEN with REQUESTED-ADDRESS-FAMILY");
		return;
	}
	if (!token && (v ? (len != 4 ? -1 : v[0] == 0x01 ? AF_INET : v[0] == 0x02 ? AF_INET6 : -1)
			 : AF_INET) != t->relay_ip.ss_family) {
		send_error(w, r, 440, NULL);
		return;
	}
	v = cn_stun_find(m, CN_TURN_A_EVEN_PORT, &len);
	if (v && len >= 1) {
		even = true;
		reserve = v[0] & 0x80;
	}
	if (token && (v || tlen != 8)) {
		send_error(w, r, 400, "RESERVATION-TOKEN with EVEN-PORT");
		return;
	}
	if (get(&t->live) >= t->max_allocs) {
		add(&t->capacity_refusals, 1);
		send_error(w, r, 508, NULL);
		return;
	}
	if (token) {
		pthread_mutex_lock(&t->lock);
		for (int i = 0; i < t->nres; i++) {
			if (memcmp(t->res[i].token, token, 8) == 0) {
				fd = t->res[i].fd;
				t->res[i] = t->res[--t->nres];
				break;
			}
		}
		pthread_mutex_unlock(&t->lock);
		if (fd < 0) {
			send_error(w, r, 508, "no such reservation");
			return;
		}
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		if (fd >= 0)
			close(fd);
		send_error(w, r, 508, NULL);
		return;
	}
	memcpy(a->user, au.user, sizeof(a->user));
	a->subject = a->user + (au.subject - au.user);
	slash = strchr(a->subject, '/');
	a->tenant = slash && slash != a->subject
			    ? tenant_get(t, a->subject, (size_t)(slash - a->subject))
			    : tenant_get(t, "default", 7);
	if (get(&a->tenant->allocs) >= t->tenant_quota || !user_take(t, a->subject)) {
		add(&t->quota_refusals, 1);
		cn_log_info(LOG, "allocation quota reached for %s", a->subject);
		free(a);
		if (fd >= 0)
			close(fd);
		send_error(w, r, 486, NULL);
		return;
	}
	if (fd < 0) {
		fd = relay_socket(w, even, reserve, &res_fd);
		if (fd < 0) {
			cn_log_warn(LOG, "no relayed socket: %s", cn_strerror(fd));
			user_release(t, a->subject);
			free(a);
			send_error(w, r, 508, NULL);
			return;
		}
	}
	getsockname(fd, (struct sockaddr *)&rel, &rlen);
	a->relay = rel;
	a->fd = fd;
	a->tag.kind = TAG_RELAY;
	memcpy(a->key, au.key, sizeof(a->key));
	memcpy(a->alloc_tid, m->tid, 12);
	a->lifetime_s = pick_lifetime(w, m);
	if (a->lifetime_s == 0)
		a->lifetime_s = DEFAULT_LIFETIME_S;
	a->expires = w->now + (int64_t)a->lifetime_s * 1000;
	memcpy(&a->client, r->src->addr, sa_len(r->src->addr));
	a->clen = sa_len(r->src->addr);
	ev.events = EPOLLIN;
	ev.data.ptr = &a->tag;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		if (res_fd >= 0)
			close(res_fd);
		user_release(t, a->subject);
		free(a);
		send_error(w, r, 508, NULL);
		return;
	}
	if (r->src->conn) {
		a->conn = r->src->conn;
		a->conn->alloc = a;
	} else {
		unsigned h = hash_addr(&a->client);

		a->hnext = w->buckets[h];
		w->buckets[h] = a;
	}
	a->next = w->allocs;
	if (w->allocs)
		w->allocs->prev = a;
	w->allocs = a;
	add(&a->tenant->allocs, 1);
	add(&a->tenant->allocs_total, 1);
	add(&t->live, 1);
	if (res_fd >= 0) {
		cn_random_bytes(new_token, sizeof(new_token));
		pthread_mutex_lock(&t->lock);
		if (t->nres == MAX_RESERVATIONS) {
			close(t->res[0].fd); /* the oldest gives way */
			t->res[0] = t->res[--t->nres];
		}
		memcpy(t->res[t->nres].token, new_token, 8);
		t->res[t->nres].fd = res_fd;
		t->res[t->nres].expires = w->now + RESERVATION_MS;
		t->nres++;
		pthread_mutex_unlock(&t->lock);
	}
	if (cn_log_debug_enabled(LOG)) {
		char c[64], rl[64];

		addr_text(&a->client, c, sizeof(c));
		addr_text(&a->relay, rl, sizeof(rl));
		cn_log_debug(LOG, "allocation %s for %s (%s) tenant %s, %u s", rl, c,
			     r->src->conn ? "tcp" : "udp", a->tenant->name, a->lifetime_s);
	}
	send_alloc_success(w, r, a, res_fd >= 0 ? new_token : NULL);
}

static void on_refresh(struct worker *w, struct req *r)
{
	struct alloc *a = alloc_find(w, r->src);
	uint8_t buf[TX_OWN];
	struct cn_stun_writer wr;
	struct auth au;
	const uint8_t *v;
	size_t len;
	uint32_t life;

	if (authenticate(w, r, a, &au) < 0)
		return;
	r->key = au.key;
	if (a == NULL) {
		send_error(w, r, 437, NULL);
		return;
	}
	v = cn_stun_find(r->m, CN_TURN_A_REQUESTED_ADDRESS_FAMILY, &len);
	if (v && (len != 4 || (v[0] == 0x02 ? AF_INET6 : AF_INET) != a->relay.ss_family)) {
		send_error(w, r, 443, NULL);
		return;
	}
	life = pick_lifetime(w, r->m);
	cn_stun_begin(&wr, buf, sizeof(buf), CN_TURN_REFRESH, CN_STUN_SUCCESS, r->m->tid);
	cn_stun_add_u32(&wr, CN_TURN_A_LIFETIME, life);
	finish_and_send(w, r, &wr);
	if (life == 0)
		alloc_free(w, a);
	else
		a->expires = w->now + (int64_t)life * 1000;
}

/* The peer of an XOR-PEER-ADDRESS attribute, normalised and checked against the policy;
 * 0, or the error code to answer. */
static int peer_checked(struct worker *w, const struct req *r, const struct alloc *a,
			const uint8_t *v, size_t len, struct sockaddr_storage *peer)
{
	struct sockaddr_storage raw;
	const char *why;

	if (cn_stun_xaddr_decode(v, len, r->m->tid, &raw) < 0)
		return 400;
	if (cn_addrpolicy_check(&w->t->policy, (struct sockaddr *)&raw, peer, &why) < 0) {
		char txt[64];

		add(&w->t->policy_refusals, 1);
		addr_text(peer, txt, sizeof(txt));
		cn_log_info(LOG, "peer %s refused for %s: %s", txt, a->subject, why);
		return 403;
	}
	if (peer->ss_family != a->relay.ss_family)
		return 443;
	return 0;
}

static const uint8_t *ip_bytes(const struct sockaddr_storage *s)
{
	return s->ss_family == AF_INET ? (const uint8_t *)&((const struct sockaddr_in *)s)->sin_addr
				       : ((const struct sockaddr_in6 *)s)->sin6_addr.s6_addr;
}

static bool perm_match(const struct perm *p, const struct sockaddr_storage *peer)
{
	return p->family == peer->ss_family &&
	       memcmp(p->ip, ip_bytes(peer), peer->ss_family == AF_INET ? 4 : 16) == 0;
}

static void perm_install(struct worker *w, struct alloc *a, const struct sockaddr_storage *peer)
{
	struct perm *p;

	for (int i = 0; i < a->nperms; i++) {
		if (perm_match(&a->perms[i], peer)) {
			a->perms[i].expires = w->now + PERM_MS;
			return;
		}
	}
	if (a->nperms < MAX_PERMS) {
		p = &a->perms[a->nperms++];
		memset(p, 0, sizeof(*p));
		p->family = peer->ss_family;
		memcpy(p->ip, ip_bytes(peer), peer->ss_family == AF_INET ? 4 : 16);
		p->expires = w->now + PERM_MS;
	}
}

static bool perm_ok(const struct worker *w, const struct alloc *a, const struct sockaddr_storage *peer)
{
	for (int i = 0; i < a->nperms; i++)
		if (perm_match(&a->perms[i], peer))
			return a->perms[i].expires > w->now;
	return false;
}

static void on_create_permission(struct worker *w, struct req *r)
{
	struct alloc *a = alloc_find(w, r->src);
	struct sockaddr_storage peers[MAX_PERMS];
	uint8_t buf[TX_OWN];
	struct cn_stun_writer wr;
	struct auth au;
	int np = 0, code;

	if (authenticate(w, r, a, &au) < 0)
		return;
	r->key = au.key;
	if (a == NULL) {
		send_error(w, r, 437, NULL);
		return;
	}
	for (int i = 0; i < r->m->nattrs; i++) {
		const struct cn_stun_attr *at = &r->m->attrs[i];

		if (at->type != CN_TURN_A_XOR_PEER_ADDRESS)
			continue;
		if (np == MAX_PERMS) {
			send_error(w, r, 508, "too many peers");
			return;
		}
		code = peer_checked(w, r, a, r->m->buf + at->off, at->len, &peers[np]);
		if (code) {
			send_error(w, r, code, NULL);
			return;
		}
		np++;
	}
	if (np == 0) {
		send_error(w, r, 400, "XOR-PEER-ADDRESS missing");
		return;
	}
	if (a->nperms + np > MAX_PERMS) {
		/* room is made by expired ones only; the sweep removes them */
		int fresh = 0;

		for (int i = 0; i < np; i++)
			fresh += !perm_ok(w, a, &peers[i]);
		if (a->nperms + fresh > MAX_PERMS) {
			send_error(w, r, 508, "too many permissions");
			return;
		}
	}
	for (int i = 0; i < np; i++)
		perm_install(w, a, &peers[i]);
	cn_stun_begin(&wr, buf, sizeof(buf), CN_TURN_CREATE_PERMISSION, CN_STUN_SUCCESS, r->m->tid);
	finish_and_send(w, r, &wr);
}

static void on_channel_bind(struct worker *w, struct req *r)
{
	struct alloc *a = alloc_find(w, r->src);
	struct sockaddr_storage peer;
	uint8_t buf[TX_OWN];
	struct cn_stun_writer wr;
	struct auth au;
	const uint8_t *v, *pv;
	size_t len, plen;
	uint16_t num;
	int code, slot = -1;

	if (authenticate(w, r, a, &au) < 0)
		return;
	r->key = au.key;
	if (a == NULL) {
		send_error(w, r, 437, NULL);
		return;
	}
	v = cn_stun_find(r->m, CN_TURN_A_CHANNEL_NUMBER, &len);
	pv = cn_stun_find(r->m, CN_TURN_A_XOR_PEER_ADDRESS, &plen);
	if (v == NULL || len != 4 || pv == NULL) {
		send_error(w, r, 400, "CHANNEL-NUMBER or XOR-PEER-ADDRESS missing");
		return;
	}
	num = (uint16_t)(v[0] << 8 | v[1]);
	if (num < CN_TURN_CHANNEL_MIN || num > CN_TURN_CHANNEL_MAX) {
		send_error(w, r, 400, "channel number out of range");
		return;
	}
	code = peer_checked(w, r, a, pv, plen, &peer);
	if (code) {
		send_error(w, r, code, NULL);
		return;
	}
	for (int i = 0; i < a->nchans; i++) {
		bool same_num = a->chans[i].num == num;
		bool same_peer = same_addr(&a->chans[i].peer, &peer);

		if (same_num != same_peer) {
			send_error(w, r, 400, "channel or peer bound otherwise");
			return;
		}
		if (same_num)
			slot = i;
	}
	if (slot < 0) {
		if (a->nchans == MAX_CHANS ||
		    (a->nperms == MAX_PERMS && !perm_ok(w, a, &peer))) {
			send_error(w, r, 508, "too many channels");
			return;
		}
		slot = a->nchans++;
		a->chans[slot].num = num;
		a->chans[slot].peer = peer;
	}
	a->chans[slot].expires = w->now + CHAN_MS;
	perm_install(w, a, &peer);
	cn_stun_begin(&wr, buf, sizeof(buf), CN_TURN_CHANNEL_BIND, CN_STUN_SUCCESS, r->m->tid);
	finish_and_send(w, r, &wr);
}

static void on_binding(struct worker *w, struct req *r)
{
	uint8_t buf[TX_OWN];
	struct cn_stun_writer wr;

	cn_stun_begin(&wr, buf, sizeof(buf), CN_STUN_BINDING, CN_STUN_SUCCESS, r->m->tid);
	cn_stun_add_xaddr(&wr, CN_STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)r->src->addr);
	finish_and_send(w, r, &wr);
}

/* ---- the data path ---- */

static void to_peer(struct worker *w, struct alloc *a, const struct sockaddr_storage *peer,
		    const uint8_t *data, size_t len)
{
	struct txslot *s = txq_slot(w, &w->to_peer, a->fd, peer);

	s->iov[0].iov_base = (void *)data;
	s->iov[0].iov_len = len;
	txq_commit(&w->to_peer, 1);
	a->bytes[0] += len;
	a->pkts[0]++;
}

static void on_send_indication(struct worker *w, const struct src *s, const struct cn_stun_msg *m)
{
	struct alloc *a = alloc_find(w, s);
	struct sockaddr_storage raw, peer;
	const uint8_t *pv, *data;
	size_t plen, dlen;

	if (a == NULL) {
		add(&w->t->dropped, 1);
		return;
	}
	pv = cn_stun_find(m, CN_TURN_A_XOR_PEER_ADDRESS, &plen);
	data = cn_stun_find(m, CN_TURN_A_DATA, &dlen);
	if (pv == NULL || data == NULL || cn_stun_xaddr_decode(pv, plen, m->tid, &raw) < 0) {
		add(&w->t->malformed, 1);
		return;
	}
	cn_addr_normalise((struct sockaddr *)&raw, &peer);
	/* A permission exists only for peers the policy allowed. */
	if (!perm_ok(w, a, &peer)) {
		add(&w->t->dropped, 1);
		return;
	}
	to_peer(w, a, &peer, data, dlen);
}

static void on_channel_data(struct worker *w, const struct src *s, const uint8_t *p, size_t n)
{
	struct alloc *a = alloc_find(w, s);
	const uint8_t *data;
	uint16_t ch;
	size_t dlen;

	if (cn_turn_channel_parse(p, n, &ch, &data, &dlen) < 0) {
		add(&w->t->malformed, 1);
		return;
	}
	if (a == NULL) {
		add(&w->t->dropped, 1);
		return;
	}
	for (int i = 0; i < a->nchans; i++) {
		if (a->chans[i].num == ch) {
			if (a->chans[i].expires <= w->now || !perm_ok(w, a, &a->chans[i].peer))
				break;
			to_peer(w, a, &a->chans[i].peer, data, dlen);
			return;
		}
	}
	add(&w->t->dropped, 1);
}

/* A datagram from a peer on a relayed socket, to the client as ChannelData (when bound)
 * or a Data indication. */
static void from_peer(struct worker *w, struct alloc *a, const struct sockaddr_storage *raw,
		      uint8_t *data, size_t len)
{
	static const uint8_t zeros[4];
	struct sockaddr_storage peer;
	struct cn_stun_writer wr;
	struct txslot *s, tmp;
	uint8_t tid[12];
	int ch = -1, niov = 2;
	size_t hl;

	cn_addr_normalise((const struct sockaddr *)raw, &peer);
	if (!perm_ok(w, a, &peer)) {
		add(&w->t->dropped, 1);
		return;
	}
	for (int i = 0; i < a->nchans; i++) {
		if (a->chans[i].expires > w->now && same_addr(&a->chans[i].peer, &peer)) {
			ch = a->chans[i].num;
			break;
		}
	}
	s = a->conn ? &tmp : txq_slot(w, &w->to_client, w->udp_fd, &a->client);
	if (ch >= 0) {
		cn_turn_channel_header(s->own, (uint16_t)ch, len);
		hl = 4;
		/* over TCP ChannelData is padded to 4 (RFC 8656 section 12.5) */
		if (a->conn && (len & 3)) {
			s->iov[2].iov_base = (void *)zeros;
			s->iov[2].iov_len = 4 - (len & 3);
			niov = 3;
		}
	} else {
		uint64_t r1 = rng_next(w), r2 = rng_next(w);
		size_t padded = (len + 3) & ~(size_t)3;

		memcpy(tid, &r1, 8);
		memcpy(tid + 8, &r2, 4);
		cn_stun_begin(&wr, s->own, TX_OWN, CN_TURN_DATA, CN_STUN_INDICATION, tid);
		cn_stun_add_xaddr(&wr, CN_TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peer);
		if (wr.err || len > 0xFFFF - 64) {
			add(&w->t->dropped, 1);
			return;
		}
		/* the DATA attribute's header here, its value straight from the receive buffer */
		hl = wr.len + 4;
		s->own[wr.len] = (uint8_t)(CN_TURN_A_DATA >> 8);
		s->own[wr.len + 1] = (uint8_t)CN_TURN_A_DATA;
		s->own[wr.len + 2] = (uint8_t)(len >> 8);
		s->own[wr.len + 3] = (uint8_t)len;
		s->own[2] = (uint8_t)((hl + padded - CN_STUN_HDR) >> 8);
		s->own[3] = (uint8_t)(hl + padded - CN_STUN_HDR);
		if (padded != len) {
			s->iov[2].iov_base = (void *)zeros;
			s->iov[2].iov_len = padded - len;
			niov = 3;
		}
	}
	s->iov[0].iov_base = s->own;
	s->iov[0].iov_len = hl;
	s->iov[1].iov_base = data;
	s->iov[1].iov_len = len;
	a->bytes[1] += len;
	a->pkts[1]++;
	if (a->conn)
		conn_send(w, a->conn, s->iov, niov, true);
	else
		txq_commit(&w->to_client, niov);
}

/* ---- dispatch of client messages ---- */

static const uint16_t known_attrs[] = {
	CN_STUN_A_USERNAME, CN_STUN_A_MESSAGE_INTEGRITY, CN_STUN_A_REALM, CN_STUN_A_NONCE,
	CN_TURN_A_CHANNEL_NUMBER, CN_TURN_A_LIFETIME, CN_TURN_A_XOR_PEER_ADDRESS, CN_TURN_A_DATA,
	CN_TURN_A_REQUESTED_ADDRESS_FAMILY, CN_TURN_A_EVEN_PORT, CN_TURN_A_REQUESTED_TRANSPORT,
	CN_TURN_A_DONT_FRAGMENT, CN_TURN_A_RESERVATION_TOKEN, CN_STUN_A_PRIORITY,
	CN_STUN_A_USE_CANDIDATE, CN_STUN_A_MESSAGE_INTEGRITY_SHA256, CN_STUN_A_USERHASH,
	CN_STUN_A_XOR_MAPPED_ADDRESS, CN_STUN_A_ERROR_CODE,
};

static void on_client_message(struct worker *w, const struct src *s, const uint8_t *p, size_t n)
{
	struct cn_stun_msg m;
	struct req r = { .src = s, .m = &m };
	char err[96];
	uint16_t unknown[8];
	int nu;

	if (n >= 4 && (p[0] & 0xC0) == 0x40) {
		on_channel_data(w, s, p, n);
		return;
	}
	if (!cn_stun_is_stun(p, n)) {
		uint8_t out[48];
		int k = cn_stun_classic_binding(p, n, (const struct sockaddr *)s->addr, out, sizeof(out));

		if (k > 0) {
			add(&w->t->classic_bindings, 1);
			reply(w, s, out, (size_t)k);
			return;
		}
	}
	if (cn_stun_parse(p, n, &m, err, sizeof(err)) < 0) {
		add(&w->t->malformed, 1);
		cn_log_debug(LOG, "malformed message: %s", err);
		return;
	}
	if (m.cls == CN_STUN_INDICATION) {
		if (m.method == CN_TURN_SEND)
			on_send_indication(w, s, &m);
		return;
	}
	if (m.cls != CN_STUN_REQUEST)
		return;
	nu = cn_stun_unknown_required(&m, known_attrs, (int)(sizeof(known_attrs) / sizeof(known_attrs[0])),
				      unknown, 8);
	if (nu > 0) {
		uint8_t buf[TX_OWN], ua[16];
		struct cn_stun_writer wr;

		for (int i = 0; i < nu; i++) {
			ua[2 * i] = (uint8_t)(unknown[i] >> 8);
			ua[2 * i + 1] = (uint8_t)unknown[i];
		}
		cn_stun_begin(&wr, buf, sizeof(buf), m.method, CN_STUN_ERROR, m.tid);
		cn_stun_add_error(&wr, 420, NULL);
		cn_stun_add(&wr, CN_STUN_A_UNKNOWN_ATTRIBUTES, ua, 2 * (size_t)nu);
		finish_and_send(w, &r, &wr);
		return;
	}
	switch (m.method) {
	case CN_STUN_BINDING: on_binding(w, &r); break;
	case CN_TURN_ALLOCATE: on_allocate(w, &r); break;
	case CN_TURN_REFRESH: on_refresh(w, &r); break;
	case CN_TURN_CREATE_PERMISSION: on_create_permission(w, &r); break;
	case CN_TURN_CHANNEL_BIND: on_channel_bind(w, &r); break;
	default: send_error(w, &r, 400, "unknown method"); break;
	}
}

/* ---- sockets ---- */

/* Points the next recvmmsg at unused pool buffers and returns the first one's index.
 * Sends queued from earlier reads keep pointing into the pool, so that datagrams from many
 * sockets leave in one sendmmsg at the end of the loop turn; the pool is reused only once
 * everything queued has gone out. */
static int rx_prepare(struct worker *w)
{
	int base;

	if (RXPOOL - w->rx_used < BATCH) {
		flush_all(w);
		w->rx_used = 0;
	}
	base = w->rx_used;
	for (int i = 0; i < BATCH; i++) {
		w->riov[i].iov_base = w->rbuf[base + i];
		w->riov[i].iov_len = RXBUF;
		memset(&w->rmm[i].msg_hdr, 0, sizeof(w->rmm[i].msg_hdr));
		w->rmm[i].msg_hdr.msg_name = &w->rfrom[i];
		w->rmm[i].msg_hdr.msg_namelen = sizeof(w->rfrom[i]);
		w->rmm[i].msg_hdr.msg_iov = &w->riov[i];
		w->rmm[i].msg_hdr.msg_iovlen = 1;
	}
	return base;
}

static void flush_all(struct worker *w)
{
	if (w->to_peer.n)
		txq_flush(&w->to_peer, &w->t->send_failures);
	if (w->to_client.n)
		txq_flush(&w->to_client, &w->t->send_failures);
}

/* Drains up to a few batches, so one busy socket cannot starve the others. */
static void on_udp_readable(struct worker *w)
{
	for (int round = 0; round < 8; round++) {
		int base = rx_prepare(w), n;

		n = recvmmsg(w->udp_fd, w->rmm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		w->rx_used = base + n;
		for (int i = 0; i < n; i++) {
			struct src s = { .conn = NULL, .addr = &w->rfrom[i] };

			if (w->rmm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				add(&w->t->oversize, 1);
				continue;
			}
			on_client_message(w, &s, w->rbuf[base + i], w->rmm[i].msg_len);
		}
		if (n < BATCH)
			return;
	}
}

static void on_relay_readable(struct worker *w, struct alloc *a)
{
	for (int round = 0; round < 8; round++) {
		int base = rx_prepare(w), n;

		n = recvmmsg(a->fd, w->rmm, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return; /* EAGAIN, or an ICMP error reported on the socket: nothing to do */
		w->rx_used = base + n;
		for (int i = 0; i < n; i++) {
			if (w->rmm[i].msg_hdr.msg_flags & MSG_TRUNC) {
				add(&w->t->oversize, 1);
				continue;
			}
			from_peer(w, a, &w->rfrom[i], w->rbuf[base + i], w->rmm[i].msg_len);
			if (a->tag.kind == TAG_DEAD)
				return;
		}
		if (n < BATCH)
			return;
	}
}

static void conn_close(struct worker *w, struct tconn *c)
{
	if (c->alloc)
		alloc_free(w, c->alloc);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	free(c->out);
	c->out = NULL;
	c->tag.kind = TAG_DEAD;
	c->next = w->dead_conns;
	w->dead_conns = c;
	w->nconns--;
}

static void on_accept(struct worker *w)
{
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		struct epoll_event ev;
		struct tconn *c;
		int one = 1;
		int fd = accept4(w->tcp_fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (w->nconns >= w->t->max_allocs) {
			add(&w->t->capacity_refusals, 1);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->tag.kind = TAG_CONN;
		c->fd = fd;
		c->peer = peer;
		c->plen = plen;
		c->last_active = w->now;
		ev.events = EPOLLIN;
		ev.data.ptr = &c->tag;
		if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = w->conns;
		if (w->conns)
			w->conns->prev = c;
		w->conns = c;
		w->nconns++;
	}
}

static void on_conn_readable(struct worker *w, struct tconn *c)
{
	struct src s = { .conn = c, .addr = &c->peer };
	size_t pos = 0;
	ssize_t r;

	r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
	if (r <= 0) {
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		conn_close(w, c);
		return;
	}
	c->inlen += (size_t)r;
	c->last_active = w->now;
	for (;;) {
		int fl = cn_turn_frame_len(c->in + pos, c->inlen - pos);

		if (fl < 0 || (size_t)fl > sizeof(c->in)) {
			add(&w->t->malformed, 1);
			flush_all(w);
			conn_close(w, c);
			return;
		}
		if (fl == 0 || (size_t)fl > c->inlen - pos)
			break;
		on_client_message(w, &s, c->in + pos, (size_t)fl);
		pos += (size_t)fl;
	}
	/* to_peer holds pointers into c->in: send before moving the rest down */
	flush_all(w);
	if (pos > 0) {
		memmove(c->in, c->in + pos, c->inlen - pos);
		c->inlen -= pos;
	}
}

/* ---- timers ---- */

static void sweep(struct worker *w)
{
	struct alloc *a, *an;
	struct tconn *c, *cn;

	for (a = w->allocs; a; a = an) {
		an = a->next;
		if (a->expires <= w->now) {
			alloc_free(w, a);
			continue;
		}
		alloc_flush_counts(a);
		for (int i = 0; i < a->nperms;) {
			if (a->perms[i].expires <= w->now)
				a->perms[i] = a->perms[--a->nperms];
			else
				i++;
		}
		for (int i = 0; i < a->nchans;) {
			/* a channel stays unusable 5 minutes after expiry before it may be rebound
			 * (RFC 8656 section 12); we keep it that long */
			if (a->chans[i].expires + PERM_MS <= w->now)
				a->chans[i] = a->chans[--a->nchans];
			else
				i++;
		}
	}
	for (c = w->conns; c; c = cn) {
		cn = c->next;
		if (c->alloc == NULL && w->now - c->last_active > CONN_IDLE_MS)
			conn_close(w, c);
	}
	pthread_mutex_lock(&w->t->lock);
	for (int i = 0; i < w->t->nres;) {
		if (w->t->res[i].expires <= w->now) {
			close(w->t->res[i].fd);
			w->t->res[i] = w->t->res[--w->t->nres];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&w->t->lock);
}

static void bury_dead(struct worker *w)
{
	while (w->dead_allocs) {
		struct alloc *a = w->dead_allocs;

		w->dead_allocs = a->hnext;
		free(a);
	}
	while (w->dead_conns) {
		struct tconn *c = w->dead_conns;

		w->dead_conns = c->next;
		free(c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	char name[16];

	snprintf(name, sizeof(name), "turn-%d", w->id);
	pthread_setname_np(pthread_self(), name);
	while (!atomic_load(&w->t->stop)) {
		int n = epoll_wait(w->ep, evs, 64, 1000);

		w->now = cn_time_mono_ms();
		w->now_wall = cn_time_wall_ms() / 1000;
		for (int i = 0; i < n; i++) {
			struct tag *tg = evs[i].data.ptr;

			switch (tg->kind) {
			case TAG_UDP:
				on_udp_readable(w);
				break;
			case TAG_TCP_LISTEN:
				on_accept(w);
				break;
			case TAG_RELAY:
				on_relay_readable(w, (struct alloc *)tg);
				break;
			case TAG_CONN:
				if (evs[i].events & EPOLLOUT)
					conn_flush_out(w, (struct tconn *)tg);
				if (tg->kind == TAG_CONN && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					on_conn_readable(w, (struct tconn *)tg);
				break;
			case TAG_WAKE: {
				uint64_t v;

				(void)!read(w->wake_fd, &v, sizeof(v));
				break;
			}
			case TAG_DEAD:
				break;
			}
		}
		flush_all(w);
		w->rx_used = 0;
		if (w->now >= w->next_sweep) {
			sweep(w);
			w->next_sweep = w->now + 1000;
		}
		bury_dead(w);
	}
	return NULL;
}

/* ---- metrics ---- */

static int turn_metrics(struct cn_buf *out, void *arg)
{
	static const char *const dir[2] = { "to_peer", "to_client" };
	struct relay_turn *t = arg;
	int n = atomic_load(&t->ntenants), rc = 0;
	struct {
		const char *name, *help;
		const atomic_llong *v;
	} plain[] = {
		{ "canopy_turn_challenges_total", "Authenticated requests sent without credentials (answered 401 with a nonce).", &t->challenges },
		{ "canopy_turn_policy_refusals_total", "Peer addresses refused by the peer policy (403).", &t->policy_refusals },
		{ "canopy_turn_malformed_total", "Client messages that did not parse (dropped).", &t->malformed },
		{ "canopy_turn_classic_bindings_total", "RFC 3489 Binding requests (no magic cookie, e.g. libnice's) answered with MAPPED-ADDRESS.", &t->classic_bindings },
		{ "canopy_turn_quota_refusals_total", "Allocations refused by a user or tenant quota (486).", &t->quota_refusals },
		{ "canopy_turn_capacity_refusals_total", "Allocations or connections refused at turn_max_allocations (508).", &t->capacity_refusals },
		{ "canopy_turn_dropped_total", "Datagrams dropped: no allocation, permission or channel, or a full TCP backlog.", &t->dropped },
		{ "canopy_turn_oversize_total", "Datagrams longer than the relay's buffer (dropped).", &t->oversize },
		{ "canopy_turn_send_failures_total", "Datagrams the kernel refused to send (full socket buffer, ICMP error).", &t->send_failures },
	};

	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		rc |= cn_metrics_family(out, plain[i].name, "counter", plain[i].help);
		rc |= cn_buf_printf(out, "%s %lld\n", plain[i].name, get(plain[i].v));
	}
	rc |= cn_metrics_family(out, "canopy_turn_auth_failures_total", "counter",
				"Authenticated requests refused, by reason.");
	for (int i = 0; i < AF_COUNT; i++)
		rc |= cn_buf_printf(out, "canopy_turn_auth_failures_total{reason=\"%s\"} %lld\n",
				    auth_fail_names[i], get(&t->auth_fail[i]));

	/* per tenant; the "other" row only once it was used */
	{
		struct {
			const char *name, *type, *help;
		} fam[] = {
			{ "canopy_turn_allocations", "gauge", "Live TURN allocations." },
			{ "canopy_turn_sessions_total", "counter", "TURN allocations made." },
			{ "canopy_turn_relayed_bytes_total", "counter", "Payload bytes relayed (updated each second)." },
			{ "canopy_turn_relayed_packets_total", "counter", "Datagrams relayed (updated each second)." },
		};

		for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
			rc |= cn_metrics_family(out, fam[f].name, fam[f].type, fam[f].help);
			for (int i = 0; i <= MAX_TENANTS; i++) {
				struct tenant *tn = &t->tenants[i];

				if (i >= n && i != MAX_TENANTS)
					continue;
				if (i == MAX_TENANTS && get(&tn->allocs_total) == 0)
					continue;
				for (int d = 0; d < (f >= 2 ? 2 : 1); d++) {
					rc |= cn_buf_printf(out, "%s{tenant=", fam[f].name);
					rc |= cn_buf_append_str(out, "\"");
					rc |= cn_metrics_label_value(out, tn->name);
					rc |= cn_buf_append_str(out, "\"");
					if (f >= 2)
						rc |= cn_buf_printf(out, ",direction=\"%s\"", dir[d]);
					rc |= cn_buf_printf(out, "} %lld\n",
							    f == 0 ? get(&tn->allocs) :
							    f == 1 ? get(&tn->allocs_total) :
							    f == 2 ? get(&tn->bytes[d]) : get(&tn->pkts[d]));
				}
			}
		}
	}
	return rc ? -ENOBUFS : 0;
}

/* ---- start, stop, API ---- */

static int open_listener(struct relay_turn *t, int type, bool reuseport)
{
	int one = 1, fd, buf = 4 << 20;

	fd = socket(t->listen.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		/* bursts from many clients: the kernel caps these at net.core.[rw]mem_max */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	}
	if (bind(fd, (struct sockaddr *)&t->listen, sa_len(&t->listen)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 256) < 0)) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static int epoll_add(int ep, int fd, struct tag *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void worker_free(struct worker *w)
{
	while (w->conns)
		conn_close(w, w->conns);
	while (w->allocs)
		alloc_free(w, w->allocs);
	bury_dead(w);
	if (w->udp_fd >= 0)
		close(w->udp_fd);
	if (w->tcp_fd >= 0)
		close(w->tcp_fd);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->ep >= 0)
		close(w->ep);
	free(w);
}

void relay_turn_stop(struct relay_turn *t)
{
	if (t == NULL)
		return;
	cn_metrics_remove_collector(turn_metrics, t);
	atomic_store(&t->stop, true);
	for (int i = 0; i < t->nworkers; i++) {
		uint64_t one = 1;

		if (t->workers[i] && t->workers[i]->running) {
			(void)!write(t->workers[i]->wake_fd, &one, sizeof(one));
			pthread_join(t->workers[i]->th, NULL);
		}
	}
	for (int i = 0; i < t->nworkers; i++)
		if (t->workers[i])
			worker_free(t->workers[i]);
	free(t->workers);
	for (int i = 0; i < t->nres; i++)
		close(t->res[i].fd);
	if (t->users)
		g_hash_table_destroy(t->users);
	pthread_mutex_destroy(&t->lock);
	explicit_bzero(t->secret, sizeof(t->secret));
	free(t);
}

int relay_turn_set_secret(struct relay_turn *t, const char *secret)
{
	if (t == NULL)
		return -EINVAL;
	if (strlen(secret) >= sizeof(t->secret))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	snprintf(t->secret, sizeof(t->secret), "%s", secret);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int relay_turn_listen_addr(const struct relay_turn *t, struct sockaddr_storage *out)
{
	if (t == NULL)
		return -EINVAL;
	*out = t->listen;
	return 0;
}

void relay_turn_stats(const struct relay_turn *t, struct relay_turn_stats *out)
{
	struct relay_turn *m = (struct relay_turn *)t; /* atomics are read, never written */
	int n = atomic_load(&m->ntenants);

	memset(out, 0, sizeof(*out));
	for (int i = 0; i <= MAX_TENANTS; i++) {
		struct tenant *tn = &m->tenants[i];

		if (i >= n && i != MAX_TENANTS)
			continue;
		out->allocations += (uint64_t)get(&tn->allocs);
		out->allocations_total += (uint64_t)get(&tn->allocs_total);
		out->bytes_to_peer += (uint64_t)get(&tn->bytes[0]);
		out->bytes_to_client += (uint64_t)get(&tn->bytes[1]);
		out->packets_to_peer += (uint64_t)get(&tn->pkts[0]);
		out->packets_to_client += (uint64_t)get(&tn->pkts[1]);
	}
	for (int i = 0; i < AF_COUNT; i++)
		out->auth_failures += (uint64_t)get(&m->auth_fail[i]);
	out->policy_refusals = (uint64_t)get(&m->policy_refusals);
	out->malformed = (uint64_t)get(&m->malformed);
}

static int worker_new(struct relay_turn *t, int id, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));
	bool reuse = t->nworkers > 1;
	int rc;

	*out = w;
	if (w == NULL)
		return -ENOMEM;
	w->t = t;
	w->id = id;
	w->udp_fd = w->tcp_fd = w->wake_fd = -1;
	w->udp_tag.kind = TAG_UDP;
	w->tcp_tag.kind = TAG_TCP_LISTEN;
	w->wake_tag.kind = TAG_WAKE;
	cn_random_bytes(&w->rng, sizeof(w->rng));
	w->rng |= 1;
	w->ep = epoll_create1(EPOLL_CLOEXEC);
	if (w->ep < 0)
		return -errno;
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		return -errno;
	if ((rc = epoll_add(w->ep, w->wake_fd, &w->wake_tag)) < 0)
		return rc;
	w->udp_fd = open_listener(t, SOCK_DGRAM, reuse);
	if (w->udp_fd < 0)
		return w->udp_fd;
	/* port 0 in turn_listen: the first worker's port is everyone's */
	if (id == 0) {
		socklen_t l = sizeof(t->listen);

		getsockname(w->udp_fd, (struct sockaddr *)&t->listen, &l);
	}
	if ((rc = epoll_add(w->ep, w->udp_fd, &w->udp_tag)) < 0)
		return rc;
	if (t->tcp) {
		w->tcp_fd = open_listener(t, SOCK_STREAM, reuse);
		if (w->tcp_fd < 0)
			return w->tcp_fd;
		if ((rc = epoll_add(w->ep, w->tcp_fd, &w->tcp_tag)) < 0)
			return rc;
	}
	return 0;
}

int relay_turn_start(const struct relay_conf *conf, struct relay_turn **out)
{
	struct relay_turn *t;
	char err[160], txt[64];
	bool any_port;
	int rc = 0;

	*out = NULL;
	if (conf->turn_listen == NULL || conf->turn_listen[0] == '\0')
		return 0;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->users = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	snprintf(t->tenants[MAX_TENANTS].name, sizeof(t->tenants[MAX_TENANTS].name), "other");
	if (parse_hostport(conf->turn_listen, &t->listen) < 0) {
		cn_log_error(LOG, "turn_listen: '%s' is not IP:port", conf->turn_listen);
		rc = CN_E_CONFIG;
		goto fail;
	}
	if (conf->turn_relay_ip && conf->turn_relay_ip[0]) {
		struct sockaddr_storage *r = &t->relay_ip;

		if (inet_pton(AF_INET, conf->turn_relay_ip, &((struct sockaddr_in *)r)->sin_addr) == 1) {
			r->ss_family = AF_INET;
		} else if (inet_pton(AF_INET6, conf->turn_relay_ip,
				     &((struct sockaddr_in6 *)r)->sin6_addr) == 1) {
			r->ss_family = AF_INET6;
		} else {
			cn_log_error(LOG, "turn_relay_ip: '%s' is not an IP address", conf->turn_relay_ip);
			rc = CN_E_CONFIG;
			goto fail;
		}
	} else if (is_wildcard(&t->listen)) {
		cn_log_error(LOG, "turn_relay_ip is needed when turn_listen is a wildcard address");
		rc = CN_E_CONFIG;
		goto fail;
	} else {
		t->relay_ip = t->listen;
	}
	if (is_wildcard(&t->relay_ip)) {
		cn_log_error(LOG, "turn_relay_ip must be a specific address (clients are told it)");
		rc = CN_E_CONFIG;
		goto fail;
	}
	if (cn_addrpolicy_init(&t->policy, conf->turn_allow_peers, conf->turn_deny_peers, err,
			       sizeof(err)) < 0) {
		cn_log_error(LOG, "turn_allow_peers/turn_deny_peers: %s", err);
		rc = CN_E_CONFIG;
		goto fail;
	}
	snprintf(t->realm, sizeof(t->realm), "%s", conf->turn_realm ? conf->turn_realm : "canopy");
	if (conf->turn_secret && relay_turn_set_secret(t, conf->turn_secret) < 0) {
		cn_log_error(LOG, "turn_secret: too long");
		rc = CN_E_CONFIG;
		goto fail;
	}
	t->tcp = conf->turn_tcp;
	t->user_quota = conf->turn_user_quota;
	t->tenant_quota = conf->turn_tenant_quota;
	t->max_allocs = conf->turn_max_allocations;
	t->max_lifetime_s = conf->turn_max_lifetime / 1000;
	if (t->max_lifetime_s < DEFAULT_LIFETIME_S)
		t->max_lifetime_s = DEFAULT_LIFETIME_S;
	t->nonce_lifetime_s = conf->turn_nonce_lifetime / 1000;
	if (t->nonce_lifetime_s < 1)
		t->nonce_lifetime_s = 1;
	cn_random_bytes(t->nonce_key, sizeof(t->nonce_key));
	t->nworkers = (int)conf->turn_threads;
	t->workers = calloc((size_t)t->nworkers, sizeof(*t->workers));
	if (t->workers == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	/* Port 0: the kernel picks the UDP port and TCP must get the same number, which may be
	 * taken; then the whole set is opened again on another port. */
	any_port = port_of(&t->listen) == 0;
	for (int attempt = 0;; attempt++) {
		for (int i = 0; i < t->nworkers && rc == 0; i++)
			rc = worker_new(t, i, &t->workers[i]);
		if (rc == 0)
			break;
		if (!any_port || rc != -EADDRINUSE || attempt == 20) {
			addr_text(&t->listen, txt, sizeof(txt));
			cn_log_error(LOG, "TURN listener %s: %s", txt, cn_strerror(rc));
			goto fail;
		}
		for (int i = 0; i < t->nworkers; i++) {
			if (t->workers[i])
				worker_free(t->workers[i]);
			t->workers[i] = NULL;
		}
		if (t->listen.ss_family == AF_INET)
			((struct sockaddr_in *)&t->listen)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&t->listen)->sin6_port = 0;
		rc = 0;
	}
	for (int i = 0; i < t->nworkers; i++) {
		rc = -pthread_create(&t->workers[i]->th, NULL, worker_main, t->workers[i]);
		if (rc < 0)
			goto fail;
		t->workers[i]->running = true;
	}
	cn_metrics_add_collector(turn_metrics, t);
	addr_text(&t->listen, txt, sizeof(txt));
	cn_log_info(LOG, "TURN on %s (udp%s), %d thread(s), realm %s%s", txt, t->tcp ? ", tcp" : "",
		    t->nworkers, t->realm, t->secret[0] ? "" : ", no secret yet");
	*out = t;
	return 0;
fail:
	relay_turn_stop(t);
	return rc;
}
