-- 0010_webhook_handoff.sql: webhook messages raised by incoming events go straight to the
-- instance that stored them, already leased to it, instead of being claimed again with an
-- UPDATE of every row; time indexes that only serve retention become BRIN.

---------------------------------------------------------------------------------------
-- Retention scans by time; the rows arrive in time order, so a BRIN index serves them at a
-- fraction of a B-tree's cost per insert. Claims walk webhook_outbox_sub_due, never the
-- global due index. Every index dropped here is one insert less per alarm.

DROP INDEX webhook_outbox_due;
-- Nothing reads these (events are listed through events_tenant_at, alarms by tenant).
DROP INDEX events_tenant_site;
DROP INDEX alarms_site;
DROP INDEX events_at;
CREATE INDEX events_at ON events USING brin (at);
DROP INDEX webhook_deliveries_at;
CREATE INDEX webhook_deliveries_at ON webhook_deliveries USING brin (at);
DROP INDEX feed_at;
CREATE INDEX feed_at ON feed USING brin (at);

-- As in 0006, oldest first by id (rows are appended in time order) now that feed_at is BRIN.
CREATE OR REPLACE FUNCTION canopy_feed_purge(keep_s bigint, batch int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
	top bigint;
BEGIN
	WITH d AS (
		DELETE FROM feed WHERE id IN (
			SELECT f.id FROM feed f WHERE f.at < now() - make_interval(secs => keep_s)
			ORDER BY f.id LIMIT batch FOR UPDATE SKIP LOCKED)
		RETURNING id)
	SELECT count(*), max(d.id) INTO n, top FROM d;
	IF top IS NOT NULL THEN
		UPDATE feed_purged SET through = greatest(through, top);
	END IF;
	RETURN n;
END $$;

-- As in 0008, one expression: a SQL function the planner inlines, where a PL/pgSQL call per
-- alarm cost a function call and three to_char calls' worth of set-up.
CREATE OR REPLACE FUNCTION canopy_local_time(at timestamptz, tz text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(at AT TIME ZONE coalesce(tz, 'UTC'), 'YYYY-MM-DD"T"HH24:MI:SS.MS') ||
		CASE WHEN (at AT TIME ZONE coalesce(tz, 'UTC')) < (at AT TIME ZONE 'UTC') THEN '-' ELSE '+' END ||
		to_char(abs(extract(epoch FROM (at AT TIME ZONE coalesce(tz, 'UTC')) - (at AT TIME ZONE 'UTC')))::int / 3600, 'FM00') ||
		':' || to_char(abs(extract(epoch FROM (at AT TIME ZONE coalesce(tz, 'UTC')) - (at AT TIME ZONE 'UTC')))::int % 3600 / 60, 'FM00') $$;

---------------------------------------------------------------------------------------
-- The high-volume rows (events, alarms, feed, webhook messages and their delivery log) drop
-- their foreign keys: each was a trigger running a locking lookup per inserted row, about a
-- quarter of storing an alarm. Their parents' ids come from the same statement that inserts
-- them. The cascades become statement-level triggers on the (rarely deleted) parents.

ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey, DROP CONSTRAINT events_node_id_fkey;
ALTER TABLE alarms DROP CONSTRAINT alarms_tenant_id_fkey, DROP CONSTRAINT alarms_rule_id_fkey;
ALTER TABLE feed DROP CONSTRAINT feed_tenant_id_fkey;
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_tenant_id_fkey,
	DROP CONSTRAINT webhook_outbox_subscription_id_fkey;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_tenant_id_fkey,
	DROP CONSTRAINT webhook_deliveries_subscription_id_fkey;

CREATE FUNCTION canopy_gone_tenants() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM events x USING gone g WHERE x.tenant_id = g.id;
	DELETE FROM alarms x USING gone g WHERE x.tenant_id = g.id;
	DELETE FROM feed x USING gone g WHERE x.tenant_id = g.id;
	DELETE FROM webhook_outbox x USING gone g WHERE x.tenant_id = g.id;
	DELETE FROM webhook_deliveries x USING gone g WHERE x.tenant_id = g.id;
	RETURN NULL;
END $$;
CREATE TRIGGER tenants_gone AFTER DELETE ON tenants REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION canopy_gone_tenants();

CREATE FUNCTION canopy_gone_nodes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM events x USING gone g WHERE x.node_id = g.id;
	RETURN NULL;
END $$;
CREATE TRIGGER nodes_gone AFTER DELETE ON nodes REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION canopy_gone_nodes();

CREATE FUNCTION canopy_gone_subscriptions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM webhook_outbox x USING gone g WHERE x.subscription_id = g.id;
	DELETE FROM webhook_deliveries x USING gone g WHERE x.subscription_id = g.id;
	RETURN NULL;
END $$;
CREATE TRIGGER webhook_subscriptions_gone AFTER DELETE ON webhook_subscriptions
	REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION canopy_gone_subscriptions();

CREATE FUNCTION canopy_gone_rules() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE alarms x SET rule_id = NULL FROM gone g WHERE x.rule_id = g.id;
	RETURN NULL;
END $$;
CREATE TRIGGER alarm_rules_gone AFTER DELETE ON alarm_rules REFERENCING OLD TABLE AS gone
	FOR EACH STATEMENT EXECUTE FUNCTION canopy_gone_rules();

---------------------------------------------------------------------------------------
-- Events in, as uplink_events in 0008, with the webhook messages they raise leased to the
-- calling instance (owner) for lease_ms and returned to it: it sends them at once, and no
-- claim has to find and lease them. Another instance claims them only if this one goes away
-- before it writes their results (the lease runs out). The first row carries the counts.

CREATE FUNCTION uplink_store_events(nid uuid, evs jsonb, owner text, lease_ms int)
RETURNS TABLE (n_alarms int, n_hooks int, id bigint, tenant_id uuid, subscription_id uuid,
	msg_id text, type text, payload text, attempts int, from_ms bigint, url text, secret text,
	old_secret text, max_in_flight int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	n nodes;
	a alarms;
	k int;
	nh int;
	escalate uuid[];
	pol escalation_policies;
	lease_end timestamptz := CASE WHEN owner IS NOT NULL
		THEN now() + make_interval(secs => lease_ms / 1000.0) END;
	hooks webhook_outbox[];
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
	site AS MATERIALIZED (SELECT s.ancestors, s.timezone, canopy_site_path(s.id) AS path,
			to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS stamp
		FROM sites s WHERE s.id = n.site_id),
	-- Rules and subscriptions are matched once per event type in the batch, not per event.
	types AS MATERIALIZED (SELECT DISTINCT ins.type FROM ins),
	rules AS MATERIALIZED (
		SELECT t.type AS etype, r.* FROM types t, site, alarm_rules r
		WHERE r.tenant_id = n.tenant_id AND r.enabled AND canopy_type_match(t.type, r.event_types)
		  AND (r.site_id IS NULL OR r.site_id = ANY(site.ancestors))),
	hits AS (
		SELECT DISTINCT ON (ins.id) ins.id AS ev, ins.event_id, ins.camera_key, ins.camera_id,
			ins.type, ins.at, ins.body, r.id AS rule_id, r.severity, r.processing_s,
			r.comment_required, r.auto_ack_s, r.policy_id, site.timezone
		FROM ins JOIN rules r ON r.etype = ins.type, site
		WHERE (r.camera_id IS NULL OR r.camera_id = ins.camera_id)
		  AND (coalesce(jsonb_array_length(r.schedule), 0) = 0
		       OR canopy_schedule_armed(r.schedule, ins.at, site.timezone))
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
	-- canopy_alarm_json(a, site_path, camera_name), written out: no call per alarm
	shown AS (SELECT r.*, jsonb_build_object('id', r.id, 'tenant_id', r.tenant_id, 'rule_id', r.rule_id,
			'type', r.type, 'severity', r.severity, 'state', r.state,
			'site_id', r.site_id, 'site_path', site.path,
			'node_id', r.node_id, 'camera_id', r.camera_id, 'camera', r.camera_key,
			'camera_name', c.name,
			'event_id', r.event_ref,
			'time', to_char(r.event_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
			'created_at', r.created_at, 'deadline', r.deadline, 'auto_ack_at', r.auto_ack_at,
			'comment_required', r.comment_required, 'level', r.level, 'level_due', r.level_due,
			'forwarded', r.forwarded_at IS NOT NULL, 'from_child', r.origin_node,
			'handled_by', nullif(r.handled_by, ''), 'handled_at', r.handled_at,
			'comment', r.comment, 'version', r.version) || r.details AS js
		FROM raised r LEFT JOIN site ON true LEFT JOIN cameras c ON c.id = r.camera_id),
	asubs AS MATERIALIZED (
		SELECT w.id, w.min_severity FROM webhook_subscriptions w, site
		WHERE w.tenant_id = n.tenant_id AND w.enabled AND canopy_type_match('alarm.created', w.types)
		  AND (w.site_id IS NULL OR w.site_id = ANY(site.ancestors))),
	esubs AS MATERIALIZED (
		SELECT t.type AS etype, w.id FROM types t, site, webhook_subscriptions w
		WHERE w.tenant_id = n.tenant_id AND w.enabled AND w.min_severity = 0
		  AND canopy_type_match('event.' || t.type, w.types)
		  AND (w.site_id IS NULL OR w.site_id = ANY(site.ancestors))),
	fed AS (
		INSERT INTO feed (tenant_id, type, site_id, ancestors, camera_id, body)
		SELECT sh.tenant_id, 'alarm.created', sh.site_id, site.ancestors, sh.camera_id, sh.js
		FROM shown sh, site ORDER BY sh.event_id
		RETURNING 1),
	hooked AS (
		INSERT INTO webhook_outbox (tenant_id, subscription_id, type, payload, lease_owner,
			lease_until, next_at)
		-- jsonb_build_object('type', ..., 'timestamp', ..., 'data', js)::text, byte for byte,
		-- without copying the alarm into a new jsonb first
		SELECT sh.tenant_id, w.id, 'alarm.created', '{"data": ' || sh.js::text ||
			', "type": "alarm.created", "timestamp": "' || site.stamp || '"}',
			owner, lease_end, coalesce(lease_end, now())
		FROM shown sh JOIN asubs w ON sh.severity >= w.min_severity, site
		ORDER BY sh.event_id
		RETURNING *),
	-- Events themselves, for subscriptions that ask for event.<type>.
	ev_hooked AS (
		INSERT INTO webhook_outbox (tenant_id, subscription_id, type, payload, lease_owner,
			lease_until, next_at)
		SELECT ins.tenant_id, w.id, 'event.' || ins.type, jsonb_build_object('type', 'event.' || ins.type,
			'timestamp', site.stamp,
			'data', ins.body || jsonb_build_object('site_id', ins.site_id,
				'site_path', site.path, 'node_id', ins.node_id,
				'camera_id', ins.camera_id))::text, owner, lease_end, coalesce(lease_end, now())
		FROM ins JOIN esubs w ON w.etype = ins.type, site
		ORDER BY ins.id
		RETURNING *)
	SELECT (SELECT count(*) FROM shown),
		ARRAY(SELECT ROW(h.*)::webhook_outbox FROM (SELECT * FROM hooked UNION ALL SELECT * FROM ev_hooked) h),
		ARRAY(SELECT sh.id FROM shown sh WHERE sh.policy_id IS NOT NULL ORDER BY sh.event_id)
	INTO k, hooks, escalate;
	nh := cardinality(hooks);
	-- Level 1 of each alarm's escalation policy applies at once. (The query is planned on
	-- every run: skipped when there is nothing to escalate.)
	IF cardinality(escalate) > 0 THEN
		FOR a IN SELECT * FROM alarms WHERE id = ANY(escalate) ORDER BY created_at, event_id
		LOOP
			SELECT * INTO pol FROM escalation_policies WHERE id = a.policy_id;
			CONTINUE WHEN NOT FOUND OR jsonb_array_length(pol.levels) = 0;
			UPDATE alarms SET level = 1, level_due = CASE WHEN jsonb_array_length(pol.levels) > 1
				THEN now() + make_interval(secs => coalesce((pol.levels->0->>'timeout_s')::int, 60)) END
			WHERE id = a.id RETURNING * INTO a;
			PERFORM canopy_alarm_level(a, 1, pol.levels->0, 'timer');
		END LOOP;
	END IF;
	-- The counts first, then the messages leased to the caller (none without an owner).
	RETURN QUERY SELECT k, nh, NULL::bigint, NULL::uuid, NULL::uuid, NULL::text, NULL::text,
		NULL::text, NULL::int, NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::int;
	IF owner IS NOT NULL AND nh > 0 THEN
		RETURN QUERY SELECT NULL::int, NULL::int, o.id, o.tenant_id, o.subscription_id, o.msg_id,
			o.type, o.payload, o.attempts, (extract(epoch FROM o.retry_from) * 1000)::bigint,
			w.url, w.secret, CASE WHEN w.previous_secret_until > now() THEN w.previous_secret END,
			w.max_in_flight
		FROM unnest(hooks) o JOIN webhook_subscriptions w ON w.id = o.subscription_id
		ORDER BY o.id;
	END IF;
END $$;

-- The former signature, for callers that deliver nothing themselves (tests, tools): the
-- messages stay unleased for whichever instance claims them first.
DROP FUNCTION uplink_events(uuid, jsonb);
CREATE FUNCTION uplink_events(nid uuid, evs jsonb, OUT n_alarms int, OUT n_hooks int)
LANGUAGE sql AS $$
	SELECT s.n_alarms, s.n_hooks FROM uplink_store_events(nid, evs, NULL, 0) s
	WHERE s.n_alarms IS NOT NULL $$;
