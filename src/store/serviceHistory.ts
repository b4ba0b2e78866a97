/**
 * Services' imported rate histories (migration 013): one row per service, the points as JSON,
 * a summary beside them so that the controller's poll and GET /v1/jobs/{id} read no points.
 */
import type { ServiceHistorySummary } from '../api/serviceHistory.ts';
import type { SqlDb } from './sqlDb.ts';

interface HistoryRow {
  readonly job_id: number;
  readonly revision: number;
  readonly point_count: number;
  readonly from_seconds: number;
  readonly to_seconds: number;
  readonly updated_at: number;
  readonly updated_by: string;
}

const SUMMARY = 'SELECT job_id, revision, point_count, from_seconds, to_seconds, updated_at, updated_by FROM service_history';

const summaryOf = (r: HistoryRow): ServiceHistorySummary => ({
  points: Number(r.point_count),
  fromSeconds: Number(r.from_seconds),
  toSeconds: Number(r.to_seconds),
  revision: Number(r.revision),
  updatedAt: Number(r.updated_at),
  updatedBy: r.updated_by,
});

/** Replaces a service's history (checked already); returns its summary. */
export async function putHistory(db: SqlDb, serviceId: number, points: readonly (readonly [number, number])[], by: string, now: number): Promise<ServiceHistorySummary> {
  const from = (points[0] as readonly [number, number])[0];
  const to = (points[points.length - 1] as readonly [number, number])[0];
  const row = await db.get<{ revision: number }>(
    `INSERT INTO service_history (job_id, revision, point_count, from_seconds, to_seconds, points, updated_at, updated_by) VALUES ($1, 1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (job_id) DO UPDATE SET revision = service_history.revision + 1, point_count = excluded.point_count, from_seconds = excluded.from_seconds,
       to_seconds = excluded.to_seconds, points = excluded.points, updated_at = excluded.updated_at, updated_by = excluded.updated_by
     RETURNING revision`,
    [serviceId, points.length, from, to, JSON.stringify(points), now, by],
  );
  const revision = Number(row?.revision ?? 1);
  return { points: points.length, fromSeconds: from, toSeconds: to, revision, updatedAt: now, updatedBy: by };
}

/** The summaries of these services' histories (services without one are absent). */
export async function historySummaries(db: SqlDb, serviceIds: readonly number[]): Promise<Map<string, ServiceHistorySummary>> {
  const out = new Map<string, ServiceHistorySummary>();
  if (serviceIds.length === 0) return out;
  const rows = await db.all<HistoryRow>(`${SUMMARY} WHERE job_id IN (${serviceIds.map((_, i) => `$${i + 1}`).join(', ')})`, serviceIds);
  for (const r of rows) out.set(String(r.job_id), summaryOf(r));
  return out;
}

/** A service's history with its points, or null. */
export async function getHistory(db: SqlDb, serviceId: number): Promise<{ summary: ServiceHistorySummary; points: [number, number][] } | null> {
  const r = await db.get<HistoryRow & { points: string }>(`SELECT job_id, revision, point_count, from_seconds, to_seconds, updated_at, updated_by, points FROM service_history WHERE job_id = $1`, [serviceId]);
  return r ? { summary: summaryOf(r), points: JSON.parse(r.points) as [number, number][] } : null;
}
