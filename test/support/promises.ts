/** The error `promise` rejects with (typed as the caller expects it); fails when it resolves. */
export async function rejection<E = Error>(promise: Promise<unknown>): Promise<E> {
  try {
    await promise;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected a rejection');
}

/**
 * Polls `probe` every `pollMs` until it returns something other than undefined (a probe that
 * throws counts as not yet); fails after `timeoutMs` with `what` and the last error.
 */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, pollMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const found = await probe().catch((err: Error) => ((last = err.message), undefined));
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last error: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
