import { Command, CommanderError } from 'commander';
import { VisionqClientError } from '@visionq/client';
import { registerBuildVgg } from './commands/build-vgg.command';
import { registerCancel } from './commands/cancel.command';
import { registerKeys } from './commands/keys.command';
import { registerModels } from './commands/models.command';
import { registerPredict } from './commands/predict.command';
import { registerQuantize } from './commands/quantize.command';
import { registerResults } from './commands/results.command';
import { registerRetry } from './commands/retry.command';
import { registerStatus } from './commands/status.command';
import { registerSubmit } from './commands/submit.command';
import { registerTrain } from './commands/train.command';
import { registerWatch } from './commands/watch.command';

/** Exit status of bad usage, and of a gateway that cannot be reached or refuses the request. */
const EXIT_USAGE = 2;

/** Entry point of `visionq`; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('visionq')
    .description('visionq: batch image classification on ONNX Runtime. Local commands take their configuration from the environment; gateway commands their --url and --key (see README).')
    .exitOverride()
    .showHelpAfterError();
  let exitCode = 0;
  const setExitCode = (code: number) => {
    exitCode = code;
  };
  registerPredict(program, setExitCode);
  registerModels(program, setExitCode);
  registerBuildVgg(program, setExitCode);
  registerQuantize(program, setExitCode);
  registerTrain(program, setExitCode);
  registerKeys(program, setExitCode);
  registerSubmit(program, setExitCode);
  registerStatus(program, setExitCode);
  registerWatch(program, setExitCode);
  registerResults(program, setExitCode);
  registerCancel(program, setExitCode);
  registerRetry(program, setExitCode);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    // The reader stopped reading (`visionq results … | head`): not a failure of the command.
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return exitCode;
    if (err instanceof VisionqClientError) {
      const details = err.details.map((d) => `\n  ${d.field ? `${d.field}: ` : ''}${d.message}`).join('');
      process.stderr.write(`visionq: ${err.code}${err.status ? ` (${err.status})` : ''}: ${err.message}${details}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  return exitCode;
}
