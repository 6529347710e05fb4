import { dirname } from 'node:path';
import express, { Router } from 'express';
import type { Logger } from '@visionq/observability';

/** esbuild's `[name]-[hash]` assets: a name never holds other content, so browsers may keep them for good. */
const HASHED_ASSET = /-[A-Z0-9]{8}\.(?:js|css)$/;
/** The page and its assets: `/`, `/index.html` and the top-level hashed files esbuild writes. */
const CONSOLE_PATH = /^\/(?:index\.html)?$|^\/[\w-]+-[A-Z0-9]{8}\.(?:js|css)$/;

/**
 * The web console (`@visionq/console`'s built files) at `/`. Like `/docs` it needs no key:
 * the page holds nothing tenant-specific, and its data calls carry the key themselves.
 * Anything that is not one of its files falls through to the API (and its 404 body).
 */
export function consoleRoutes(logger: Logger): Router {
  const router = Router();
  let root: string;
  try {
    root = dirname(require.resolve('@visionq/console/dist/index.html'));
  } catch {
    logger.warn('the web console is not built, so / serves no page: npm run build -w @visionq/console builds it');
    return router;
  }
  const files = express.static(root, {
    redirect: false,
    // index.html names the assets of the current build: always asked again (a 304 when unchanged).
    setHeaders: (res, path) => res.setHeader('cache-control', HASHED_ASSET.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache'),
  });
  // Only the console's own paths look at the disk: an API request passes by without a stat.
  router.use((req, res, next) => (CONSOLE_PATH.test(req.path) ? files(req, res, next) : next()));
  return router;
}
