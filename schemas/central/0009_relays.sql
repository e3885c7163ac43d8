-- 0009_relays.sql: relays (enrolled nodes of kind relay): their TURN secret, what they report (URL, load, registered edges), and the live/playback broker calls.

-- One row per relay node, made when the relay first connects. A relay of the system tenant
-- (the operator, an MSP) is shared: it serves every tenant; any other serves its own.
CREATE TABLE relays (
	id uuid PRIMARY KEY REFERENCES nodes(id) ON DELETE CASCADE, -- the relay's node id
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	shared boolean NOT NULL DEFAULT false,
	-- TURN REST shared secret (base64url, 32 random bytes from central), per relay: central
	-- mints viewers' ephemeral credentials with it, the relay's TURN server checks them.
	turn_secret text NOT NULL,
	-- reported by the relay (relay.load)
	public_url text NOT NULL DEFAULT '',
	ice_urls text[] NOT NULL DEFAULT '{}',
	draining boolean NOT NULL DEFAULT false,
	sessions int NOT NULL DEFAULT 0,
	edges uuid[] NOT NULL DEFAULT '{}',
	load jsonb NOT NULL DEFAULT '{}',
	reported_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX relays_edges ON relays USING gin (edges);
CREATE INDEX relays_tenant ON relays (tenant_id);

-- The relay's row (made on first contact with the secret central drew for it) and what it
-- needs: its TURN secret, tenant and whether it serves every tenant.
CREATE FUNCTION relay_config(nid uuid, new_secret text) RETURNS json
LANGUAGE plpgsql AS $$
DECLARE
	r relays;
BEGIN
	INSERT INTO relays (id, tenant_id, shared, turn_secret)
	SELECT n.id, n.tenant_id, t.is_system, new_secret
	FROM nodes n JOIN tenants t ON t.id = n.tenant_id WHERE n.id = nid AND n.kind = 'relay'
	ON CONFLICT (id) DO NOTHING;
	SELECT * INTO r FROM relays WHERE relays.id = nid;
	RETURN json_build_object('relay_id', r.id, 'tenant_id', r.tenant_id,
		'shared', r.shared, 'turn_secret', r.turn_secret);
END $$;

-- A relay's load report. Returns true when what edges must know (URL, draining) changed,
-- so the caller wakes every instance to tell their edges.
CREATE FUNCTION relay_report(nid uuid, doc jsonb) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	old relays;
	edge_ids uuid[];
BEGIN
	SELECT * INTO old FROM relays WHERE relays.id = nid FOR UPDATE;
	IF NOT FOUND THEN RETURN false; END IF;
	-- Only edges of tenants this relay may serve count (a relay cannot claim others').
	SELECT coalesce(array_agg(n.id), '{}') INTO edge_ids FROM nodes n
	WHERE n.id IN (SELECT x::uuid FROM jsonb_array_elements_text(coalesce(doc->'edges', '[]')) x
		       WHERE x ~ '^[0-9a-f-]{36}$')
	  AND n.kind = 'edge' AND (old.shared OR n.tenant_id = old.tenant_id);
	UPDATE relays SET
		public_url = coalesce(doc->>'public_url', ''),
		ice_urls = coalesce(ARRAY(SELECT jsonb_array_elements_text(coalesce(doc->'ice_urls', '[]'))), '{}'),
		draining = coalesce((doc->>'draining')::boolean, false),
		sessions = coalesce((doc->>'sessions')::int, 0),
		edges = edge_ids,
		load = doc - 'edges',
		reported_at = now()
	WHERE relays.id = nid;
	IF old.public_url IS DISTINCT FROM coalesce(doc->>'public_url', '')
	   OR old.draining IS DISTINCT FROM coalesce((doc->>'draining')::boolean, false) THEN
		PERFORM pg_notify('canopy_relays', old.tenant_id::text);
		RETURN true;
	END IF;
	RETURN false;
END $$;

-- The relays an edge should keep a registration to: online, not draining, of its tenant
-- or shared.
CREATE FUNCTION relays_for_edge(nid uuid) RETURNS json
LANGUAGE sql STABLE AS $$
	SELECT coalesce(json_agg(json_build_object('id', r.id, 'url', r.public_url)
				 ORDER BY r.id), '[]')
	FROM relays r JOIN nodes rn ON rn.id = r.id, nodes e
	WHERE e.id = nid AND rn.state = 'online' AND NOT r.draining AND r.public_url <> ''
	  AND (r.shared OR r.tenant_id = e.tenant_id)
$$;

CREATE FUNCTION canopy_relay_json(r relays) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', r.id, 'name', n.name, 'tenant_id', r.tenant_id,
		'shared', r.shared, 'state', n.state, 'public_url', r.public_url,
		'ice_urls', r.ice_urls, 'draining', r.draining, 'sessions', r.sessions,
		'edges', cardinality(r.edges), 'load', r.load, 'last_seen', n.last_seen,
		'reported_at', r.reported_at)
	FROM nodes n WHERE n.id = r.id $$;

-- GET /relays: the tenant's own relays and the shared ones (the system tenant sees all).
CREATE FUNCTION api_relays_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	sys boolean := (SELECT is_system FROM tenants WHERE tenants.id = t);
BEGIN
	PERFORM api_require_tenant_perm(u, 'sites.read');
	RETURN QUERY WITH v AS (
		SELECT r.* FROM relays r WHERE sys OR r.tenant_id = t OR r.shared)
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_relay_json(p) ORDER BY p.id)
		FROM (SELECT * FROM v ORDER BY v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

-- POST /cameras/{id}/live and /playback (x1 = 'live' or 'playback'): rights, the archive
-- depth, the edge and the relay to use. The C side (central_relay.c) turns the result into
-- the viewer token and TURN credentials and drops turn_secret from the answer.
CREATE FUNCTION api_camera_live(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	playback boolean := x1 = 'playback';
	c cameras := api_camera_visible(t, u, id, CASE WHEN x1 = 'playback' THEN 'archive.view' ELSE 'live.view' END);
	n nodes;
	anc uuid[];
	depth_s bigint := 0;
	start_ms bigint;
	r relays;
	nrelays int;
BEGIN
	SELECT * INTO n FROM nodes WHERE nodes.id = c.node_id;
	SELECT s.ancestors INTO anc FROM sites s WHERE s.id = n.site_id;
	-- The deepest archive any role holding archive.view over this camera allows.
	SELECT coalesce(max(ro.archive_depth::bigint * CASE ro.archive_depth_unit WHEN 'minutes' THEN 60
		WHEN 'hours' THEN 3600 ELSE 86400 END), 0) INTO depth_s
	FROM grants g JOIN roles ro ON ro.id = g.role_id
	WHERE g.user_id = u AND 'archive.view' = ANY(ro.permissions)
	  AND ((g.site_id IS NULL AND g.camera_id IS NULL) OR g.site_id = ANY(anc) OR g.camera_id = c.id);
	IF playback THEN
		start_ms := (extract(epoch FROM (b->>'start')::timestamptz) * 1000)::bigint;
		IF start_ms > extract(epoch FROM now()) * 1000 THEN
			PERFORM api_fail(400, 'start is in the future');
		END IF;
		IF extract(epoch FROM now()) * 1000 - start_ms > depth_s * 1000 THEN
			PERFORM api_fail(403, format('your roles allow playback of the last %s s of this camera only', depth_s));
		END IF;
	END IF;
	IF n.kind <> 'edge' OR n.origin_node IS NOT NULL THEN
		PERFORM api_fail(503, 'this camera''s edge is reached through a child central: watch it there');
	END IF;
	IF n.state <> 'online' THEN
		PERFORM api_fail(503, format('the camera''s edge %s is %s', n.name, n.state));
	END IF;
	-- Least loaded relay that has the edge registered, fresh report, not draining.
	SELECT rl.* INTO r FROM relays rl JOIN nodes rn ON rn.id = rl.id
	WHERE n.id = ANY(rl.edges) AND (rl.shared OR rl.tenant_id = t) AND rn.state = 'online'
	  AND NOT rl.draining AND rl.public_url <> '' AND rl.reported_at > now() - interval '45 seconds'
	ORDER BY rl.sessions, random() LIMIT 1;
	IF r.id IS NULL THEN
		SELECT count(*) INTO nrelays FROM relays rl JOIN nodes rn ON rn.id = rl.id
		WHERE (rl.shared OR rl.tenant_id = t) AND rn.state = 'online' AND NOT rl.draining;
		PERFORM api_fail(503, format('no relay can reach edge %s: %s relay(s) online for this tenant, none has the edge registered',
			n.name, nrelays));
	END IF;
	RETURN QUERY SELECT 200, NULL::text, json_build_object(
		'mode', x1, 'camera_id', c.id, 'camera_key', c.key, 'node_id', n.id, 'tenant_id', c.tenant_id,
		'relay', json_build_object('id', r.id, 'url', r.public_url),
		'ice_urls', r.ice_urls, 'turn_secret', r.turn_secret, 'archive_depth_s', depth_s,
		'start_ms', start_ms, 'speed', coalesce((b->>'speed')::int, 1),
		'stream', coalesce(b->>'stream', 'main')), NULL::text;
END $$;
