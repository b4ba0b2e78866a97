-- Change tracking for the scheduler's incremental snapshot (store/openJobs.ts): every insert or
-- update of a job stamps it with the writing transaction's id. Transactions commit out of id
-- order, so a reader does not remember the highest id it saw: it remembers the xmin of its
-- snapshot (every transaction below it has ended) and next reads the jobs stamped at or above
-- it. Several servers may write to one database; this sees all their writes.
ALTER TABLE jobs ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_version ON jobs (version);
CREATE FUNCTION tide_job_version() RETURNS trigger AS $$
BEGIN
  NEW.version := pg_current_xact_id()::text::bigint;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER jobs_version BEFORE INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION tide_job_version();
