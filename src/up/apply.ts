/**
 * Runs `up`'s steps in order. Each step that changed something hands back its undo; when a step fails, the
 * undos of the steps before it run in reverse order, and the error names the failed step and its cause. An undo
 * that fails is reported with the error (what must be fixed by hand) and does not stop the others.
 */
import { GuardError, isGuardError } from '../core/errors.js';

export interface StepOutcome {
  /** What happened, for people ("issued ...", "unchanged: ..."). */
  summary: string;
  changed: boolean;
  undo?: () => Promise<void>;
}

export interface Step {
  id: string;
  title: string;
  run(): Promise<StepOutcome>;
}

export interface StepReport {
  id: string;
  title: string;
  changed: boolean;
  summary: string;
}

export interface Progress {
  start(title: string): void;
  done(ok: boolean, text: string): void;
}

export async function runSteps(steps: Step[], progress: Progress): Promise<StepReport[]> {
  const done: Array<{ step: Step; outcome: StepOutcome }> = [];
  for (const step of steps) {
    progress.start(step.title);
    let outcome: StepOutcome;
    try {
      outcome = await step.run();
    } catch (err) {
      progress.done(false, `${step.title}: failed`);
      throw await rollBack(step, err, done, progress);
    }
    progress.done(true, `${step.title}: ${outcome.summary}`);
    done.push({ step, outcome });
  }
  return done.map(({ step, outcome }) => ({ id: step.id, title: step.title, changed: outcome.changed, summary: outcome.summary }));
}

async function rollBack(failed: Step, cause: unknown, done: Array<{ step: Step; outcome: StepOutcome }>, progress: Progress): Promise<GuardError> {
  const undone: string[] = [];
  const leftovers: string[] = [];
  for (const { step, outcome } of [...done].reverse()) {
    if (!outcome.undo) continue;
    progress.start(`undoing: ${step.title}`);
    try {
      await outcome.undo();
      undone.push(step.id);
      progress.done(true, `undone: ${step.title}`);
    } catch (err) {
      leftovers.push(`${step.id}: ${(err as Error).message}`);
      progress.done(false, `could not undo: ${step.title}`);
    }
  }
  const why = cause instanceof Error ? cause.message : String(cause);
  const rolled = undone.length > 0 ? `undone in reverse order: ${undone.join(', ')}` : 'nothing before it had changed';
  const left = leftovers.length > 0 ? `; NOT undone (fix by hand): ${leftovers.join('; ')}` : '';
  return new GuardError('GUARD_E_UP', `step "${failed.id}" (${failed.title}) failed: ${why}\n${rolled}${left}`, {
    hint: isGuardError(cause) && cause.hint ? cause.hint : 'fix the cause and run the same guardctl up again',
    cause,
    details: { step: failed.id, undone, leftovers },
  });
}
