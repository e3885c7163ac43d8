-- 0006_stream.sql: what the live stream (/api/v1/stream) reads: who sees which feed rows, the tail, replay after a cursor, retention.
-- The feed table and canopy_feed_add are in 0004_alarms.sql; docs/central.md describes the protocol.

-- Replay reads one tenant's rows after a cursor.
CREATE INDEX feed_tenant_id ON feed (tenant_id, id);

-- The highest feed id retention has deleted: a client resuming from below it has lost rows
-- and is told to reload (one row, updated by canopy_feed_purge).
CREATE TABLE feed_purged (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	through bigint NOT NULL DEFAULT 0
);
INSERT INTO feed_purged DEFAULT VALUES;

-- What user u may see of the feed: its tenant; whether events.read holds tenant-wide; the
-- sites (each with its subtree) and cameras where it holds; and the archive depth in
-- seconds (the most generous role, as carried in access tokens). No row for a disabled or
-- unknown user. The stream applies the same test as canopy_can_camera, in memory.
CREATE FUNCTION canopy_stream_visibility(u uuid)
RETURNS TABLE (tenant_id uuid, all_sites boolean, site_ids uuid[], camera_ids uuid[], depth_s bigint)
LANGUAGE sql STABLE AS $$
	SELECT us.tenant_id,
		coalesce(bool_or(g.site_id IS NULL AND g.camera_id IS NULL)
			FILTER (WHERE 'events.read' = ANY(r.permissions)), false),
		coalesce(array_agg(DISTINCT g.site_id)
			FILTER (WHERE 'events.read' = ANY(r.permissions) AND g.site_id IS NOT NULL), '{}'),
		coalesce(array_agg(DISTINCT g.camera_id)
			FILTER (WHERE 'events.read' = ANY(r.permissions) AND g.camera_id IS NOT NULL), '{}'),
		coalesce(max(r.archive_depth::bigint * CASE r.archive_depth_unit WHEN 'minutes' THEN 60
			WHEN 'hours' THEN 3600 ELSE 86400 END), 0)
	FROM users us
	LEFT JOIN grants g ON g.user_id = us.id AND g.tenant_id = us.tenant_id
	LEFT JOIN roles r ON r.id = g.role_id
	WHERE us.id = u AND NOT us.disabled
	GROUP BY us.tenant_id $$;

-- The live tail every instance reads (all tenants): rows after id after, in id order, at
-- most lim. Also the highest id handed out so far, so a cursor beyond it can be refused.
CREATE FUNCTION canopy_feed_since(after bigint, lim int)
RETURNS TABLE (id bigint, tenant_id uuid, at text, type text, ancestors uuid[], camera_id uuid,
	notify text, body text)
LANGUAGE sql STABLE AS $$
	SELECT f.id, f.tenant_id, to_char(f.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		f.type, f.ancestors, f.camera_id, f.notify::text, f.body::text
	FROM feed f WHERE f.id > after ORDER BY f.id LIMIT lim $$;

-- Rows that were missing from an earlier read (ids handed out, not yet committed then).
CREATE FUNCTION canopy_feed_pick(ids bigint[])
RETURNS TABLE (id bigint, tenant_id uuid, at text, type text, ancestors uuid[], camera_id uuid,
	notify text, body text)
LANGUAGE sql STABLE AS $$
	SELECT f.id, f.tenant_id, to_char(f.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		f.type, f.ancestors, f.camera_id, f.notify::text, f.body::text
	FROM feed f WHERE f.id = ANY(ids) ORDER BY f.id $$;

-- Where the feed stands: the highest id handed out (committed or not), and the highest id
-- retention deleted.
CREATE FUNCTION canopy_feed_bounds(OUT last_id bigint, OUT purged_through bigint)
LANGUAGE sql STABLE AS $$
	SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('feed', 'id')::regclass), 0),
		(SELECT p.through FROM feed_purged p) $$;

-- A resuming client's missed rows: its tenant, after its cursor, visible to user u
-- (canopy_can_camera with events.read), within its archive depth; at most lim, in id
-- order. too_old marks rows older than the replay window (the client is then told to
-- reload instead).
CREATE FUNCTION canopy_feed_replay(u uuid, t uuid, after bigint, depth_s bigint, window_s bigint, lim int)
RETURNS TABLE (id bigint, tenant_id uuid, at text, type text, ancestors uuid[], camera_id uuid,
	notify text, body text, too_old boolean)
LANGUAGE sql STABLE AS $$
	SELECT f.id, f.tenant_id, to_char(f.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		f.type, f.ancestors, f.camera_id, f.notify::text, f.body::text,
		f.at < now() - make_interval(secs => window_s)
	FROM feed f
	WHERE f.tenant_id = t AND f.id > after AND f.at >= now() - make_interval(secs => depth_s)
	  AND canopy_can_camera(u, 'events.read', f.camera_id, f.ancestors)
	ORDER BY f.id LIMIT lim $$;

-- Retention, one batch: deletes up to batch rows older than keep_s seconds (oldest first)
-- and remembers the highest id deleted. Returns how many went. SKIP LOCKED lets instances
-- purge at the same time without waiting on each other.
CREATE FUNCTION canopy_feed_purge(keep_s bigint, batch int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
	top bigint;
BEGIN
	WITH d AS (
		DELETE FROM feed WHERE id IN (
			SELECT f.id FROM feed f WHERE f.at < now() - make_interval(secs => keep_s)
			ORDER BY f.at LIMIT batch FOR UPDATE SKIP LOCKED)
		RETURNING id)
	SELECT count(*), max(d.id) INTO n, top FROM d;
	IF top IS NOT NULL THEN
		UPDATE feed_purged SET through = greatest(through, top);
	END IF;
	RETURN n;
END $$;
