import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { secondsOrDuration } from '../../../core/duration.js';
import { dnsError, providerLog } from '../../errors.js';
import type { DnsProvider, ProviderContext, ProviderFactory, ProviderMeta, TxtRecord } from '../../types.js';
import { normalizeName } from '../../zone.js';

/**
 * For a DNS with no API: show the record to add and wait, either for Enter on a terminal or for a fixed number of
 * seconds (--wait, and required when stdin is not a terminal, because nobody can press Enter in a pipe or a timer
 * unit and waiting forever would hang a renewal). Cleanup only says what can be removed.
 */
const NAME = 'manual';
const DEFAULT_WAIT_SEC = 60;

export const meta: ProviderMeta = {
  name: NAME,
  description: 'Prints the TXT record to add and waits for Enter (or --wait DURATION); no credentials',
  env: [],
  parallel: false,
  propagationTimeoutSec: 600,
  pollIntervalSec: 10,
  docs: 'https://letsencrypt.org/docs/challenge-types/#dns-01-challenge',
};

export interface ManualIo {
  input: Readable & { isTTY?: boolean };
  sleep: (ms: number) => Promise<void>;
}

/** --wait: a duration (or a plain number of seconds), or a bare flag for the default. */
function waitSeconds(option: string | boolean | undefined): number | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return DEFAULT_WAIT_SEC;
  const ms = secondsOrDuration(option);
  if (ms === undefined) throw dnsError(NAME, `--wait must be a duration, not "${option}"`, { hint: 'for example --wait 2m or --wait 120s (a plain number counts seconds)' });
  return ms / 1000;
}

function waitForEnter(input: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input, terminal: false });
    let done = false;
    rl.once('line', () => {
      done = true;
      rl.close();
      resolve();
    });
    rl.once('close', () => {
      if (!done) reject(dnsError(NAME, 'stdin closed before Enter was pressed', { hint: 'run in a terminal, or pass --wait DURATION' }));
    });
  });
}

export function createManual(ctx: ProviderContext, io: ManualIo): DnsProvider {
  const log = providerLog(NAME, ctx, []);
  const wait = waitSeconds(ctx.options?.wait);
  const line = (r: TxtRecord) => `${normalizeName(r.fqdn)}. ${r.ttl} IN TXT "${r.value}"`;
  return {
    name: NAME,
    async present(record) {
      log('info', `add this record to the zone:\n    ${line(record)}`);
      if (wait !== undefined) {
        log('info', `waiting ${wait}s before validation continues`);
        await io.sleep(wait * 1000);
      } else if (io.input.isTTY) {
        log('info', 'press Enter once the record is published');
        await waitForEnter(io.input);
      } else {
        throw dnsError(NAME, 'stdin is not a terminal, so nobody can press Enter', {
          hint: 'pass --wait DURATION to wait that long after showing the record instead',
        });
      }
    },
    async cleanup(record) {
      log('info', `validation is over: the record can be removed:\n    ${line(record)}`);
    },
  };
}

function create(ctx: ProviderContext): DnsProvider {
  return createManual(ctx, { input: process.stdin, sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)) });
}

export const factory: ProviderFactory = { meta, create };
