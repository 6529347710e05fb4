import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './model-fixtures';

const CLI = join(REPO_ROOT, 'apps', 'cli', 'bin', 'visionq.js');

/** `visionq keys create --file FILE …` as a user runs it; returns the key it printed. */
export function createKey(file: string, ...args: string[]): string {
  const run = spawnSync(process.execPath, [CLI, 'keys', 'create', '--file', file, ...args], { encoding: 'utf8' });
  expect(run.status, run.stderr).to.equal(0);
  expect(run.stderr).to.match(/appended to/);
  return run.stdout.trim();
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
