export { connectionErrorLogger, createLogger } from './logger';
export type { Logger, LoggerOptions } from './logger';
export { createMetricsRegistry, GatewayMetrics, MetricsRegistry, WorkerMetrics } from './metrics';
export type { GatewaySources } from './metrics';
export { serveMetrics } from './metrics-server';
