import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../core/rng.ts';
import { EventQueue } from './eventQueue.ts';

test('events come out by time, and by insertion order at equal times', () => {
  const q = new EventQueue<string>();
  q.push(5, 'c');
  q.push(1, 'a');
  q.push(5, 'd');
  q.push(3, 'b');
  q.push(5, 'e');
  const out: string[] = [];
  for (let e = q.pop(); e; e = q.pop()) out.push(e.item);
  assert.deepEqual(out, ['a', 'b', 'c', 'd', 'e']);
  assert.equal(q.peekTime(), Infinity);
});

test('a thousand random events pop in (time, seq) order', () => {
  const rng = Rng.fromSeed(3);
  const q = new EventQueue<number>();
  const pushed: { time: number; seq: number }[] = [];
  for (let i = 0; i < 1000; i++) {
    const time = rng.int(0, 50);
    q.push(time, i);
    pushed.push({ time, seq: i });
  }
  pushed.sort((a, b) => a.time - b.time || a.seq - b.seq);
  const popped: number[] = [];
  for (let e = q.pop(); e; e = q.pop()) popped.push(e.item);
  assert.deepEqual(popped, pushed.map((p) => p.seq));
});
