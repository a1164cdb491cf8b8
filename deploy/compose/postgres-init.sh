#!/bin/sh
# PostgreSQL's entrypoint runs this once, when it creates the database
# volume: the one-time setup of README.md's "PostgreSQL" section, with the
# passwords of BULKHEAD_OWNER_PASSWORD and BULKHEAD_APP_PASSWORD.
set -eu
: "${BULKHEAD_OWNER_PASSWORD:?}" "${BULKHEAD_APP_PASSWORD:?}"
psql -X -q -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v owner_password="$BULKHEAD_OWNER_PASSWORD" -v app_password="$BULKHEAD_APP_PASSWORD" <<'SQL'
CREATE ROLE bulkhead_owner LOGIN PASSWORD :'owner_password' NOSUPERUSER NOBYPASSRLS CREATEROLE NOCREATEDB;
CREATE ROLE bulkhead_app LOGIN PASSWORD :'app_password' NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT;
CREATE DATABASE bulkhead OWNER bulkhead_owner;
REVOKE ALL ON DATABASE bulkhead FROM PUBLIC;
GRANT CONNECT ON DATABASE bulkhead TO bulkhead_app;
\c bulkhead
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
