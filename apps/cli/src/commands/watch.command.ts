import type { Command } from 'commander';
import { gatewayClient, withGateway, type GatewayOptions } from './gateway.options';
import { followTask } from './task-follow';

export function registerWatch(program: Command, setExitCode: (code: number) => void): void {
  withGateway(
    program
      .command('watch')
      .description('follow a task to its end, with its progress on stderr (Ctrl-C stops watching, the task runs on)')
      .argument('<id>', 'task id')
      .option('--json', 'print the final task as one JSON line instead of a table'),
  ).action(async (id: string, options: GatewayOptions & { json?: boolean }) => {
    setExitCode(await followTask(gatewayClient(options), id, { json: options.json, askOnInterrupt: false }));
  });
}
