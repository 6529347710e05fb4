import type { Command } from 'commander';
import { gatewayClient, withGateway, type GatewayOptions } from './gateway.options';
import { followTask, reportTask } from './task-follow';

interface RetryOptions extends GatewayOptions {
  failedImages?: boolean;
  wait?: boolean;
  json?: boolean;
}

export function registerRetry(program: Command, setExitCode: (code: number) => void): void {
  withGateway(
    program
      .command('retry')
      .description("run an ended task's failed chunks again")
      .argument('<id>', 'task id')
      .option('--failed-images', 'also run again every image whose result is an error')
      .option('--wait', 'follow the task to its new end')
      .option('--json', 'print the task as one JSON line instead of a table'),
  ).action(async (id: string, options: RetryOptions) => {
    const client = gatewayClient(options);
    const view = await client.retry(id, { failedImages: options.failedImages === true });
    if (options.wait) {
      setExitCode(await followTask(client, id, { json: options.json, askOnInterrupt: true }));
      return;
    }
    reportTask(view, options.json);
    setExitCode(0);
  });
}
