-- The energy stages live (docs/energy.md, "Live"). A node suspended by consolidation is in state
-- 'suspended', one asked to resume in 'resuming' (src/store/nodePower.ts); power_at is when it
-- entered that state (the resume timeout and the dry run's wake-up delay count from it).
-- power_cap_watts is the power limit per GPU the job's current attempt runs at: its own
-- powerCapWatts, or the one the powercap stage chose at bind (NULL: none).
ALTER TABLE nodes ADD COLUMN power_at BIGINT;
ALTER TABLE jobs ADD COLUMN power_cap_watts BIGINT;
