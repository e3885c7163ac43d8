-- 0005_webhooks.sql: webhook delivery: claiming outbox rows under a lease, applying attempt results in batches, and the /webhooks REST operations.
-- The tables are in 0004_alarms.sql; central/central_webhook.c is the engine that calls the
-- webhook_* functions, central/central_ops.c routes the api_webhooks_* ones.

INSERT INTO permissions (name, description) VALUES
	('webhooks.manage', 'create and change webhook subscriptions; replay dead letters');
UPDATE roles SET permissions = permissions || ARRAY['webhooks.manage']
WHERE id = '00000000-0000-0000-0000-00000000a001';

-- Retries run for the retry window from retry_from: when the message was queued, or when
-- it was last replayed (so a replayed dead letter gets a whole window again).
ALTER TABLE webhook_outbox ADD COLUMN retry_from timestamptz NOT NULL DEFAULT now();
-- After a rotation the old secret signs too (a second v1 signature) for a day, so
-- receivers can switch without losing messages.
ALTER TABLE webhook_subscriptions ADD COLUMN previous_secret text,
	ADD COLUMN previous_secret_until timestamptz;
-- Claims walk each subscription's due rows in order.
CREATE INDEX webhook_outbox_sub_due ON webhook_outbox (subscription_id, next_at) WHERE state = 'pending';

---------------------------------------------------------------------------------------
-- The delivery engine (one instance or many: SKIP LOCKED and leases keep them apart)

-- Takes up to n due rows for instance owner, at most per_sub per subscription (and
-- max_in_flight * 64), leased for lease_ms; subscriptions in skip (this instance holds
-- enough of theirs already) are left out. Subscriptions are visited from a random point,
-- so when n cuts the claim short no subscription is always last. A leased row's next_at
-- moves to the lease's end (when it is due again if its holder vanished), so claims do not
-- walk past the rows instances are sending.
CREATE FUNCTION webhook_claim(owner text, n int, per_sub int, lease_ms int, skip uuid[])
RETURNS TABLE (id bigint, tenant_id uuid, subscription_id uuid, msg_id text, type text,
	payload text, attempts int, from_ms bigint, url text, secret text, old_secret text,
	max_in_flight int)
LANGUAGE sql AS $$
	WITH c AS (
		SELECT o.id FROM (
			SELECT w.id, w.max_in_flight FROM webhook_subscriptions w,
				(SELECT gen_random_uuid() AS k) start
			WHERE w.enabled AND w.id <> ALL(skip)
			ORDER BY w.id <= start.k, w.id) w
		CROSS JOIN LATERAL (
			SELECT o.id FROM webhook_outbox o
			WHERE o.subscription_id = w.id AND o.state = 'pending' AND o.next_at <= now()
			  AND (o.lease_until IS NULL OR o.lease_until < now())
			ORDER BY o.next_at
			LIMIT least(per_sub, w.max_in_flight * 64)
			FOR UPDATE OF o SKIP LOCKED) o
		LIMIT n)
	UPDATE webhook_outbox o SET lease_owner = owner,
		lease_until = now() + make_interval(secs => lease_ms / 1000.0),
		next_at = now() + make_interval(secs => lease_ms / 1000.0)
	FROM c, webhook_subscriptions w
	WHERE o.id = c.id AND w.id = o.subscription_id
	RETURNING o.id, o.tenant_id, o.subscription_id, o.msg_id, o.type, o.payload, o.attempts,
		(extract(epoch FROM o.retry_from) * 1000)::bigint, w.url, w.secret,
		CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END, w.max_in_flight $$;

-- Applies a batch of attempt results of instance owner (parallel arrays, one element per
-- attempt): the delivery log gets every attempt; a 2xx deletes the row; 410 Gone disables
-- the subscription and makes its pending rows dead; any other answer, a timeout or a
-- connection error schedules a retry (exponential backoff from bmin_ms to bmax_ms, +-20%
-- jitter) or, past the retry window, makes the row dead. rel: rows taken but not tried
-- (shutdown, lease nearly over), whose leases are given back. Rows another instance has
-- taken over since (lease_owner changed) keep their state; the attempt is still logged.
-- Returns what changed and how soon (ms, from the database's clock) the first retry is due.
CREATE FUNCTION webhook_apply(owner text, ids bigint[], tenants uuid[], subs uuid[], msgs text[],
	types text[], tries int[], at_ms bigint[], statuses int[], latencies int[], errors text[],
	rel bigint[], bmin_ms bigint, bmax_ms bigint, window_ms bigint)
RETURNS TABLE (delivered int, retrying int, dead int, disabled int, next_retry_ms bigint)
LANGUAGE plpgsql AS $$
DECLARE
	nd int := 0;
	nr int := 0;
	nx int := 0;
	ng int := 0;
	k int;
	due bigint;
BEGIN
	INSERT INTO webhook_deliveries (tenant_id, subscription_id, msg_id, type, attempt, at,
		status, latency_ms, error)
	SELECT r.t, r.s, r.m, r.ty, r.a, to_timestamp(r.at / 1000.0), r.st, r.ms, r.e
	FROM unnest(tenants, subs, msgs, types, tries, at_ms, statuses, latencies, errors)
		AS r(t, s, m, ty, a, at, st, ms, e)
	WHERE EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.id = r.s);

	DELETE FROM webhook_outbox o USING unnest(ids, statuses) AS r(i, st)
	WHERE o.id = r.i AND r.st BETWEEN 200 AND 299;
	GET DIAGNOSTICS nd = ROW_COUNT;

	WITH r AS (SELECT * FROM unnest(ids, statuses, errors) AS r(i, st, e)
		WHERE r.st IS NULL OR r.st NOT BETWEEN 200 AND 299),
	u AS (
		UPDATE webhook_outbox o SET attempts = o.attempts + 1, last_status = r.st,
			last_error = r.e, lease_owner = NULL, lease_until = NULL,
			state = CASE WHEN r.st = 410 OR now() >= o.retry_from + make_interval(secs => window_ms / 1000.0)
				THEN 'dead' ELSE 'pending' END,
			dead_at = CASE WHEN r.st = 410 OR now() >= o.retry_from + make_interval(secs => window_ms / 1000.0)
				THEN now() END,
			next_at = least(o.retry_from + make_interval(secs => window_ms / 1000.0),
				now() + make_interval(secs => least(bmax_ms::float8,
					bmin_ms * power(2::float8, least(o.attempts, 40))) * (0.8 + 0.4 * random()) / 1000.0))
		FROM r
		WHERE o.id = r.i AND o.state = 'pending' AND o.lease_owner = owner
		RETURNING o.state, o.next_at)
	SELECT count(*) FILTER (WHERE u.state = 'pending'), count(*) FILTER (WHERE u.state = 'dead'),
		(extract(epoch FROM min(u.next_at) FILTER (WHERE u.state = 'pending') - now()) * 1000)::bigint
	INTO nr, nx, due FROM u;

	WITH g AS (SELECT DISTINCT r.s FROM unnest(subs, statuses) AS r(s, st) WHERE r.st = 410)
	UPDATE webhook_subscriptions w SET enabled = false,
		disabled_reason = 'the receiver answered 410 Gone', disabled_at = now(),
		updated_at = now(), version = w.version + 1
	FROM g WHERE w.id = g.s AND w.enabled;
	GET DIAGNOSTICS ng = ROW_COUNT;
	IF ng > 0 THEN
		UPDATE webhook_outbox o SET state = 'dead', dead_at = now(), lease_owner = NULL,
			lease_until = NULL,
			last_error = 'not sent: the subscription was disabled (the receiver answered 410 Gone)'
		FROM (SELECT DISTINCT r.s FROM unnest(subs, statuses) AS r(s, st) WHERE r.st = 410) g
		WHERE o.subscription_id = g.s AND o.state = 'pending';
		GET DIAGNOSTICS k = ROW_COUNT;
		nx := nx + k;
	END IF;

	UPDATE webhook_outbox o SET lease_owner = NULL, lease_until = NULL, next_at = now()
	WHERE o.id = ANY(rel) AND o.lease_owner = owner AND o.state = 'pending';

	RETURN QUERY SELECT nd, nr, nx, ng, due;
END $$;

-- Extends the leases of rows instance owner still holds (waiting behind a slow receiver).
CREATE FUNCTION webhook_renew(owner text, ids bigint[], lease_ms int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	k int;
BEGIN
	UPDATE webhook_outbox o SET lease_until = now() + make_interval(secs => lease_ms / 1000.0),
		next_at = now() + make_interval(secs => lease_ms / 1000.0)
	WHERE o.id = ANY(ids) AND o.lease_owner = owner AND o.state = 'pending';
	GET DIAGNOSTICS k = ROW_COUNT;
	RETURN k;
END $$;

-- Of the subscriptions an instance holds messages for, those that must get no more:
-- disabled or deleted since the messages were claimed.
CREATE FUNCTION webhook_stopped(subs uuid[]) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
	SELECT s FROM unnest(subs) s
	WHERE NOT EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.id = s AND w.enabled) $$;

-- For /metrics: rows waiting (or being tried) and dead letters, all tenants.
CREATE FUNCTION webhook_counts(OUT pending bigint, OUT dead bigint)
LANGUAGE sql STABLE AS $$
	SELECT (SELECT count(*) FROM webhook_outbox WHERE state = 'pending'),
		(SELECT count(*) FROM webhook_outbox WHERE state = 'dead') $$;

---------------------------------------------------------------------------------------
-- REST: /webhooks (every operation needs webhooks.manage on the whole tenant: the
-- delivery log and dead letters hold alarm payloads from every site)

-- The secret is never shown here (only once, when made or rotated).
CREATE FUNCTION canopy_webhook_json(w webhook_subscriptions) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', w.id, 'name', w.name, 'url', w.url, 'types', w.types,
		'site_id', w.site_id, 'min_severity', w.min_severity, 'max_in_flight', w.max_in_flight,
		'enabled', w.enabled, 'disabled_reason', nullif(w.disabled_reason, ''),
		'disabled_at', w.disabled_at,
		'pending', (SELECT count(*) FROM webhook_outbox o WHERE o.subscription_id = w.id AND o.state = 'pending'),
		'dead', (SELECT count(*) FROM webhook_outbox o WHERE o.subscription_id = w.id AND o.state = 'dead'),
		'last_delivery', (SELECT json_build_object('msg_id', d.msg_id, 'type', d.type,
				'attempt', d.attempt, 'at', d.at, 'status', d.status, 'latency_ms', d.latency_ms,
				'error', d.error)
			FROM webhook_deliveries d WHERE d.subscription_id = w.id ORDER BY d.id DESC LIMIT 1),
		'previous_secret_until', CASE WHEN w.previous_secret_until > now() THEN w.previous_secret_until END,
		'created_at', w.created_at, 'updated_at', w.updated_at, 'version', w.version) $$;

-- The caller's subscription id (locked for a change when lock), or 404.
CREATE FUNCTION api_webhook_get(t uuid, u uuid, wid uuid, lock boolean) RETURNS webhook_subscriptions
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions;
BEGIN
	PERFORM api_require_tenant_perm(u, 'webhooks.manage');
	IF lock THEN
		SELECT * INTO w FROM webhook_subscriptions x WHERE x.id = wid AND x.tenant_id = t FOR UPDATE;
	ELSE
		SELECT * INTO w FROM webhook_subscriptions x WHERE x.id = wid AND x.tenant_id = t;
	END IF;
	IF NOT FOUND THEN
		PERFORM api_fail(404, 'no such webhook subscription (or not visible to you)');
	END IF;
	RETURN w;
END $$;

-- Checks the fields a create or change names (url, types, site_id in the caller's tenant).
CREATE FUNCTION api_webhook_check(t uuid, b jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	bad text;
BEGIN
	IF b ? 'url' AND ((b->>'url') !~ '^https?://[^/?#@[:space:]]+([/?#][^[:space:][:cntrl:]]*)?$') THEN
		PERFORM api_fail(400, 'url must be an http:// or https:// URL without spaces or user info');
	END IF;
	IF b ? 'types' THEN
		IF jsonb_array_length(b->'types') > 64 THEN
			PERFORM api_fail(400, 'types: at most 64 patterns');
		END IF;
		SELECT p INTO bad FROM jsonb_array_elements_text(b->'types') p
		WHERE p !~ '^[A-Za-z0-9_.:-]*\*?$' LIMIT 1;
		IF bad IS NOT NULL THEN
			PERFORM api_fail(400, format('types: %s is not a message type or a prefix ending in *', bad));
		END IF;
	END IF;
	IF b->>'site_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sites s
			WHERE s.id = (b->>'site_id')::uuid AND s.tenant_id = t) THEN
		PERFORM api_fail(404, 'site not found');
	END IF;
END $$;

CREATE FUNCTION api_webhooks_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM api_require_tenant_perm(u, 'webhooks.manage');
	RETURN QUERY WITH v AS (SELECT * FROM webhook_subscriptions w WHERE w.tenant_id = t)
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_webhook_json(p) ORDER BY p.name, p.id)
		FROM (SELECT * FROM v ORDER BY v.name, v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_webhooks_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, false);
BEGIN
	RETURN QUERY SELECT 200, w.version::text, canopy_webhook_json(w), NULL::text;
END $$;

-- x1: the new secret (whsec_...), made by the server and shown once in the answer.
CREATE FUNCTION api_webhooks_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions;
BEGIN
	PERFORM api_require_tenant_perm(u, 'webhooks.manage');
	PERFORM api_webhook_check(t, b);
	INSERT INTO webhook_subscriptions (tenant_id, name, url, secret, types, site_id,
		min_severity, max_in_flight, enabled, disabled_reason, disabled_at)
	VALUES (t, b->>'name', b->>'url', x1, ARRAY(SELECT jsonb_array_elements_text(b->'types')),
		(b->>'site_id')::uuid, coalesce((b->>'min_severity')::int, 0),
		coalesce((b->>'max_in_flight')::int, 8), coalesce((b->>'enabled')::boolean, true),
		CASE WHEN (b->>'enabled')::boolean IS FALSE THEN 'disabled through the API' ELSE '' END,
		CASE WHEN (b->>'enabled')::boolean IS FALSE THEN now() END)
	RETURNING * INTO w;
	RETURN QUERY SELECT 201, w.version::text, canopy_webhook_json(w), NULL::text;
END $$;

-- Enabling a disabled subscription clears why it was disabled; its pending messages go
-- out again (dead letters stay dead until replayed). Disabling keeps pending messages
-- waiting (their retry window still runs).
CREATE FUNCTION api_webhooks_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, true);
	en boolean := coalesce((b->>'enabled')::boolean, w.enabled);
BEGIN
	PERFORM api_check_version(w.version, ifm);
	PERFORM api_webhook_check(t, b);
	UPDATE webhook_subscriptions x SET name = coalesce(b->>'name', x.name),
		url = coalesce(b->>'url', x.url),
		types = CASE WHEN b ? 'types' THEN ARRAY(SELECT jsonb_array_elements_text(b->'types')) ELSE x.types END,
		site_id = CASE WHEN b ? 'site_id' THEN (b->>'site_id')::uuid ELSE x.site_id END,
		min_severity = coalesce((b->>'min_severity')::int, x.min_severity),
		max_in_flight = coalesce((b->>'max_in_flight')::int, x.max_in_flight),
		enabled = en,
		disabled_reason = CASE WHEN en THEN ''
			WHEN x.enabled THEN 'disabled through the API' ELSE x.disabled_reason END,
		disabled_at = CASE WHEN en THEN NULL WHEN x.enabled THEN now() ELSE x.disabled_at END,
		updated_at = now(), version = x.version + 1
	WHERE x.id = w.id RETURNING * INTO w;
	IF en THEN
		PERFORM pg_notify('canopy_webhook', '');
	END IF;
	RETURN QUERY SELECT 200, w.version::text, canopy_webhook_json(w), NULL::text;
END $$;

-- Its pending messages, dead letters and delivery log go with it.
CREATE FUNCTION api_webhooks_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, true);
BEGIN
	PERFORM api_check_version(w.version, ifm);
	DELETE FROM webhook_subscriptions x WHERE x.id = w.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

-- x1: the new secret. The old one keeps signing (as a second signature) for 24 hours.
CREATE FUNCTION api_webhooks_rotate(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, true);
BEGIN
	UPDATE webhook_subscriptions x SET previous_secret = x.secret,
		previous_secret_until = now() + interval '24 hours', secret = x1,
		updated_at = now(), version = x.version + 1
	WHERE x.id = w.id RETURNING * INTO w;
	RETURN QUERY SELECT 200, w.version::text, canopy_webhook_json(w), NULL::text;
END $$;

-- The delivery log, newest first; ?msg_id= narrows it to one message's attempts.
CREATE FUNCTION api_webhooks_deliveries(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, false);
BEGIN
	RETURN QUERY WITH v AS (SELECT * FROM webhook_deliveries d
		WHERE d.subscription_id = w.id AND d.tenant_id = t
		  AND (q->>'msg_id' IS NULL OR d.msg_id = q->>'msg_id'))
	SELECT 200, NULL::text, (api_page((SELECT json_agg(json_build_object('id', p.id,
			'msg_id', p.msg_id, 'type', p.type, 'attempt', p.attempt, 'at', p.at,
			'status', p.status, 'latency_ms', p.latency_ms, 'error', p.error) ORDER BY p.id DESC)
		FROM (SELECT * FROM v ORDER BY v.id DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q)::jsonb || jsonb_build_object('subscription_id', w.id))::json,
		NULL::text;
END $$;

-- Dead letters, most recently dead first; id is the message's webhook-id.
CREATE FUNCTION api_webhooks_dead_letters(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, false);
BEGIN
	RETURN QUERY WITH v AS (SELECT * FROM webhook_outbox o
		WHERE o.subscription_id = w.id AND o.tenant_id = t AND o.state = 'dead')
	SELECT 200, NULL::text, (api_page((SELECT json_agg(json_build_object('id', p.msg_id,
			'type', p.type, 'created_at', p.created_at, 'attempts', p.attempts,
			'last_status', p.last_status, 'last_error', p.last_error, 'dead_at', p.dead_at,
			'payload', p.payload::json) ORDER BY p.dead_at DESC, p.id DESC)
		FROM (SELECT * FROM v ORDER BY v.dead_at DESC, v.id DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q)::jsonb || jsonb_build_object('subscription_id', w.id))::json,
		NULL::text;
END $$;

-- Requeues dead letters (all, or those named in ids) as they were: same webhook-id and
-- body, attempts from 0, due now, a new retry window.
CREATE FUNCTION api_webhooks_replay(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, false);
	want text[] := CASE WHEN b ? 'ids' THEN ARRAY(SELECT jsonb_array_elements_text(b->'ids')) END;
	done text[];
BEGIN
	IF NOT w.enabled THEN
		PERFORM api_fail(409, 'the subscription is disabled; enable it first (PATCH enabled=true)');
	END IF;
	WITH r AS (
		UPDATE webhook_outbox o SET state = 'pending', attempts = 0, next_at = now(),
			retry_from = now(), dead_at = NULL, lease_owner = NULL, lease_until = NULL
		WHERE o.subscription_id = w.id AND o.tenant_id = t AND o.state = 'dead'
		  AND (want IS NULL OR o.msg_id = ANY(want))
		RETURNING o.msg_id)
	SELECT coalesce(array_agg(r.msg_id), '{}') INTO done FROM r;
	IF cardinality(done) > 0 THEN
		PERFORM pg_notify('canopy_webhook', '');
	END IF;
	RETURN QUERY SELECT 200, NULL::text, json_build_object('requeued', cardinality(done),
		'not_found', coalesce((SELECT json_agg(x ORDER BY x) FROM unnest(want) x
			WHERE x <> ALL(done)), '[]')), NULL::text;
END $$;

-- Queues a webhook.test message to this subscription only (whatever its filters).
CREATE FUNCTION api_webhooks_test(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	w webhook_subscriptions := api_webhook_get(t, u, id, false);
	m text;
BEGIN
	IF NOT w.enabled THEN
		PERFORM api_fail(409, 'the subscription is disabled; enable it first (PATCH enabled=true)');
	END IF;
	PERFORM canopy_webhook_enqueue(t, 'webhook.test', NULL, NULL, jsonb_build_object(
		'subscription_id', w.id, 'tenant_id', t,
		'requested_by', (SELECT x.username FROM users x WHERE x.id = u),
		'message', 'a test message from canopy-central'), w.id);
	-- the row just inserted by this session
	SELECT o.msg_id INTO m FROM webhook_outbox o WHERE o.id = currval(pg_get_serial_sequence('webhook_outbox', 'id'));
	RETURN QUERY SELECT 202, NULL::text, json_build_object('subscription_id', w.id,
		'msg_id', m, 'type', 'webhook.test'), NULL::text;
END $$;
