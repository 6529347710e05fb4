import { expect } from 'chai';
import { validate } from '@readme/openapi-parser';
import { ErrorCode, errorBody, openApiDocument, VisionqError } from '@visionq/api';
import { taskView } from '@visionq/tasks';
import { OpenApiContract } from '../support/openapi-contract';

const json = (value: unknown) => ({ status: 200, contentType: 'application/json; charset=utf-8', text: JSON.stringify(value) });

describe('the OpenAPI document generated from the schemas', () => {
  const document = openApiDocument();

  it('is a valid OpenAPI 3.1 document (@readme/openapi-parser), and the validator does refuse a broken one', async () => {
    expect(document.openapi).to.equal('3.1.1');
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, JSON.stringify(result)).to.equal(true);
    expect(result.warnings).to.deep.equal([]);
    const broken = structuredClone(document) as any;
    delete broken.paths['/tasks/{id}'].get.responses['200'].description;
    expect((await validate(broken)).valid).to.equal(false);
  });

  it('refers only to components it holds, each of them valid JSON Schema 2020-12 (Ajv, strict)', () => {
    const refs = [...JSON.stringify(document).matchAll(/"\$ref":"#\/components\/schemas\/(\w+)"/g)].map((m) => m[1]);
    expect(refs).to.not.be.empty;
    for (const id of new Set(refs)) expect((document.components as any).schemas).to.have.property(id!);
    const contract = new OpenApiContract(document);
    // Compiling checks the schemas; an error body of the API's own function fits, a made-up one does not.
    const body = errorBody(new VisionqError(ErrorCode.NotFound, 'no task', [{ field: 'id', message: 'unknown' }]));
    contract.check('GET', '/tasks/:id', { ...json(body), status: 404 });
    expect(() => contract.check('GET', '/tasks/:id', { ...json({ error: { code: 'gone', message: 'x', details: [] } }), status: 404 })).to.throw(/must be equal to one of the allowed values/);
  });

  it('describes TaskView as the tasks package writes it, with the retry and callback fields', () => {
    const contract = new OpenApiContract(document);
    const record = {
      id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427', tenant: 't', kind: 'batch' as const, model: 'fashion-vgg', topK: 5, output: 's3://b/results/', priority: 5,
      status: 'succeeded' as const, total: 1, done: 1, succeeded: 1, failed: 0, chunks: 1, listed: true, createdAt: '2026-12-02T06:26:09.135Z', callbackUrl: 'https://example.com/hook', retries: 0,
    };
    contract.check('GET', '/tasks/:id', json(taskView(record, [{ image: 's3://b/k', predictions: [{ class_id: 1, label: 'x', probability: 0.5 }] }])));
    expect(() => contract.check('GET', '/tasks/:id', json({ ...taskView(record), status: 'done' }))).to.throw(/status/);
    const properties = (document.components as any).schemas.TaskView.properties;
    expect(properties).to.include.keys('failed_chunks', 'retries');
    expect(properties.failed_chunks.items).to.deep.equal({ $ref: '#/components/schemas/FailedChunk' });
    expect((document.components as any).schemas.CallbackView.properties.events.items.enum).to.deep.equal(['progress', 'ended']);
  });

  it('asks no key of /healthz, /openapi.json and /docs, and names the scope of every other route', () => {
    const paths = document.paths as Record<string, Record<string, { security?: unknown[] }>>;
    const security = Object.entries(paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op.security] as const));
    expect(security.filter(([, s]) => Array.isArray(s) && s.length === 0).map(([op]) => op)).to.have.members(['GET /healthz', 'GET /openapi.json', 'GET /docs']);
    expect(Object.fromEntries(security)).to.deep.include({
      'POST /predict': [{ bearer: ['predict'] }],
      'POST /batch_predict': [{ bearer: ['tasks:write'] }],
      'POST /tasks/{id}/retry': [{ bearer: ['tasks:write'] }],
      'GET /tasks/{id}/results': [{ bearer: ['tasks:read'] }],
      'GET /metrics': [{ bearer: ['admin'] }],
    });
    expect(document.security).to.deep.equal([{ bearer: [] }]);
  });

  it('documents multipart uploads and the headers of /batch_predict', () => {
    const batch = (document.paths as any)['/batch_predict'].post;
    expect(batch.requestBody.content).to.have.keys('application/json', 'multipart/form-data');
    expect(batch.requestBody.content['multipart/form-data'].schema.properties.files.type).to.equal('array');
    expect(batch.parameters.map((p: any) => `${p.in} ${p.name}`)).to.deep.equal(['header Idempotency-Key']);
    expect((document.paths as any)['/predict'].post.requestBody.content['multipart/form-data'].schema.required).to.deep.equal(['file']);
  });
});
