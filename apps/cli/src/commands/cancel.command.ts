import type { Command } from 'commander';
import { gatewayClient, withGateway, type GatewayOptions } from './gateway.options';
import { reportTask } from './task-follow';

export function registerCancel(program: Command, setExitCode: (code: number) => void): void {
  withGateway(
    program
      .command('cancel')
      .description('cancel a task: no new chunk starts; results so far are kept')
      .argument('<id>', 'task id')
      .option('--json', 'print the task as one JSON line instead of a table'),
  ).action(async (id: string, options: GatewayOptions & { json?: boolean }) => {
    reportTask(await gatewayClient(options).cancel(id), options.json);
    setExitCode(0);
  });
}
