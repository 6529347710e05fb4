import { spawn } from 'node:child_process';

/** A server program a test runs (moto, nginx, prometheus): stopped by `stop()`, or killed when this Node process exits. */
export interface ServerProcess {
  /** Why it is gone (exited, or never started); undefined while it runs. */
  ended(): string | undefined;
  /** The tail of its stderr, for error messages. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after the grace time; then `cleanUp`. Resolves once all is done. Idempotent. */
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** What to name when the program is missing (the Debian or Python package). */
  installHint: string;
  /** Time SIGTERM gets before SIGKILL. */
  graceMs?: number;
  /** Run after it is gone (its folder removed). */
  cleanUp?: () => Promise<void>;
}

const STDERR_TAIL_CHARS = 8_000;
const START_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 100;

export function startServerProcess(command: string, args: string[], options: ServerOptions): ServerProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_TAIL_CHARS);
  });
  let ended: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = `exited (code ${code}, signal ${signal})`;
      resolve();
    });
    child.once('error', (err) => {
      ended = `could not start (${options.installHint}): ${err.message}`;
      resolve(); // A process that never started has no exit to wait for.
    });
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  let stopping: Promise<void> | undefined;
  return {
    ended: () => ended,
    stderr: () => stderr,
    stop: () =>
      (stopping ??= (async () => {
        process.removeListener('exit', killOnExit);
        if (!ended) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), options.graceMs ?? 2_000);
          await exited;
          clearTimeout(timer);
        }
        await options.cleanUp?.();
      })()),
  };
}

/**
 * Waits until `url` answers 2xx. Should the process end first, or START_TIMEOUT_MS pass, it
 * is stopped and this throws with its stderr.
 */
export async function untilAnswers(server: ServerProcess, name: string, url: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!server.ended() && Date.now() < deadline) {
    if (await fetch(url, { signal: AbortSignal.timeout(2_000) }).then((r) => (r.body?.cancel(), r.ok), () => false)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  await server.stop();
  throw new Error(`${name} ${server.ended() ?? `did not answer ${url} within ${START_TIMEOUT_MS} ms`}\nstderr:\n${server.stderr()}`);
}
