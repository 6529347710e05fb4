import { Command, Option } from 'commander';
import type { TaskStatus } from '@visionq/api';
import { intAtLeast } from './arguments';
import { gatewayClient, withGateway, type GatewayOptions } from './gateway.options';
import { reportTask } from './task-follow';
import { formatTaskList } from './task.format';

const STATUSES: TaskStatus[] = ['queued', 'running', 'succeeded', 'completed_with_errors', 'failed', 'cancelled'];

interface StatusOptions extends GatewayOptions {
  status?: TaskStatus;
  limit: number;
  json?: boolean;
}

export function registerStatus(program: Command, setExitCode: (code: number) => void): void {
  withGateway(
    program
      .command('status')
      .description("a task's status; without an id, the tenant's recent tasks, newest first")
      .argument('[id]', 'task id')
      .addOption(new Option('--status <status>', 'only tasks in this status (without an id)').choices(STATUSES))
      .option('--limit <n>', 'tasks to list (without an id), at most 100', intAtLeast(1), 20)
      .option('--json', 'JSON lines: the task view, or one per task'),
  ).action(async (id: string | undefined, options: StatusOptions) => {
    const client = gatewayClient(options);
    if (id !== undefined) {
      // The exit status of a task that has not ended yet is 0: nothing has failed so far.
      const view = await client.get(id);
      const code = reportTask(view, options.json);
      setExitCode(view.status === 'queued' || view.status === 'running' ? 0 : code);
      return;
    }
    const page = await client.list({ limit: Math.min(options.limit, 100), ...(options.status === undefined ? {} : { status: options.status }) });
    process.stdout.write(options.json ? page.tasks.map((t) => `${JSON.stringify(t)}\n`).join('') : formatTaskList(page.tasks));
    setExitCode(0);
  });
}
