import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './model-fixtures';

export const GRAFANA_DIR = join(REPO_ROOT, 'deploy', 'grafana');

export interface DashboardTarget {
  refId: string;
  expr: string;
  datasource?: { type?: string; uid?: string };
}

export interface DashboardPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: DashboardTarget[];
}

export interface Dashboard {
  uid: string;
  panels: DashboardPanel[];
  templating: { list: Array<{ name: string; type: string; datasource?: { uid?: string }; query: { query: string } | string; allValue?: string }> };
}

export function readDashboard(): Dashboard {
  return JSON.parse(readFileSync(join(GRAFANA_DIR, 'dashboards', 'visionq.json'), 'utf8')) as Dashboard;
}

/** The datasources Grafana is provisioned with (deploy/grafana/provisioning/datasources). */
export function provisionedDatasources(): Array<{ name: string; uid: string; type: string; url: string }> {
  return parse(readFileSync(join(GRAFANA_DIR, 'provisioning', 'datasources', 'prometheus.yml'), 'utf8')).datasources;
}

/** Every query of every panel, named `panel title / refId`. */
export function panelQueries(dashboard: Dashboard): Array<{ name: string; expr: string }> {
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((t) => ({ name: `${panel.title} / ${t.refId}`, expr: t.expr })));
}

/**
 * A panel's query as Grafana sends it to Prometheus: its variables replaced by `values`
 * (`$__rate_interval`, `$model`, …). Throws on a variable `values` does not name, so a
 * dashboard change cannot slip a query past the test unevaluated.
 */
export function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, plain: string | undefined, braced: string | undefined) => {
    const name = (plain ?? braced)!;
    if (!(name in values)) throw new Error(`no value for ${whole} in ${expr}`);
    return values[name]!;
  });
}
