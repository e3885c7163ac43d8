-- 0005_adopt.sql: an edge keeps its own cameras until central manages one of them.
-- Enrolling an edge that already records (from its local cameras_file) must not stop its
-- cameras: central sends it no document, and shows no drift, until central configures a
-- camera on it. From then on central's document is the edge's configuration.

CREATE FUNCTION canopy_edge_managed(n nodes) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT n.kind <> 'edge' OR n.applied_version > 0
	    OR EXISTS (SELECT 1 FROM cameras c WHERE c.node_id = n.id AND c.desired IS NOT NULL) $$;

CREATE OR REPLACE FUNCTION uplink_config(nid uuid) RETURNS TABLE (version bigint, doc json)
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

CREATE OR REPLACE FUNCTION canopy_node_json(n nodes) RETURNS json LANGUAGE sql STABLE AS $$
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
