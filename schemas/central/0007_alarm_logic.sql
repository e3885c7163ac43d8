-- 0007_alarm_logic.sql: events to alarms: rule matching, states and timers, escalation, alarms shared with parent and child centrals.

INSERT INTO permissions (name, description) VALUES
	('alarms.configure', 'create and change alarm rules and escalation policies');
UPDATE roles SET permissions = permissions || ARRAY['alarms.configure']
WHERE id = '00000000-0000-0000-0000-00000000a001';

-- Set by an instance configured with a parent (parent_url): alarms may be forwarded.
CREATE FUNCTION canopy_has_parent() RETURNS boolean LANGUAGE sql STABLE AS $$
	SELECT EXISTS (SELECT 1 FROM central_secrets WHERE name = 'parent_url' AND value <> '') $$;

-- How far back a user may look (seconds): the most generous role held, 0 with none.
CREATE FUNCTION canopy_depth_s(u uuid) RETURNS bigint LANGUAGE sql STABLE AS $$
	SELECT coalesce(max(r.archive_depth::bigint * CASE r.archive_depth_unit WHEN 'minutes' THEN 60
		WHEN 'hours' THEN 3600 ELSE 86400 END), 0)
	FROM grants g JOIN roles r ON r.id = g.role_id WHERE g.user_id = u $$;

-- What a child central tells its parent about an alarm (first the whole alarm, later its
-- changes); ids are kept, sites and nodes are mirrored upwards with the same ids.
CREATE FUNCTION canopy_alarm_link_json(a alarms) RETURNS jsonb LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', a.id, 'site_id', a.site_id, 'node_id', a.node_id,
		'camera', a.camera_key, 'type', a.type, 'severity', a.severity, 'state', a.state,
		'event_id', a.event_ref, 'event_at', a.event_at, 'deadline', a.deadline,
		'comment_required', a.comment_required, 'handled_by', a.handled_by,
		'handled_at', a.handled_at, 'comment', a.comment, 'details', a.details,
		'level', a.level) $$;

-- After an alarm's state changed: history, live feed, webhooks, and the other central
-- sharing it (never back to the side the change came from).
CREATE FUNCTION canopy_alarm_changed(a alarms, old_state text, src text, actor uuid, actor_name text, cmt text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO alarm_history (tenant_id, alarm_id, from_state, to_state, level, actor_id, actor_name, source, comment)
	VALUES (a.tenant_id, a.id, old_state, a.state, a.level, actor, coalesce(actor_name, ''), src, coalesce(cmt, ''));
	PERFORM canopy_feed_add(a, 'alarm.updated', NULL);
	PERFORM canopy_webhook_enqueue(a.tenant_id, 'alarm.updated',
		(SELECT s.ancestors FROM sites s WHERE s.id = a.site_id), a.severity, canopy_alarm_json(a), NULL);
	IF a.forwarded_at IS NOT NULL AND src <> 'parent' THEN
		INSERT INTO parent_outbox (kind, body) VALUES ('alarm', canopy_alarm_link_json(a));
		PERFORM pg_notify('canopy_parent_outbox', '');
	END IF;
	IF a.origin_node IS NOT NULL AND src <> 'child' THEN
		INSERT INTO child_outbox (node_id, kind, body) VALUES (a.origin_node, 'alarm.state',
			jsonb_build_object('id', a.id, 'state', a.state, 'handled_by', a.handled_by,
				'handled_at', a.handled_at, 'comment', a.comment));
		PERFORM pg_notify('canopy_child_outbox', a.origin_node::text);
	END IF;
END $$;

-- Applies one escalation level (lv, 1-based k) to an alarm: webhooks named there, the
-- parent central, and the roles called (in the live feed's notify).
CREATE FUNCTION canopy_alarm_level(a alarms, k int, lv jsonb, src text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	x jsonb;
	roles jsonb := '[]';
	note text := format('level %s', k);
BEGIN
	FOR x IN SELECT * FROM jsonb_array_elements(coalesce(lv->'notify', '[]'))
	LOOP
		IF x ? 'subscription_id' THEN
			PERFORM canopy_webhook_enqueue(a.tenant_id, 'alarm.escalated', NULL, a.severity,
				canopy_alarm_json(a), (x->>'subscription_id')::uuid);
		ELSIF x ? 'role_id' THEN
			roles := roles || jsonb_build_array(jsonb_build_object('role_id', x->'role_id',
				'role', (SELECT r.name FROM roles r WHERE r.id = (x->>'role_id')::uuid),
				'site_id', coalesce(x->'site_id', to_jsonb(a.site_id))));
		ELSIF (x->>'parent')::boolean THEN
			IF NOT canopy_has_parent() THEN
				note := note || '; not forwarded: this central has no parent';
			ELSIF a.forwarded_at IS NULL THEN
				UPDATE alarms SET forwarded_at = now() WHERE id = a.id RETURNING * INTO a;
				INSERT INTO parent_outbox (kind, body) VALUES ('alarm', canopy_alarm_link_json(a));
				PERFORM pg_notify('canopy_parent_outbox', '');
				note := note || '; forwarded to the parent central';
			END IF;
		END IF;
	END LOOP;
	INSERT INTO alarm_history (tenant_id, alarm_id, from_state, to_state, level, actor_name, source, comment)
	VALUES (a.tenant_id, a.id, a.state, a.state, k, 'system', src, note);
	PERFORM canopy_feed_add(a, 'alarm.escalated', roles);
END $$;

---------------------------------------------------------------------------------------
-- Events in: stored once, then alarms from the rules (one alarm per event: the most
-- severe matching rule), all in the caller's transaction. Returns the alarms raised.

DROP FUNCTION uplink_events(uuid, jsonb);
CREATE FUNCTION uplink_events(nid uuid, evs jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	a alarms;
	k int;
	hooks int;
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
	site AS (SELECT s.ancestors, s.timezone FROM sites s WHERE s.id = n.site_id),
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
	shown AS (SELECT r.*, canopy_alarm_json(ROW(r.*)::alarms) AS js FROM raised r),
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
				'site_path', canopy_site_path(ins.site_id), 'node_id', ins.node_id,
				'camera_id', ins.camera_id))::text
		FROM ins, site, webhook_subscriptions w
		WHERE w.tenant_id = ins.tenant_id AND w.enabled AND w.min_severity = 0
		  AND canopy_type_match('event.' || ins.type, w.types)
		  AND (w.site_id IS NULL OR w.site_id = ANY(site.ancestors))
		ORDER BY ins.id
		RETURNING 1)
	SELECT (SELECT count(*) FROM shown), (SELECT count(*) FROM hooked) + (SELECT count(*) FROM ev_hooked),
		ARRAY(SELECT sh.id FROM shown sh WHERE sh.policy_id IS NOT NULL ORDER BY sh.event_id)
	INTO k, hooks, escalate;
	IF k > 0 THEN
		PERFORM pg_notify('canopy_feed', '');
	END IF;
	IF hooks > 0 THEN
		PERFORM pg_notify('canopy_webhook', '');
	END IF;
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
	RETURN k;
END $$;

---------------------------------------------------------------------------------------
-- Timers: missed, auto-acknowledge, escalation. Any instance may run them (rows locked,
-- others skipped). Returns the alarms changed.

CREATE FUNCTION alarm_tick(lim int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	a alarms;
	old text;
	pol escalation_policies;
	k int := 0;
	nlev int;
BEGIN
	FOR a IN SELECT * FROM alarms WHERE state = 'new' AND deadline <= now()
		ORDER BY deadline LIMIT lim FOR UPDATE SKIP LOCKED
	LOOP
		UPDATE alarms SET state = 'missed', updated_at = now(), version = version + 1
		WHERE id = a.id RETURNING * INTO a;
		PERFORM canopy_alarm_changed(a, 'new', 'timer', NULL, 'system',
			'not handled within the processing time');
		k := k + 1;
	END LOOP;
	FOR a IN SELECT * FROM alarms WHERE state IN ('new', 'missed') AND auto_ack_at <= now()
		ORDER BY auto_ack_at LIMIT lim FOR UPDATE SKIP LOCKED
	LOOP
		old := a.state;
		UPDATE alarms SET state = 'accepted', handled_by = 'auto', handled_at = now(),
			comment = 'acknowledged automatically', level_due = NULL, updated_at = now(),
			version = version + 1
		WHERE id = a.id RETURNING * INTO a;
		PERFORM canopy_alarm_changed(a, old, 'auto', NULL, 'auto', 'acknowledged automatically');
		k := k + 1;
	END LOOP;
	FOR a IN SELECT * FROM alarms WHERE state IN ('new', 'missed') AND level_due <= now()
		ORDER BY level_due LIMIT lim FOR UPDATE SKIP LOCKED
	LOOP
		SELECT * INTO pol FROM escalation_policies WHERE id = a.policy_id;
		nlev := coalesce(jsonb_array_length(pol.levels), 0);
		IF nlev <= a.level THEN
			UPDATE alarms SET level_due = NULL WHERE id = a.id;
			CONTINUE;
		END IF;
		UPDATE alarms SET level = a.level + 1,
			level_due = CASE WHEN nlev > a.level + 1 THEN now() + make_interval(secs =>
				coalesce((pol.levels->a.level->>'timeout_s')::int, 60)) END,
			updated_at = now(), version = version + 1
		WHERE id = a.id RETURNING * INTO a;
		PERFORM canopy_alarm_level(a, a.level, pol.levels->(a.level - 1), 'timer');
		PERFORM canopy_webhook_enqueue(a.tenant_id, 'alarm.updated',
			(SELECT s.ancestors FROM sites s WHERE s.id = a.site_id), a.severity, canopy_alarm_json(a), NULL);
		k := k + 1;
	END LOOP;
	RETURN k;
END $$;

-- Retention: events and closed alarms older than keep_s; the feed and the delivery log
-- older than feed_s. Batched so a big backlog never holds locks for long.
CREATE FUNCTION alarm_retention(keep_s bigint, log_s bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	k int;
	total int := 0;
BEGIN
	DELETE FROM events WHERE id IN (SELECT id FROM events
		WHERE at < now() - make_interval(secs => keep_s) LIMIT 10000);
	GET DIAGNOSTICS k = ROW_COUNT; total := total + k;
	DELETE FROM alarms WHERE id IN (SELECT id FROM alarms WHERE created_at < now() - make_interval(secs => keep_s)
		AND state IN ('accepted', 'false', 'ignored', 'resolved') LIMIT 10000);
	GET DIAGNOSTICS k = ROW_COUNT; total := total + k;
	DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
		WHERE at < now() - make_interval(secs => log_s) LIMIT 10000);
	GET DIAGNOSTICS k = ROW_COUNT; total := total + k;
	DELETE FROM parent_outbox WHERE created_at < now() - make_interval(secs => keep_s);
	DELETE FROM child_outbox WHERE created_at < now() - make_interval(secs => keep_s);
	RETURN total;
END $$;

---------------------------------------------------------------------------------------
-- Alarms shared along the tree.

-- At the parent: alarms (or their changes) forwarded by child central nid.
CREATE FUNCTION uplink_alarms(nid uuid, items jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	x jsonb;
	a alarms;
	old text;
	sid uuid;
	nd uuid;
	k int := 0;
BEGIN
	SELECT * INTO n FROM nodes WHERE id = nid;
	FOR x IN SELECT * FROM jsonb_array_elements(items)
	LOOP
		CONTINUE WHEN NOT (x->>'state' IN ('new', 'accepted', 'false', 'ignored', 'missed', 'resolved'));
		SELECT * INTO a FROM alarms WHERE id = (x->>'id')::uuid FOR UPDATE;
		IF NOT FOUND THEN
			-- Mirrored sites and nodes keep their ids; anything unknown lands where the child is.
			SELECT s.id INTO sid FROM sites s WHERE s.id = (x->>'site_id')::uuid AND s.tenant_id = n.tenant_id;
			SELECT m.id INTO nd FROM nodes m WHERE m.id = (x->>'node_id')::uuid AND m.tenant_id = n.tenant_id;
			INSERT INTO alarms (id, tenant_id, event_ref, node_id, site_id, camera_id, camera_key, type,
				severity, state, event_at, deadline, comment_required, origin_node, handled_by,
				handled_at, comment, details)
			VALUES ((x->>'id')::uuid, n.tenant_id, coalesce(x->>'event_id', ''), coalesce(nd, nid),
				coalesce(sid, n.site_id),
				(SELECT c.id FROM cameras c WHERE c.node_id = nd AND c.key = x->>'camera'),
				coalesce(x->>'camera', ''), x->>'type', coalesce((x->>'severity')::int, 3), x->>'state',
				coalesce((x->>'event_at')::timestamptz, now()),
				coalesce((x->>'deadline')::timestamptz, now() + interval '5 minutes'),
				coalesce((x->>'comment_required')::boolean, false), nid,
				coalesce(x->>'handled_by', ''), (x->>'handled_at')::timestamptz,
				coalesce(x->>'comment', ''), coalesce(x->'details', '{}'))
			RETURNING * INTO a;
			INSERT INTO alarm_history (tenant_id, alarm_id, from_state, to_state, level, actor_name, source, comment)
			VALUES (a.tenant_id, a.id, a.state, a.state, (x->>'level')::int, n.name, 'child',
				format('escalated from child central %s', n.name));
			PERFORM canopy_feed_add(a, 'alarm.created', NULL);
			PERFORM canopy_webhook_enqueue(a.tenant_id, 'alarm.created',
				(SELECT s.ancestors FROM sites s WHERE s.id = a.site_id), a.severity, canopy_alarm_json(a), NULL);
		ELSIF a.origin_node = nid AND a.state <> x->>'state' THEN
			old := a.state;
			UPDATE alarms SET state = x->>'state', handled_by = coalesce(x->>'handled_by', ''),
				handled_at = (x->>'handled_at')::timestamptz, comment = coalesce(x->>'comment', ''),
				updated_at = now(), version = version + 1
			WHERE id = a.id RETURNING * INTO a;
			PERFORM canopy_alarm_changed(a, old, 'child', NULL, a.handled_by, a.comment);
		END IF;
		k := k + 1;
	END LOOP;
	RETURN k;
END $$;

-- At the child: state changes made at the parent to alarms this central forwarded.
CREATE FUNCTION parent_alarm_states(items jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	x jsonb;
	a alarms;
	old text;
	k int := 0;
BEGIN
	FOR x IN SELECT * FROM jsonb_array_elements(items)
	LOOP
		CONTINUE WHEN NOT (x->>'state' IN ('new', 'accepted', 'false', 'ignored', 'missed', 'resolved'));
		SELECT * INTO a FROM alarms WHERE id = (x->>'id')::uuid AND forwarded_at IS NOT NULL FOR UPDATE;
		CONTINUE WHEN NOT FOUND OR a.state = x->>'state';
		old := a.state;
		UPDATE alarms SET state = x->>'state',
			handled_by = coalesce(x->>'handled_by', '') || ' (at the parent central)',
			handled_at = coalesce((x->>'handled_at')::timestamptz, now()),
			comment = coalesce(x->>'comment', ''), level_due = NULL,
			updated_at = now(), version = version + 1
		WHERE id = a.id RETURNING * INTO a;
		PERFORM canopy_alarm_changed(a, old, 'parent', NULL, a.handled_by, a.comment);
		k := k + 1;
	END LOOP;
	RETURN k;
END $$;

---------------------------------------------------------------------------------------
-- API: events

CREATE FUNCTION api_events_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	depth timestamptz := now() - make_interval(secs => canopy_depth_s(u));
BEGIN
	RETURN QUERY WITH v AS (
		SELECT e.* FROM events e LEFT JOIN sites s ON s.id = e.site_id
		WHERE e.tenant_id = t AND e.at >= depth
		  AND (q->>'site_id' IS NULL OR (q->>'site_id')::uuid = ANY(s.ancestors))
		  AND (q->>'camera_id' IS NULL OR e.camera_id = (q->>'camera_id')::uuid)
		  AND (q->>'node_id' IS NULL OR e.node_id = (q->>'node_id')::uuid)
		  AND (q->>'type' IS NULL OR canopy_type_match(e.type, ARRAY[q->>'type']))
		  AND (q->>'since' IS NULL OR e.at >= (q->>'since')::timestamptz)
		  AND (q->>'until' IS NULL OR e.at < (q->>'until')::timestamptz)
		  AND (CASE WHEN e.camera_id IS NULL THEN canopy_can(u, 'events.read', s.ancestors)
			ELSE canopy_can_camera(u, 'events.read', e.camera_id, s.ancestors) END))
	SELECT 200, NULL::text, api_page((SELECT json_agg(json_build_object('id', p.id,
		'event_id', p.event_id, 'type', p.type, 'at', p.at, 'received_at', p.received_at,
		'site_id', p.site_id, 'site_path', canopy_site_path(p.site_id), 'node_id', p.node_id,
		'camera_id', p.camera_id, 'camera', p.camera_key, 'body', p.body) ORDER BY p.at DESC, p.id DESC)
		FROM (SELECT * FROM v ORDER BY v.at DESC, v.id DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

---------------------------------------------------------------------------------------
-- API: alarms

CREATE FUNCTION api_alarm_visible(t uuid, u uuid, aid uuid, p text) RETURNS alarms
LANGUAGE plpgsql AS $$
DECLARE
	a alarms;
	anc uuid[];
BEGIN
	SELECT x.* INTO a FROM alarms x WHERE x.id = aid AND x.tenant_id = t;
	IF FOUND THEN
		SELECT s.ancestors INTO anc FROM sites s WHERE s.id = a.site_id;
	END IF;
	IF a.id IS NULL OR NOT (CASE WHEN a.camera_id IS NULL THEN canopy_can(u, 'events.read', anc)
			ELSE canopy_can_camera(u, 'events.read', a.camera_id, anc) END)
	   OR a.created_at < now() - make_interval(secs => canopy_depth_s(u)) THEN
		PERFORM api_fail(404, 'no such alarm (or not visible to you)');
	END IF;
	IF p <> 'events.read' AND NOT (CASE WHEN a.camera_id IS NULL THEN canopy_can(u, p, anc)
			ELSE canopy_can_camera(u, p, a.camera_id, anc) END) THEN
		PERFORM api_fail(403, format('needs permission %s where this alarm is', p));
	END IF;
	RETURN a;
END $$;

CREATE FUNCTION api_alarms_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	depth timestamptz := now() - make_interval(secs => canopy_depth_s(u));
BEGIN
	IF q->>'state' IS NOT NULL AND NOT (q->>'state' IN ('open', 'new', 'accepted', 'false', 'ignored', 'missed', 'resolved')) THEN
		PERFORM api_fail(400, 'state must be open, new, accepted, false, ignored, missed or resolved');
	END IF;
	RETURN QUERY WITH v AS (
		SELECT a.* FROM alarms a LEFT JOIN sites s ON s.id = a.site_id
		WHERE a.tenant_id = t AND a.created_at >= depth
		  AND (q->>'state' IS NULL OR a.state = q->>'state'
			OR (q->>'state' = 'open' AND a.state IN ('new', 'missed')))
		  AND (q->>'site_id' IS NULL OR (q->>'site_id')::uuid = ANY(s.ancestors))
		  AND (q->>'camera_id' IS NULL OR a.camera_id = (q->>'camera_id')::uuid)
		  AND (q->>'type' IS NULL OR canopy_type_match(a.type, ARRAY[q->>'type']))
		  AND (q->>'min_severity' IS NULL OR a.severity >= (q->>'min_severity')::int)
		  AND (q->>'since' IS NULL OR a.created_at >= (q->>'since')::timestamptz)
		  AND (q->>'until' IS NULL OR a.created_at < (q->>'until')::timestamptz)
		  AND (CASE WHEN a.camera_id IS NULL THEN canopy_can(u, 'events.read', s.ancestors)
			ELSE canopy_can_camera(u, 'events.read', a.camera_id, s.ancestors) END))
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_alarm_json(p) ORDER BY p.created_at DESC, p.id)
		FROM (SELECT * FROM v ORDER BY v.created_at DESC, v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_alarms_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	a alarms := api_alarm_visible(t, u, id, 'events.read');
BEGIN
	RETURN QUERY SELECT 200, a.version::text, (canopy_alarm_json(a) || jsonb_build_object('history',
		coalesce((SELECT jsonb_agg(jsonb_build_object('at', h.at, 'from', h.from_state, 'to', h.to_state,
			'level', h.level, 'by', h.actor_name, 'user_id', h.actor_id, 'source', h.source,
			'comment', h.comment) ORDER BY h.id)
		FROM alarm_history h WHERE h.alarm_id = a.id AND h.tenant_id = t), '[]')))::json, NULL::text;
END $$;

-- A user's transition: new|missed -> accepted|false|ignored; any of those -> resolved.
CREATE FUNCTION api_alarms_transition(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	a alarms := api_alarm_visible(t, u, id, 'alarms.handle');
	want text := b->>'state';
	cmt text := coalesce(b->>'comment', '');
	old text := a.state;
	who text := (SELECT x.username FROM users x WHERE x.id = u);
BEGIN
	PERFORM api_check_version(a.version, ifm);
	IF NOT (want IN ('accepted', 'false', 'ignored', 'resolved')) THEN
		PERFORM api_fail(400, 'state must be accepted, false, ignored or resolved');
	END IF;
	IF want = 'resolved' AND NOT (old IN ('accepted', 'false', 'ignored', 'missed')) THEN
		PERFORM api_fail(409, format('an alarm that is %s cannot be resolved: accept, mark false or ignore it first', old));
	END IF;
	IF want <> 'resolved' AND NOT (old IN ('new', 'missed')) THEN
		PERFORM api_fail(409, format('the alarm is already %s (by %s)', old, coalesce(nullif(a.handled_by, ''), 'someone')));
	END IF;
	IF a.comment_required AND want <> 'resolved' AND length(btrim(cmt)) = 0 THEN
		PERFORM api_fail(400, 'this alarm''s rule requires a comment');
	END IF;
	UPDATE alarms x SET state = want, updated_at = now(), version = x.version + 1,
		handled_by = CASE WHEN want = 'resolved' THEN x.handled_by ELSE who END,
		handled_at = CASE WHEN want = 'resolved' THEN x.handled_at ELSE now() END,
		comment = CASE WHEN cmt = '' THEN x.comment ELSE cmt END, level_due = NULL
	WHERE x.id = a.id RETURNING * INTO a;
	PERFORM canopy_alarm_changed(a, old, 'user', u, who, cmt);
	RETURN QUERY SELECT 200, a.version::text, canopy_alarm_json(a)::json,
		format('%s -> %s', old, want);
END $$;

---------------------------------------------------------------------------------------
-- API: escalation policies

CREATE FUNCTION api_policy_check(t uuid, levels jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	lv jsonb;
	x jsonb;
	i int := 0;
BEGIN
	IF jsonb_array_length(levels) < 1 OR jsonb_array_length(levels) > 10 THEN
		PERFORM api_fail(400, 'levels: 1 to 10 levels');
	END IF;
	FOR lv IN SELECT * FROM jsonb_array_elements(levels)
	LOOP
		i := i + 1;
		IF jsonb_typeof(lv) <> 'object' OR jsonb_typeof(lv->'timeout_s') <> 'number'
		   OR (lv->>'timeout_s')::numeric NOT BETWEEN 1 AND 604800 OR (lv->>'timeout_s')::numeric % 1 <> 0 THEN
			PERFORM api_fail(400, format('levels[%s]: needs timeout_s, whole seconds from 1 to 604800', i));
		END IF;
		IF lv ? 'notify' AND (jsonb_typeof(lv->'notify') <> 'array' OR jsonb_array_length(lv->'notify') > 20) THEN
			PERFORM api_fail(400, format('levels[%s]: notify must be an array of at most 20 targets', i));
		END IF;
		IF EXISTS (SELECT 1 FROM jsonb_object_keys(lv) k WHERE k NOT IN ('timeout_s', 'notify')) THEN
			PERFORM api_fail(400, format('levels[%s]: only timeout_s and notify are allowed', i));
		END IF;
		FOR x IN SELECT * FROM jsonb_array_elements(coalesce(lv->'notify', '[]'))
		LOOP
			IF jsonb_typeof(x) <> 'object' THEN
				PERFORM api_fail(400, format('levels[%s].notify: each target is an object', i));
			ELSIF x ? 'role_id' THEN
				IF (x->>'role_id') !~ '^[0-9a-f-]{36}$' OR NOT EXISTS (SELECT 1 FROM roles r
					WHERE r.id = (x->>'role_id')::uuid AND (r.tenant_id IS NULL OR r.tenant_id = t)) THEN
					PERFORM api_fail(404, format('levels[%s].notify: no such role %s', i, x->>'role_id'));
				END IF;
				IF x->>'site_id' IS NOT NULL AND ((x->>'site_id') !~ '^[0-9a-f-]{36}$' OR NOT EXISTS (
					SELECT 1 FROM sites s WHERE s.id = (x->>'site_id')::uuid AND s.tenant_id = t)) THEN
					PERFORM api_fail(404, format('levels[%s].notify: no such site %s', i, x->>'site_id'));
				END IF;
			ELSIF x ? 'subscription_id' THEN
				IF (x->>'subscription_id') !~ '^[0-9a-f-]{36}$' OR NOT EXISTS (SELECT 1 FROM webhook_subscriptions w
					WHERE w.id = (x->>'subscription_id')::uuid AND w.tenant_id = t) THEN
					PERFORM api_fail(404, format('levels[%s].notify: no such webhook subscription %s', i, x->>'subscription_id'));
				END IF;
			ELSIF x->'parent' IS DISTINCT FROM 'true'::jsonb THEN
				PERFORM api_fail(400, format('levels[%s].notify: a target names role_id (and site_id), subscription_id, or parent: true', i));
			END IF;
		END LOOP;
	END LOOP;
END $$;

CREATE FUNCTION canopy_policy_json(p escalation_policies) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', p.id, 'name', p.name, 'levels', p.levels,
		'created_at', p.created_at, 'updated_at', p.updated_at, 'version', p.version) $$;

CREATE FUNCTION api_policies_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_policy_json(p) ORDER BY p.name)
		FROM (SELECT * FROM escalation_policies x WHERE x.tenant_id = t ORDER BY x.name
		      LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM escalation_policies x WHERE x.tenant_id = t), q), NULL::text;
END $$;

CREATE FUNCTION api_policies_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	p escalation_policies;
BEGIN
	PERFORM api_require_tenant_perm(u, 'alarms.configure');
	PERFORM api_policy_check(t, b->'levels');
	INSERT INTO escalation_policies (tenant_id, name, levels) VALUES (t, b->>'name', b->'levels') RETURNING * INTO p;
	RETURN QUERY SELECT 201, p.version::text, canopy_policy_json(p), p.id::text;
END $$;

CREATE FUNCTION api_policy_get(t uuid, pid uuid) RETURNS escalation_policies
LANGUAGE plpgsql AS $$
DECLARE
	p escalation_policies;
BEGIN
	SELECT * INTO p FROM escalation_policies x WHERE x.id = pid AND x.tenant_id = t;
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such escalation policy'); END IF;
	RETURN p;
END $$;

CREATE FUNCTION api_policies_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	p escalation_policies := api_policy_get(t, id);
BEGIN
	RETURN QUERY SELECT 200, p.version::text, canopy_policy_json(p), NULL::text;
END $$;

CREATE FUNCTION api_policies_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	p escalation_policies := api_policy_get(t, id);
BEGIN
	PERFORM api_require_tenant_perm(u, 'alarms.configure');
	PERFORM api_check_version(p.version, ifm);
	IF b ? 'levels' THEN PERFORM api_policy_check(t, b->'levels'); END IF;
	UPDATE escalation_policies x SET name = coalesce(b->>'name', x.name), levels = coalesce(b->'levels', x.levels),
		updated_at = now(), version = x.version + 1
	WHERE x.id = p.id RETURNING * INTO p;
	RETURN QUERY SELECT 200, p.version::text, canopy_policy_json(p), NULL::text;
END $$;

CREATE FUNCTION api_policies_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	p escalation_policies := api_policy_get(t, id);
BEGIN
	PERFORM api_require_tenant_perm(u, 'alarms.configure');
	PERFORM api_check_version(p.version, ifm);
	IF EXISTS (SELECT 1 FROM alarm_rules r WHERE r.policy_id = p.id) THEN
		PERFORM api_fail(409, 'alarm rules still use this policy');
	END IF;
	DELETE FROM escalation_policies x WHERE x.id = p.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

---------------------------------------------------------------------------------------
-- API: alarm rules

CREATE FUNCTION api_rule_check(t uuid, b jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	w jsonb;
	i int := 0;
BEGIN
	IF b->>'site_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sites s WHERE s.id = (b->>'site_id')::uuid AND s.tenant_id = t) THEN
		PERFORM api_fail(404, 'site_id: no such site');
	END IF;
	IF b->>'camera_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cameras c WHERE c.id = (b->>'camera_id')::uuid AND c.tenant_id = t) THEN
		PERFORM api_fail(404, 'camera_id: no such camera');
	END IF;
	IF b->>'policy_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM escalation_policies p WHERE p.id = (b->>'policy_id')::uuid AND p.tenant_id = t) THEN
		PERFORM api_fail(404, 'policy_id: no such escalation policy');
	END IF;
	IF b->>'site_id' IS NOT NULL AND b->>'camera_id' IS NOT NULL THEN
		PERFORM api_fail(400, 'a rule is for a site subtree or for one camera, not both');
	END IF;
	IF b ? 'event_types' AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(b->'event_types') e
		WHERE e !~ '^([a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?|\*)$') THEN
		PERFORM api_fail(400, 'event_types: each is an event type (motion, analytics.plate) or a prefix ending in .* or *');
	END IF;
	IF jsonb_typeof(b->'schedule') = 'array' THEN
		FOR w IN SELECT * FROM jsonb_array_elements(b->'schedule')
		LOOP
			i := i + 1;
			IF jsonb_typeof(w) <> 'object' OR jsonb_typeof(w->'days') <> 'array'
			   OR jsonb_array_length(w->'days') = 0
			   OR EXISTS (SELECT 1 FROM jsonb_array_elements(w->'days') d WHERE jsonb_typeof(d) <> 'number' OR d::text NOT IN ('1','2','3','4','5','6','7'))
			   OR coalesce(w->>'from', '') !~ '^([01]\d|2[0-3]):[0-5]\d$'
			   OR coalesce(w->>'to', '') !~ '^(([01]\d|2[0-3]):[0-5]\d|24:00)$' THEN
				PERFORM api_fail(400, format('schedule[%s]: needs days (1 = Monday .. 7) and from/to as HH:MM', i));
			END IF;
		END LOOP;
	END IF;
END $$;

CREATE FUNCTION canopy_rule_json(r alarm_rules) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', r.id, 'name', r.name, 'site_id', r.site_id, 'camera_id', r.camera_id,
		'event_types', r.event_types, 'severity', r.severity, 'schedule', r.schedule,
		'processing_s', r.processing_s, 'comment_required', r.comment_required,
		'auto_ack_s', r.auto_ack_s, 'policy_id', r.policy_id, 'enabled', r.enabled,
		'created_at', r.created_at, 'updated_at', r.updated_at, 'version', r.version) $$;

CREATE FUNCTION api_rules_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_rule_json(p) ORDER BY p.name, p.id)
		FROM (SELECT * FROM alarm_rules x WHERE x.tenant_id = t ORDER BY x.name, x.id
		      LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM alarm_rules x WHERE x.tenant_id = t), q), NULL::text;
END $$;

CREATE FUNCTION api_rules_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r alarm_rules;
BEGIN
	PERFORM api_require_tenant_perm(u, 'alarms.configure');
	PERFORM api_rule_check(t, b);
	INSERT INTO alarm_rules (tenant_id, name, site_id, camera_id, event_types, severity, schedule,
		processing_s, comment_required, auto_ack_s, policy_id, enabled)
	VALUES (t, b->>'name', (b->>'site_id')::uuid, (b->>'camera_id')::uuid,
		ARRAY(SELECT jsonb_array_elements_text(b->'event_types')), coalesce((b->>'severity')::int, 3),
		CASE WHEN jsonb_typeof(b->'schedule') = 'array' THEN b->'schedule' END,
		coalesce((b->>'processing_s')::int, 300), coalesce((b->>'comment_required')::boolean, false),
		(b->>'auto_ack_s')::int, (b->>'policy_id')::uuid, coalesce((b->>'enabled')::boolean, true))
	RETURNING * INTO r;
	RETURN QUERY SELECT 201, r.version::text, canopy_rule_json(r), r.id::text;
END $$;

CREATE FUNCTION api_rule_get(t uuid, rid uuid) RETURNS alarm_rules
LANGUAGE plpgsql AS $$
DECLARE
	r alarm_rules;
BEGIN
	SELECT * INTO r FROM alarm_rules x WHERE x.id = rid AND x.tenant_id = t;
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such alarm rule'); END IF;
	RETURN r;
END $$;

CREATE FUNCTION api_rules_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r alarm_rules := api_rule_get(t, id);
BEGIN
	RETURN QUERY SELECT 200, r.version::text, canopy_rule_json(r), NULL::text;
END $$;

CREATE FUNCTION api_rules_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r alarm_rules := api_rule_get(t, id);
BEGIN
	PERFORM api_require_tenant_perm(u, 'alarms.configure');
	PERFORM api_check_version(r.version, ifm);
	PERFORM api_rule_check(t, jsonb_build_object('site_id', CASE WHEN b ? 'site_id' THEN b->'site_id' ELSE to_jsonb(r.site_id) END,
		'camera_id', CASE WHEN b ? 'camera_id' THEN b->'camera_id' ELSE to_jsonb(r.camera_id) END) || (b - 'site_id' - 'camera_id'));
	UPDATE alarm_rules x SET name = coalesce(b->>'name', x.name),
		site_id = CASE WHEN b ? 'site_id' THEN (b->>'site_id')::uuid ELSE x.site_id END,
		camera_id = CASE WHEN b ? 'camera_id' THEN (b->>'camera_id')::uuid ELSE x.camera_id END,
		event_types = CASE WHEN b ? 'event_types' THEN ARRAY(SELECT jsonb_array_elements_text(b->'event_types')) ELSE x.event_types END,
		severity = coalesce((b->>'severity')::int, x.severity),
		schedule = CASE WHEN b ? 'schedule' THEN CASE WHEN jsonb_typeof(b->'schedule') = 'array' THEN b->'schedule' END ELSE x.schedule END,
		processing_s = coalesce((b->>'processing_s')::int, x.processing_s),
		comment_required = coalesce((b->>'comment_required')::boolean, x.comment_required),
		auto_ack_s = CASE WHEN b ? 'auto_ack_s' THEN (b->>'auto_ack_s')::int ELSE x.auto_ack_s END,
		policy_id = CASE WHEN b ? 'policy_id' THEN (b->>'policy_id')::uuid ELSE x.policy_id END,
		enabled = coalesce((b->>'enabled')::boolean, x.enabled),
		updated_at = now(), version = x.version + 1
	WHERE x.id = r.id RETURNING * INTO r;
	RETURN QUERY SELECT 200, r.version::text, canopy_rule_json(r), NULL::text;
END $$;

CREATE FUNCTION api_rules_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r alarm_rules := api_rule_get(t, id);
BEGIN
	PERFORM api_require_tenant_perm(u, 'alarms.configure');
	PERFORM api_check_version(r.version, ifm);
	DELETE FROM alarm_rules x WHERE x.id = r.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;
