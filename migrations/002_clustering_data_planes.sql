-- The data planes every control plane replica has seen, so that GET /clustering/data-planes
-- on any replica behind one Service lists all of them (Kong keeps the same rows, with a TTL).
-- Not an entity: never exported, never part of a snapshot, and writing it must not bump the
-- cluster config version (the version triggers of 001 are only on the entity tables).
-- Every statement is safe to run twice: a migration rerun after a crash must succeed.
CREATE TABLE IF NOT EXISTS clustering_data_planes (
    id             uuid PRIMARY KEY,
    hostname       text NOT NULL,
    ip             text NOT NULL,
    version        text NOT NULL,
    config_hash    text NOT NULL DEFAULT '',
    config_version bigint NOT NULL DEFAULT 0,
    last_seen      timestamp(0) with time zone NOT NULL DEFAULT now(),
    sync_status    text NOT NULL DEFAULT 'unknown',
    error          jsonb,
    cp_node_id     uuid,
    -- whether cp_node_id holds a connection to it; readers also require a recent last_seen,
    -- so a control plane that died without saying so stops claiming its data planes
    connected      boolean NOT NULL DEFAULT false,
    updated_at     timestamp(0) with time zone NOT NULL DEFAULT now()
);

-- The purge of rows not seen for cluster_data_plane_purge_delay scans by last_seen.
CREATE INDEX IF NOT EXISTS clustering_data_planes_last_seen_idx
    ON clustering_data_planes (last_seen);
