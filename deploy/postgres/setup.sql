-- setup.sql: the role and database canopy-central needs on a PostgreSQL 15 server.
-- Run once as a superuser:
--   psql -v ON_ERROR_STOP=1 -v password=SECRET -f setup.sql   [-v role=canopy -v dbname=canopy]
-- canopy-central creates and migrates its own tables at start (the migrations are compiled
-- into the binary), so the role must own the database. It needs no superuser, no
-- extensions, no CREATEDB and no CREATEROLE. tests/integration/test_deploy_files.py runs
-- this file and starts a central on the result.

\if :{?password}
\else
	\echo 'setup.sql: give the role a password: psql -v password=... -f setup.sql'
	\quit
\endif
\if :{?role}
\else
	\set role canopy
\endif
\if :{?dbname}
\else
	\set dbname canopy
\endif

CREATE ROLE :"role" LOGIN PASSWORD :'password'
	NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;

CREATE DATABASE :"dbname" OWNER :"role" ENCODING 'UTF8' LC_COLLATE 'C.UTF-8'
	LC_CTYPE 'C.UTF-8' TEMPLATE template0;

-- Nobody else connects; in PostgreSQL 15 the public schema is owned by the database
-- owner (pg_database_owner), so the role may create its tables there.
REVOKE ALL ON DATABASE :"dbname" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO :"role";

-- A read-only role for reporting tools, e.g. on a replica (optional):
-- CREATE ROLE canopy_ro LOGIN PASSWORD '...';
-- \c canopy
-- GRANT USAGE ON SCHEMA public TO canopy_ro;
-- GRANT SELECT ON ALL TABLES IN SCHEMA public TO canopy_ro;
-- ALTER DEFAULT PRIVILEGES FOR ROLE canopy IN SCHEMA public GRANT SELECT ON TABLES TO canopy_ro;
