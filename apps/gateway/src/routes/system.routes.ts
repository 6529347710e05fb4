import { Router, type Request, type Response } from 'express';
import type { GatewayDeps } from '../gateway-deps';

/** `GET /models`, `GET /metrics` (Prometheus), `GET /healthz` (the process answers), `GET /readyz` (it can do work). */
export function systemRoutes(deps: GatewayDeps): Router {
  const router = Router();

  router.get('/models', async (_req: Request, res: Response) => {
    const live = await deps.workers.live();
    res.json({
      models: deps.catalog.list().map((model) => {
        const serving = live.filter((w) => w.models.includes(model.name));
        return { ...model, workers: serving.length, providers: [...new Set(serving.map((w) => w.providers[model.name]))].filter(Boolean) };
      }),
    });
  });

  router.get('/metrics', async (_req: Request, res: Response) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req: Request, res: Response) => {
    const checks = await Promise.all([
      check('redis', async () => void (await deps.redis.ping())),
      check('store', async () => void (await deps.store.list(deps.config.store.resultsUri, { limit: 1 }))),
      check('workers', async () => {
        const live = await deps.workers.live();
        if (live.length === 0) throw new Error('no worker is running');
        return `${live.length} live`;
      }),
    ]);
    const ready = checks.every((c) => c.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(checks.map((c) => [c.name, c.ok ? (c.detail ?? 'ok') : c.error])) });
  });

  return router;
}

/** A dependency that does not answer within this is not ready (a Redis client would wait through reconnects). */
const CHECK_TIMEOUT_MS = 2_000;

async function check(name: string, probe: () => Promise<string | void>): Promise<{ name: string; ok: boolean; detail?: string; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS)));
    const detail = await Promise.race([probe(), timeout]);
    return { name, ok: true, ...(detail ? { detail } : {}) };
  } catch (err) {
    return { name, ok: false, error: `unavailable: ${(err as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}
