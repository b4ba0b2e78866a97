-- Every job row a state change writes again takes an entry in each index of jobs on PostgreSQL
-- (a change of an indexed column is never a heap-only update), and every insert does on both
-- databases. Most jobs are no service's replica, and an open job has no finish time: their
-- entries in these two indexes were written and never read. Every query on them names a value
-- (service_id = / IN, finished_at IS NOT NULL or >), so the partial indexes serve them all.
DROP INDEX jobs_service;
CREATE INDEX jobs_service ON jobs (service_id) WHERE service_id IS NOT NULL;
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
