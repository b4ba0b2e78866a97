-- A service's rate history from before Tide ran it (docs/services.md "Starting with history"):
-- the points [t_seconds, requests/s] its owner imported (PUT /v1/jobs/{id}/history), as JSON,
-- replayed into its autoscaler by the services' controller. One row per service; a PUT replaces
-- it and bumps revision (the controller rebuilds the autoscaler when revision moves).
CREATE TABLE service_history (
  job_id BIGINT PRIMARY KEY,
  revision BIGINT NOT NULL,
  point_count BIGINT NOT NULL,
  from_seconds DOUBLE PRECISION NOT NULL,
  to_seconds DOUBLE PRECISION NOT NULL,
  points TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by TEXT NOT NULL
);
