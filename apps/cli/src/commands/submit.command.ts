import { Command, Option } from 'commander';
import { PRIORITIES, type Priority } from '@visionq/api';
import { openFile } from '@visionq/client/node';
import { intAtLeast } from './arguments';
import { gatewayClient, withGateway, type GatewayOptions } from './gateway.options';
import { followTask } from './task-follow';
import { resolveInputs } from './task-inputs';

interface SubmitOptions extends GatewayOptions {
  wait?: boolean;
  model?: string;
  topK?: number;
  priority?: Priority;
  output?: string;
  json?: boolean;
}

export function registerSubmit(program: Command, setExitCode: (code: number) => void): void {
  withGateway(
    program
      .command('submit')
      .description('submit a task to a gateway: image files, folders (walked for images), s3:// URIs, or one s3://bucket/prefix/')
      .argument('<inputs...>', 'files and folders, or s3:// URIs, or one s3:// prefix ending in "/"')
      .option('--wait', 'follow the task to its end, with its progress on stderr')
      .option('-m, --model <name>', 'model to use (default: the gateway\'s)')
      .option('-k, --top-k <k>', 'classes per image', intAtLeast(1))
      .addOption(new Option('--priority <priority>', 'order among waiting tasks').choices(Object.keys(PRIORITIES)))
      .option('--output <s3-prefix>', 'folder for the result parts, s3://bucket/prefix/')
      .option('--json', 'print the task as one JSON line instead of a table'),
  )
    .addHelpText('after', '\nExit status: 0 every image succeeded (or, without --wait, the task was accepted); 1 some image failed, or the task failed or was cancelled; 2 bad usage, or the gateway unreachable or refusing the request; 130 Ctrl-C left the task running.')
    .action(async (args: string[], options: SubmitOptions, command: Command) => {
      const inputs = await resolveInputs(args).catch((err: Error) => command.error(`error: ${err.message}`, { exitCode: 2 }));
      const client = gatewayClient(options);
      const accepted = await client.submit({
        ...('paths' in inputs ? { files: await Promise.all(inputs.paths.map(openFile)) } : inputs),
        ...(options.model === undefined ? {} : { model: options.model }),
        ...(options.topK === undefined ? {} : { topK: options.topK }),
        ...(options.priority === undefined ? {} : { priority: options.priority }),
        ...(options.output === undefined ? {} : { output: options.output }),
      });
      if (options.wait) {
        process.stderr.write(`task ${accepted.task_id} queued\n`);
        setExitCode(await followTask(client, accepted.task_id, { json: options.json, askOnInterrupt: true }));
        return;
      }
      process.stdout.write(options.json ? `${JSON.stringify(accepted)}\n` : `task ${accepted.task_id} ${accepted.status}: visionq watch ${accepted.task_id}\n`);
      setExitCode(0);
    });
}
