-- Lease renewals (POST /v1/agent/lease, SqlStore.renewNodeLease): an agent whose heartbeat waits
-- for a busy server renews its node's lease alone. Kept apart from last_heartbeat, which stays the
-- time of the last heartbeat (and its telemetry); a node is silent when both are past the lease.
ALTER TABLE nodes ADD COLUMN lease_renewed_at BIGINT;
