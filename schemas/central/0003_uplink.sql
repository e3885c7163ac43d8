-- 0003_uplink.sql: what the uplink does to the database: enrolment, presence, configuration, inventory, events.

-- Events received from nodes (edge outboxes, child centrals), idempotent by the sender's
-- event id. The alarms work decides what each event type leads to.
CREATE TABLE events (
	id bigserial PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	node_id uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
	event_id text NOT NULL,
	camera_key text NOT NULL DEFAULT '',
	type text NOT NULL,
	at timestamptz NOT NULL,
	body jsonb NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (node_id, event_id)
);
CREATE INDEX events_tenant_at ON events (tenant_id, at DESC);

-- First contact: a valid, unused, unexpired token binds the node to its public key.
CREATE FUNCTION uplink_enrol(token_hash text, pub bytea, kid text, k text, sw text, addr text)
RETURNS TABLE (node_id uuid, tenant_id uuid, site_id uuid, error text)
LANGUAGE plpgsql AS $$
DECLARE
	e enrolment_tokens;
	n nodes;
BEGIN
	SELECT * INTO e FROM enrolment_tokens x WHERE x.token_hash = decode(uplink_enrol.token_hash, 'hex') FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, 'unknown enrolment token'; RETURN;
	END IF;
	IF e.used_at IS NOT NULL THEN
		RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, 'enrolment token already used'; RETURN;
	END IF;
	IF e.expires_at <= now() THEN
		RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, 'enrolment token expired'; RETURN;
	END IF;
	SELECT * INTO n FROM nodes x WHERE x.id = e.node_id FOR UPDATE;
	IF n.state = 'revoked' THEN
		RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid, 'node is revoked'; RETURN;
	END IF;
	IF n.kind <> k THEN
		RETURN QUERY SELECT NULL::uuid, NULL::uuid, NULL::uuid,
			format('enrolment token is for a node of kind %s, not %s', n.kind, k); RETURN;
	END IF;
	UPDATE enrolment_tokens x SET used_at = now(), used_from = addr WHERE x.id = e.id;
	UPDATE nodes x SET public_key = pub, key_id = kid, enrolled_at = now(), software = sw,
		updated_at = now(), version = x.version + 1 WHERE x.id = n.id;
	INSERT INTO node_events (tenant_id, node_id, type, detail)
	VALUES (n.tenant_id, n.id, 'node.enrolled', jsonb_build_object('from', addr, 'key_id', kid));
	INSERT INTO audit_log (tenant_id, actor_name, client_type, source_addr, action, object_type, object_id, result)
	VALUES (n.tenant_id, n.name, 'uplink', addr, 'node.enrol', 'node', n.id::text, 'ok');
	RETURN QUERY SELECT n.id, n.tenant_id, n.site_id, NULL::text;
END $$;

-- The node is here (after a good hello), held by this instance.
CREATE FUNCTION uplink_online(nid uuid, inst text, sw text, addr text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	was text;
	t uuid;
BEGIN
	SELECT state, tenant_id INTO was, t FROM nodes WHERE id = nid FOR UPDATE;
	UPDATE nodes SET state = 'online', state_reason = 'connected from ' || addr,
		state_at = CASE WHEN was = 'online' THEN state_at ELSE now() END,
		last_seen = now(), instance_id = inst, software = sw
	WHERE id = nid;
	IF was IS DISTINCT FROM 'online' THEN
		INSERT INTO node_events (tenant_id, node_id, type, detail)
		VALUES (t, nid, 'node.online', jsonb_build_object('from', addr, 'was', was));
	END IF;
END $$;

-- Heartbeats of many nodes at once (an instance flushes them every few seconds).
CREATE FUNCTION uplink_heartbeats(ids uuid[], offsets bigint[], warn_ms bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO node_events (tenant_id, node_id, type, detail)
	SELECT n.tenant_id, n.id, 'node.clock_skew', jsonb_build_object('offset_ms', h.off, 'threshold_ms', warn_ms)
	FROM unnest(ids, offsets) AS h(id, off) JOIN nodes n ON n.id = h.id
	WHERE abs(h.off) > warn_ms AND (n.clock_offset_ms IS NULL OR abs(n.clock_offset_ms) <= warn_ms);
	UPDATE nodes n SET last_seen = now(), clock_offset_ms = h.off,
		state = CASE WHEN n.state = 'offline' THEN 'online' ELSE n.state END
	FROM unnest(ids, offsets) AS h(id, off)
	WHERE n.id = h.id AND n.state <> 'revoked';
END $$;

-- Nodes silent past the window go offline, each with an event. Mirrored nodes follow
-- their child central's presence (shown as stale), so only directly connected ones count.
CREATE FUNCTION uplink_sweep(offline_after_s int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	k int;
BEGIN
	WITH gone AS (
		UPDATE nodes SET state = 'offline', state_at = now(),
			state_reason = format('no heartbeat for %s s', offline_after_s)
		WHERE state = 'online' AND origin_node IS NULL
		  AND last_seen < now() - make_interval(secs => offline_after_s)
		RETURNING id, tenant_id, last_seen)
	INSERT INTO node_events (tenant_id, node_id, type, detail)
	SELECT tenant_id, id, 'node.offline', jsonb_build_object('last_seen', last_seen) FROM gone;
	GET DIAGNOSTICS k = ROW_COUNT;
	RETURN k;
END $$;

-- The configuration document for a node: its cameras (edge), or the cameras the parent
-- manages on every node mirrored through it (child central).
CREATE FUNCTION uplink_config(nid uuid) RETURNS TABLE (version bigint, doc json)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
BEGIN
	SELECT * INTO n FROM nodes WHERE id = nid;
	IF n.kind = 'edge' THEN
		IF NOT canopy_edge_managed(n) THEN
			RETURN; -- nothing to say yet: the edge's own cameras stay
		END IF;
		RETURN QUERY SELECT n.desired_version, json_build_object('version', n.desired_version,
			'cameras', coalesce((SELECT json_agg(c.desired || jsonb_build_object('id', c.key)
				|| CASE WHEN c.name <> '' THEN jsonb_build_object('name', c.name) ELSE '{}'::jsonb END
				ORDER BY c.key)
			FROM cameras c WHERE c.node_id = nid AND c.desired IS NOT NULL), '[]'));
	ELSIF n.kind = 'central' THEN
		RETURN QUERY SELECT n.desired_version, json_build_object('version', n.desired_version,
			'nodes', coalesce((SELECT json_agg(json_build_object('id', m.id,
				'cameras', coalesce((SELECT json_agg(json_build_object('key', c.key, 'name', c.name,
					'config', c.desired) ORDER BY c.key)
					FROM cameras c WHERE c.node_id = m.id AND c.desired IS NOT NULL
					AND c.origin IN ('central', 'parent')), '[]')) ORDER BY m.id)
			FROM nodes m WHERE m.origin_node = nid AND m.kind = 'edge'), '[]'));
	ELSE
		RETURN QUERY SELECT n.desired_version, json_build_object('version', n.desired_version);
	END IF;
END $$;

CREATE FUNCTION uplink_config_ack(nid uuid, v bigint, ok boolean, err text) RETURNS void
LANGUAGE sql AS $$
	UPDATE nodes SET applied_version = CASE WHEN ok THEN v ELSE applied_version END,
		applied_at = CASE WHEN ok THEN now() ELSE applied_at END,
		apply_error = CASE WHEN ok THEN '' ELSE coalesce(err, 'refused') END
	WHERE id = nid $$;

-- A child central applies its parent's document: cameras the parent manages, per node.
-- Returns the nodes whose configuration changed (already bumped and notified).
CREATE FUNCTION uplink_apply_parent_config(doc jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	nd jsonb;
	cam jsonb;
	n nodes;
	changed int := 0;
	keys text[];
BEGIN
	FOR nd IN SELECT * FROM jsonb_array_elements(coalesce(doc->'nodes', '[]'))
	LOOP
		SELECT * INTO n FROM nodes WHERE id = (nd->>'id')::uuid;
		CONTINUE WHEN NOT FOUND;
		keys := ARRAY(SELECT c->>'key' FROM jsonb_array_elements(nd->'cameras') c);
		FOR cam IN SELECT * FROM jsonb_array_elements(nd->'cameras')
		LOOP
			INSERT INTO cameras AS c (tenant_id, node_id, key, name, desired, origin)
			VALUES (n.tenant_id, n.id, cam->>'key', coalesce(cam->>'name', ''), cam->'config', 'parent')
			ON CONFLICT (node_id, key) DO UPDATE SET desired = EXCLUDED.desired, name = EXCLUDED.name,
				origin = 'parent', updated_at = now(), version = c.version + 1
			WHERE c.desired IS DISTINCT FROM EXCLUDED.desired OR c.name <> EXCLUDED.name OR c.origin <> 'parent';
		END LOOP;
		-- Cameras the parent managed and no longer lists are removed.
		DELETE FROM cameras c WHERE c.node_id = n.id AND c.origin = 'parent' AND NOT (c.key = ANY(keys));
		PERFORM canopy_config_changed(n.id);
		changed := changed + 1;
	END LOOP;
	RETURN changed;
END $$;

-- An edge's camera inventory and states. Cameras it no longer reports are dropped unless
-- central manages them (they show as missing).
CREATE FUNCTION uplink_inventory_edge(nid uuid, doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	keys text[] := ARRAY(SELECT c->>'key' FROM jsonb_array_elements(coalesce(doc->'cameras', '[]')) c);
BEGIN
	SELECT * INTO n FROM nodes WHERE id = nid;
	INSERT INTO cameras AS c (tenant_id, node_id, key, name, inventory, state, state_reason, state_at, origin)
	SELECT n.tenant_id, n.id, x->>'key', coalesce(x->>'name', ''), x - 'key' - 'name' - 'state' - 'reason',
		coalesce(x->>'state', 'unknown'), coalesce(x->>'reason', ''), now(), 'node'
	FROM jsonb_array_elements(coalesce(doc->'cameras', '[]')) x
	ON CONFLICT (node_id, key) DO UPDATE SET inventory = EXCLUDED.inventory,
		state_at = CASE WHEN c.state <> EXCLUDED.state THEN now() ELSE c.state_at END,
		state = EXCLUDED.state, state_reason = EXCLUDED.state_reason,
		name = CASE WHEN c.name = '' THEN EXCLUDED.name ELSE c.name END;
	DELETE FROM cameras c WHERE c.node_id = nid AND c.origin = 'node' AND NOT (c.key = ANY(keys));
	UPDATE cameras c SET state = 'missing', state_reason = 'not reported by the edge', state_at = now()
	WHERE c.node_id = nid AND c.desired IS NOT NULL AND NOT (c.key = ANY(keys)) AND c.state <> 'missing';
END $$;

-- A child central's whole tree, mirrored under the site where the child is attached.
CREATE FUNCTION uplink_inventory_central(nid uuid, doc jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	root_anc uuid[];
	s jsonb;
	x jsonb;
	site_ids uuid[] := ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements(coalesce(doc->'sites', '[]')) e);
	node_ids uuid[] := ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements(coalesce(doc->'nodes', '[]')) e);
	pid uuid;
BEGIN
	SELECT * INTO n FROM nodes WHERE id = nid;
	SELECT ancestors INTO root_anc FROM sites WHERE id = n.site_id;
	-- Sites parents-first (the child sends them ordered by depth).
	FOR s IN SELECT * FROM jsonb_array_elements(coalesce(doc->'sites', '[]'))
	LOOP
		pid := CASE WHEN (s->>'parent_id')::uuid = ANY(site_ids) THEN (s->>'parent_id')::uuid ELSE n.site_id END;
		INSERT INTO sites AS t (id, tenant_id, parent_id, name, description, timezone, ancestors, origin_node)
		VALUES ((s->>'id')::uuid, n.tenant_id, pid, s->>'name', coalesce(s->>'description', ''),
			coalesce(s->>'timezone', 'UTC'),
			(SELECT ancestors FROM sites WHERE id = pid) || (s->>'id')::uuid, nid)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id,
			description = EXCLUDED.description, timezone = EXCLUDED.timezone,
			ancestors = EXCLUDED.ancestors, updated_at = now()
		WHERE t.origin_node = nid;
	END LOOP;
	FOR x IN SELECT * FROM jsonb_array_elements(coalesce(doc->'nodes', '[]'))
	LOOP
		INSERT INTO nodes AS t (id, tenant_id, site_id, kind, name, state, state_reason, state_at, last_seen,
			software, clock_offset_ms, desired_version, applied_version, apply_error, status, origin_node)
		VALUES ((x->>'id')::uuid, n.tenant_id,
			CASE WHEN (x->>'site_id')::uuid = ANY(site_ids) THEN (x->>'site_id')::uuid ELSE n.site_id END,
			x->>'kind', x->>'name', coalesce(x->>'state', 'offline'), coalesce(x->>'state_reason', ''),
			coalesce((x->>'state_at')::timestamptz, now()), (x->>'last_seen')::timestamptz,
			coalesce(x->>'software', ''), (x->>'clock_offset_ms')::bigint, 1, 0,
			coalesce(x->>'apply_error', ''), coalesce(x->'status', '{}'), nid)
		ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, site_id = EXCLUDED.site_id,
			state = EXCLUDED.state, state_reason = EXCLUDED.state_reason, state_at = EXCLUDED.state_at,
			last_seen = EXCLUDED.last_seen, software = EXCLUDED.software,
			clock_offset_ms = EXCLUDED.clock_offset_ms, apply_error = EXCLUDED.apply_error,
			status = EXCLUDED.status, updated_at = now()
		WHERE t.origin_node = nid;
	END LOOP;
	FOR x IN SELECT * FROM jsonb_array_elements(coalesce(doc->'cameras', '[]'))
	LOOP
		CONTINUE WHEN NOT ((x->>'node_id')::uuid = ANY(node_ids));
		INSERT INTO cameras AS c (tenant_id, node_id, key, name, inventory, state, state_reason, state_at, origin)
		VALUES (n.tenant_id, (x->>'node_id')::uuid, x->>'key', coalesce(x->>'name', ''),
			coalesce(x->'inventory', '{}'), coalesce(x->>'state', 'unknown'),
			coalesce(x->>'state_reason', ''), coalesce((x->>'state_at')::timestamptz, now()), 'node')
		ON CONFLICT (node_id, key) DO UPDATE SET inventory = EXCLUDED.inventory, state = EXCLUDED.state,
			state_reason = EXCLUDED.state_reason, state_at = EXCLUDED.state_at,
			name = CASE WHEN c.origin = 'node' THEN EXCLUDED.name ELSE c.name END;
	END LOOP;
	DELETE FROM cameras c USING nodes m WHERE c.node_id = m.id AND m.origin_node = nid AND c.origin = 'node'
		AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(doc->'cameras', '[]')) e
				WHERE (e->>'node_id')::uuid = c.node_id AND e->>'key' = c.key);
	DELETE FROM nodes m WHERE m.origin_node = nid AND NOT (m.id = ANY(node_ids));
	DELETE FROM sites t WHERE t.origin_node = nid AND NOT (t.id = ANY(site_ids))
		AND NOT EXISTS (SELECT 1 FROM sites c WHERE c.parent_id = t.id)
		AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.site_id = t.id);
END $$;

-- What a child central reports upwards: its whole tree (sites by depth), nodes and cameras.
CREATE FUNCTION uplink_my_inventory() RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT json_build_object(
		'sites', coalesce((SELECT json_agg(json_build_object('id', s.id, 'parent_id', s.parent_id,
			'name', s.name, 'description', s.description, 'timezone', s.timezone)
			ORDER BY cardinality(s.ancestors), s.id) FROM sites s), '[]'),
		'nodes', coalesce((SELECT json_agg(json_build_object('id', n.id, 'site_id', n.site_id,
			'kind', n.kind, 'name', n.name,
			'state', CASE WHEN n.origin_node IS NOT NULL AND (SELECT o.state FROM nodes o WHERE o.id = n.origin_node) <> 'online'
				 THEN 'stale' ELSE n.state END,
			'state_reason', n.state_reason, 'state_at', n.state_at, 'last_seen', n.last_seen,
			'software', n.software, 'clock_offset_ms', n.clock_offset_ms,
			'apply_error', n.apply_error, 'status', n.status) ORDER BY n.id)
			FROM nodes n WHERE n.kind <> 'central' OR n.origin_node IS NOT NULL), '[]'),
		'cameras', coalesce((SELECT json_agg(json_build_object('node_id', c.node_id, 'key', c.key,
			'name', c.name, 'inventory', c.inventory, 'state', c.state,
			'state_reason', c.state_reason, 'state_at', c.state_at) ORDER BY c.node_id, c.key)
			FROM cameras c), '[]')) $$;

CREATE FUNCTION uplink_events(nid uuid, evs jsonb) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO events (tenant_id, node_id, event_id, camera_key, type, at, body)
	SELECT n.tenant_id, n.id, e->>'id', coalesce(e->>'camera', ''), coalesce(e->>'type', 'unknown'),
		coalesce((e->>'time')::timestamptz, now()), e
	FROM jsonb_array_elements(evs) e, nodes n WHERE n.id = nid AND e->>'id' IS NOT NULL
	ON CONFLICT (node_id, event_id) DO NOTHING $$;
