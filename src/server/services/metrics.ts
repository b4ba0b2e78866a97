/**
 * Prometheus metrics of services and lending (docs/services.md lists them):
 * tide_service_replicas{service,state}, tide_service_desired_replicas{service},
 * tide_service_keep_gpus{service}, tide_service_arrival_rate{service},
 * tide_lent_gpus{queue}, tide_borrowed_gpus{queue}, tide_evictions_total{kind},
 * tide_service_scale_decisions_total{direction}, tide_service_replica_restarts_total and
 * tide_service_scrape_failures_total. Services are labelled by job id (never by name: /metrics
 * is not authenticated). Gauges are read from the store when scraped.
 */
import client from 'prom-client';
import type { Store } from '../../store/store.ts';
import { queueLoans } from './loans.ts';

export interface ServiceMetrics {
  readonly evictions: client.Counter<'kind'>;
  readonly scaleDecisions: client.Counter<'direction'>;
  readonly replicaRestarts: client.Counter;
  readonly scrapeFailures: client.Counter;
  /** The arrival rate each service's autoscaler last saw (requests per second of its clock). */
  readonly arrivalRate: client.Gauge<'service'>;
}

export function serviceMetrics(registry: client.Registry, store: Store): ServiceMetrics {
  const evictions = new client.Counter({ name: 'tide_evictions_total', help: 'Borrowers stopped to give lent GPUs back to a service: planned (checkpoint, then stop) or immediate (no grace period)', labelNames: ['kind'], registers: [registry] });
  for (const kind of ['planned', 'immediate']) evictions.inc({ kind }, 0);
  const scaleDecisions = new client.Counter({ name: 'tide_service_scale_decisions_total', help: "Autoscaler decisions that changed a service's replicas", labelNames: ['direction'], registers: [registry] });
  for (const direction of ['up', 'down']) scaleDecisions.inc({ direction }, 0);
  const replicaRestarts = new client.Counter({ name: 'tide_service_replica_restarts_total', help: 'Replicas that exited on their own and were replaced', registers: [registry] });
  const scrapeFailures = new client.Counter({ name: 'tide_service_scrape_failures_total', help: "Scrapes of a replica's metrics endpoint that failed (timeout, refused, not 200, too large)", registers: [registry] });
  const arrivalRate = new client.Gauge({ name: 'tide_service_arrival_rate', help: "Requests per second a service's autoscaler saw at its last decision", labelNames: ['service'], registers: [registry] });

  new client.Gauge({
    name: 'tide_service_replicas',
    help: "A service's replicas by state: ready (serving), loading (placed or waiting, not ready yet), stopping",
    labelNames: ['service', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      const services = await store.listServices();
      const counts = new Map(services.map((s) => [s.job.id, { ready: 0, loading: 0, stopping: 0 }]));
      for (const r of await store.listReplicas(services.map((s) => s.job.id))) {
        const c = counts.get(r.job.serviceId ?? '');
        if (!c) continue;
        if (r.job.state === 'cancelled' || r.job.state === 'preempted') c.stopping++;
        else if (r.ready) c.ready++;
        else c.loading++;
      }
      for (const [service, c] of counts) for (const [state, n] of Object.entries(c)) this.set({ service, state }, n);
    },
  });
  const serviceGauge = (name: string, help: string, pick: (s: Awaited<ReturnType<Store['listServices']>>[number]) => number): void => {
    new client.Gauge({
      name,
      help,
      labelNames: ['service'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const s of await store.listServices()) this.set({ service: s.job.id }, pick(s));
      },
    });
  };
  serviceGauge('tide_service_desired_replicas', "Replicas a service's autoscaler wants now", (s) => s.desired);
  serviceGauge('tide_service_keep_gpus', 'GPUs of its queue a service keeps from lending (the rest is lent to its cohort)', (s) => s.keepMilli / 1000);
  const loanGauge = (name: string, help: string, pick: (l: { lent: number; borrowed: number }) => number): void => {
    new client.Gauge({
      name,
      help,
      labelNames: ['queue'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [queue, loan] of queueLoans(await store.snapshot())) this.set({ queue }, pick(loan));
      },
    });
  };
  loanGauge('tide_lent_gpus', 'GPUs of a queue\'s quota that other queues of its cohort borrow now', (l) => l.lent);
  loanGauge('tide_borrowed_gpus', 'GPUs a queue uses beyond its nominal quota, borrowed from its cohort', (l) => l.borrowed);
  return { evictions, scaleDecisions, replicaRestarts, scrapeFailures, arrivalRate };
}
