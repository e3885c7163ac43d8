-- 0004_site_tree.sql: the site list without per-row function calls (the typical read of a large tenant).

-- Sites a user may see with permission p: NULL when a grant covers the whole tenant,
-- otherwise the granted subtree roots (a site is visible when its path meets them).
CREATE FUNCTION canopy_granted_sites(u uuid, p text) RETURNS uuid[]
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN bool_or(g.site_id IS NULL) THEN NULL
		    ELSE coalesce(array_agg(g.site_id), '{}') END
	FROM grants g JOIN roles r ON r.id = g.role_id
	WHERE g.user_id = u AND p = ANY(r.permissions) AND g.camera_id IS NULL $$;

CREATE OR REPLACE FUNCTION api_sites_list(t uuid, u uuid, id uuid, b jsonb, ifm bigint, q jsonb, sub uuid, x1 text, x2 text)
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
