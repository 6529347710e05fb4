import type { Command } from 'commander';

export function registerModels(program: Command, setExitCode: (code: number) => void): void {
  program
    .command('models')
    .description('load every model version of the models directory, check it, and list it with its metrics')
    .option('--models-dir <dir>', 'models directory (default: MODELS_DIR)')
    .option('--json', 'print the list as JSON')
    .action(async (options: { modelsDir?: string; json?: boolean }) => {
      const runtime = await (await import('./runtime.js')).openRuntime({ modelsDir: options.modelsDir, allModels: true });
      try {
        const models = runtime.registry.describe();
        if (options.json) {
          process.stdout.write(`${JSON.stringify({ models })}\n`);
        } else {
          for (const m of models) {
            const scores = m.metrics?.accuracy === undefined ? '' : `  accuracy ${m.metrics.accuracy.toFixed(3)}${m.metrics.cohen_kappa === undefined ? '' : `  kappa ${m.metrics.cohen_kappa.toFixed(3)}`}`;
            process.stdout.write(`${m.ref}  input ${m.input.name}[${m.input.shape.join(',')}]  ${m.classes} classes  on ${m.provider}${scores}\n`);
          }
        }
        setExitCode(0);
      } finally {
        await runtime.close();
      }
    });
}
