import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../support/model-fixtures';

/** Workspace package name → its dependencies, from every package.json of the workspaces. */
function workspaceDependencies(): Map<string, string[]> {
  const packages = new Map<string, string[]>();
  for (const group of ['packages', 'apps']) {
    for (const dir of readdirSync(join(REPO_ROOT, group))) {
      const manifest = JSON.parse(readFileSync(join(REPO_ROOT, group, dir, 'package.json'), 'utf8'));
      packages.set(manifest.name, Object.keys(manifest.dependencies ?? {}));
    }
  }
  return packages;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('the layout the design promises', () => {
  it('keeps onnxruntime-node out of the gateway: it reads manifests, never graphs', () => {
    const deps = workspaceDependencies();
    const seen = new Set<string>();
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      for (const dep of deps.get(name) ?? []) visit(dep);
    };
    visit('@visionq/gateway');
    expect([...seen]).to.include('@visionq/tasks');
    expect([...seen]).to.not.include('onnxruntime-node');
    expect([...seen]).to.not.include('@visionq/inference');
  });

  it('has tests import packages, never an app\'s sources', () => {
    const offenders = filesUnder(join(REPO_ROOT, 'test'))
      .filter((f) => f.endsWith('.ts'))
      .filter((f) => /from '(\.\.\/)+apps\//.test(readFileSync(f, 'utf8')));
    expect(offenders.map((f) => relative(REPO_ROOT, f))).to.deep.equal([]);
  });

  it('keeps the worker app to its wiring', () => {
    expect(readdirSync(join(REPO_ROOT, 'apps', 'worker', 'src'))).to.deep.equal(['main.ts']);
  });
});
