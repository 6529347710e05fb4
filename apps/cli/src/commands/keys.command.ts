import { Command, InvalidArgumentError, Option } from 'commander';
import { intAtLeast } from './arguments';
import { createApiKey, SCOPES, type Scope } from '@visionq/auth';
import { loadConfig } from '@visionq/config';

interface CreateOptions {
  tenant: string;
  scope: Scope[];
  file?: string;
  id?: string;
  bucket: string[];
  description?: string;
  ratePerS?: number;
  imagesInFlight?: number;
  imagesPerDay?: number;
  webhookSecret?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function positive(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError('must be a number > 0');
  return n;
}

export function registerKeys(program: Command, setExitCode: (code: number) => void): void {
  const keys = program.command('keys').description('manage the API keys of API_KEYS_FILE');
  keys
    .command('create')
    .description('append a new key for a tenant to the keys file and print the key, once (the file keeps only its SHA-256)')
    .requiredOption('--tenant <name>', 'tenant the key acts for (lower-case letters, digits, "_", "-")')
    .addOption(new Option('--scope <scope>', 'a scope of the key; repeat for more (default: predict, tasks:write, tasks:read)').choices(SCOPES).argParser(collect).default([]))
    .option('--file <path>', 'keys file (default: API_KEYS_FILE)')
    .option('--id <id>', 'the entry\'s id (default: k_<random>)')
    .option('--bucket <bucket or s3://bucket/prefix/>', 'where the tenant may read and write; repeat for more (default: every allowed bucket)', collect, [])
    .option('--description <text>', 'a note kept in the entry')
    .option('--rate-per-s <n>', 'requests per second for the tenant, across gateways', positive)
    .option('--images-in-flight <n>', 'images of the tenant\'s unfinished tasks at once', intAtLeast(1))
    .option('--images-per-day <n>', 'images the tenant may submit per UTC day', intAtLeast(1))
    .option('--webhook-secret', 'also make the secret that signs the tenant\'s callbacks (printed on a second line)')
    .addHelpText('after', '\nThe key is printed on stdout, and nowhere else: store it now. Gateways pick the new entry up within a second.')
    .action(async (options: CreateOptions) => {
      const file = options.file ?? loadConfig().auth.keysFile;
      if (!file) throw new Error('name the keys file with --file or API_KEYS_FILE');
      const scopes: Scope[] = options.scope.length > 0 ? options.scope : ['predict', 'tasks:write', 'tasks:read'];
      const { entry, secret } = await createApiKey(file, {
        tenant: options.tenant,
        scopes,
        id: options.id,
        buckets: options.bucket,
        description: options.description,
        quotas: { rate_per_s: options.ratePerS, images_in_flight: options.imagesInFlight, images_per_day: options.imagesPerDay },
        // Loaded when asked for: @visionq/callbacks brings the task queues, which no other command needs.
        ...(options.webhookSecret ? { webhookSecret: (await import('@visionq/callbacks')).newWebhookSecret() } : {}),
      });
      process.stderr.write(`key ${entry.id} for tenant ${entry.tenant} (${entry.scopes.join(', ')}) appended to ${file}\n`);
      process.stdout.write(`${secret}\n${entry.webhook_secret ? `${entry.webhook_secret}\n` : ''}`);
      setExitCode(0);
    });
}
