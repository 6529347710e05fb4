import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { CONFIG_VARIABLES } from '@visionq/config';
import { REPO_ROOT } from '../support/model-fixtures';

const K8S = join(REPO_ROOT, 'deploy', 'k8s');
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [key: string]: any };
type Model = new (data: any) => { validate(): void };

/** The model class of each kind these manifests use (the packages are ES modules only). */
async function models(): Promise<Record<string, Model>> {
  const [apps, policy, core, keda] = await Promise.all([
    import('kubernetes-models/apps/v1'),
    import('kubernetes-models/policy/v1'),
    import('kubernetes-models/v1'),
    import('@kubernetes-models/keda/keda.sh/v1alpha1'),
  ]);
  return {
    'apps/v1/Deployment': apps.Deployment,
    'apps/v1/StatefulSet': apps.StatefulSet,
    'policy/v1/PodDisruptionBudget': policy.PodDisruptionBudget,
    'v1/ConfigMap': core.ConfigMap,
    'v1/Service': core.Service,
    'keda.sh/v1alpha1/ScaledObject': keda.ScaledObject,
  } as Record<string, Model>;
}

function readYaml(path: string): Manifest[] {
  return parseAllDocuments(readFileSync(path, 'utf8')).map((doc) => doc.toJS() as Manifest);
}

/** What `kustomize build <dir>` would render, for the features these manifests use (resources, strategic-merge patches, labels). */
function build(dir: string): Manifest[] {
  const kustomization = readYaml(join(dir, 'kustomization.yaml'))[0] as any;
  let objects: Manifest[] = [];
  for (const resource of kustomization.resources ?? []) {
    const path = join(dir, resource);
    objects.push(...(existsSync(join(path, 'kustomization.yaml')) ? build(path) : readYaml(path)));
  }
  for (const patch of kustomization.patches ?? []) {
    for (const change of readYaml(join(dir, patch.path))) {
      const target = objects.find((o) => o.kind === change.kind && o.metadata.name === change.metadata.name);
      expect(target, `${patch.path} patches ${change.kind}/${change.metadata.name}`).to.not.equal(undefined);
      objects = objects.map((o) => (o === target ? merge(o, change) : o));
    }
  }
  for (const { pairs } of kustomization.labels ?? []) for (const o of objects) o.metadata.labels = { ...o.metadata.labels, ...pairs };
  return objects;
}

/** Strategic merge as Kubernetes does it for these fields: maps merge, lists of named items merge by name, other lists are replaced. */
function merge(base: any, patch: any): any {
  if (Array.isArray(base) && Array.isArray(patch) && patch.every((p) => p && typeof p === 'object' && 'name' in p)) {
    const out = base.map((b: any) => {
      const p = patch.find((x: any) => x.name === b.name);
      return p ? merge(b, p) : b;
    });
    return [...out, ...patch.filter((p: any) => !base.some((b: any) => b.name === p.name))];
  }
  if (base && patch && typeof base === 'object' && typeof patch === 'object' && !Array.isArray(base) && !Array.isArray(patch)) {
    const out = { ...base };
    for (const [key, value] of Object.entries(patch)) out[key] = key in base ? merge(base[key], value) : value;
    return out;
  }
  return patch;
}

describe('deploy/k8s: kustomize base and overlays', () => {
  for (const overlay of ['cpu', 'gpu']) {
    it(`renders the ${overlay} overlay into objects that all validate (kubernetes-models, @kubernetes-models/keda)`, async () => {
      const MODELS = await models();
      const objects = build(join(K8S, 'overlays', overlay));
      expect(objects.map((o) => o.kind).sort()).to.deep.equal(['ConfigMap', 'Deployment', 'Deployment', 'PodDisruptionBudget', 'ScaledObject', 'Service', 'Service', 'StatefulSet']);
      for (const object of objects) {
        const Model = MODELS[`${object.apiVersion}/${object.kind}`];
        expect(Model, `${object.apiVersion} ${object.kind}`).to.not.equal(undefined);
        expect(() => new Model!(object).validate(), `${object.kind}/${object.metadata.name}`).to.not.throw();
      }
      const worker = objects.find((o) => o.metadata.name === 'visionq-worker')!;
      // The validation can fail: a wrong type is caught.
      expect(() => new MODELS['apps/v1/Deployment']!({ ...worker, spec: { ...worker.spec, replicas: 'two' } }).validate()).to.throw();
      const scaledObject = objects.find((o) => o.kind === 'ScaledObject')!;
      expect(() => new MODELS['keda.sh/v1alpha1/ScaledObject']!({ ...scaledObject, spec: { ...scaledObject.spec, triggers: 'prometheus' } }).validate()).to.throw();
      const config = objects.find((o) => o.kind === 'ConfigMap')!.data;
      // The kill waits for the drain.
      expect(worker.spec.template.spec.terminationGracePeriodSeconds * 1000).to.be.greaterThan(Number(config.DRAIN_TIMEOUT_MS));
      if (overlay === 'gpu') expect(worker.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu']).to.equal('1');
      const scaled = objects.find((o) => o.kind === 'ScaledObject')!;
      expect(scaled.spec.scaleTargetRef.name).to.equal('visionq-worker');
      expect(scaled.spec.minReplicaCount).to.equal(0);
      expect(scaled.spec.triggers[0].metadata.query).to.match(/visionq_queue_backlog\{model="fashion-vgg"\}/);
    });
  }

  it('configures only variables visionq knows, and probes /healthz and /readyz', () => {
    const objects = build(join(K8S, 'base'));
    const known = new Set(CONFIG_VARIABLES.map((v) => v.name));
    const config = objects.find((o) => o.kind === 'ConfigMap')!.data;
    expect(Object.keys(config).filter((name) => !known.has(name))).to.deep.equal([]);
    const gateway = objects.find((o) => o.metadata.name === 'visionq-gateway' && o.kind === 'Deployment')!.spec.template.spec.containers[0];
    expect(gateway.livenessProbe.httpGet.path).to.equal('/healthz');
    expect(gateway.readinessProbe.exec.command.join(' ')).to.include('/readyz');
  });
});
