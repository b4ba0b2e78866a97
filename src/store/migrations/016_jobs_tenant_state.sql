-- A tenant's open jobs are counted for its submission limit (server/submitLimits.ts) from this
-- index alone. It takes the place of jobs_state (state, priority): no query orders by priority
-- through it, and jobs_state_id (state, id) serves every lookup by state.
DROP INDEX jobs_state;
CREATE INDEX jobs_tenant_state ON jobs (tenant, state);
