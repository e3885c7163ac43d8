-- 0004_alarms.sql: alarms, their rules and escalation policies, webhook subscriptions and outbox, the live feed, parent/child alarm links.
-- Severity is 1 (info) to 5 (critical). Durations are seconds. Every table is per tenant.

-- Where each event happened, resolved once at arrival (site moves later do not rewrite history).
ALTER TABLE events ADD COLUMN site_id uuid, ADD COLUMN camera_id uuid;
CREATE INDEX events_tenant_site ON events (tenant_id, site_id, at DESC);
CREATE INDEX events_camera_at ON events (camera_id, at DESC) WHERE camera_id IS NOT NULL;
CREATE INDEX events_at ON events (at);

CREATE TABLE escalation_policies (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	-- [{"timeout_s": n, "notify": [{"role_id": r, "site_id": s|null} | {"subscription_id": w}
	--   | {"parent": true}]}, ...]: level 1 applies when the alarm is raised; level k+1
	-- when level k's timeout passes with the alarm still unhandled.
	levels jsonb NOT NULL CHECK (jsonb_typeof(levels) = 'array'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE INDEX escalation_policies_tenant ON escalation_policies (tenant_id);

CREATE TABLE alarm_rules (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	-- Scope: the whole tenant (both NULL), a site subtree, or one camera.
	site_id uuid REFERENCES sites(id) ON DELETE CASCADE,
	camera_id uuid REFERENCES cameras(id) ON DELETE CASCADE,
	-- Event types that raise the alarm: exact names or prefixes ending in '*'.
	event_types text[] NOT NULL CHECK (cardinality(event_types) BETWEEN 1 AND 32),
	severity int NOT NULL DEFAULT 3 CHECK (severity BETWEEN 1 AND 5),
	-- Guard schedule: [{"days": [1..7 (Monday 1)], "from": "HH:MM", "to": "HH:MM"}] in the
	-- site's time zone (to < from spans midnight); NULL: always armed.
	schedule jsonb,
	processing_s int NOT NULL DEFAULT 300 CHECK (processing_s BETWEEN 1 AND 604800),
	comment_required boolean NOT NULL DEFAULT false,
	auto_ack_s int CHECK (auto_ack_s BETWEEN 1 AND 604800),
	policy_id uuid REFERENCES escalation_policies(id) ON DELETE SET NULL,
	enabled boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1,
	CHECK (site_id IS NULL OR camera_id IS NULL)
);
CREATE INDEX alarm_rules_tenant ON alarm_rules (tenant_id) WHERE enabled;

-- new -> accepted | false | ignored (handled); new -> missed (processing time passed, may
-- still be handled); handled or missed -> resolved (closed).
CREATE TABLE alarms (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	rule_id uuid REFERENCES alarm_rules(id) ON DELETE SET NULL,
	event_id bigint,  -- events.id here (NULL for alarms forwarded from a child central)
	event_ref text NOT NULL DEFAULT '', -- the event id at its source (edge), for receivers
	node_id uuid,
	site_id uuid,
	camera_id uuid,
	camera_key text NOT NULL DEFAULT '',
	type text NOT NULL,
	severity int NOT NULL,
	state text NOT NULL DEFAULT 'new'
		CHECK (state IN ('new', 'accepted', 'false', 'ignored', 'missed', 'resolved')),
	event_at timestamptz NOT NULL,   -- when it happened (edge clock, UTC)
	created_at timestamptz NOT NULL DEFAULT now(),
	deadline timestamptz NOT NULL,   -- handled by then, or missed
	auto_ack_at timestamptz,
	comment_required boolean NOT NULL DEFAULT false,
	policy_id uuid,
	level int NOT NULL DEFAULT 0,
	level_due timestamptz,           -- next escalation, NULL when none is left
	forwarded_at timestamptz,        -- sent up to our parent central
	origin_node uuid,                -- the child central it came from (kept in step with it)
	handled_by text NOT NULL DEFAULT '',
	handled_at timestamptz,
	comment text NOT NULL DEFAULT '',
	details jsonb NOT NULL DEFAULT '{}', -- plate, person, local time, region...
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE INDEX alarms_tenant_created ON alarms (tenant_id, created_at DESC);
CREATE INDEX alarms_open_deadline ON alarms (deadline) WHERE state = 'new';
CREATE INDEX alarms_auto_ack ON alarms (auto_ack_at) WHERE state IN ('new', 'missed') AND auto_ack_at IS NOT NULL;
CREATE INDEX alarms_level_due ON alarms (level_due) WHERE state IN ('new', 'missed') AND level_due IS NOT NULL;
CREATE INDEX alarms_site ON alarms (site_id);

-- Every transition with who and why (the API's audit log has the request as well).
CREATE TABLE alarm_history (
	id bigserial PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	alarm_id uuid NOT NULL REFERENCES alarms(id) ON DELETE CASCADE,
	at timestamptz NOT NULL DEFAULT now(),
	from_state text NOT NULL,
	to_state text NOT NULL,
	level int,
	actor_id uuid,
	actor_name text NOT NULL DEFAULT '',
	source text NOT NULL CHECK (source IN ('user', 'auto', 'timer', 'parent', 'child')),
	comment text NOT NULL DEFAULT ''
);
CREATE INDEX alarm_history_alarm ON alarm_history (alarm_id, id);

CREATE TABLE webhook_subscriptions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	url text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2048),
	-- Standard Webhooks secret (whsec_ + base64); central signs with it, so it is kept.
	secret text NOT NULL,
	-- Message types (alarm.created, alarm.updated, alarm.escalated, event.<type>): exact
	-- names or prefixes ending in '*'.
	types text[] NOT NULL CHECK (cardinality(types) BETWEEN 1 AND 64),
	site_id uuid REFERENCES sites(id) ON DELETE CASCADE,
	min_severity int NOT NULL DEFAULT 0 CHECK (min_severity BETWEEN 0 AND 5),
	max_in_flight int NOT NULL DEFAULT 8 CHECK (max_in_flight BETWEEN 1 AND 256),
	enabled boolean NOT NULL DEFAULT true,
	disabled_reason text NOT NULL DEFAULT '',
	disabled_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE INDEX webhook_subscriptions_tenant ON webhook_subscriptions (tenant_id) WHERE enabled;

-- The durable outbox: a row per message and subscription until delivered (then deleted,
-- its attempts stay in webhook_deliveries) or dead (kept for replay).
CREATE TABLE webhook_outbox (
	id bigserial PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	subscription_id uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
	-- webhook-id: the same on every attempt and replay
	msg_id text NOT NULL DEFAULT 'msg_' || replace(gen_random_uuid()::text, '-', ''),
	type text NOT NULL,
	payload text NOT NULL,  -- the exact body POSTed (signed as is)
	created_at timestamptz NOT NULL DEFAULT now(),
	state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
	attempts int NOT NULL DEFAULT 0,
	next_at timestamptz NOT NULL DEFAULT now(),
	lease_owner text,
	lease_until timestamptz,
	last_status int,
	last_error text NOT NULL DEFAULT '',
	dead_at timestamptz
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_at) WHERE state = 'pending';
CREATE INDEX webhook_outbox_dead ON webhook_outbox (tenant_id, subscription_id) WHERE state = 'dead';
CREATE INDEX webhook_outbox_sub ON webhook_outbox (subscription_id);

CREATE TABLE webhook_deliveries (
	id bigserial PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	subscription_id uuid NOT NULL REFERENCES webhook_subscriptions(id) ON DELETE CASCADE,
	msg_id text NOT NULL,
	type text NOT NULL,
	attempt int NOT NULL,
	at timestamptz NOT NULL DEFAULT now(),
	status int,            -- HTTP status; NULL when no answer came
	latency_ms int,
	error text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_deliveries_sub ON webhook_deliveries (subscription_id, id DESC);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at);

-- What the live stream (/api/v1/stream) sends: alarm changes, in commit order per
-- instance's read. The id is the client's resume cursor.
CREATE TABLE feed (
	id bigserial PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	at timestamptz NOT NULL DEFAULT now(),
	type text NOT NULL,        -- alarm.created, alarm.updated, alarm.escalated
	site_id uuid,
	ancestors uuid[] NOT NULL DEFAULT '{}', -- the site's path then, for grant checks
	camera_id uuid,
	-- users holding one of these roles at or above the site are being called (escalation)
	notify jsonb,
	body jsonb NOT NULL
);
CREATE INDEX feed_at ON feed (at);

-- Messages for our parent central (alarms forwarded, their later changes), in order.
CREATE TABLE parent_outbox (
	seq bigserial PRIMARY KEY,
	kind text NOT NULL,
	body jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Messages for a child central (state changes made here to alarms it forwarded), in order.
CREATE TABLE child_outbox (
	seq bigserial PRIMARY KEY,
	node_id uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
	kind text NOT NULL,
	body jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX child_outbox_node ON child_outbox (node_id, seq);

---------------------------------------------------------------------------------------
-- Shared pieces

-- Does type t match any pattern (exact, or prefix ending in '*')?
CREATE FUNCTION canopy_type_match(t text, patterns text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
	SELECT EXISTS (SELECT 1 FROM unnest(patterns) p
		WHERE p = t OR p = '*' OR (right(p, 1) = '*' AND left(t, length(p) - 1) = left(p, -1))) $$;

-- Is a guard schedule armed at instant at in time zone tz? NULL schedule: always.
CREATE FUNCTION canopy_schedule_armed(sched jsonb, at timestamptz, tz text) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT sched IS NULL OR jsonb_array_length(sched) = 0 OR EXISTS (
		SELECT 1 FROM jsonb_array_elements(sched) w,
			LATERAL (SELECT (at AT TIME ZONE coalesce(tz, 'UTC')) AS lt) l,
			LATERAL (SELECT (w->>'from')::time AS f, (w->>'to')::time AS tt) ft
		WHERE CASE WHEN ft.f <= ft.tt THEN
			extract(isodow FROM l.lt)::int IN (SELECT jsonb_array_elements_text(w->'days')::int)
			AND l.lt::time >= ft.f AND l.lt::time < ft.tt
		ELSE -- spans midnight: the evening part on a listed day, the morning part the day after
			(extract(isodow FROM l.lt)::int IN (SELECT jsonb_array_elements_text(w->'days')::int)
			 AND l.lt::time >= ft.f)
			OR (((extract(isodow FROM l.lt)::int + 5) % 7 + 1) IN (SELECT jsonb_array_elements_text(w->'days')::int)
			 AND l.lt::time < ft.tt)
		END) $$;

-- "HQ / North / Store 12" for a site.
CREATE FUNCTION canopy_site_path(sid uuid) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT string_agg(s.name, ' / ' ORDER BY a.i)
	FROM sites x, unnest(x.ancestors) WITH ORDINALITY a(id, i) JOIN sites s ON s.id = a.id
	WHERE x.id = sid $$;

-- An instant as camera-local time with its offset, e.g. 2026-11-21T18:04:05.120+01:00.
CREATE FUNCTION canopy_local_time(at timestamptz, tz text) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT to_char(at AT TIME ZONE z, 'YYYY-MM-DD"T"HH24:MI:SS.MS') ||
		CASE WHEN off < interval '0' THEN '-' ELSE '+' END ||
		to_char(abs(extract(epoch FROM off))::int / 3600, 'FM00') || ':' ||
		to_char(abs(extract(epoch FROM off))::int % 3600 / 60, 'FM00')
	FROM (SELECT coalesce(tz, 'UTC') AS z) zz,
		LATERAL (SELECT (at AT TIME ZONE zz.z) - (at AT TIME ZONE 'UTC') AS off) o $$;

-- The alarm as the API, the live stream and webhooks show it.
CREATE FUNCTION canopy_alarm_json(a alarms) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('id', a.id, 'tenant_id', a.tenant_id, 'rule_id', a.rule_id,
		'type', a.type, 'severity', a.severity, 'state', a.state,
		'site_id', a.site_id, 'site_path', canopy_site_path(a.site_id),
		'node_id', a.node_id, 'camera_id', a.camera_id, 'camera', a.camera_key,
		'camera_name', (SELECT c.name FROM cameras c WHERE c.id = a.camera_id),
		'event_id', a.event_ref,
		'time', to_char(a.event_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		'created_at', a.created_at, 'deadline', a.deadline, 'auto_ack_at', a.auto_ack_at,
		'comment_required', a.comment_required, 'level', a.level, 'level_due', a.level_due,
		'forwarded', a.forwarded_at IS NOT NULL, 'from_child', a.origin_node,
		'handled_by', nullif(a.handled_by, ''), 'handled_at', a.handled_at,
		'comment', a.comment, 'version', a.version) || a.details $$;

-- Queues a webhook message for every enabled subscription that wants it (or only for
-- subscription only_sub, whatever its filters). Returns how many were queued.
CREATE FUNCTION canopy_webhook_enqueue(t uuid, typ text, anc uuid[], sev int, data jsonb, only_sub uuid)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	k int;
BEGIN
	INSERT INTO webhook_outbox (tenant_id, subscription_id, type, payload)
	SELECT t, w.id, typ, jsonb_build_object('type', typ,
		'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		'data', data)::text
	FROM webhook_subscriptions w
	WHERE w.tenant_id = t AND w.enabled
	  AND (CASE WHEN only_sub IS NOT NULL THEN w.id = only_sub
		ELSE canopy_type_match(typ, w.types) AND coalesce(sev, 0) >= w.min_severity
		     AND (w.site_id IS NULL OR w.site_id = ANY(anc)) END);
	GET DIAGNOSTICS k = ROW_COUNT;
	IF k > 0 THEN
		PERFORM pg_notify('canopy_webhook', '');
	END IF;
	RETURN k;
END $$;

-- Adds an alarm change to the live feed and wakes the instances serving streams.
CREATE FUNCTION canopy_feed_add(a alarms, typ text, notify jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO feed (tenant_id, type, site_id, ancestors, camera_id, notify, body)
	VALUES (a.tenant_id, typ, a.site_id,
		coalesce((SELECT s.ancestors FROM sites s WHERE s.id = a.site_id), '{}'),
		a.camera_id, notify, canopy_alarm_json(a));
	PERFORM pg_notify('canopy_feed', '');
END $$;
