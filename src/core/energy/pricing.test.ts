import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PRICES, energyCharge, gpuTimeYuan, type EnergyPrices } from './pricing.ts';

const flat = (yuan: number, co2: number): EnergyPrices => ({ tariffYuanPerKwh: Array(24).fill(yuan), carbonGramsPerKwh: Array(24).fill(co2), pue: 1.5, gpuHourYuan: { H100: 20, '*': 5 }, utcOffsetHours: 0 });

test('a kWh of GPU energy is charged PUE × tariff', () => {
  const c = energyCharge(flat(1, 500), 3.6e6, 0, 3600);
  assert.ok(Math.abs(c.kwh - 1.5) < 1e-12);
  assert.ok(Math.abs(c.energyYuan - 1.5) < 1e-12);
  assert.ok(Math.abs(c.co2Grams - 750) < 1e-9);
});

test('energy across hours is priced hour by hour of the local day', () => {
  // Default tariff, UTC+8: 23:00-01:00 UTC is 07:00-09:00 local: one valley hour, one flat hour.
  const c = energyCharge({ ...DEFAULT_PRICES, pue: 1 }, 2 * 3.6e6, 23 * 3600, 25 * 3600);
  assert.ok(Math.abs(c.energyYuan - (0.65 * 0.38 + 0.65)) < 1e-9, String(c.energyYuan));
  // An instant is priced at its hour: 11:00 local is peak.
  const peak = energyCharge({ ...DEFAULT_PRICES, pue: 1 }, 3.6e6, 3 * 3600, 3 * 3600);
  assert.ok(Math.abs(peak.energyYuan - 0.65 * 1.7) < 1e-9);
});

test('GPU time is priced per model, with a default', () => {
  assert.equal(gpuTimeYuan(flat(1, 1), 'H100', 7200), 40);
  assert.equal(gpuTimeYuan(flat(1, 1), 'T4', 3600), 5);
});

test('local hours and the next hour boundary', async () => {
  const { localHourAt, nextLocalHour, simulationPrices } = await import('./pricing.ts');
  // UTC 23:30 is 07:30 in UTC+8; the next local hour starts at UTC 24:00.
  assert.equal(localHourAt(DEFAULT_PRICES, 23.5 * 3600), 7);
  assert.equal(nextLocalHour(DEFAULT_PRICES, 23.5 * 3600), 24 * 3600);
  assert.equal(nextLocalHour(DEFAULT_PRICES, 24 * 3600), 25 * 3600);
  const sim = simulationPrices(DEFAULT_PRICES);
  assert.equal(localHourAt(sim, 0), 0);
  assert.equal(localHourAt(sim, 86_400 + 10 * 3600 + 1), 10);
});
