-- Change tracking for the token cache (store/tokenCache.ts), as 010 does for tasks: an update that
-- changes what a token grants (its revocation, expiry, role, tenant or node) gives it a version
-- above every other token's, so a server checks the tokens it caches with one read of those
-- changed since its last check (at most every 250 ms) instead of reading each token again every
-- few seconds. Its last use (written once a minute per token) is not such a change: a cached
-- token stays cached. Inserts need none: an unknown token is never cached.
ALTER TABLE tokens ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_version ON tokens (version);
CREATE TRIGGER tokens_version_update AFTER UPDATE ON tokens WHEN NEW.version = OLD.version
  AND (NEW.revoked_at IS NOT OLD.revoked_at OR NEW.expires_at IS NOT OLD.expires_at OR NEW.role IS NOT OLD.role
    OR NEW.tenant IS NOT OLD.tenant OR NEW.node_id IS NOT OLD.node_id) BEGIN
  UPDATE tokens SET version = (SELECT MAX(version) FROM tokens) + 1 WHERE hash = NEW.hash;
END;
