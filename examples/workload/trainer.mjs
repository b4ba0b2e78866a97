#!/usr/bin/env node
// A stand-in for a training task, for `tide bench live` and demos: it does `--steps` steps at
// `speed × --rate` steps per second, where speed is the relative speed of the GPU model it runs
// on (TIDE_GPU_MODEL, set by the agent, looked up in TRAINER_GPU_SPEEDS; speed 1 when either is
// missing). It sleeps between updates (no busy loop), so dozens can run on a small machine.
//
//   node trainer.mjs --steps 300 [--rate 10] [--checkpoint-every 5] [--load-seconds 1.5] [--save-seconds 0]
//   (or TRAINER_STEPS, TRAINER_RATE, TRAINER_CHECKPOINT_EVERY, TRAINER_LOAD_SECONDS, TRAINER_SAVE_SECONDS)
//
// - Progress: replaces TIDE_PROGRESS_FILE (when set) with {"step", "totalSteps", "checkpointStep"}
//   atomically (a temp file, then rename), about twice a second.
// - Checkpoints: every --checkpoint-every seconds of work, at the end, and on SIGTERM, into
//   $TIDE_CHECKPOINT_DIR/trainer-<TIDE_TASK_INDEX>.json (atomically). A restart resumes from the
//   checkpoint after --load-seconds (loading it); without TIDE_CHECKPOINT_DIR it starts over.
// - SIGTERM (preemption, time limit, cancel): saves a checkpoint and exits 143 — at once, or after
//   --save-seconds (a checkpoint that takes that long: a SIGKILL before it is written loses the
//   work since the last one, as an immediate reclaim does; periodic checkpoints stay instant).
// - Exits 0 when all steps are done.
// - GPU model when TIDE_GPU_MODEL is unset: TRAINER_NODE_MODELS ("node=MODEL,…") by TIDE_NODE,
//   for agents that do not set TIDE_GPU_MODEL yet.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout } from 'node:timers';

const env = process.env;

function arg(name, envName, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  const raw = i >= 0 ? process.argv[i + 1] : env[envName];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) {
    process.stderr.write(`trainer: --${name} (${envName}): not a non-negative number: '${raw}'\n`);
    process.exit(2);
  }
  return v;
}

/** "A=1,B=0.5" → {A: "1", B: "0.5"}. */
function pairs(text) {
  const out = {};
  for (const p of (text ?? '').split(',')) {
    const eq = p.indexOf('=');
    if (eq > 0) out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

const totalSteps = arg('steps', 'TRAINER_STEPS', undefined);
if (totalSteps === undefined || totalSteps <= 0) {
  process.stderr.write('trainer: --steps (or TRAINER_STEPS) is required: the number of steps to do\n');
  process.exit(2);
}
const rate = arg('rate', 'TRAINER_RATE', 10);
const checkpointEvery = arg('checkpoint-every', 'TRAINER_CHECKPOINT_EVERY', 5);
const loadSeconds = arg('load-seconds', 'TRAINER_LOAD_SECONDS', 0);
const saveSeconds = arg('save-seconds', 'TRAINER_SAVE_SECONDS', 0);

const model = env.TIDE_GPU_MODEL || pairs(env.TRAINER_NODE_MODELS)[env.TIDE_NODE ?? ''] || '';
const speedText = pairs(env.TRAINER_GPU_SPEEDS)[model];
const speed = speedText !== undefined && Number(speedText) > 0 ? Number(speedText) : 1;
const perSecond = speed * rate;

const rank = env.TIDE_TASK_INDEX ?? '0';
const checkpointFile = env.TIDE_CHECKPOINT_DIR ? join(env.TIDE_CHECKPOINT_DIR, `trainer-${rank}.json`) : null;
const progressFile = env.TIDE_PROGRESS_FILE || null;

function writeAtomic(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(value));
  renameSync(tmp, file);
}

let base = 0;
if (checkpointFile) {
  try {
    const saved = JSON.parse(readFileSync(checkpointFile, 'utf8'));
    if (typeof saved.step === 'number' && saved.step >= 0) base = Math.min(saved.step, totalSteps);
  } catch {
    // no checkpoint yet: start from step 0
  }
}
const resumed = base > 0;
const startedAt = Date.now();
/** When steps begin to advance: after loading a checkpoint. */
const workStart = startedAt + (resumed ? loadSeconds * 1000 : 0);
let checkpointStep = resumed ? base : null;
let lastCheckpointAt = workStart;

const stepAt = (now) => Math.min(totalSteps, base + (Math.max(0, now - workStart) / 1000) * perSecond);

function report(step) {
  if (!progressFile) return;
  try {
    writeAtomic(progressFile, { step: Math.floor(step), totalSteps, ...(checkpointStep === null ? {} : { checkpointStep: Math.floor(checkpointStep) }) });
  } catch {
    // the directory may be gone when the task is being stopped; progress is best effort
  }
}

function checkpoint(step) {
  if (!checkpointFile) return;
  writeAtomic(checkpointFile, { step, at: Date.now(), model, attempt: Number(env.TIDE_ATTEMPT ?? 0) });
  checkpointStep = step;
}

let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  const step = stepAt(Date.now());
  const save = () => {
    try {
      checkpoint(step);
      report(step);
    } finally {
      process.stdout.write(`SIGTERM at step ${step.toFixed(1)}/${totalSteps}: checkpoint saved\n`);
      process.exit(143);
    }
  };
  if (saveSeconds > 0) setTimeout(save, saveSeconds * 1000);
  else save();
});

process.stdout.write(`${resumed ? `resuming at step ${base.toFixed(1)}` : 'starting'}: ${totalSteps} steps at ${perSecond.toFixed(2)}/s on ${model || 'unknown GPU'} (speed ${speed})\n`);
report(base);

const TICK_MS = 500;
function tick() {
  if (stopping) return;
  const now = Date.now();
  const step = stepAt(now);
  if (step >= totalSteps) {
    checkpoint(totalSteps);
    report(totalSteps);
    process.stdout.write(`done: ${totalSteps} steps in ${((now - startedAt) / 1000).toFixed(1)} s\n`);
    process.exit(0);
  }
  if (now >= workStart && checkpointEvery > 0 && now - lastCheckpointAt >= checkpointEvery * 1000) {
    checkpoint(step);
    lastCheckpointAt = now;
  }
  report(step);
  // Wake at the next tick, or exactly when the last step is due.
  const dueIn = now < workStart ? workStart - now + ((totalSteps - base) / perSecond) * 1000 : ((totalSteps - step) / perSecond) * 1000;
  setTimeout(tick, Math.max(1, Math.min(TICK_MS, Math.ceil(dueIn))));
}
tick();
