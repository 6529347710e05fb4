import { createInterface } from 'node:readline/promises';
import type { TaskView } from '@visionq/api';
import type { VisionqClient } from '@visionq/client';
import { progressDisplay } from './progress.display';
import { exitStatusOf, formatTask } from './task.format';

/** Exit status when Ctrl-C left a task running (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130;

/** Prints a task's final view, as a table or (`json`) one JSON line, and returns the exit status it means. */
export function reportTask(view: TaskView, json: boolean | undefined): number {
  process.stdout.write(json ? `${JSON.stringify(view)}\n` : formatTask(view));
  return exitStatusOf(view);
}

/**
 * Follows a task to its end with progress on stderr, then reports it (its full view, with
 * inline results). Ctrl-C stops following: with `askOnInterrupt` on a terminal it asks
 * whether to cancel the task; otherwise the task is left running and its id printed.
 */
export async function followTask(client: VisionqClient, id: string, options: { json?: boolean; askOnInterrupt: boolean }): Promise<number> {
  const display = progressDisplay();
  const interrupted = new AbortController();
  const onSigint = () => interrupted.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  try {
    await client.wait(id, { onProgress: (view) => display.update(view), signal: interrupted.signal });
  } catch (err) {
    if (!interrupted.signal.aborted) throw err;
  } finally {
    display.stop();
    process.removeListener('SIGINT', onSigint);
  }
  if (!interrupted.signal.aborted) return reportTask(await client.get(id), options.json);
  if (options.askOnInterrupt && process.stdin.isTTY && process.stderr.isTTY && (await confirm(`Cancel task ${id}? [y/N] `))) {
    return reportTask(await client.cancel(id), options.json);
  }
  process.stdout.write(`task ${id} left running: visionq watch ${id}\n`);
  return EXIT_INTERRUPTED;
}

/** Asks on the terminal; a second Ctrl-C answers no. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const asked = new AbortController();
  rl.once('SIGINT', () => asked.abort());
  try {
    return /^y(es)?$/i.test((await rl.question(question, { signal: asked.signal })).trim());
  } catch {
    return false;
  } finally {
    rl.close();
  }
}
