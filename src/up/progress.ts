/** Progress of `up`'s steps: an ora spinner per step on a TTY, plain lines otherwise, nothing under --json. */
import ora, { type Ora } from 'ora';
import type { Output } from '../core/output.js';
import type { Progress } from './apply.js';

export function stepProgress(out: Output, interactive: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
  let spinner: Ora | undefined;
  return {
    start(title) {
      if (interactive) spinner = ora({ stream, discardStdin: false, isEnabled: true, text: title }).start();
      else out.note(`- ${title} ...`);
    },
    done(ok, text) {
      if (spinner) {
        if (ok) spinner.succeed(text);
        else spinner.fail(text);
        spinner = undefined;
      } else out.note(`  ${ok ? 'done' : 'FAILED'}: ${text}`);
    },
  };
}
