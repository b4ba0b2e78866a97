-- Change tracking for the scheduler's incremental snapshot (store/openJobs.ts): every insert or
-- update of a job gives it a version above every other job's, so a reader that remembers the
-- highest version it saw reads only the jobs changed since. SQLite has one writer at a time, so
-- MAX(version) + 1 (one index probe) is exact. recursive_triggers is off: the trigger's own
-- UPDATE does not fire it again (and the WHEN clause would stop it if it were on).
ALTER TABLE jobs ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_version ON jobs (version);
CREATE TRIGGER jobs_version_insert AFTER INSERT ON jobs BEGIN
  UPDATE jobs SET version = (SELECT MAX(version) FROM jobs) + 1 WHERE id = NEW.id;
END;
CREATE TRIGGER jobs_version_update AFTER UPDATE ON jobs WHEN NEW.version = OLD.version BEGIN
  UPDATE jobs SET version = (SELECT MAX(version) FROM jobs) + 1 WHERE id = NEW.id;
END;
