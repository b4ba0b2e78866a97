/** JSON Schema of the job spec, for /openapi.json (validation itself is parseJobSpec, which names every bad field). */
export const JOB_SPEC_SCHEMA = {
  type: 'object',
  required: ['name', 'tasks'],
  properties: {
    name: { type: 'string', description: '1-63 letters, digits, -, _ or .' },
    queue: { type: 'string', default: 'default' },
    priority: { type: 'integer', default: 0, description: 'higher runs first and may preempt lower' },
    kind: { type: 'string', enum: ['training', 'inference', 'batch'], default: 'batch' },
    preemptible: { type: 'boolean', description: 'default: true except for inference' },
    checkpoint: { type: 'boolean', default: false, description: 'the job writes to TIDE_CHECKPOINT_DIR and resumes from it' },
    array: { type: 'integer', minimum: 1, default: 1, description: 'batch arrays: independent copies with TIDE_ARRAY_INDEX' },
    gracePeriodSeconds: { type: 'number', default: 10, description: 'SIGTERM to SIGKILL' },
    clientKey: { type: 'string', description: 'idempotency key (or the Idempotency-Key header)' },
    tasks: {
      type: 'array',
      minItems: 1,
      description: 'task groups; all tasks of a job form one gang',
      items: {
        type: 'object',
        required: ['command'],
        properties: {
          name: { type: 'string', default: 'main' },
          replicas: { type: 'integer', minimum: 1, default: 1 },
          gpus: { type: 'number', description: 'whole GPUs, or a fraction below 1 (e.g. 0.5)', default: 0 },
          gpuModels: { type: 'array', items: { type: 'string' }, description: 'allowed GPU models; empty: any' },
          cpu: { type: ['number', 'string'], description: 'cores or "500m"', default: 1 },
          memory: { type: ['number', 'string'], description: 'bytes or a quantity like "64Gi"', default: '1Gi' },
          command: { type: ['string', 'array'], items: { type: 'string' }, description: 'shell command string, or argv list' },
          env: { type: 'object', additionalProperties: { type: 'string' } },
        },
      },
    },
  },
} as const;
