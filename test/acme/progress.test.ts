import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createReporter, isInteractive } from '../../src/acme/progress.js';
import { createLogger } from '../../src/core/log.js';
import { createOutput } from '../../src/core/output.js';
import { MemoryStream } from '../helpers/cli.js';

/** A stream that says it is a terminal, as ora needs for drawing. */
function fakeTty(): MemoryStream & NodeJS.WriteStream {
  const s = new MemoryStream() as MemoryStream & Record<string, unknown>;
  Object.assign(s, { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return s as unknown as MemoryStream & NodeJS.WriteStream;
}

test('on a terminal: one spinner line with each name\'s state, messages printed above it, a mark at the end', () => {
  const tty = fakeTty();
  const stderr = new MemoryStream();
  const reporter = createReporter({ out: createOutput({ stdout: new MemoryStream(), stderr }, false), logger: createLogger('silent'), interactive: true, stream: tty });
  reporter.start('issuing example.test, *.example.test');
  reporter.progress('example.test', 'propagating');
  reporter.progress('*.example.test', 'validating');
  reporter.log('info', 'rfc2136: added one TXT value');
  reporter.stop(true, 'issued example.test, *.example.test');
  assert.match(tty.text, /issuing example\.test, \*\.example\.test \(example\.test: waiting for DNS, \*\.example\.test: CA validating\)/);
  assert.match(tty.text, /✔ issued example\.test, \*\.example\.test|√ issued/);
  assert.equal(stderr.text, 'rfc2136: added one TXT value\n');
});

test('no spinner under --json, off a terminal, on a dumb terminal or in CI', () => {
  const tty = { isTTY: true };
  assert.equal(isInteractive(false, {}, tty), true);
  assert.equal(isInteractive(true, {}, tty), false);
  assert.equal(isInteractive(false, {}, { isTTY: false }), false);
  assert.equal(isInteractive(false, { TERM: 'dumb' }, tty), false);
  assert.equal(isInteractive(false, { CI: 'true' }, tty), false);
  const quiet = new MemoryStream();
  const reporter = createReporter({ out: createOutput({ stdout: new MemoryStream(), stderr: quiet }, true), logger: createLogger('silent'), interactive: false });
  reporter.start('x');
  reporter.progress('a.example.test', 'dns');
  reporter.log('info', 'hidden under --json');
  reporter.log('warn', 'warnings still show');
  reporter.stop(true);
  assert.equal(quiet.text, 'warning: warnings still show\n');
});
