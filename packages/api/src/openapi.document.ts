import { z } from 'zod';
import { API_ROUTES, PATH_PARAMETERS, type ApiRoute, type RouteContent, type RouteResponse } from './openapi.routes';

type Json = Record<string, unknown>;

const COMPONENTS = '#/components/schemas/';

/** OpenAPI 3.1's default schema dialect is JSON Schema 2020-12, which zod writes natively. */
const TARGET = 'draft-2020-12';

const DESCRIPTION = `Asynchronous, horizontally scalable batch image classification on ONNX Runtime.

Errors are always \`{"error": {"code", "message", "details"}}\` with the status of their code, and nothing enqueued.

With API keys (API_KEYS_FILE), every route but \`/healthz\`, \`/openapi.json\` and \`/docs\` wants \`Authorization: Bearer <key>\`, and the scope named in its security requirement (an \`admin\` key has them all). Those three need no key: they hold nothing tenant-specific, and a browser opening \`/docs\` cannot send a bearer header.`;

/**
 * The OpenAPI 3.1 document of the gateway, generated from the wire contract's zod schemas
 * (every one with an `id` becomes a component) and the route table: nothing is written by hand.
 */
export function openApiDocument(): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of API_ROUTES) (paths[openApiPath(route.path)] ??= {})[route.method] = operation(route);
  return {
    openapi: '3.1.1',
    info: { title: 'visionq', version: '0.1.0', description: DESCRIPTION },
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key from `visionq keys create`. A gateway without API_KEYS_FILE (loopback only) wants none.' },
      },
    },
  };
}

/** `/tasks/:id` → `/tasks/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

/** Every schema of the global registry with an id, as JSON Schema, referring to each other. */
function componentSchemas(): Record<string, Json> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, { target: TARGET, uri: (id) => `${COMPONENTS}${id}` });
  // A component is a schema inside the document: it takes the document's dialect and location.
  return Object.fromEntries(Object.entries(schemas).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema as Json]));
}

/** A schema with an id as a reference to its component; any other inline, its id'd parts as references. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output' = 'output'): Json {
  const id = z.globalRegistry.get(schema)?.id;
  if (id !== undefined) return { $ref: `${COMPONENTS}${id}` };
  const { $schema: _s, $defs: _d, ...inline } = z.toJSONSchema(schema, { target: TARGET, io });
  return JSON.parse(JSON.stringify(inline).replaceAll('"#/$defs/', `"${COMPONENTS}`)) as Json;
}

function operation(route: ApiRoute): Json {
  const parameters = [
    ...[...route.path.matchAll(/:(\w+)/g)].map(([, name]) => {
      const param = PATH_PARAMETERS[name!];
      if (!param) throw new Error(`${route.path}: no PATH_PARAMETERS entry for "${name}"`);
      return { name, in: 'path', required: true, description: param.description, schema: schemaOf(param.schema) };
    }),
    ...Object.entries((schemaOf(route.query ?? z.object({}), 'input').properties ?? {}) as Record<string, Json>).map(([name, { description, ...schema }]) => ({
      name,
      in: 'query',
      required: false,
      ...(description === undefined ? {} : { description }),
      schema,
    })),
    ...(route.headers ?? []).map(({ name, description }) => ({ name, in: 'header', required: false, description, schema: { type: 'string' } })),
  ];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    ...(route.access === 'public' ? { security: [] } : route.access === 'key' ? {} : { security: [{ bearer: [route.access] }] }),
    ...(parameters.length ? { parameters } : {}),
    ...(route.body ? { requestBody: requestBody(route.body) } : {}),
    responses: Object.fromEntries(Object.entries(route.responses).map(([status, response]) => [status, responseOf(response)])),
  };
}

function requestBody(body: NonNullable<ApiRoute['body']>): Json {
  const content: Json = {};
  if (body.json) content['application/json'] = { schema: schemaOf(body.json, 'input') };
  if (body.multipart) {
    const { files, repeated } = body.multipart;
    const fields = schemaOf(body.multipart.fields, 'input');
    const file = { type: 'string', contentMediaType: 'application/octet-stream', description: 'An image (JPEG, PNG, WebP, GIF, TIFF, AVIF, BMP).' };
    content['multipart/form-data'] = {
      schema: {
        ...fields,
        properties: { [files]: repeated ? { type: 'array', items: file, description: 'Repeat the field once per image.' } : file, ...(fields.properties as Json) },
        required: [files, ...((fields.required as string[] | undefined) ?? [])],
      },
    };
  }
  return { required: true, content };
}

function responseOf(response: RouteResponse): Json {
  return {
    description: response.description,
    ...(response.headers
      ? { headers: Object.fromEntries(Object.entries(response.headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }])) }
      : {}),
    ...(response.content ? { content: Object.fromEntries(Object.entries(response.content).map(([type, content]) => [type, mediaType(content)])) } : {}),
  };
}

/**
 * A stream's items (JSON Lines, SSE data) have no place in OpenAPI 3.1's Media Type
 * Object: 3.2 names it `itemSchema`, which this document writes as the extension
 * `x-itemSchema` until it moves to 3.2.
 */
function mediaType(content: RouteContent): Json {
  if ('json' in content) return { schema: schemaOf(content.json) };
  if ('items' in content) return { schema: { type: 'string', description: content.description }, 'x-itemSchema': schemaOf(content.items) };
  return { schema: { type: 'string', description: content.text } };
}
