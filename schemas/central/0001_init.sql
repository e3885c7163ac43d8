-- 0001_init.sql: canopy-central's control plane: tenants, site tree, nodes, cameras, users, rights, audit.
-- Every tenant-owned table carries tenant_id and every query filters on it (tenant isolation).
-- Rows edited through the API carry a version used as the ETag (If-Match).

-- Secrets shared by every central instance on this database (token signing key, node CA).
CREATE TABLE central_secrets (
	name text PRIMARY KEY,
	value text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- Instances serving this database; lets an operator see who is up (no state lives only here).
CREATE TABLE central_instances (
	id text PRIMARY KEY,
	name text NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now(),
	last_seen timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
	-- The system tenant is the operator (MSP) who manages the other tenants.
	is_system boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX tenants_one_system ON tenants (is_system) WHERE is_system;

-- Sites form a tree of any depth; ancestors holds the path from the root, self included,
-- so "X and its descendants" is one indexed test: X = ANY(ancestors).
CREATE TABLE sites (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	parent_id uuid REFERENCES sites(id) ON DELETE RESTRICT,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	description text NOT NULL DEFAULT '' CHECK (length(description) <= 1024),
	timezone text NOT NULL DEFAULT 'UTC',
	ancestors uuid[] NOT NULL,
	-- Set when the site is mirrored from a child central's inventory (that child owns it).
	origin_node uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE INDEX sites_tenant ON sites (tenant_id);
CREATE INDEX sites_ancestors ON sites USING gin (ancestors);
CREATE UNIQUE INDEX sites_name_per_parent ON sites (tenant_id, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'::uuid), name);

CREATE TABLE nodes (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	site_id uuid NOT NULL REFERENCES sites(id) ON DELETE RESTRICT,
	kind text NOT NULL CHECK (kind IN ('edge', 'relay', 'central')),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	-- pending: enrolment token issued, never connected; revoked: refused at once.
	state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'online', 'offline', 'revoked')),
	state_reason text NOT NULL DEFAULT '',
	state_at timestamptz NOT NULL DEFAULT now(),
	public_key bytea,
	key_id text,
	software text NOT NULL DEFAULT '',
	last_seen timestamptz,
	-- central instance holding the node's uplink now (any instance may take over)
	instance_id text,
	clock_offset_ms bigint,
	status jsonb NOT NULL DEFAULT '{}',
	desired_version bigint NOT NULL DEFAULT 1,
	applied_version bigint NOT NULL DEFAULT 0,
	applied_at timestamptz,
	apply_error text NOT NULL DEFAULT '',
	-- Set when mirrored from a child central (that child is the node's uplink).
	origin_node uuid REFERENCES nodes(id) ON DELETE CASCADE,
	enrolled_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE INDEX nodes_tenant ON nodes (tenant_id);
CREATE INDEX nodes_site ON nodes (site_id);
CREATE INDEX nodes_origin ON nodes (origin_node) WHERE origin_node IS NOT NULL;
CREATE INDEX nodes_online ON nodes (last_seen) WHERE state = 'online';

CREATE TABLE enrolment_tokens (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	node_id uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
	-- Only a hash is stored: a database dump does not enrol anything.
	token_hash bytea NOT NULL UNIQUE,
	expires_at timestamptz NOT NULL,
	used_at timestamptz,
	used_from text,
	created_by uuid,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrolment_tokens_tenant ON enrolment_tokens (tenant_id);

-- A camera as an edge reports it (inventory) plus what central wants of it (desired).
CREATE TABLE cameras (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	node_id uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
	key text NOT NULL CHECK (key ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
	name text NOT NULL DEFAULT '' CHECK (length(name) <= 128),
	-- desired configuration (edge-cameras.schema.json camera object); NULL: not managed here
	desired jsonb,
	-- reported by the node: device, channel, stream, codec, resolution...
	inventory jsonb NOT NULL DEFAULT '{}',
	state text NOT NULL DEFAULT 'unknown',
	state_reason text NOT NULL DEFAULT '',
	state_at timestamptz,
	-- 'central': created through this API; 'node': reported only; 'parent': pushed from above
	origin text NOT NULL DEFAULT 'central' CHECK (origin IN ('central', 'node', 'parent')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1,
	UNIQUE (node_id, key)
);
CREATE INDEX cameras_tenant ON cameras (tenant_id);

-- Fixed permission list; roles pick from it.
CREATE TABLE permissions (
	name text PRIMARY KEY,
	description text NOT NULL
);
INSERT INTO permissions (name, description) VALUES
	('sites.read', 'see sites, nodes and their state'),
	('sites.write', 'create, rename, move and delete sites'),
	('nodes.write', 'create nodes, enrolment tokens; revoke nodes'),
	('cameras.read', 'see cameras and their state'),
	('cameras.write', 'change camera configuration'),
	('live.view', 'watch live video'),
	('archive.view', 'play back and export recordings'),
	('events.read', 'see events and alarms'),
	('alarms.handle', 'accept, dismiss and comment alarms'),
	('users.read', 'see users, roles and grants'),
	('users.write', 'create and change users, roles and grants'),
	('tokens.write', 'create and revoke integrator API tokens'),
	('audit.read', 'read the audit log'),
	('tenants.manage', 'create and change tenants (system tenant only)');

CREATE TABLE roles (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	-- NULL: built-in role shared by every tenant (admin, operator, viewer)
	tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
	builtin boolean NOT NULL DEFAULT false,
	permissions text[] NOT NULL DEFAULT '{}',
	max_sessions integer NOT NULL DEFAULT 10 CHECK (max_sessions BETWEEN 1 AND 1000),
	archive_depth integer NOT NULL DEFAULT 9999 CHECK (archive_depth BETWEEN 1 AND 9999),
	archive_depth_unit text NOT NULL DEFAULT 'days' CHECK (archive_depth_unit IN ('minutes', 'hours', 'days')),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX roles_name ON roles (coalesce(tenant_id, '00000000-0000-0000-0000-000000000000'::uuid), lower(name));
INSERT INTO roles (id, tenant_id, name, builtin, permissions, max_sessions) VALUES
	('00000000-0000-0000-0000-00000000a001', NULL, 'admin', true,
	 ARRAY['sites.read','sites.write','nodes.write','cameras.read','cameras.write','live.view',
	       'archive.view','events.read','alarms.handle','users.read','users.write','tokens.write',
	       'audit.read','tenants.manage'], 100),
	('00000000-0000-0000-0000-00000000a002', NULL, 'operator', true,
	 ARRAY['sites.read','cameras.read','live.view','archive.view','events.read','alarms.handle'], 10),
	('00000000-0000-0000-0000-00000000a003', NULL, 'viewer', true,
	 ARRAY['sites.read','cameras.read','live.view'], 5);

CREATE TABLE users (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	username text NOT NULL CHECK (username ~ '^[A-Za-z0-9._@-]{1,64}$'),
	display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 128),
	password_hash text NOT NULL,
	disabled boolean NOT NULL DEFAULT false,
	password_changed_at timestamptz NOT NULL DEFAULT now(),
	last_login_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
-- Logins name only the user, so user names are unique across tenants.
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE INDEX users_tenant ON users (tenant_id);

-- A role on the whole tenant (site and camera NULL), on a site subtree, or on one camera.
CREATE TABLE grants (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	role_id uuid NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
	site_id uuid REFERENCES sites(id) ON DELETE CASCADE,
	camera_id uuid REFERENCES cameras(id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1,
	CHECK (site_id IS NULL OR camera_id IS NULL)
);
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_tenant ON grants (tenant_id);

-- Login sessions: the refresh token (hashed) and activity for the idle expiry and the
-- per-user session limit.
CREATE TABLE sessions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	refresh_hash bytea NOT NULL UNIQUE,
	client_type text NOT NULL DEFAULT '',
	source_addr text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	last_active_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- Integrator tokens: act as their owner, narrowed to scopes, until expiry or revocation.
CREATE TABLE api_tokens (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	token_hash bytea NOT NULL UNIQUE,
	scopes text[] NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz,
	last_used_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	version bigint NOT NULL DEFAULT 1
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

-- Failed logins per account and per source address, for lockout.
CREATE TABLE login_failures (
	key text PRIMARY KEY, -- 'user:<lower name>' or 'addr:<ip>'
	failures integer NOT NULL DEFAULT 0,
	first_at timestamptz NOT NULL DEFAULT now(),
	locked_until timestamptz
);

CREATE TABLE audit_log (
	id bigserial PRIMARY KEY,
	-- NULL only for logins that named no known user
	tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
	at timestamptz NOT NULL DEFAULT now(),
	actor_id uuid,
	actor_name text NOT NULL DEFAULT '',
	client_type text NOT NULL DEFAULT '',
	source_addr text NOT NULL DEFAULT '',
	action text NOT NULL,
	object_type text NOT NULL DEFAULT '',
	object_id text NOT NULL DEFAULT '',
	result text NOT NULL CHECK (result IN ('ok', 'denied', 'failed')),
	detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_tenant_at ON audit_log (tenant_id, at DESC);

-- Node-level events central itself raises (node offline/online, clock skew); the alarms
-- work builds on this.
CREATE TABLE node_events (
	id bigserial PRIMARY KEY,
	tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
	node_id uuid NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
	at timestamptz NOT NULL DEFAULT now(),
	type text NOT NULL,
	detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX node_events_tenant_at ON node_events (tenant_id, at DESC);

-- Rights: may user u do permission p where a site's ancestors are anc (anc NULL: on the
-- tenant as a whole)? True when a grant with that permission covers the whole tenant or a
-- site on the path. Inlined by the planner into list queries.
CREATE FUNCTION canopy_can(u uuid, p text, anc uuid[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT EXISTS (
		SELECT 1 FROM grants g JOIN roles r ON r.id = g.role_id
		WHERE g.user_id = u AND p = ANY(r.permissions) AND g.camera_id IS NULL
		  AND (g.site_id IS NULL OR g.site_id = ANY(anc)))
$$;

-- The same for one camera: a grant on the camera itself also counts.
CREATE FUNCTION canopy_can_camera(u uuid, p text, cam uuid, anc uuid[]) RETURNS boolean
LANGUAGE sql STABLE AS $$
	SELECT canopy_can(u, p, anc) OR EXISTS (
		SELECT 1 FROM grants g JOIN roles r ON r.id = g.role_id
		WHERE g.user_id = u AND p = ANY(r.permissions) AND g.camera_id = cam)
$$;
