import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { openApiPath } from '@visionq/api';

type Json = Record<string, any>;

/** Where the document's component schemas live for Ajv: `#/components/schemas/X` refs resolve against it. */
const BASE = 'https://visionq.test/openapi.json';

/** An answer as a client read it: status, content type and the raw body. */
export interface Answer {
  status: number;
  contentType: string | null;
  text: string;
}

/**
 * Checks real answers against an OpenAPI 3.1 document with Ajv (JSON Schema 2020-12, as
 * OpenAPI 3.1 uses): the schema of the route, status and content type, JSON as a whole,
 * JSON Lines line by line and Server-Sent Events by their data (the `x-itemSchema` of a
 * stream's media type).
 */
export class OpenApiContract {
  private readonly ajv = new Ajv2020({ strict: true, allErrors: true });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(readonly document: Json) {
    addFormats(this.ajv);
    // The one keyword of the wrapper below that is not JSON Schema: it only holds the components.
    this.ajv.addKeyword({ keyword: 'components', schemaType: 'object' });
    this.ajv.addSchema({ $id: BASE, components: document.components });
  }

  /** `METHOD /path` (Express's form) of every operation the document describes. */
  operations(): string[] {
    return Object.entries(this.document.paths as Json).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
  }

  /** Throws, naming the route and what differs, unless the document describes this answer and it matches. */
  check(method: string, expressPath: string, answer: Answer): void {
    const where = `${method} ${expressPath} → ${answer.status} ${answer.contentType}`;
    const operation = this.document.paths[openApiPath(expressPath)]?.[method.toLowerCase()];
    if (!operation) throw new Error(`${where}: no such operation in the document`);
    const response = operation.responses[String(answer.status)];
    if (!response) throw new Error(`${where}: status not in the document (it lists ${Object.keys(operation.responses).join(', ')})`);
    const type = Object.keys(response.content ?? {}).find((key) => mediaTypeMatches(key, answer.contentType ?? ''));
    if (!type) throw new Error(`${where}: content type not in the document (it lists ${Object.keys(response.content ?? {}).join(', ')})`);
    const media = response.content[type];
    if (media['x-itemSchema']) {
      const items = type.startsWith('text/event-stream') ? sseData(answer.text) : answer.text.split('\n').filter((line) => line !== '');
      if (items.length === 0) throw new Error(`${where}: an empty stream proves nothing`);
      items.forEach((item, i) => this.validate(media['x-itemSchema'], JSON.parse(item), `${where}, item ${i}`));
    } else if (media.schema.type === 'string') {
      this.validate(media.schema, answer.text, where);
    } else {
      this.validate(media.schema, JSON.parse(answer.text), where);
    }
  }

  private validate(schema: Json, value: unknown, where: string): void {
    const key = JSON.stringify(schema);
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(JSON.parse(key.replaceAll('"#/components/', `"${BASE}#/components/`)));
      this.compiled.set(key, validate);
    }
    if (!validate(value)) throw new Error(`${where}: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 2000)}`);
  }
}

/** `application/json` matches `application/json; charset=utf-8`; a documented parameter must be in the answer's. */
function mediaTypeMatches(documented: string, actual: string): boolean {
  const [docEssence, ...docParams] = documented.toLowerCase().split(';').map((p) => p.trim());
  const [essence, ...params] = actual.toLowerCase().split(';').map((p) => p.trim());
  return docEssence === essence && docParams.every((p) => params.includes(p));
}

/** The data of every event of a Server-Sent Events body. */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '' && !block.startsWith(':'))
    .map((block) =>
      block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n'),
    );
}
