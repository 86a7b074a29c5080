-- Sluice core schema: one table per entity of proto/schema_entities.c, following the column
-- mapping in control_plane/store/store.h (FOREIGN "x" -> x_id uuid, ON DELETE CASCADE only
-- for SL_F_CASCADE fields; arrays -> text[]/integer[]/uuid[]; MAP/RECORD/JSON and arrays of
-- records -> jsonb; TIMESTAMP -> timestamp(0) with time zone). NOT NULL on SL_F_REQUIRED.
-- The migration runner records this file; it does not create its bookkeeping table here.

CREATE TABLE certificates (
    id          uuid PRIMARY KEY,
    created_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    cert        text NOT NULL,
    key         text NOT NULL,
    cert_alt    text,
    key_alt     text,
    tags        text[]
);

CREATE TABLE ca_certificates (
    id          uuid PRIMARY KEY,
    created_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    cert        text NOT NULL,
    cert_digest text UNIQUE,
    tags        text[]
);

CREATE TABLE services (
    id                    uuid PRIMARY KEY,
    created_at            timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at            timestamp(0) with time zone NOT NULL DEFAULT now(),
    name                  text UNIQUE,
    retries               integer NOT NULL,
    protocol              text NOT NULL,
    host                  text NOT NULL,
    port                  integer NOT NULL,
    path                  text,
    connect_timeout       integer NOT NULL,
    write_timeout         integer NOT NULL,
    read_timeout          integer NOT NULL,
    tags                  text[],
    client_certificate_id uuid REFERENCES certificates (id),
    tls_verify            boolean,
    tls_verify_depth      integer,
    ca_certificates       uuid[],
    enabled               boolean NOT NULL
);

CREATE TABLE routes (
    id                         uuid PRIMARY KEY,
    created_at                 timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at                 timestamp(0) with time zone NOT NULL DEFAULT now(),
    name                       text UNIQUE,
    protocols                  text[] NOT NULL,
    methods                    text[],
    hosts                      text[],
    paths                      text[],
    headers                    jsonb,
    https_redirect_status_code integer NOT NULL,
    regex_priority             integer NOT NULL,
    strip_path                 boolean NOT NULL,
    path_handling              text NOT NULL,
    preserve_host              boolean NOT NULL,
    request_buffering          boolean NOT NULL,
    response_buffering         boolean NOT NULL,
    snis                       text[],
    sources                    jsonb,
    destinations               jsonb,
    tags                       text[],
    service_id                 uuid REFERENCES services (id)
);

CREATE TABLE consumers (
    id         uuid PRIMARY KEY,
    created_at timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at timestamp(0) with time zone NOT NULL DEFAULT now(),
    username   text UNIQUE,
    custom_id  text UNIQUE,
    tags       text[]
);

CREATE TABLE upstreams (
    id                        uuid PRIMARY KEY,
    created_at                timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at                timestamp(0) with time zone NOT NULL DEFAULT now(),
    name                      text NOT NULL UNIQUE,
    algorithm                 text NOT NULL,
    hash_on                   text NOT NULL,
    hash_fallback             text NOT NULL,
    hash_on_header            text,
    hash_fallback_header      text,
    hash_on_cookie            text,
    hash_on_cookie_path       text NOT NULL,
    hash_on_query_arg         text,
    hash_fallback_query_arg   text,
    hash_on_uri_capture       text,
    hash_fallback_uri_capture text,
    slots                     integer NOT NULL,
    healthchecks              jsonb NOT NULL,
    tags                      text[],
    host_header               text,
    client_certificate_id     uuid REFERENCES certificates (id),
    use_srv_name              boolean NOT NULL
);

CREATE TABLE targets (
    id          uuid PRIMARY KEY,
    created_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    upstream_id uuid NOT NULL REFERENCES upstreams (id) ON DELETE CASCADE,
    target      text NOT NULL,
    weight      integer NOT NULL,
    tags        text[],
    UNIQUE (upstream_id, target)
);

CREATE TABLE snis (
    id             uuid PRIMARY KEY,
    created_at     timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at     timestamp(0) with time zone NOT NULL DEFAULT now(),
    name           text NOT NULL UNIQUE,
    tags           text[],
    certificate_id uuid NOT NULL REFERENCES certificates (id) ON DELETE CASCADE
);

CREATE TABLE plugins (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    instance_name text UNIQUE,
    created_at    timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at    timestamp(0) with time zone NOT NULL DEFAULT now(),
    route_id      uuid REFERENCES routes (id) ON DELETE CASCADE,
    service_id    uuid REFERENCES services (id) ON DELETE CASCADE,
    consumer_id   uuid REFERENCES consumers (id) ON DELETE CASCADE,
    config        jsonb NOT NULL,
    protocols     text[] NOT NULL,
    enabled       boolean NOT NULL,
    tags          text[]
);
-- One plugin of a name per (route, service, consumer) scope; NULL means "any", so NULLs are
-- folded into the zero uuid for the comparison.
CREATE UNIQUE INDEX plugins_scope_key ON plugins (
    name,
    COALESCE(route_id, '00000000-0000-0000-0000-000000000000'),
    COALESCE(service_id, '00000000-0000-0000-0000-000000000000'),
    COALESCE(consumer_id, '00000000-0000-0000-0000-000000000000'));

CREATE TABLE keyauth_credentials (
    id          uuid PRIMARY KEY,
    created_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    consumer_id uuid NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
    key         text UNIQUE,
    ttl         integer,
    tags        text[]
);

CREATE TABLE basicauth_credentials (
    id          uuid PRIMARY KEY,
    created_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    consumer_id uuid NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
    username    text NOT NULL UNIQUE,
    password    text NOT NULL,
    tags        text[]
);

-- "group" is an SQL keyword: the store quotes every identifier.
CREATE TABLE acls (
    id          uuid PRIMARY KEY,
    created_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    updated_at  timestamp(0) with time zone NOT NULL DEFAULT now(),
    consumer_id uuid NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
    "group"     text NOT NULL,
    tags        text[],
    UNIQUE (consumer_id, "group")
);

-- Foreign keys: lookups by parent (nested endpoints, cascades, delete refusals).
CREATE INDEX services_client_certificate_id_idx ON services (client_certificate_id);
CREATE INDEX routes_service_id_idx ON routes (service_id);
CREATE INDEX upstreams_client_certificate_id_idx ON upstreams (client_certificate_id);
CREATE INDEX targets_upstream_id_idx ON targets (upstream_id);
CREATE INDEX snis_certificate_id_idx ON snis (certificate_id);
CREATE INDEX plugins_route_id_idx ON plugins (route_id);
CREATE INDEX plugins_service_id_idx ON plugins (service_id);
CREATE INDEX plugins_consumer_id_idx ON plugins (consumer_id);
CREATE INDEX keyauth_credentials_consumer_id_idx ON keyauth_credentials (consumer_id);
CREATE INDEX basicauth_credentials_consumer_id_idx ON basicauth_credentials (consumer_id);
CREATE INDEX acls_consumer_id_idx ON acls (consumer_id);

-- Tags: ?tags=a,b filters with @> / && on text[].
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['certificates', 'ca_certificates', 'services', 'routes',
                             'consumers', 'upstreams', 'targets', 'snis', 'plugins',
                             'keyauth_credentials', 'basicauth_credentials', 'acls'] LOOP
        EXECUTE format('CREATE INDEX %I ON %I USING gin (tags)', t || '_tags_idx', t);
    END LOOP;
END
$$;

-- The cluster config version: one row, bumped once by every transaction that changes an
-- entity table, announced with NOTIFY sluice_config '<version>' (delivered at commit).
CREATE TABLE sluice_cluster (
    id             integer PRIMARY KEY CHECK (id = 1),
    config_version bigint NOT NULL,
    last_txid      bigint
);
INSERT INTO sluice_cluster (id, config_version, last_txid) VALUES (1, 0, NULL);

-- Statement triggers with transition tables, so a statement that changed no row (an idempotent
-- DELETE, an UPDATE matching nothing) does not bump the version. The txid comparison makes
-- the bump happen once per transaction however many statements and tables it touches.
CREATE FUNCTION sluice_bump_config_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed boolean := true;
    v bigint;
BEGIN
    IF TG_OP = 'INSERT' OR TG_OP = 'UPDATE' THEN
        SELECT EXISTS (SELECT 1 FROM sluice_new_rows) INTO changed;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT EXISTS (SELECT 1 FROM sluice_old_rows) INTO changed;
    END IF;
    IF NOT changed THEN
        RETURN NULL;
    END IF;
    UPDATE sluice_cluster
       SET config_version = config_version + 1, last_txid = txid_current()
     WHERE id = 1 AND last_txid IS DISTINCT FROM txid_current()
    RETURNING config_version INTO v;
    IF FOUND THEN
        PERFORM pg_notify('sluice_config', v::text);
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['certificates', 'ca_certificates', 'services', 'routes',
                             'consumers', 'upstreams', 'targets', 'snis', 'plugins',
                             'keyauth_credentials', 'basicauth_credentials', 'acls'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS '
                       'sluice_new_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'sluice_bump_config_version()', t || '_version_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING NEW TABLE AS '
                       'sluice_new_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'sluice_bump_config_version()', t || '_version_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS '
                       'sluice_old_rows FOR EACH STATEMENT EXECUTE FUNCTION '
                       'sluice_bump_config_version()', t || '_version_del', t);
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I FOR EACH STATEMENT EXECUTE '
                       'FUNCTION sluice_bump_config_version()', t || '_version_trunc', t);
    END LOOP;
END
$$;
