/**
 * What energy and GPU time cost, in yuan and grams of CO₂e: a time-of-use tariff and a carbon
 * intensity by hour of the cluster's local day, the facility's PUE, and a price per GPU-hour by
 * model. Shared by the simulator's accounting and the live server's usage records, so that both
 * charge the same way. Pure: times are passed in (seconds since the epoch, or since a
 * simulation's start, which is then taken as local midnight).
 */

export interface EnergyPrices {
  /** Yuan per kWh at the meter, for each hour of the local day (24 values). */
  readonly tariffYuanPerKwh: readonly number[];
  /** Grams of CO₂e per kWh, for each hour of the local day (24 values; all equal for a constant). */
  readonly carbonGramsPerKwh: readonly number[];
  /** Facility power ÷ IT power: GPU energy × PUE is what the meter charges. */
  readonly pue: number;
  /** Yuan per GPU-hour by GPU model (amortised purchase or rental); '*' for models not listed. */
  readonly gpuHourYuan: Readonly<Record<string, number>>;
  /** Local time = UTC + this many hours (China: 8). */
  readonly utcOffsetHours: number;
}

const hours = (f: (h: number) => number): number[] => Array.from({ length: 24 }, (_, h) => f(h));

/**
 * Defaults: Guangdong's time-of-use shape (valley 00-08 × 0.38, peak 10-12 and 14-19 × 1.7, flat
 * otherwise; Guangdong DRC 2021 notice) on an assumed flat price of 0.65 yuan/kWh (an assumption,
 * as in ../shared/data/power/china_tou_tariffs.csv); China's 2022 national grid average of
 * 536.6 gCO₂/kWh (MEE/NBS, constant: no public hourly profile); PUE 1.56 (Uptime Institute 2024
 * survey mean); no GPU-hour price (0: energy only) unless the cluster config sets one.
 */
export const DEFAULT_PRICES: EnergyPrices = {
  tariffYuanPerKwh: hours((h) => 0.65 * (h < 8 ? 0.38 : (h >= 10 && h < 12) || (h >= 14 && h < 19) ? 1.7 : 1)),
  carbonGramsPerKwh: hours(() => 536.6),
  pue: 1.56,
  gpuHourYuan: { '*': 0 },
  utcOffsetHours: 8,
};

export interface Charge {
  /** Energy at the meter (GPU energy × PUE), kWh. */
  readonly kwh: number;
  readonly energyYuan: number;
  readonly co2Grams: number;
}

const HOUR = 3600;

/**
 * The charge for `joules` of GPU energy spent evenly from `from` to `to` (seconds; UTC epoch
 * seconds live, simulation seconds in the simulator), priced hour by hour of the local day.
 */
export function energyCharge(p: EnergyPrices, joules: number, from: number, to: number): Charge {
  const kwh = (joules * p.pue) / 3.6e6;
  if (kwh === 0) return { kwh: 0, energyYuan: 0, co2Grams: 0 };
  const span = to - from;
  const offset = p.utcOffsetHours * HOUR;
  if (!(span > 0)) {
    const h = hourOfDay(from + offset);
    return { kwh, energyYuan: kwh * (p.tariffYuanPerKwh[h] ?? 0), co2Grams: kwh * (p.carbonGramsPerKwh[h] ?? 0) };
  }
  let yuan = 0;
  let co2 = 0;
  for (let t = from; t < to; ) {
    const local = t + offset;
    const next = Math.min(to, t + (HOUR - mod(local, HOUR)));
    const share = (kwh * (next - t)) / span;
    const h = hourOfDay(local);
    yuan += share * (p.tariffYuanPerKwh[h] ?? 0);
    co2 += share * (p.carbonGramsPerKwh[h] ?? 0);
    t = next;
  }
  return { kwh, energyYuan: yuan, co2Grams: co2 };
}

/** Yuan for `gpuSeconds` of GPU time on `model`. */
export function gpuTimeYuan(p: EnergyPrices, model: string, gpuSeconds: number): number {
  return ((p.gpuHourYuan[model] ?? p.gpuHourYuan['*'] ?? 0) * gpuSeconds) / HOUR;
}

const mod = (a: number, n: number): number => ((a % n) + n) % n;
const hourOfDay = (localSeconds: number): number => Math.floor(mod(localSeconds, 24 * HOUR) / HOUR);

/** The hour of the local day (0–23) at `t` seconds (epoch seconds live; simulation seconds with `utcOffsetHours` 0). */
export function localHourAt(p: EnergyPrices, t: number): number {
  return hourOfDay(t + p.utcOffsetHours * HOUR);
}

/** When the local hour after the one holding `t` begins (seconds, on `t`'s clock). */
export function nextLocalHour(p: EnergyPrices, t: number): number {
  return t + (HOUR - mod(t + p.utcOffsetHours * HOUR, HOUR));
}

/**
 * The prices for a simulation whose clock starts at local midnight (simulated seconds are not
 * epoch seconds, so no UTC offset applies).
 */
export function simulationPrices(p: EnergyPrices): EnergyPrices {
  return { ...p, utcOffsetHours: 0 };
}
