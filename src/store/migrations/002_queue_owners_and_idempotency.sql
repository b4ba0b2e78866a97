-- Queues with owners (Kueue's LocalQueue → ClusterQueue binding): the tenants a queue is open
-- to, as a JSON list of names. NULL: the rule by name (a queue named like a tenant, other than
-- `default`, is that tenant's alone; any other queue is shared by all tenants).
ALTER TABLE queues ADD COLUMN tenants TEXT;

-- Idempotency: a hash of the canonical spec submitted with a client key, so a key reused with
-- another spec is a conflict instead of a silent return of the first job. NULL on older rows.
ALTER TABLE jobs ADD COLUMN spec_hash TEXT;

-- A tenant's audit log, newest first, without a scan of everyone's events.
CREATE INDEX events_tenant ON events (tenant, id);
