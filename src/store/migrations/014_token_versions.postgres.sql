-- Change tracking for the token cache (store/tokenCache.ts), as 010 does for tasks: an update that
-- changes what a token grants (its revocation, expiry, role, tenant or node) is stamped with the
-- writing transaction's id, and a server checks the tokens it caches with one read of those
-- stamped at or above its last check's snapshot xmin (at most every 250 ms) instead of reading
-- each token again every few seconds. Its last use (written once a minute per token) is not such
-- a change: a cached token stays cached. Inserts need none: an unknown token is never cached.
ALTER TABLE tokens ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_version ON tokens (version);
CREATE FUNCTION tide_token_version() RETURNS trigger AS $$
BEGIN
  IF (NEW.revoked_at, NEW.expires_at, NEW.role, NEW.tenant, NEW.node_id) IS DISTINCT FROM (OLD.revoked_at, OLD.expires_at, OLD.role, OLD.tenant, OLD.node_id) THEN
    NEW.version := pg_current_xact_id()::text::bigint;
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER tokens_version BEFORE UPDATE ON tokens FOR EACH ROW EXECUTE FUNCTION tide_token_version();
