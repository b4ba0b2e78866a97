-- An array's waiting elements are one row, as Slurm keeps a pending array as one record: the
-- row stands for elements array_index … array_index + array_count - 1. A bind takes elements
-- off its front: a CPU-only element's bound to one node in one plan are one row, whose one task
-- runs them as a process each (the agent's run of a range), any other element a row of its own;
-- a cancel of some indices splits it. array_failed: of a range that ended, its elements that
-- exited non-zero (the others succeeded). Rows written before this migration (one per element)
-- have array_index NULL and their index in their spec.
ALTER TABLE jobs ADD COLUMN array_index BIGINT;
ALTER TABLE jobs ADD COLUMN array_count BIGINT NOT NULL DEFAULT 1;
ALTER TABLE jobs ADD COLUMN array_failed BIGINT NOT NULL DEFAULT 0;
