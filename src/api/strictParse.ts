/**
 * Strict reading of request bodies: JSON with a duplicate key is refused (as YAML's are: JSON.parse
 * silently keeps the last one), and a YAML error is one clean line with its line and column,
 * without the parser's snippet or advice about its own API.
 */
import { parse as parseYaml } from 'yaml';

export interface DuplicateKey {
  readonly key: string;
  /** Where the object that holds it is: `tasks[0]`, or '' for the top level. */
  readonly at: string;
}

const SIMPLE_KEY = /^[A-Za-z_$][\w$-]*$/;
const pathPart = (frame: Frame): string =>
  frame.keys === null ? `[${frame.index}]` : SIMPLE_KEY.test(frame.key) ? `.${frame.key}` : `[${JSON.stringify(frame.key)}]`;

/** A container being read: an array (keys null) or an object with the keys seen so far. */
interface Frame {
  keys: Set<string> | null;
  key: string;
  index: number;
}

/**
 * Whether a JSON text that JSON.parse turned into `value` has a duplicate key: it does exactly
 * when the text holds more keys than the value (JSON.parse keeps one of each). Counting both is
 * about twice as fast as JSON.parse and allocates nothing; `findDuplicateKey` then says which.
 */
export function hasDuplicateKey(text: string, value: unknown): boolean {
  return countKeyTokens(text) !== countKeys(value);
}

function countKeys(v: unknown): number {
  if (typeof v !== 'object' || v === null) return 0;
  let n = 0;
  if (Array.isArray(v)) for (const x of v) n += countKeys(x);
  else
    for (const k in v) {
      n++;
      n += countKeys((v as Record<string, unknown>)[k]);
    }
  return n;
}

/** Strings followed by a colon (after any whitespace) are keys. */
function countKeyTokens(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) !== 0x22 /* " */) continue;
    i = stringEnd(text, i);
    let j = i + 1;
    let c = text.charCodeAt(j);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++j);
    if (c === 0x3a /* : */) n++;
  }
  return n;
}

/** The index of the quote that closes the string opening at `start`. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  for (;;) {
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === 0x5c /* \ */) slashes++;
    if (slashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/**
 * The first duplicate key in a JSON text that JSON.parse has accepted, or null. One pass over
 * the text: strings are skipped with indexOf, and keys are decoded only when they hold escapes.
 */
export function findDuplicateKey(text: string): DuplicateKey | null {
  const stack: Frame[] = [];
  let expectKey = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      if (expectKey) {
        const top = stack[stack.length - 1] as Frame;
        const raw = text.slice(i + 1, end);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, end + 1)) as string) : raw;
        const keys = (top.keys ??= new Set());
        if (keys.has(key)) {
          top.key = key;
          return { key, at: stack.slice(0, -1).map(pathPart).join('').replace(/^\./, '') };
        }
        keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      stack.push({ keys: new Set(), key: '', index: 0 });
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push({ keys: null, key: '', index: 0 });
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1] as Frame;
      if (top.keys === null) top.index++;
      else expectKey = true;
    }
  }
  return null;
}

/** Why JSON.parse refuses a text, as one line with where: `line 2, column 13: unexpected token '}'`. */
export function describeJsonError(text: string): string {
  try {
    JSON.parse(text);
    return 'not valid JSON';
  } catch (e) {
    const msg = (e as Error).message;
    const at = / at position (\d+)/.exec(msg);
    const pos = at ? Number(at[1]) : /end of JSON input/.test(msg) ? text.length : null;
    // V8 may echo the text (`Unexpected token '}', "{…" is not valid JSON`): never repeat it.
    const what = msg
      .replace(/ (in|after) JSON at position \d+.*$/s, (_m, w: string) => (w === 'after' ? ' after the value' : ''))
      .replace(/, (\.\.\.)?".*" is not valid JSON$/s, '')
      .replace(/ of JSON input$/, ' of input')
      .replace(/^\w/, (ch) => ch.toLowerCase());
    if (pos === null) return what;
    const before = text.slice(0, pos);
    const line = before.split('\n').length;
    return `line ${line}, column ${pos - before.lastIndexOf('\n')}: ${what}`;
  }
}

/** The message for a duplicate key: `duplicate key "gpus" at tasks[0]`. */
export function duplicateKeyMessage(d: DuplicateKey): string {
  return `duplicate key ${JSON.stringify(d.key)} ${d.at === '' ? 'at the top level' : `at ${d.at}`}`;
}

/** Parses YAML; throws an Error whose message is one line: `line 3, column 5: duplicate key "gpus"`. */
export function parseYamlStrict(text: string): unknown {
  try {
    return parseYaml(text, { logLevel: 'error' }); // errors throw; warnings are not printed
  } catch (e) {
    throw new Error(describeYamlError(e, text), { cause: e });
  }
}

/** One line for a YAML parser error: where, then what, with none of the library's snippet or advice. */
export function describeYamlError(e: unknown, text: string): string {
  const err = e as { code?: string; linePos?: readonly { line: number; col: number }[]; message?: string };
  const pos = err.linePos?.[0];
  let what = (err.message ?? String(e)).split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? '';
  switch (err.code) {
    case 'DUPLICATE_KEY': {
      const line = pos ? (text.split('\n')[pos.line - 1] ?? '').slice(pos.col - 1) : '';
      const key = /^\s*(?:- )?("[^"]*"|'[^']*'|[^:#]+?)\s*:/.exec(line)?.[1];
      what = key ? `duplicate key ${JSON.stringify(key.replace(/^["']|["']$/g, ''))}` : 'duplicate key';
      break;
    }
    case 'MULTIPLE_DOCS':
      what = 'more than one document (send one)';
      break;
    case 'BAD_INDENT':
    case 'TAB_AS_INDENT':
    case 'BLOCK_AS_IMPLICIT_KEY':
    case 'MULTILINE_IMPLICIT_KEY':
      what = `bad indentation (${what.replace(/^\w/, (ch) => ch.toLowerCase())})`;
      break;
    default:
      what = what.replace(/[;.]?\s*(please use|set \w+:|use `).*$/i, '').replace(/^\w/, (ch) => ch.toLowerCase());
  }
  return pos ? `line ${pos.line}, column ${pos.col}: ${what}` : what;
}
