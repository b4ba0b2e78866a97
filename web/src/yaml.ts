/** A small YAML writer for job specs (plain objects, arrays, strings, numbers, booleans). */
const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./ -]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|-?\d[\d_.e+-]*)$/i;

function scalar(v: unknown): string {
  if (typeof v === 'string') return PLAIN.test(v) && !RESERVED.test(v) && !v.endsWith(' ') ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

export function toYaml(v: unknown, indent = ''): string {
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    if (v.every((x) => typeof x !== 'object' || x === null)) return `[${v.map(scalar).join(', ')}]`;
    return v.map((x) => `\n${indent}- ${toYaml(x, `${indent}  `).replace(/^\n\s*/, '')}`).join('');
  }
  if (typeof v === 'object' && v !== null) {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (entries.length === 0) return '{}';
    return entries.map(([k, x]) => {
      if (typeof x === 'string' && x.includes('\n')) return `\n${indent}${k}: |\n${x.replace(/\n$/, '').split('\n').map((l) => `${indent}  ${l}`).join('\n')}`;
      const inner = toYaml(x, `${indent}  `);
      return `\n${indent}${k}:${inner.startsWith('\n') ? '' : ' '}${inner}`;
    }).join('');
  }
  return scalar(v);
}

export const specYaml = (spec: unknown): string => `${toYaml(spec).replace(/^\n/, '')}\n`;
