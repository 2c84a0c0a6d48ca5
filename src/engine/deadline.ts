/** Bounded waiting: every stage finishes (or gives up) within its deadline, never hangs. */

export class DeadlineError extends Error {
  override name = 'DeadlineError';
}

/**
 * Runs `work` with an AbortSignal that fires after `ms`; rejects with DeadlineError then, even if
 * the work ignores the signal.
 */
export async function withDeadline<T>(ms: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new DeadlineError(`${what}: no answer within ${ms} ms`);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
