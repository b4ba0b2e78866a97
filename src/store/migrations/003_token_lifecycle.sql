-- Token lifecycle: a short public id (the first 12 hex digits of the hash, shown by
-- GET /v1/tokens and used to revoke), an optional expiry, revocation, the last use (written at
-- most once a minute per token) and, for role `node`, the node the token is bound to. NULL
-- expires_at: never expires; NULL revoked_at: not revoked.
ALTER TABLE tokens ADD COLUMN id TEXT;
ALTER TABLE tokens ADD COLUMN node_id TEXT;
ALTER TABLE tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
UPDATE tokens SET id = substr(hash, 1, 12);
CREATE UNIQUE INDEX tokens_id ON tokens (id);
-- One live credential per node: a second bootstrap registration of a node cannot take it over.
CREATE UNIQUE INDEX tokens_live_node ON tokens (node_id) WHERE node_id IS NOT NULL AND revoked_at IS NULL;
