import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './moto-server';
import { startServerProcess, untilAnswers } from './server-process';

/** One series of an instant query's answer; `value` as Prometheus writes it ("NaN" included). */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A real `prometheus` process (Debian's package) of its own, on a loopback port, with a storage folder of its own. */
export interface PrometheusServer {
  url: string;
  /** An instant query through the HTTP API; throws on a query Prometheus refuses. */
  query(expr: string): Promise<PromSample[]>;
  /** `GET /api/v1/label/<label>/values?match[]=<match>`. */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Stops the process and removes its folder; resolves once both are gone. Idempotent. */
  stop(): Promise<void>;
}

export interface PrometheusOptions {
  /** Scrape and rule-evaluation interval. */
  intervalS: number;
  /** Rule files, by absolute path. */
  ruleFiles: string[];
  /** Scrape jobs: name and `host:port` targets. */
  jobs: Array<{ name: string; targets: string[] }>;
}

const STOP_GRACE_MS = 5_000;

/**
 * Starts `prometheus` with a generated config on a free loopback port and waits until it
 * is ready. Rejects within START_TIMEOUT_MS, with its stderr, if it is not; the process is
 * also killed when this Node process exits without calling stop().
 */
export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const dir = await mkdtemp(join(tmpdir(), 'vq-prometheus-'));
  const interval = `${options.intervalS}s`;
  await writeFile(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: options.ruleFiles,
      scrape_configs: options.jobs.map((job) => ({ job_name: job.name, static_configs: [{ targets: job.targets }] })),
    }),
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const program = startServerProcess('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {
    installHint: "Debian's prometheus package; .ci/run installs it",
    graceMs: STOP_GRACE_MS,
    cleanUp: () => rm(dir, { recursive: true, force: true }),
  });

  const api = async (path: string): Promise<any> => {
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data: any; error?: string };
    if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${res.status} ${body.error}`);
    return body.data;
  };
  const server: PrometheusServer = {
    url,
    query: async (expr) => (await api(`/api/v1/query?query=${encodeURIComponent(expr)}`)).result,
    labelValues: (label, match) => api(`/api/v1/label/${encodeURIComponent(label)}/values?match[]=${encodeURIComponent(match)}`),
    stop: program.stop,
  };

  await untilAnswers(program, `prometheus on port ${port}`, `${url}/-/ready`);
  return server;
}
