-- Change capture: which entity rows each config version changed, so a control plane that holds
-- the config at version N reads only the rows changed after N instead of the whole config.
-- Every statement is safe to run twice: a migration rerun after a crash must succeed.

-- At most one row per (entity, id): the version of the transaction that last inserted, updated
-- or deleted that row. Whether the row exists now is read from the entity table itself; the
-- deleted flag only tells tombstones apart, so that they alone are pruned (a live row's entry
-- is bounded by the table, a tombstone's by nothing).
CREATE TABLE IF NOT EXISTS sluice_changes (
    entity  text NOT NULL,
    id      uuid NOT NULL,
    version bigint NOT NULL,
    deleted boolean NOT NULL,
    PRIMARY KEY (entity, id)
);
-- Readers ask for "version > N"; pruning deletes old tombstones.
CREATE INDEX IF NOT EXISTS sluice_changes_version_idx ON sluice_changes (version);

-- sluice_changes holds every change made after changes_from. A reader whose version is older
-- (a new log, pruned tombstones, a TRUNCATE) reads the whole config instead. Set to the version
-- at migration time: changes before it were never captured.
ALTER TABLE sluice_cluster ADD COLUMN IF NOT EXISTS changes_from bigint NOT NULL DEFAULT 0;
UPDATE sluice_cluster SET changes_from = config_version WHERE id = 1;

-- Tombstones older than this many versions are pruned, every this-many/10 versions.
CREATE OR REPLACE FUNCTION sluice_changes_horizon() RETURNS bigint
LANGUAGE sql IMMUTABLE AS 'SELECT 10000::bigint';

-- Deletes tombstones of versions <= upto and moves changes_from past them. Readers behind
-- that point may have missed a delete, so they fall back to a full read.
CREATE OR REPLACE FUNCTION sluice_prune_changes(upto bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    newest bigint;
BEGIN
    WITH gone AS (
        DELETE FROM sluice_changes WHERE deleted AND version <= upto RETURNING version
    )
    SELECT max(version) INTO newest FROM gone;
    IF newest IS NOT NULL THEN
        UPDATE sluice_cluster SET changes_from = greatest(changes_from, newest) WHERE id = 1;
    END IF;
    RETURN newest;
END
$$;

-- The statement triggers of 001, now also recording the ids they saw. The version is bumped
-- once per transaction (the first changing statement); later statements of the same
-- transaction read it back. The sluice_cluster row lock taken by the bump is held until
-- commit, so versions are assigned in commit order and a reader that sees version V sees
-- every change of versions <= V and none after.
CREATE OR REPLACE FUNCTION sluice_bump_config_version() RETURNS trigger
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
        IF v % (sluice_changes_horizon() / 10) = 0 THEN
            PERFORM sluice_prune_changes(v - sluice_changes_horizon());
        END IF;
    ELSE
        SELECT config_version INTO v FROM sluice_cluster WHERE id = 1;
    END IF;

    IF TG_OP = 'TRUNCATE' THEN
        -- No transition table: the whole entity changed. Nothing before this version can be
        -- brought up to date from the log.
        DELETE FROM sluice_changes WHERE entity = TG_TABLE_NAME;
        UPDATE sluice_cluster SET changes_from = greatest(changes_from, v) WHERE id = 1;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO sluice_changes (entity, id, version, deleted)
        SELECT TG_TABLE_NAME, o.id, v, true FROM sluice_old_rows o
        ON CONFLICT (entity, id) DO UPDATE SET version = EXCLUDED.version, deleted = true;
    ELSE
        INSERT INTO sluice_changes (entity, id, version, deleted)
        SELECT TG_TABLE_NAME, n.id, v, false FROM sluice_new_rows n
        ON CONFLICT (entity, id) DO UPDATE SET version = EXCLUDED.version, deleted = false;
        IF TG_OP = 'UPDATE' THEN
            -- An update that changed a primary key removed the old id.
            INSERT INTO sluice_changes (entity, id, version, deleted)
            SELECT TG_TABLE_NAME, o.id, v, true FROM sluice_old_rows o
             WHERE NOT EXISTS (SELECT 1 FROM sluice_new_rows n WHERE n.id = o.id)
            ON CONFLICT (entity, id) DO UPDATE SET version = EXCLUDED.version, deleted = true;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

-- The update triggers of 001 only saw the new rows; they now see the old ones too.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['certificates', 'ca_certificates', 'services', 'routes',
                             'consumers', 'upstreams', 'targets', 'snis', 'plugins',
                             'keyauth_credentials', 'basicauth_credentials', 'acls'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', t || '_version_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS '
                       'sluice_old_rows NEW TABLE AS sluice_new_rows FOR EACH STATEMENT '
                       'EXECUTE FUNCTION sluice_bump_config_version()', t || '_version_upd', t);
    END LOOP;
END
$$;
