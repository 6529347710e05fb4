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

  it('keeps Node modules out of the client\'s main entry, so a browser bundle can take it', () => {
    const imports = new Set<string>();
    const visit = (file: string, seen = new Set<string>()) => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/require\("([^"]+)"\)/g)) {
        if (spec!.startsWith('.')) visit(join(file, '..', `${spec}.js`), seen);
        else if (spec!.startsWith('@visionq/')) visit(join(REPO_ROOT, 'packages', spec!.slice('@visionq/'.length), 'dist', 'index.js'), seen);
        else imports.add(spec!);
      }
    };
    visit(join(REPO_ROOT, 'packages', 'client', 'dist', 'index.js'));
    expect([...imports].sort()).to.deep.equal(['eventsource-parser', 'zod']);
    expect(readFileSync(join(REPO_ROOT, 'packages', 'client', 'dist', 'node.js'), 'utf8'), 'the check sees Node imports where there are some').to.match(/require\("node:fs"\)/);
  });

  it('keeps the worker app to its wiring', () => {
    expect(readdirSync(join(REPO_ROOT, 'apps', 'worker', 'src'))).to.deep.equal(['main.ts']);
  });
});
