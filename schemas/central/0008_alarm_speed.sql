-- 0008_alarm_speed.sql: the alarm path made cheaper per event: plans that stay index
-- lookups whatever the statistics say, PL/pgSQL helpers (plans cached per session), and no
-- NOTIFY inside the transaction that stores events.

---------------------------------------------------------------------------------------
-- Helpers called once per event or alarm. As SQL functions they could not be inlined
-- (they hold subqueries), so each call was planned again; PL/pgSQL keeps its plans.

CREATE OR REPLACE FUNCTION canopy_type_match(t text, patterns text[]) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	p text;
BEGIN
	FOREACH p IN ARRAY coalesce(patterns, '{}') LOOP
		IF p = t OR p = '*' OR (right(p, 1) = '*' AND left(t, length(p) - 1) = left(p, -1)) THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END $$;

CREATE OR REPLACE FUNCTION canopy_schedule_armed(sched jsonb, at timestamptz, tz text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
	lt timestamp;
	dow int;
	yday int;
	w jsonb;
	f time;
	tt time;
	days int[];
BEGIN
	IF sched IS NULL OR jsonb_array_length(sched) = 0 THEN
		RETURN true;
	END IF;
	lt := at AT TIME ZONE coalesce(tz, 'UTC');
	dow := extract(isodow FROM lt)::int;
	yday := (dow + 5) % 7 + 1; -- the day before, 1 = Monday
	FOR w IN SELECT * FROM jsonb_array_elements(sched) LOOP
		f := (w->>'from')::time;
		tt := (w->>'to')::time;
		days := ARRAY(SELECT jsonb_array_elements_text(w->'days')::int);
		IF f <= tt THEN
			IF dow = ANY(days) AND lt::time >= f AND lt::time < tt THEN
				RETURN true;
			END IF;
		-- spans midnight: the evening part on a listed day, the morning part the day after
		ELSIF (dow = ANY(days) AND lt::time >= f) OR (yday = ANY(days) AND lt::time < tt) THEN
			RETURN true;
		END IF;
	END LOOP;
	RETURN false;
END $$;

CREATE OR REPLACE FUNCTION canopy_site_path(sid uuid) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT string_agg(s.name, ' / ' ORDER BY a.i)
		FROM sites x, unnest(x.ancestors) WITH ORDINALITY a(id, i) JOIN sites s ON s.id = a.id
		WHERE x.id = sid);
END $$;

CREATE OR REPLACE FUNCTION canopy_local_time(at timestamptz, tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	z text := coalesce(tz, 'UTC');
	off interval := (at AT TIME ZONE z) - (at AT TIME ZONE 'UTC');
	s int := abs(extract(epoch FROM off))::int;
BEGIN
	RETURN to_char(at AT TIME ZONE z, 'YYYY-MM-DD"T"HH24:MI:SS.MS') ||
		CASE WHEN off < interval '0' THEN '-' ELSE '+' END ||
		to_char(s / 3600, 'FM00') || ':' || to_char(s % 3600 / 60, 'FM00');
END $$;

-- The alarm as shown, given its site's path and its camera's name (uplink_events looks
-- them up once per batch, not once per alarm).
CREATE FUNCTION canopy_alarm_json(a alarms, site_path text, camera_name text) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN jsonb_build_object('id', a.id, 'tenant_id', a.tenant_id, 'rule_id', a.rule_id,
		'type', a.type, 'severity', a.severity, 'state', a.state,
		'site_id', a.site_id, 'site_path', site_path,
		'node_id', a.node_id, 'camera_id', a.camera_id, 'camera', a.camera_key,
		'camera_name', camera_name,
		'event_id', a.event_ref,
		'time', to_char(a.event_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		'created_at', a.created_at, 'deadline', a.deadline, 'auto_ack_at', a.auto_ack_at,
		'comment_required', a.comment_required, 'level', a.level, 'level_due', a.level_due,
		'forwarded', a.forwarded_at IS NOT NULL, 'from_child', a.origin_node,
		'handled_by', nullif(a.handled_by, ''), 'handled_at', a.handled_at,
		'comment', a.comment, 'version', a.version) || a.details;
END $$;

CREATE OR REPLACE FUNCTION canopy_alarm_json(a alarms) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN canopy_alarm_json(a, canopy_site_path(a.site_id),
		(SELECT c.name FROM cameras c WHERE c.id = a.camera_id));
END $$;

---------------------------------------------------------------------------------------
-- Webhook claims and results join by id through = ANY(array): an index lookup per id
-- even when the outbox's statistics (taken when it was empty) say it has no rows, where
-- the joins were planned as a full scan per id.

CREATE OR REPLACE FUNCTION webhook_claim(owner text, n int, per_sub int, lease_ms int, skip uuid[])
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
	FROM webhook_subscriptions w
	WHERE o.id = ANY(ARRAY(SELECT c.id FROM c)) AND w.id = o.subscription_id
	RETURNING o.id, o.tenant_id, o.subscription_id, o.msg_id, o.type, o.payload, o.attempts,
		(extract(epoch FROM o.retry_from) * 1000)::bigint, w.url, w.secret,
		CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END, w.max_in_flight $$;

CREATE OR REPLACE FUNCTION webhook_apply(owner text, ids bigint[], tenants uuid[], subs uuid[], msgs text[],
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
	ok bigint[];
	failed bigint[];
BEGIN
	INSERT INTO webhook_deliveries (tenant_id, subscription_id, msg_id, type, attempt, at,
		status, latency_ms, error)
	SELECT r.t, r.s, r.m, r.ty, r.a, to_timestamp(r.at / 1000.0), r.st, r.ms, r.e
	FROM unnest(tenants, subs, msgs, types, tries, at_ms, statuses, latencies, errors)
		AS r(t, s, m, ty, a, at, st, ms, e)
	WHERE EXISTS (SELECT 1 FROM webhook_subscriptions w WHERE w.id = r.s);

	SELECT coalesce(array_agg(r.i) FILTER (WHERE r.st BETWEEN 200 AND 299), '{}'),
		coalesce(array_agg(r.i) FILTER (WHERE r.st IS NULL OR r.st NOT BETWEEN 200 AND 299), '{}')
	INTO ok, failed FROM unnest(ids, statuses) AS r(i, st);

	DELETE FROM webhook_outbox o WHERE o.id = ANY(ok);
	GET DIAGNOSTICS nd = ROW_COUNT;

	IF cardinality(failed) > 0 THEN
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
			WHERE o.id = ANY(failed) AND o.id = r.i AND o.state = 'pending' AND o.lease_owner = owner
			RETURNING o.state, o.next_at)
		SELECT count(*) FILTER (WHERE u.state = 'pending'), count(*) FILTER (WHERE u.state = 'dead'),
			(extract(epoch FROM min(u.next_at) FILTER (WHERE u.state = 'pending') - now()) * 1000)::bigint
		INTO nr, nx, due FROM u;
	END IF;

	IF 410 = ANY(statuses) THEN
		WITH g AS (SELECT DISTINCT r.s FROM unnest(subs, statuses) AS r(s, st) WHERE r.st = 410)
		UPDATE webhook_subscriptions w SET enabled = false,
			disabled_reason = 'the receiver answered 410 Gone', disabled_at = now(),
			updated_at = now(), version = w.version + 1
		FROM g WHERE w.id = g.s AND w.enabled;
		GET DIAGNOSTICS ng = ROW_COUNT;
	END IF;
	IF ng > 0 THEN
		UPDATE webhook_outbox o SET state = 'dead', dead_at = now(), lease_owner = NULL,
			lease_until = NULL,
			last_error = 'not sent: the subscription was disabled (the receiver answered 410 Gone)'
		FROM (SELECT DISTINCT r.s FROM unnest(subs, statuses) AS r(s, st) WHERE r.st = 410) g
		WHERE o.subscription_id = g.s AND o.state = 'pending';
		GET DIAGNOSTICS k = ROW_COUNT;
		nx := nx + k;
	END IF;

	IF cardinality(rel) > 0 THEN
		UPDATE webhook_outbox o SET lease_owner = NULL, lease_until = NULL, next_at = now()
		WHERE o.id = ANY(rel) AND o.lease_owner = owner AND o.state = 'pending';
	END IF;

	RETURN QUERY SELECT nd, nr, nx, ng, due;
END $$;

---------------------------------------------------------------------------------------
-- Events in. As in 0007, but it returns how many alarms and webhook messages it queued
-- instead of notifying: a NOTIFY holds a database-wide lock from before the commit until
-- its WAL is flushed, which made every batch wait for the one before. The caller notifies
-- from a transaction of its own after this one has committed (central_uplink.c).

DROP FUNCTION uplink_events(uuid, jsonb);
CREATE FUNCTION uplink_events(nid uuid, evs jsonb, OUT n_alarms int, OUT n_hooks int)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	a alarms;
	k int;
	escalate uuid[];
	pol escalation_policies;
BEGIN
	SELECT * INTO n FROM nodes WHERE id = nid;
	-- One statement: ORDER BY keeps the sender's order in events.id (per-camera order in
	-- the database); alarms, their feed rows and webhook messages follow from the rows
	-- actually inserted (a resent event raises nothing twice).
	WITH ins AS (
		INSERT INTO events (tenant_id, node_id, event_id, camera_key, type, at, body, site_id, camera_id)
		SELECT n.tenant_id, n.id, x.e->>'id', coalesce(x.e->>'camera', ''), coalesce(x.e->>'type', 'unknown'),
			CASE WHEN x.e->>'time' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:?\d\d)$'
			     THEN (x.e->>'time')::timestamptz ELSE now() END,
			x.e, n.site_id, c.id
		FROM jsonb_array_elements(evs) WITH ORDINALITY x(e, i)
		LEFT JOIN cameras c ON c.node_id = n.id AND c.key = x.e->>'camera'
		WHERE x.e->>'id' IS NOT NULL
		ORDER BY x.i
		ON CONFLICT (node_id, event_id) DO NOTHING
		RETURNING *),
	site AS (SELECT s.ancestors, s.timezone, canopy_site_path(s.id) AS path FROM sites s WHERE s.id = n.site_id),
	hits AS (
		SELECT DISTINCT ON (ins.id) ins.id AS ev, ins.event_id, ins.camera_key, ins.camera_id,
			ins.type, ins.at, ins.body, r.id AS rule_id, r.severity, r.processing_s,
			r.comment_required, r.auto_ack_s, r.policy_id, site.timezone
		FROM ins, site, alarm_rules r
		WHERE r.tenant_id = n.tenant_id AND r.enabled
		  AND canopy_type_match(ins.type, r.event_types)
		  AND (r.site_id IS NULL OR r.site_id = ANY(site.ancestors))
		  AND (r.camera_id IS NULL OR r.camera_id = ins.camera_id)
		  AND canopy_schedule_armed(r.schedule, ins.at, site.timezone)
		ORDER BY ins.id, r.severity DESC, r.created_at),
	raised AS (
		INSERT INTO alarms (tenant_id, rule_id, event_id, event_ref, node_id, site_id, camera_id,
			camera_key, type, severity, event_at, deadline, auto_ack_at, comment_required,
			policy_id, details)
		SELECT n.tenant_id, h.rule_id, h.ev, h.event_id, n.id, n.site_id, h.camera_id, h.camera_key,
			h.type, h.severity, h.at, now() + make_interval(secs => h.processing_s),
			now() + make_interval(secs => h.auto_ack_s), h.comment_required, h.policy_id,
			jsonb_strip_nulls(jsonb_build_object(
				'local_time', coalesce(h.body->>'local_time', canopy_local_time(h.at, h.timezone)),
				'plate', h.body->'plate', 'person', h.body->'person', 'match', h.body->'match',
				'region', h.body->'region', 'description', h.body->'description',
				'event_state', h.body->'state', 'snapshot', h.body->'snapshot'))
		FROM hits h ORDER BY h.ev
		RETURNING *),
	cams AS (SELECT c.id, c.name FROM cameras c WHERE c.node_id = n.id),
	shown AS (SELECT r.*, canopy_alarm_json(ROW(r.*)::alarms, site.path,
			(SELECT cams.name FROM cams WHERE cams.id = r.camera_id)) AS js
		FROM raised r LEFT JOIN site ON true),
	fed AS (
		INSERT INTO feed (tenant_id, type, site_id, ancestors, camera_id, body)
		SELECT sh.tenant_id, 'alarm.created', sh.site_id, site.ancestors, sh.camera_id, sh.js
		FROM shown sh, site ORDER BY sh.event_id
		RETURNING 1),
	hooked AS (
		INSERT INTO webhook_outbox (tenant_id, subscription_id, type, payload)
		SELECT sh.tenant_id, w.id, 'alarm.created', jsonb_build_object('type', 'alarm.created',
			'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
			'data', sh.js)::text
		FROM shown sh, site, webhook_subscriptions w
		WHERE w.tenant_id = sh.tenant_id AND w.enabled
		  AND canopy_type_match('alarm.created', w.types) AND sh.severity >= w.min_severity
		  AND (w.site_id IS NULL OR w.site_id = ANY(site.ancestors))
		ORDER BY sh.event_id
		RETURNING 1),
	-- Events themselves, for subscriptions that ask for event.<type>.
	ev_hooked AS (
		INSERT INTO webhook_outbox (tenant_id, subscription_id, type, payload)
		SELECT ins.tenant_id, w.id, 'event.' || ins.type, jsonb_build_object('type', 'event.' || ins.type,
			'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
			'data', ins.body || jsonb_build_object('site_id', ins.site_id,
				'site_path', site.path, 'node_id', ins.node_id,
				'camera_id', ins.camera_id))::text
		FROM ins, site, webhook_subscriptions w
		WHERE w.tenant_id = ins.tenant_id AND w.enabled AND w.min_severity = 0
		  AND canopy_type_match('event.' || ins.type, w.types)
		  AND (w.site_id IS NULL OR w.site_id = ANY(site.ancestors))
		ORDER BY ins.id
		RETURNING 1)
	SELECT (SELECT count(*) FROM shown), (SELECT count(*) FROM hooked) + (SELECT count(*) FROM ev_hooked),
		ARRAY(SELECT sh.id FROM shown sh WHERE sh.policy_id IS NOT NULL ORDER BY sh.event_id)
	INTO k, n_hooks, escalate;
	-- Level 1 of each alarm's escalation policy applies at once.
	FOR a IN SELECT * FROM alarms WHERE id = ANY(escalate) ORDER BY created_at, event_id
	LOOP
		SELECT * INTO pol FROM escalation_policies WHERE id = a.policy_id;
		CONTINUE WHEN NOT FOUND OR jsonb_array_length(pol.levels) = 0;
		UPDATE alarms SET level = 1, level_due = CASE WHEN jsonb_array_length(pol.levels) > 1
			THEN now() + make_interval(secs => coalesce((pol.levels->0->>'timeout_s')::int, 60)) END
		WHERE id = a.id RETURNING * INTO a;
		PERFORM canopy_alarm_level(a, 1, pol.levels->0, 'timer');
	END LOOP;
	n_alarms := k;
END $$;

-- After uplink_events has committed: wakes the instances serving live streams and
-- delivering webhooks (a transaction with no writes, so its commit waits for no flush).
CREATE FUNCTION canopy_events_notify(n_alarms int, n_hooks int) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF n_alarms > 0 THEN
		PERFORM pg_notify('canopy_feed', '');
	END IF;
	IF n_hooks > 0 THEN
		PERFORM pg_notify('canopy_webhook', '');
	END IF;
END $$;
