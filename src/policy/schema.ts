/**
 * A small declarative schema for the YAML config, so every error names the key path (and the
 * loader adds file and line). Kept here rather than pulling in a validation library.
 */

export type Schema =
  | { type: 'string'; pattern?: RegExp; valid?: (value: string) => boolean; enum?: readonly string[]; description?: string }
  | { type: 'number'; min?: number; max?: number; integer?: boolean }
  | { type: 'boolean' }
  | { type: 'array'; items: Schema; maxItems?: number }
  | { type: 'object'; props: Record<string, Schema>; required?: readonly string[]; additional?: Schema }
  | { type: 'nullable'; inner: Schema }
  | { type: 'either'; options: readonly Schema[]; description: string };

export interface SchemaError {
  path: Array<string | number>;
  message: string;
}

function describe(s: Schema): string {
  switch (s.type) {
    case 'string':
      return s.enum ? `one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` : 'a string';
    case 'number':
      return s.integer ? 'a whole number' : 'a number';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
      return 'a mapping';
    case 'nullable':
      return `${describe(s.inner)} or null`;
    case 'either':
      return s.description;
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

export function validate(value: unknown, schema: Schema, path: Array<string | number> = []): SchemaError[] {
  const errors: SchemaError[] = [];
  const fail = (message: string) => errors.push({ path, message });
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') fail(`must be ${describe(schema)}, not ${typeName(value)}`);
      else if (schema.enum && !schema.enum.includes(value)) fail(`must be ${describe(schema)}, not ${JSON.stringify(value)}`);
      else if ((schema.pattern && !schema.pattern.test(value)) || (schema.valid && !schema.valid(value))) {
        fail(`${JSON.stringify(value)} is not valid${schema.description ? ` (${schema.description})` : ''}`);
      }
      break;
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(`must be ${describe(schema)}, not ${typeName(value)}`);
      else if (schema.integer && !Number.isInteger(value)) fail(`must be a whole number, not ${value}`);
      else if (schema.min !== undefined && value < schema.min) fail(`must be at least ${schema.min}, not ${value}`);
      else if (schema.max !== undefined && value > schema.max) fail(`must be at most ${schema.max}, not ${value}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') fail(`must be true or false, not ${typeName(value)}`);
      break;
    case 'array':
      // an empty key (null) means the default, as for a key left out
      if (value === null) break;
      if (!Array.isArray(value)) fail(`must be a list, not ${typeName(value)}`);
      else {
        if (schema.maxItems !== undefined && value.length > schema.maxItems) fail(`has more than ${schema.maxItems} items`);
        for (let i = 0; i < value.length; i++) errors.push(...validate(value[i], schema.items, [...path, i]));
      }
      break;
    case 'object': {
      if (value === null) break;
      if (typeof value !== 'object' || Array.isArray(value)) {
        fail(`must be a mapping, not ${typeName(value)}`);
        break;
      }
      const obj = value as Record<string, unknown>;
      for (const key of schema.required ?? []) if (!(key in obj)) fail(`needs the key "${key}"`);
      for (const [key, v] of Object.entries(obj)) {
        const sub = schema.props[key] ?? schema.additional;
        if (!sub) {
          const known = Object.keys(schema.props);
          const hint = closest(key, known);
          errors.push({
            path: [...path, key],
            message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; known keys: ${known.join(', ')}`,
          });
          continue;
        }
        errors.push(...validate(v, sub, [...path, key]));
      }
      break;
    }
    case 'nullable':
      if (value !== null) errors.push(...validate(value, schema.inner, path));
      break;
    case 'either': {
      for (const option of schema.options) if (validate(value, option, path).length === 0) return [];
      fail(`must be ${schema.description}`);
      break;
    }
  }
  return errors;
}

/** The known key nearest to a misspelt one (edit distance ≤ 2). */
function closest(word: string, candidates: string[]): string | null {
  let best: string | null = null;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
