-- 0002_api.sql: the REST API's operations as functions: tenant filter, rights, ETags and audit-ready results.
-- Each api_* function takes the caller's tenant t and user u, the path ids, the validated
-- body b, the If-Match version ifm and the validated query q, and returns one row
-- (status, etag, body, detail). Refusals raise 'NNN message' (see api_fail), which the
-- server turns into problem+json with that status; a write's transaction rolls back.

CREATE FUNCTION api_fail(code int, msg text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% %', code, msg;
END $$;

CREATE FUNCTION api_check_version(cur bigint, ifm bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF ifm IS NOT NULL AND ifm <> cur THEN
		PERFORM api_fail(412, format('changed since you read it: version is now %s, If-Match named %s', cur, ifm));
	END IF;
END $$;

CREATE FUNCTION api_limit(q jsonb) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce((q->>'limit')::int, 100) $$;
CREATE FUNCTION api_offset(q jsonb) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce((q->>'offset')::int, 0) $$;
CREATE FUNCTION api_page(items json, total bigint, q jsonb) RETURNS json LANGUAGE sql IMMUTABLE AS $$
	SELECT json_build_object('items', coalesce(items, '[]'::json), 'total', total,
		'limit', api_limit(q), 'offset', api_offset(q)) $$;

CREATE FUNCTION api_require_tenant_perm(u uuid, p text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT canopy_can(u, p, NULL) THEN
		PERFORM api_fail(403, format('needs permission %s on the whole tenant', p));
	END IF;
END $$;

-- Bumps the configuration version of a node and of every central between it and us,
-- and wakes the instances holding their uplinks.
CREATE FUNCTION canopy_config_changed(n uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	o uuid;
BEGIN
	UPDATE nodes SET desired_version = desired_version + 1, updated_at = now()
	WHERE id = n RETURNING origin_node INTO o;
	PERFORM pg_notify('canopy_config', n::text);
	IF o IS NOT NULL THEN
		UPDATE nodes SET desired_version = desired_version + 1 WHERE id = o;
		PERFORM pg_notify('canopy_config', o::text);
	END IF;
END $$;

---------------------------------------------------------------------------------------
-- JSON views

CREATE FUNCTION canopy_site_json(s sites) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', s.id, 'parent_id', s.parent_id, 'name', s.name,
		'description', s.description, 'timezone', s.timezone,
		'depth', cardinality(s.ancestors), 'path', s.ancestors,
		'managed_by', s.origin_node,
		'stale', coalesce((SELECT o.state <> 'online' FROM nodes o WHERE o.id = s.origin_node), false),
		'created_at', s.created_at, 'updated_at', s.updated_at, 'version', s.version) $$;

-- An edge keeps its own cameras until central manages one of them: enrolling an edge
-- that already records (from its local cameras_file) must not stop its cameras. Until
-- then central sends it no configuration document and shows no drift.
CREATE FUNCTION canopy_edge_managed(n nodes) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT n.kind <> 'edge' OR n.applied_version > 0
	    OR EXISTS (SELECT 1 FROM cameras c WHERE c.node_id = n.id AND c.desired IS NOT NULL) $$;

CREATE FUNCTION canopy_node_json(n nodes) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', n.id, 'site_id', n.site_id, 'kind', n.kind, 'name', n.name,
		'state', CASE WHEN n.origin_node IS NOT NULL AND
				   (SELECT o.state FROM nodes o WHERE o.id = n.origin_node) <> 'online'
			      THEN 'stale' ELSE n.state END,
		'state_reason', n.state_reason, 'state_at', n.state_at,
		'key_id', n.key_id, 'software', n.software, 'last_seen', n.last_seen,
		'clock_offset_ms', n.clock_offset_ms, 'status', n.status,
		'config', json_build_object('desired_version', n.desired_version,
			'applied_version', n.applied_version, 'applied_at', n.applied_at,
			'managed', canopy_edge_managed(n),
			'drift', canopy_edge_managed(n) AND n.applied_version <> n.desired_version,
			'error', n.apply_error),
		'managed_by', n.origin_node, 'enrolled_at', n.enrolled_at,
		'created_at', n.created_at, 'updated_at', n.updated_at, 'version', n.version) $$;

-- Camera passwords are write-only: never returned.
CREATE FUNCTION canopy_camera_json(c cameras) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', c.id, 'node_id', c.node_id,
		'site_id', (SELECT site_id FROM nodes WHERE id = c.node_id),
		'key', c.key, 'name', c.name, 'config', c.desired - 'password',
		'has_password', c.desired ? 'password', 'inventory', c.inventory,
		'state', c.state, 'state_reason', c.state_reason, 'state_at', c.state_at,
		'origin', c.origin, 'created_at', c.created_at, 'updated_at', c.updated_at,
		'version', c.version) $$;

CREATE FUNCTION canopy_user_json(x users) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', x.id, 'tenant_id', x.tenant_id, 'username', x.username,
		'display_name', x.display_name, 'disabled', x.disabled,
		'password_changed_at', x.password_changed_at, 'last_login_at', x.last_login_at,
		'created_at', x.created_at, 'updated_at', x.updated_at, 'version', x.version) $$;

CREATE FUNCTION canopy_role_json(r roles) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', r.id, 'name', r.name, 'builtin', r.builtin,
		'permissions', r.permissions, 'max_sessions', r.max_sessions,
		'archive_depth', r.archive_depth, 'archive_depth_unit', r.archive_depth_unit,
		'created_at', r.created_at, 'updated_at', r.updated_at, 'version', r.version) $$;

CREATE FUNCTION canopy_grant_json(g grants) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', g.id, 'user_id', g.user_id, 'role_id', g.role_id,
		'role', (SELECT name FROM roles WHERE id = g.role_id),
		'scope', CASE WHEN g.camera_id IS NOT NULL THEN 'camera'
			      WHEN g.site_id IS NOT NULL THEN 'site' ELSE 'tenant' END,
		'site_id', g.site_id, 'camera_id', g.camera_id, 'created_at', g.created_at,
		'version', g.version) $$;

CREATE FUNCTION canopy_token_json(k api_tokens) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', k.id, 'user_id', k.user_id, 'name', k.name,
		'scopes', k.scopes, 'expires_at', k.expires_at, 'revoked_at', k.revoked_at,
		'last_used_at', k.last_used_at, 'created_at', k.created_at, 'version', k.version) $$;

CREATE FUNCTION canopy_tenant_json(x tenants) RETURNS json LANGUAGE sql STABLE AS $$
	SELECT json_build_object('id', x.id, 'name', x.name, 'system', x.is_system,
		'created_at', x.created_at, 'updated_at', x.updated_at, 'version', x.version) $$;

---------------------------------------------------------------------------------------
-- me, tenants

CREATE FUNCTION api_me(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, NULL::text, json_build_object(
		'user', canopy_user_json(x),
		'tenant', (SELECT canopy_tenant_json(tt) FROM tenants tt WHERE tt.id = t),
		'grants', coalesce((SELECT json_agg(canopy_grant_json(g) ORDER BY g.created_at)
				   FROM grants g WHERE g.user_id = u), '[]'),
		'tenant_permissions', coalesce((SELECT json_agg(DISTINCT p ORDER BY p)
				   FROM grants g JOIN roles r ON r.id = g.role_id, unnest(r.permissions) p
				   WHERE g.user_id = u AND g.site_id IS NULL AND g.camera_id IS NULL), '[]')),
		NULL::text
	FROM users x WHERE x.id = u AND x.tenant_id = t;
END $$;

CREATE FUNCTION api_tenants_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	sys boolean := (SELECT is_system FROM tenants WHERE tenants.id = t) AND canopy_can(u, 'tenants.manage', NULL);
BEGIN
	-- Everyone sees their own tenant; only the system tenant's managers see the others.
	RETURN QUERY WITH v AS (SELECT * FROM tenants x WHERE x.id = t OR sys)
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_tenant_json(p) ORDER BY p.name)
		FROM (SELECT * FROM v ORDER BY v.name, v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_tenants_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	sys boolean := (SELECT is_system FROM tenants WHERE tenants.id = t) AND canopy_can(u, 'tenants.manage', NULL);
BEGIN
	RETURN QUERY SELECT 200, x.version::text, canopy_tenant_json(x), NULL::text
	FROM tenants x WHERE x.id = api_tenants_get.id AND (x.id = t OR sys);
END $$;

CREATE FUNCTION api_require_system(t uuid, u uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT coalesce((SELECT is_system FROM tenants WHERE id = t), false) THEN
		PERFORM api_fail(404, 'no such item (or not visible to you)');
	END IF;
	PERFORM api_require_tenant_perm(u, 'tenants.manage');
END $$;

-- A new tenant comes with its first administrator (username, password hashed by the server: x1).
CREATE FUNCTION api_tenants_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	nt tenants;
	nu uuid;
BEGIN
	PERFORM api_require_system(t, u);
	INSERT INTO tenants (name) VALUES (b->>'name') RETURNING * INTO nt;
	INSERT INTO users (tenant_id, username, display_name, password_hash)
	VALUES (nt.id, b->>'username', coalesce(b->>'display_name', ''), x1) RETURNING users.id INTO nu;
	INSERT INTO grants (tenant_id, user_id, role_id) VALUES (nt.id, nu, '00000000-0000-0000-0000-00000000a001');
	RETURN QUERY SELECT 201, nt.version::text,
		(canopy_tenant_json(nt)::jsonb || jsonb_build_object('admin_user_id', nu))::json, NULL::text;
END $$;

CREATE FUNCTION api_tenants_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	cur tenants;
BEGIN
	PERFORM api_require_system(t, u);
	SELECT * INTO cur FROM tenants x WHERE x.id = api_tenants_update.id FOR UPDATE;
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such tenant'); END IF;
	PERFORM api_check_version(cur.version, ifm);
	UPDATE tenants x SET name = coalesce(b->>'name', x.name), updated_at = now(), version = x.version + 1
	WHERE x.id = cur.id RETURNING * INTO cur;
	RETURN QUERY SELECT 200, cur.version::text, canopy_tenant_json(cur), NULL::text;
END $$;

CREATE FUNCTION api_tenants_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	cur tenants;
BEGIN
	PERFORM api_require_system(t, u);
	SELECT * INTO cur FROM tenants x WHERE x.id = api_tenants_delete.id FOR UPDATE;
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such tenant'); END IF;
	IF cur.is_system THEN PERFORM api_fail(409, 'the system tenant cannot be deleted'); END IF;
	PERFORM api_check_version(cur.version, ifm);
	IF EXISTS (SELECT 1 FROM nodes WHERE tenant_id = cur.id AND state <> 'revoked') THEN
		PERFORM api_fail(409, 'tenant still has nodes; revoke or delete them first');
	END IF;
	DELETE FROM tenants WHERE tenants.id = cur.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

---------------------------------------------------------------------------------------
-- sites

-- Sites a user may see with permission p: NULL when a grant covers the whole tenant,
-- otherwise the granted subtree roots (a site is visible when its path meets them).
CREATE FUNCTION canopy_granted_sites(u uuid, p text) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN bool_or(g.site_id IS NULL) THEN NULL
		    ELSE coalesce(array_agg(g.site_id), '{}') END
	FROM grants g JOIN roles r ON r.id = g.role_id
	WHERE g.user_id = u AND p = ANY(r.permissions) AND g.camera_id IS NULL $$;

-- The typical read of a large tenant: rights and JSON without per-row function calls.
CREATE FUNCTION api_sites_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	roots uuid[] := canopy_granted_sites(u, 'sites.read');
	any_grant boolean := EXISTS (SELECT 1 FROM grants g JOIN roles r ON r.id = g.role_id
		WHERE g.user_id = u AND 'sites.read' = ANY(r.permissions) AND g.camera_id IS NULL);
BEGIN
	RETURN QUERY WITH v AS (
		SELECT s.* FROM sites s WHERE s.tenant_id = t AND any_grant
		AND (roots IS NULL OR s.ancestors && roots)
		AND (q->>'parent_id' IS NULL OR s.parent_id = (q->>'parent_id')::uuid)
		AND (q->>'under' IS NULL OR (q->>'under')::uuid = ANY(s.ancestors))
		AND (q->>'q' IS NULL OR s.name ILIKE '%' || (q->>'q') || '%')),
	page AS (SELECT * FROM v ORDER BY cardinality(v.ancestors), v.name, v.id
		 LIMIT api_limit(q) OFFSET api_offset(q))
	SELECT 200, NULL::text, api_page((
		SELECT json_agg(json_build_object('id', p.id, 'parent_id', p.parent_id, 'name', p.name,
			'description', p.description, 'timezone', p.timezone,
			'depth', cardinality(p.ancestors), 'path', p.ancestors,
			'managed_by', p.origin_node, 'stale', coalesce(o.state <> 'online', false),
			'created_at', p.created_at, 'updated_at', p.updated_at, 'version', p.version)
			ORDER BY cardinality(p.ancestors), p.name, p.id)
		FROM page p LEFT JOIN nodes o ON o.id = p.origin_node),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_sites_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, s.version::text, canopy_site_json(s), NULL::text FROM sites s
	WHERE s.id = api_sites_get.id AND s.tenant_id = t AND canopy_can(u, 'sites.read', s.ancestors);
END $$;

-- The parent named in b (NULL for a root), checked for visibility and write rights.
CREATE FUNCTION api_site_parent(t uuid, u uuid, parent uuid) RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
	anc uuid[];
BEGIN
	IF parent IS NULL THEN
		PERFORM api_require_tenant_perm(u, 'sites.write');
		RETURN '{}';
	END IF;
	SELECT ancestors INTO anc FROM sites WHERE id = parent AND tenant_id = t;
	IF NOT FOUND OR NOT canopy_can(u, 'sites.read', anc) THEN
		PERFORM api_fail(404, 'parent site not found');
	END IF;
	IF NOT canopy_can(u, 'sites.write', anc) THEN
		PERFORM api_fail(403, 'needs permission sites.write on the parent site');
	END IF;
	RETURN anc;
END $$;

CREATE FUNCTION api_sites_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	anc uuid[] := api_site_parent(t, u, (b->>'parent_id')::uuid);
	nid uuid := gen_random_uuid();
	s sites;
BEGIN
	INSERT INTO sites (id, tenant_id, parent_id, name, description, timezone, ancestors)
	VALUES (nid, t, (b->>'parent_id')::uuid, b->>'name', coalesce(b->>'description', ''),
		coalesce(b->>'timezone', 'UTC'), anc || nid) RETURNING * INTO s;
	RETURN QUERY SELECT 201, s.version::text, canopy_site_json(s), NULL::text;
END $$;

CREATE FUNCTION api_sites_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	cur sites;
	anc uuid[];
BEGIN
	SELECT * INTO cur FROM sites s WHERE s.id = api_sites_update.id AND s.tenant_id = t FOR UPDATE;
	IF NOT FOUND OR NOT canopy_can(u, 'sites.read', cur.ancestors) THEN
		PERFORM api_fail(404, 'no such site (or not visible to you)');
	END IF;
	IF NOT canopy_can(u, 'sites.write', cur.ancestors) THEN
		PERFORM api_fail(403, 'needs permission sites.write on this site');
	END IF;
	IF cur.origin_node IS NOT NULL THEN
		PERFORM api_fail(409, 'this site is managed by a child central; change it there');
	END IF;
	PERFORM api_check_version(cur.version, ifm);
	IF b ? 'parent_id' AND (b->>'parent_id')::uuid IS DISTINCT FROM cur.parent_id THEN
		anc := api_site_parent(t, u, (b->>'parent_id')::uuid);
		IF cur.id = ANY(anc) THEN
			PERFORM api_fail(409, 'a site cannot move under itself or its descendants');
		END IF;
		-- The subtree's paths change together: replace the old prefix with the new one.
		UPDATE sites s SET ancestors = anc || s.ancestors[cardinality(cur.ancestors):]
		WHERE cur.id = ANY(s.ancestors) AND s.tenant_id = t;
	END IF;
	UPDATE sites s SET name = coalesce(b->>'name', s.name),
		description = coalesce(b->>'description', s.description),
		timezone = coalesce(b->>'timezone', s.timezone),
		parent_id = CASE WHEN b ? 'parent_id' THEN (b->>'parent_id')::uuid ELSE s.parent_id END,
		updated_at = now(), version = s.version + 1
	WHERE s.id = cur.id RETURNING * INTO cur;
	RETURN QUERY SELECT 200, cur.version::text, canopy_site_json(cur), NULL::text;
END $$;

CREATE FUNCTION api_sites_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	cur sites;
BEGIN
	SELECT * INTO cur FROM sites s WHERE s.id = api_sites_delete.id AND s.tenant_id = t FOR UPDATE;
	IF NOT FOUND OR NOT canopy_can(u, 'sites.read', cur.ancestors) THEN
		PERFORM api_fail(404, 'no such site (or not visible to you)');
	END IF;
	IF NOT canopy_can(u, 'sites.write', cur.ancestors) THEN
		PERFORM api_fail(403, 'needs permission sites.write on this site');
	END IF;
	PERFORM api_check_version(cur.version, ifm);
	IF EXISTS (SELECT 1 FROM sites s WHERE s.parent_id = cur.id) THEN
		PERFORM api_fail(409, 'site has child sites; delete or move them first');
	END IF;
	IF EXISTS (SELECT 1 FROM nodes n WHERE n.site_id = cur.id) THEN
		PERFORM api_fail(409, 'site has nodes; delete or move them first');
	END IF;
	DELETE FROM sites s WHERE s.id = cur.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

---------------------------------------------------------------------------------------
-- nodes and enrolment tokens

CREATE FUNCTION api_node_visible(t uuid, u uuid, nid uuid, write boolean) RETURNS nodes
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	anc uuid[];
BEGIN
	SELECT * INTO n FROM nodes x WHERE x.id = nid AND x.tenant_id = t;
	IF FOUND THEN
		SELECT ancestors INTO anc FROM sites WHERE sites.id = n.site_id;
	END IF;
	IF NOT FOUND OR NOT canopy_can(u, 'sites.read', anc) THEN
		PERFORM api_fail(404, 'no such node (or not visible to you)');
	END IF;
	IF write AND NOT canopy_can(u, 'nodes.write', anc) THEN
		PERFORM api_fail(403, 'needs permission nodes.write on the node''s site');
	END IF;
	RETURN n;
END $$;

CREATE FUNCTION api_nodes_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY WITH v AS (
		SELECT n.* FROM nodes n JOIN sites s ON s.id = n.site_id
		WHERE n.tenant_id = t AND canopy_can(u, 'sites.read', s.ancestors)
		AND (q->>'site_id' IS NULL OR n.site_id = (q->>'site_id')::uuid)
		AND (q->>'under' IS NULL OR (q->>'under')::uuid = ANY(s.ancestors))
		AND (q->>'kind' IS NULL OR n.kind = q->>'kind')
		AND (q->>'state' IS NULL OR n.state = q->>'state'))
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_node_json(p) ORDER BY p.name, p.id)
		FROM (SELECT * FROM v ORDER BY v.name, v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_nodes_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, false);
BEGIN
	RETURN QUERY SELECT 200, n.version::text, canopy_node_json(n), NULL::text;
END $$;

CREATE FUNCTION api_nodes_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	anc uuid[];
	n nodes;
BEGIN
	SELECT ancestors INTO anc FROM sites WHERE sites.id = (b->>'site_id')::uuid AND tenant_id = t;
	IF NOT FOUND OR NOT canopy_can(u, 'sites.read', anc) THEN
		PERFORM api_fail(404, 'site not found');
	END IF;
	IF NOT canopy_can(u, 'nodes.write', anc) THEN
		PERFORM api_fail(403, 'needs permission nodes.write on the site');
	END IF;
	INSERT INTO nodes (tenant_id, site_id, kind, name)
	VALUES (t, (b->>'site_id')::uuid, b->>'kind', b->>'name') RETURNING * INTO n;
	RETURN QUERY SELECT 201, n.version::text, canopy_node_json(n), NULL::text;
END $$;

CREATE FUNCTION api_nodes_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, true);
	anc uuid[];
BEGIN
	PERFORM api_check_version(n.version, ifm);
	IF b ? 'site_id' THEN
		SELECT ancestors INTO anc FROM sites WHERE sites.id = (b->>'site_id')::uuid AND tenant_id = t;
		IF NOT FOUND OR NOT canopy_can(u, 'nodes.write', anc) THEN
			PERFORM api_fail(404, 'target site not found (or no nodes.write there)');
		END IF;
	END IF;
	UPDATE nodes x SET name = coalesce(b->>'name', x.name),
		site_id = coalesce((b->>'site_id')::uuid, x.site_id),
		updated_at = now(), version = x.version + 1
	WHERE x.id = n.id RETURNING * INTO n;
	RETURN QUERY SELECT 200, n.version::text, canopy_node_json(n), NULL::text;
END $$;

CREATE FUNCTION api_nodes_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, true);
BEGIN
	PERFORM api_check_version(n.version, ifm);
	DELETE FROM nodes x WHERE x.id = n.id;
	PERFORM pg_notify('canopy_revoke', n.id::text);
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_nodes_revoke(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, true);
BEGIN
	UPDATE nodes x SET state = 'revoked', state_reason = 'revoked by ' || coalesce((SELECT username FROM users WHERE users.id = u), 'unknown'),
		state_at = now(), public_key = NULL, updated_at = now(), version = x.version + 1
	WHERE x.id = n.id RETURNING * INTO n;
	UPDATE enrolment_tokens e SET used_at = coalesce(e.used_at, now()) WHERE e.node_id = n.id;
	-- Every instance drops the node's uplink at once.
	PERFORM pg_notify('canopy_revoke', n.id::text);
	INSERT INTO node_events (tenant_id, node_id, type, detail) VALUES (t, n.id, 'node.revoked', '{}');
	RETURN QUERY SELECT 200, n.version::text, canopy_node_json(n), NULL::text;
END $$;

-- x1: hash of the token the server made; it is shown once by the server.
CREATE FUNCTION api_enrol_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, true);
	e enrolment_tokens;
BEGIN
	IF n.state = 'revoked' THEN
		PERFORM api_fail(409, 'node is revoked; create a new node');
	END IF;
	INSERT INTO enrolment_tokens (tenant_id, node_id, token_hash, expires_at, created_by)
	VALUES (t, n.id, decode(x1, 'hex'), now() + make_interval(secs => coalesce((b->>'ttl_s')::int, x2::int)), u)
	RETURNING * INTO e;
	RETURN QUERY SELECT 201, NULL::text, json_build_object('id', e.id, 'node_id', e.node_id,
		'expires_at', e.expires_at, 'created_at', e.created_at), NULL::text;
END $$;

CREATE FUNCTION api_enrol_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, true);
BEGIN
	RETURN QUERY WITH v AS (SELECT * FROM enrolment_tokens e WHERE e.node_id = n.id AND e.tenant_id = t)
	SELECT 200, NULL::text, api_page((SELECT json_agg(json_build_object('id', p.id, 'node_id', p.node_id,
		'expires_at', p.expires_at, 'used_at', p.used_at, 'used_from', p.used_from,
		'created_at', p.created_at) ORDER BY p.created_at DESC)
		FROM (SELECT * FROM v ORDER BY v.created_at DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_enrol_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes := api_node_visible(t, u, id, true);
BEGIN
	DELETE FROM enrolment_tokens e WHERE e.id = sub AND e.node_id = n.id AND e.tenant_id = t;
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such enrolment token'); END IF;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_node_events_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY WITH v AS (
		SELECT e.* FROM node_events e JOIN nodes n ON n.id = e.node_id JOIN sites s ON s.id = n.site_id
		WHERE e.tenant_id = t AND canopy_can(u, 'sites.read', s.ancestors)
		AND (q->>'node_id' IS NULL OR e.node_id = (q->>'node_id')::uuid)
		AND (q->>'type' IS NULL OR e.type = q->>'type'))
	SELECT 200, NULL::text, api_page((SELECT json_agg(json_build_object('id', p.id, 'node_id', p.node_id,
		'at', p.at, 'type', p.type, 'detail', p.detail) ORDER BY p.id DESC)
		FROM (SELECT * FROM v ORDER BY v.id DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

---------------------------------------------------------------------------------------
-- cameras

CREATE FUNCTION api_camera_visible(t uuid, u uuid, cid uuid, p text) RETURNS cameras
LANGUAGE plpgsql AS $$
DECLARE
	c cameras;
	anc uuid[];
BEGIN
	SELECT cm.* INTO c FROM cameras cm WHERE cm.id = cid AND cm.tenant_id = t;
	IF FOUND THEN
		SELECT s.ancestors INTO anc FROM nodes n JOIN sites s ON s.id = n.site_id WHERE n.id = c.node_id;
	END IF;
	IF c.id IS NULL OR NOT canopy_can_camera(u, 'cameras.read', c.id, anc) THEN
		PERFORM api_fail(404, 'no such camera (or not visible to you)');
	END IF;
	IF p <> 'cameras.read' AND NOT canopy_can_camera(u, p, c.id, anc) THEN
		PERFORM api_fail(403, format('needs permission %s on this camera', p));
	END IF;
	RETURN c;
END $$;

CREATE FUNCTION api_camera_config_check(cfg jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF cfg IS NULL THEN RETURN; END IF;
	IF jsonb_typeof(cfg->'main_url') IS DISTINCT FROM 'string' THEN
		PERFORM api_fail(400, 'config: main_url (rtsp://...) is required');
	END IF;
	IF cfg ? 'id' THEN
		PERFORM api_fail(400, 'config: id is the camera key; do not repeat it in config');
	END IF;
	IF length(cfg::text) > 65536 THEN
		PERFORM api_fail(400, 'config: larger than 64 KiB');
	END IF;
END $$;

CREATE FUNCTION api_cameras_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY WITH v AS (
		SELECT c.* FROM cameras c JOIN nodes n ON n.id = c.node_id JOIN sites s ON s.id = n.site_id
		WHERE c.tenant_id = t AND canopy_can_camera(u, 'cameras.read', c.id, s.ancestors)
		AND (q->>'node_id' IS NULL OR c.node_id = (q->>'node_id')::uuid)
		AND (q->>'site_id' IS NULL OR n.site_id = (q->>'site_id')::uuid)
		AND (q->>'under' IS NULL OR (q->>'under')::uuid = ANY(s.ancestors))
		AND (q->>'state' IS NULL OR c.state = q->>'state'))
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_camera_json(p) ORDER BY p.name, p.key, p.id)
		FROM (SELECT * FROM v ORDER BY v.name, v.key, v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_cameras_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	c cameras := api_camera_visible(t, u, id, 'cameras.read');
BEGIN
	RETURN QUERY SELECT 200, c.version::text, canopy_camera_json(c), NULL::text;
END $$;

CREATE FUNCTION api_cameras_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	n nodes;
	anc uuid[];
	c cameras;
BEGIN
	SELECT x.* INTO n FROM nodes x WHERE x.id = (b->>'node_id')::uuid AND x.tenant_id = t;
	IF FOUND THEN SELECT ancestors INTO anc FROM sites WHERE sites.id = n.site_id; END IF;
	IF n.id IS NULL OR NOT canopy_can(u, 'sites.read', anc) THEN
		PERFORM api_fail(404, 'node not found');
	END IF;
	IF NOT canopy_can(u, 'cameras.write', anc) THEN
		PERFORM api_fail(403, 'needs permission cameras.write on the node''s site');
	END IF;
	IF n.kind <> 'edge' THEN PERFORM api_fail(400, 'cameras belong to edge nodes'); END IF;
	PERFORM api_camera_config_check(b->'config');
	INSERT INTO cameras (tenant_id, node_id, key, name, desired, origin)
	VALUES (t, n.id, b->>'key', coalesce(b->>'name', ''), b->'config', 'central') RETURNING * INTO c;
	PERFORM canopy_config_changed(n.id);
	RETURN QUERY SELECT 201, c.version::text, canopy_camera_json(c), NULL::text;
END $$;

CREATE FUNCTION api_cameras_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	c cameras := api_camera_visible(t, u, id, 'cameras.write');
	cfg jsonb;
BEGIN
	PERFORM api_check_version(c.version, ifm);
	cfg := CASE WHEN b ? 'config' THEN b->'config' ELSE c.desired END;
	-- A config without a password keeps the stored one (passwords are never read back).
	IF b ? 'config' AND cfg IS NOT NULL AND jsonb_typeof(cfg) = 'object' AND NOT cfg ? 'password'
	   AND c.desired ? 'password' THEN
		cfg := cfg || jsonb_build_object('password', c.desired->'password');
	END IF;
	IF jsonb_typeof(cfg) = 'null' THEN cfg := NULL; END IF;
	PERFORM api_camera_config_check(cfg);
	UPDATE cameras x SET name = coalesce(b->>'name', x.name), desired = cfg,
		origin = CASE WHEN b ? 'config' THEN 'central' ELSE x.origin END,
		updated_at = now(), version = x.version + 1
	WHERE x.id = c.id RETURNING * INTO c;
	PERFORM canopy_config_changed(c.node_id);
	RETURN QUERY SELECT 200, c.version::text, canopy_camera_json(c), NULL::text;
END $$;

CREATE FUNCTION api_cameras_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	c cameras := api_camera_visible(t, u, id, 'cameras.write');
BEGIN
	PERFORM api_check_version(c.version, ifm);
	DELETE FROM cameras x WHERE x.id = c.id;
	PERFORM canopy_config_changed(c.node_id);
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

---------------------------------------------------------------------------------------
-- users, roles, grants, API tokens, sessions, audit

CREATE FUNCTION api_users_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM api_require_tenant_perm(u, 'users.read');
	RETURN QUERY WITH v AS (SELECT * FROM users x WHERE x.tenant_id = t
		AND (q->>'q' IS NULL OR x.username ILIKE '%' || (q->>'q') || '%'))
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_user_json(p) ORDER BY p.username)
		FROM (SELECT * FROM v ORDER BY v.username LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_user_in_tenant(t uuid, u uuid, uid uuid, p text) RETURNS users
LANGUAGE plpgsql AS $$
DECLARE
	x users;
BEGIN
	SELECT * INTO x FROM users WHERE users.id = uid AND tenant_id = t;
	-- A user may always read themself.
	IF NOT FOUND OR (uid <> u AND NOT canopy_can(u, 'users.read', NULL)) THEN
		PERFORM api_fail(404, 'no such user (or not visible to you)');
	END IF;
	IF p <> 'users.read' THEN
		PERFORM api_require_tenant_perm(u, p);
	END IF;
	RETURN x;
END $$;

CREATE FUNCTION api_users_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	x users := api_user_in_tenant(t, u, id, 'users.read');
BEGIN
	RETURN QUERY SELECT 200, x.version::text, canopy_user_json(x), NULL::text;
END $$;

CREATE FUNCTION api_users_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	x users;
BEGIN
	PERFORM api_require_tenant_perm(u, 'users.write');
	INSERT INTO users (tenant_id, username, display_name, password_hash, disabled)
	VALUES (t, b->>'username', coalesce(b->>'display_name', ''), x1, coalesce((b->>'disabled')::boolean, false))
	RETURNING * INTO x;
	RETURN QUERY SELECT 201, x.version::text, canopy_user_json(x), NULL::text;
END $$;

CREATE FUNCTION api_users_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	x users;
BEGIN
	-- Users may change their own password and display name; the rest needs users.write.
	IF id = u AND NOT (b - 'display_name') ?| ARRAY['disabled'] THEN
		x := api_user_in_tenant(t, u, id, 'users.read');
	ELSE
		x := api_user_in_tenant(t, u, id, 'users.write');
	END IF;
	PERFORM api_check_version(x.version, ifm);
	UPDATE users y SET display_name = coalesce(b->>'display_name', y.display_name),
		disabled = coalesce((b->>'disabled')::boolean, y.disabled),
		password_hash = coalesce(x1, y.password_hash),
		password_changed_at = CASE WHEN x1 IS NULL THEN y.password_changed_at ELSE now() END,
		updated_at = now(), version = y.version + 1
	WHERE y.id = x.id RETURNING * INTO x;
	-- A new password or a disabled account ends every session of the user.
	IF x1 IS NOT NULL OR x.disabled THEN
		UPDATE sessions SET revoked_at = now() WHERE user_id = x.id AND revoked_at IS NULL
		AND (x.disabled OR sessions.id IS DISTINCT FROM x2::uuid);
	END IF;
	RETURN QUERY SELECT 200, x.version::text, canopy_user_json(x), NULL::text;
END $$;

CREATE FUNCTION api_users_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	x users := api_user_in_tenant(t, u, id, 'users.write');
BEGIN
	IF x.id = u THEN PERFORM api_fail(409, 'you cannot delete yourself'); END IF;
	PERFORM api_check_version(x.version, ifm);
	DELETE FROM users y WHERE y.id = x.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_role_perms_check(t uuid, perms jsonb) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
	bad text;
	arr text[] := ARRAY(SELECT DISTINCT jsonb_array_elements_text(perms) ORDER BY 1);
BEGIN
	SELECT p INTO bad FROM unnest(arr) p WHERE p NOT IN (SELECT name FROM permissions) LIMIT 1;
	IF bad IS NOT NULL THEN
		PERFORM api_fail(400, format('unknown permission %s (see the permissions list)', bad));
	END IF;
	IF 'tenants.manage' = ANY(arr) AND NOT (SELECT is_system FROM tenants WHERE id = t) THEN
		PERFORM api_fail(400, 'tenants.manage exists only in the system tenant');
	END IF;
	RETURN arr;
END $$;

CREATE FUNCTION api_roles_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM api_require_tenant_perm(u, 'users.read');
	RETURN QUERY WITH v AS (SELECT * FROM roles r WHERE r.tenant_id = t OR r.tenant_id IS NULL)
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_role_json(p) ORDER BY p.builtin DESC, p.name)
		FROM (SELECT * FROM v ORDER BY v.builtin DESC, v.name LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_role_in_tenant(t uuid, u uuid, rid uuid, p text) RETURNS roles
LANGUAGE plpgsql AS $$
DECLARE
	r roles;
BEGIN
	SELECT * INTO r FROM roles WHERE roles.id = rid AND (tenant_id = t OR tenant_id IS NULL);
	IF NOT FOUND OR NOT canopy_can(u, 'users.read', NULL) THEN
		PERFORM api_fail(404, 'no such role (or not visible to you)');
	END IF;
	IF p <> 'users.read' THEN
		PERFORM api_require_tenant_perm(u, p);
		IF r.builtin THEN PERFORM api_fail(409, 'built-in roles cannot be changed; make a custom role'); END IF;
	END IF;
	RETURN r;
END $$;

CREATE FUNCTION api_roles_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r roles := api_role_in_tenant(t, u, id, 'users.read');
BEGIN
	RETURN QUERY SELECT 200, r.version::text, canopy_role_json(r), NULL::text;
END $$;

CREATE FUNCTION api_roles_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r roles;
BEGIN
	PERFORM api_require_tenant_perm(u, 'users.write');
	INSERT INTO roles (tenant_id, name, permissions, max_sessions, archive_depth, archive_depth_unit)
	VALUES (t, b->>'name', api_role_perms_check(t, b->'permissions'),
		coalesce((b->>'max_sessions')::int, 10), coalesce((b->>'archive_depth')::int, 9999),
		coalesce(b->>'archive_depth_unit', 'days'))
	RETURNING * INTO r;
	RETURN QUERY SELECT 201, r.version::text, canopy_role_json(r), NULL::text;
END $$;

CREATE FUNCTION api_roles_update(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r roles := api_role_in_tenant(t, u, id, 'users.write');
BEGIN
	PERFORM api_check_version(r.version, ifm);
	UPDATE roles x SET name = coalesce(b->>'name', x.name),
		permissions = CASE WHEN b ? 'permissions' THEN api_role_perms_check(t, b->'permissions') ELSE x.permissions END,
		max_sessions = coalesce((b->>'max_sessions')::int, x.max_sessions),
		archive_depth = coalesce((b->>'archive_depth')::int, x.archive_depth),
		archive_depth_unit = coalesce(b->>'archive_depth_unit', x.archive_depth_unit),
		updated_at = now(), version = x.version + 1
	WHERE x.id = r.id RETURNING * INTO r;
	RETURN QUERY SELECT 200, r.version::text, canopy_role_json(r), NULL::text;
END $$;

CREATE FUNCTION api_roles_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	r roles := api_role_in_tenant(t, u, id, 'users.write');
BEGIN
	PERFORM api_check_version(r.version, ifm);
	IF EXISTS (SELECT 1 FROM grants g WHERE g.role_id = r.id) THEN
		PERFORM api_fail(409, 'role is still granted; remove its grants first');
	END IF;
	DELETE FROM roles x WHERE x.id = r.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_grants_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM api_require_tenant_perm(u, 'users.read');
	RETURN QUERY WITH v AS (SELECT * FROM grants g WHERE g.tenant_id = t
		AND (q->>'user_id' IS NULL OR g.user_id = (q->>'user_id')::uuid))
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_grant_json(p) ORDER BY p.created_at, p.id)
		FROM (SELECT * FROM v ORDER BY v.created_at, v.id LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_grants_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, g.version::text, canopy_grant_json(g), NULL::text FROM grants g
	WHERE g.id = api_grants_get.id AND g.tenant_id = t AND (g.user_id = u OR canopy_can(u, 'users.read', NULL));
END $$;

CREATE FUNCTION api_grants_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	g grants;
BEGIN
	PERFORM api_require_tenant_perm(u, 'users.write');
	IF NOT EXISTS (SELECT 1 FROM users WHERE users.id = (b->>'user_id')::uuid AND tenant_id = t) THEN
		PERFORM api_fail(404, 'user not found');
	END IF;
	IF NOT EXISTS (SELECT 1 FROM roles WHERE roles.id = (b->>'role_id')::uuid AND (tenant_id = t OR tenant_id IS NULL)) THEN
		PERFORM api_fail(404, 'role not found');
	END IF;
	IF b->>'site_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sites WHERE sites.id = (b->>'site_id')::uuid AND tenant_id = t) THEN
		PERFORM api_fail(404, 'site not found');
	END IF;
	IF b->>'camera_id' IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cameras WHERE cameras.id = (b->>'camera_id')::uuid AND tenant_id = t) THEN
		PERFORM api_fail(404, 'camera not found');
	END IF;
	IF b->>'site_id' IS NOT NULL AND b->>'camera_id' IS NOT NULL THEN
		PERFORM api_fail(400, 'a grant is on a site or on a camera, not both');
	END IF;
	INSERT INTO grants (tenant_id, user_id, role_id, site_id, camera_id)
	VALUES (t, (b->>'user_id')::uuid, (b->>'role_id')::uuid, (b->>'site_id')::uuid, (b->>'camera_id')::uuid)
	RETURNING * INTO g;
	RETURN QUERY SELECT 201, g.version::text, canopy_grant_json(g), NULL::text;
END $$;

CREATE FUNCTION api_grants_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = api_grants_delete.id AND g.tenant_id = t
		       AND (g.user_id = u OR canopy_can(u, 'users.read', NULL))) THEN
		PERFORM api_fail(404, 'no such grant (or not visible to you)');
	END IF;
	PERFORM api_require_tenant_perm(u, 'users.write');
	PERFORM api_check_version((SELECT g.version FROM grants g WHERE g.id = api_grants_delete.id), ifm);
	DELETE FROM grants g WHERE g.id = api_grants_delete.id AND g.tenant_id = t;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_tokens_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	all_users boolean := canopy_can(u, 'users.read', NULL);
BEGIN
	RETURN QUERY WITH v AS (SELECT * FROM api_tokens k WHERE k.tenant_id = t AND (k.user_id = u OR all_users))
	SELECT 200, NULL::text, api_page((SELECT json_agg(canopy_token_json(p) ORDER BY p.created_at DESC)
		FROM (SELECT * FROM v ORDER BY v.created_at DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_tokens_get(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, k.version::text, canopy_token_json(k), NULL::text FROM api_tokens k
	WHERE k.id = api_tokens_get.id AND k.tenant_id = t AND (k.user_id = u OR canopy_can(u, 'users.read', NULL));
END $$;

-- x1: hash of the secret the server made (shown once).
CREATE FUNCTION api_tokens_create(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	k api_tokens;
	bad text;
	exp timestamptz := (b->>'expires_at')::timestamptz;
BEGIN
	PERFORM api_require_tenant_perm(u, 'tokens.write');
	SELECT p INTO bad FROM jsonb_array_elements_text(b->'scopes') p
	WHERE p NOT IN (SELECT name FROM permissions) LIMIT 1;
	IF bad IS NOT NULL THEN PERFORM api_fail(400, format('unknown scope %s (scopes are permission names)', bad)); END IF;
	IF exp <= now() THEN PERFORM api_fail(400, 'expires_at is in the past'); END IF;
	IF exp > now() + interval '366 days' THEN PERFORM api_fail(400, 'expires_at is more than a year away'); END IF;
	INSERT INTO api_tokens (tenant_id, user_id, name, token_hash, scopes, expires_at)
	VALUES (t, u, b->>'name', decode(x1, 'hex'), ARRAY(SELECT jsonb_array_elements_text(b->'scopes')), exp)
	RETURNING * INTO k;
	RETURN QUERY SELECT 201, k.version::text, canopy_token_json(k), NULL::text;
END $$;

CREATE FUNCTION api_tokens_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	cur api_tokens;
BEGIN
	SELECT * INTO cur FROM api_tokens k
	WHERE k.id = api_tokens_delete.id AND k.tenant_id = t AND (k.user_id = u OR canopy_can(u, 'users.write', NULL))
	FOR UPDATE;
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such API token (or not yours)'); END IF;
	PERFORM api_check_version(cur.version, ifm);
	UPDATE api_tokens k SET revoked_at = coalesce(k.revoked_at, now()), version = k.version + 1
	WHERE k.id = cur.id;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_sessions_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	all_users boolean := canopy_can(u, 'users.read', NULL);
BEGIN
	RETURN QUERY WITH v AS (SELECT s.* FROM sessions s WHERE s.tenant_id = t AND (s.user_id = u OR all_users)
		AND s.revoked_at IS NULL AND s.expires_at > now()
		AND s.last_active_at > now() - make_interval(secs => x2::int)
		AND (q->>'user_id' IS NULL OR s.user_id = (q->>'user_id')::uuid))
	SELECT 200, NULL::text, api_page((SELECT json_agg(json_build_object('id', p.id, 'user_id', p.user_id,
		'client_type', p.client_type, 'source_addr', p.source_addr, 'created_at', p.created_at,
		'last_active_at', p.last_active_at, 'current', p.id = x1::uuid) ORDER BY p.created_at DESC)
		FROM (SELECT * FROM v ORDER BY v.created_at DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

-- id: the session to end (x1 is the caller's own session, used by logout).
CREATE FUNCTION api_sessions_delete(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
DECLARE
	target uuid := coalesce(id, x1::uuid);
BEGIN
	UPDATE sessions s SET revoked_at = coalesce(s.revoked_at, now())
	WHERE s.id = target AND s.tenant_id = t AND (s.user_id = u OR canopy_can(u, 'users.write', NULL));
	IF NOT FOUND THEN PERFORM api_fail(404, 'no such session (or not yours)'); END IF;
	RETURN QUERY SELECT 204, NULL::text, NULL::json, NULL::text;
END $$;

CREATE FUNCTION api_audit_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM api_require_tenant_perm(u, 'audit.read');
	RETURN QUERY WITH v AS (SELECT * FROM audit_log a WHERE a.tenant_id = t
		AND (q->>'action' IS NULL OR a.action = q->>'action')
		AND (q->>'actor' IS NULL OR a.actor_name = q->>'actor')
		AND (q->>'result' IS NULL OR a.result = q->>'result')
		AND (q->>'object_id' IS NULL OR a.object_id = q->>'object_id')
		AND (q->>'since' IS NULL OR a.at >= (q->>'since')::timestamptz)
		AND (q->>'until' IS NULL OR a.at < (q->>'until')::timestamptz))
	SELECT 200, NULL::text, api_page((SELECT json_agg(json_build_object('id', p.id, 'at', p.at,
		'actor_id', p.actor_id, 'actor', p.actor_name, 'client_type', p.client_type,
		'source_addr', p.source_addr, 'action', p.action, 'object_type', p.object_type,
		'object_id', p.object_id, 'result', p.result, 'detail', p.detail) ORDER BY p.id DESC)
		FROM (SELECT * FROM v ORDER BY v.id DESC LIMIT api_limit(q) OFFSET api_offset(q)) p),
		(SELECT count(*) FROM v), q), NULL::text;
END $$;

CREATE FUNCTION api_permissions_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
RETURNS TABLE (r_status int, r_etag text, r_body json, r_detail text)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY SELECT 200, NULL::text, json_build_object('items', json_agg(json_build_object(
		'name', p.name, 'description', p.description) ORDER BY p.name)), NULL::text FROM permissions p;
END $$;
