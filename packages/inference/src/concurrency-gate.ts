/**
 * At most `limit` tasks run at once; the rest wait in two lanes, urgent ones first. A
 * worker bounds the images it holds in memory (fetched bytes, decoded pixels) with it.
 */
export class ConcurrencyGate {
  private running = 0;
  private readonly urgent: (() => void)[] = [];
  private readonly normal: (() => void)[] = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be an integer >= 1, got ${limit}`);
  }

  async run<T>(task: () => Promise<T>, options: { urgent?: boolean } = {}): Promise<T> {
    if (this.running >= this.limit) {
      await new Promise<void>((resolve) => (options.urgent ? this.urgent : this.normal).push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.urgent.shift() ?? this.normal.shift();
      if (next) next(); // the slot passes on without being freed
      else this.running--;
    }
  }
}
