import { dirname } from 'node:path';
import express, { Router, type Request, type Response } from 'express';
import { openApiDocument } from '@visionq/api';

/** The files of Swagger UI the page loads, served from the npm package: nothing from a CDN. */
const RENDERER_FILES = new Set(['/swagger-ui.css', '/swagger-ui-bundle.js']);

/** Relative URLs, so the page also works behind a path prefix. */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>visionq API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script>
// validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
window.ui = SwaggerUIBundle({ url: 'openapi.json', dom_id: '#swagger-ui', deepLinking: true, validatorUrl: null });
</script>
</body>
</html>
`;

/**
 * `GET /openapi.json` and `GET /docs` (Swagger UI on that document). Like `/healthz`, they
 * need no key: they reveal nothing tenant-specific, and a browser opening `/docs` cannot
 * send a bearer header.
 */
export function docsRoutes(): Router {
  const router = Router();
  const document = openApiDocument();
  const renderer = express.static(dirname(require.resolve('swagger-ui-dist/swagger-ui-bundle.js')), { index: false });

  router.get('/openapi.json', (_req: Request, res: Response) => {
    res.json(document);
  });
  router.get('/docs', (_req: Request, res: Response) => {
    res.type('html').send(PAGE);
  });
  router.use('/docs/assets', (req, res, next) => (RENDERER_FILES.has(req.path) ? renderer(req, res, next) : next()));
  return router;
}
