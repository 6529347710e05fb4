import { InvalidArgumentError, Option, type Command } from 'commander';
import { VisionqClient } from '@visionq/client';

export interface GatewayOptions {
  url: string;
  key?: string;
}

function httpUrl(value: string): string {
  if (!/^https?:\/\/[^/]/.test(value)) throw new InvalidArgumentError('must be an http(s) URL');
  return value;
}

/**
 * `--url`/`VISIONQ_URL` and `--key`/`VISIONQ_KEY` on a command that talks to a gateway.
 * The CLI reads its own variables through commander's `.env()`, and nowhere else.
 */
export function withGateway(command: Command): Command {
  return command
    .addOption(new Option('--url <url>', 'the gateway').env('VISIONQ_URL').argParser(httpUrl).default('http://127.0.0.1:8080'))
    .addOption(new Option('--key <key>', 'API key, when the gateway wants one').env('VISIONQ_KEY'));
}

export function gatewayClient(options: GatewayOptions): VisionqClient {
  return new VisionqClient({ url: options.url, ...(options.key ? { key: options.key } : {}) });
}
