/** Reading back what checkid stored in Redis: corrupt or foreign data is a miss, not a crash. */

/** The JSON object in `text`; null when `text` is longer than `maxLength`, not JSON, or not an object. */
export function parseStoredObject(text: string, maxLength: number): object | null {
  if (text.length > maxLength) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return value && typeof value === 'object' ? value : null;
}
