-- Batch arrays are first-class, as in Slurm (an ArrayJobId over its elements) and Kueue (one Job
-- with completions): an array's row names it, and each element's job points at it. The API
-- answers an array's POST with this row and its counts instead of every element, lists an
-- array's elements (GET /v1/jobs?array=ID) and cancels them together.
CREATE TABLE arrays (
  id {{serial}},
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  queue TEXT NOT NULL,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
ALTER TABLE jobs ADD COLUMN array_id BIGINT;
-- Only elements have an entry (most jobs are no array's).
CREATE INDEX jobs_array ON jobs (array_id, id) WHERE array_id IS NOT NULL;
