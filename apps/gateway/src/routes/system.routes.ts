import { Router, type Request, type Response } from 'express';
import type { HealthResponse, ModelsResponse, ReadinessResponse } from '@visionq/api';
import type { ModelCatalog } from '@visionq/models';
import type { GatewayMetrics } from '@visionq/observability';
import type { WorkerRegistry } from '@visionq/tasks';
import { requireScope } from '../authentication';

/** What `/readyz` asks: each probe resolves when its dependency answers. */
export interface ReadinessProbes {
  redis(): Promise<unknown>;
  store(): Promise<unknown>;
  /** True once the gateway is stopping: a load balancer must send it no more requests. */
  draining(): boolean;
}

/** `GET /healthz`: the process answers. It needs no key (liveness probes send none). */
export function healthRoute(): Router {
  const router = Router();
  router.get('/healthz', (_req: Request, res: Response) => {
    res.json({ status: 'ok' } satisfies HealthResponse);
  });
  return router;
}

/** `GET /models`, `GET /metrics` (Prometheus, admin only), `GET /readyz` (it can do work). */
export function systemRoutes(catalog: ModelCatalog, workers: WorkerRegistry, metrics: GatewayMetrics, probes: ReadinessProbes): Router {
  const router = Router();

  router.get('/models', async (_req: Request, res: Response) => {
    const live = await workers.live();
    res.json({
      models: catalog.list().map((model) => {
        const serving = live.filter((w) => w.models.includes(model.ref));
        return { ...model, workers: serving.length, providers: [...new Set(serving.map((w) => w.providers[model.ref]!))].filter(Boolean) };
      }),
    } satisfies ModelsResponse);
  });

  router.get('/metrics', requireScope('admin'), async (_req: Request, res: Response) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  router.get('/readyz', async (_req: Request, res: Response) => {
    const checks = await Promise.all([
      check('gateway', async () => {
        if (probes.draining()) throw new Error('draining: stopping, takes no new requests');
      }),
      check('redis', async () => void (await probes.redis())),
      check('store', async () => void (await probes.store())),
      check('workers', async () => {
        const live = await workers.live();
        if (live.length === 0) throw new Error('no worker is running');
        return `${live.length} live`;
      }),
    ]);
    const ready = checks.every((c) => c.ok);
    const body: ReadinessResponse = { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(checks.map((c) => [c.name, c.ok ? (c.detail ?? 'ok') : c.error!])) };
    res.status(ready ? 200 : 503).json(body);
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
