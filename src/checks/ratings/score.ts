/**
 * Turning grades into numbers, checkID-style: each trusted service maps its grades to scores and
 * has a weight; the policy decides on the min, max and weighted average.
 */
import type { Rating } from './types.ts';

export interface ServiceScale {
  grades: Record<string, number>;
  weight: number;
}

export interface ScoringConfig {
  /** per service code; services not listed use `defaultScale` when `trustUnlisted` */
  services: Record<string, ServiceScale>;
  defaultScale: ServiceScale;
  trustUnlisted: boolean;
}

export const DEFAULT_SCALE: ServiceScale = { grades: { A: 9, B: 7, C: 5, D: 0 }, weight: 5 };

export interface ScoredRating extends Rating {
  score: number;
  weight: number;
}

export interface RatingScores {
  scored: ScoredRating[];
  /** ratings we could not score (untrusted service, unknown grade) */
  ignored: Rating[];
  min: number | null;
  max: number | null;
  /** weighted average */
  average: number | null;
}

export function scoreRatings(ratings: Rating[], config: ScoringConfig): RatingScores {
  const scored: ScoredRating[] = [];
  const ignored: Rating[] = [];
  for (const r of ratings) {
    const scale = config.services[r.service] ?? (config.trustUnlisted ? config.defaultScale : undefined);
    if (!scale) {
      ignored.push(r);
      continue;
    }
    let score = scale.grades[r.grade.toUpperCase()];
    // numeric grades are scores already
    if (score === undefined && /^\d{1,3}$/.test(r.grade)) score = Number(r.grade);
    if (score === undefined) {
      ignored.push(r);
      continue;
    }
    scored.push({ ...r, score, weight: scale.weight });
  }
  if (scored.length === 0) return { scored, ignored, min: null, max: null, average: null };
  let sum = 0;
  let weights = 0;
  for (const s of scored) {
    sum += s.score * s.weight;
    weights += s.weight;
  }
  return {
    scored,
    ignored,
    min: Math.min(...scored.map((s) => s.score)),
    max: Math.max(...scored.map((s) => s.score)),
    average: weights > 0 ? sum / weights : null,
  };
}
