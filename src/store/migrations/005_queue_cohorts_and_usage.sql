-- Queues in cohorts with per-GPU-model quotas (Kueue's ClusterQueue): the cohort's name (NULL:
-- the cohort `cluster`) and, as JSON {"nominal"?, "borrowing"?, "lending"?}, quotas given per
-- GPU model (each a map of model, or `*`, to GPUs). NULL: only gpu_quota and borrowing_limit.
ALTER TABLE queues ADD COLUMN cohort TEXT;
ALTER TABLE queues ADD COLUMN model_quotas TEXT;

-- The scheduler reads tenants' recent usage (tasks that ended within a few half-lives).
CREATE INDEX tasks_finished ON tasks (finished_at);

-- It learns run times from recently finished jobs.
CREATE INDEX jobs_finished ON jobs (finished_at);
