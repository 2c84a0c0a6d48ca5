/**
 * The legacy `Authent:` header of checkID (2005): `IP ID METHOD RESULT [ratings=SVC:GRADE,...]`,
 * e.g. `192.0.2.1 example.com SPF1 PASS ratings=S1:A,M2:A,H1:B`.
 */
import { sanitize } from './fold.ts';

export const AUTHENT_LABEL = 'Authent:';

export interface AuthentFields {
  ip: string;
  id: string;
  /** method and version, e.g. SPF1 */
  method: string;
  /** upper-case result, e.g. PASS */
  result: string;
  ratings: Array<{ service: string; grade: string }>;
}

export function renderAuthent(f: AuthentFields): string {
  const words = [f.ip, f.id, f.method, f.result.toUpperCase()].map((w) => sanitize(w).replace(/\s+/g, ''));
  if (f.ratings.length > 0) {
    const list = f.ratings.map((r) => `${r.service}:${r.grade}`).join(',');
    words.push(`ratings=${sanitize(list).replace(/\s+/g, '')}`);
  }
  return words.join(' ');
}
