import { Command, CommanderError } from 'commander';
import { registerBuildVgg } from './commands/build-vgg.command';
import { registerKeys } from './commands/keys.command';
import { registerModels } from './commands/models.command';
import { registerPredict } from './commands/predict.command';

/** Entry point of `visionq`; resolves to the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('visionq')
    .description('visionq: batch image classification on ONNX Runtime. Configuration comes from the environment (see README).')
    .exitOverride()
    .showHelpAfterError();
  let exitCode = 0;
  const setExitCode = (code: number) => {
    exitCode = code;
  };
  registerPredict(program, setExitCode);
  registerModels(program, setExitCode);
  registerBuildVgg(program, setExitCode);
  registerKeys(program, setExitCode);
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  return exitCode;
}
