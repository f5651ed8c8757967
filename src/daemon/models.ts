import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GuardError } from '../core/errors.js';
import type { DeviceChoice, Dtype, ModelSpec, SizeClass, Task, TranslateTemplate } from '../infer/types.js';

/** The repository's models/ folder, from src/daemon or dist/daemon alike. */
export const EMBEDDED_MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));

/** What `guardctl serve` serves with no --model: the two demo models shipped in models/. */
export function embeddedModels(): ModelSpec[] {
  return [
    { name: 'guard-demo', task: 'moderate', dir: path.join(EMBEDDED_MODELS_DIR, 'guard-demo'), size: 'small' },
    // The demo translator was trained with the plain template chosen by the target language (shared/models/README.md).
    { name: 'mt-demo', task: 'translate', dir: path.join(EMBEDDED_MODELS_DIR, 'mt-demo'), size: 'small', translateTemplate: 'by-target' },
  ];
}

const TASKS: Task[] = ['moderate', 'translate'];
const SIZES: SizeClass[] = ['small', 'large'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** `--model NAME=TASK:DIR[:SIZE]`, e.g. `qwen3guard-gen-4b=moderate:/srv/models/Qwen3Guard-Gen-4B:large`. */
export function parseModelFlag(text: string): ModelSpec {
  const m = /^([^=]+)=(moderate|translate):(.+?)(?::(small|large))?$/.exec(text);
  if (!m) {
    throw new GuardError('GUARD_E_USAGE', `invalid --model "${text}"`, {
      hint: 'use NAME=TASK:DIR[:SIZE], e.g. qwen3guard-gen-0.6b=moderate:/srv/models/Qwen3Guard-Gen-0.6B:small (TASK moderate|translate, SIZE small|large)',
    });
  }
  return checkSpec({ name: m[1]!, task: m[2] as Task, dir: m[3]!, size: (m[4] as SizeClass | undefined) ?? 'small' }, '--model');
}

/** The config file's `models:` list: [{name, task, dir, size?, dtype?, device?, template?}]. */
export function modelsFromConfig(value: unknown, source: string): ModelSpec[] {
  if (!Array.isArray(value)) throw new GuardError('GUARD_E_CONFIG', `"models" in ${source} must be a list`, { hint: 'each item: { name: ..., task: moderate|translate, dir: ..., size: small|large }' });
  return value.map((raw, i) => {
    const where = `models[${i}] in ${source}`;
    if (!raw || typeof raw !== 'object') throw new GuardError('GUARD_E_CONFIG', `${where} must be a mapping`);
    const r = raw as Record<string, unknown>;
    for (const key of Object.keys(r)) {
      if (!['name', 'task', 'dir', 'size', 'dtype', 'device', 'template'].includes(key)) {
        throw new GuardError('GUARD_E_CONFIG', `${where} has an unknown field "${key}"`, { hint: 'fields: name, task, dir, size, dtype, device, template' });
      }
    }
    const spec: ModelSpec = {
      name: String(r.name ?? ''),
      task: r.task as Task,
      dir: path.resolve(path.dirname(source), String(r.dir ?? '')),
      size: (r.size ?? 'small') as SizeClass,
      ...(r.dtype !== undefined ? { dtype: r.dtype as Dtype } : {}),
      ...(r.device !== undefined ? { device: r.device as DeviceChoice } : {}),
      ...(r.template !== undefined ? { translateTemplate: r.template as TranslateTemplate } : {}),
    };
    if (r.dir === undefined) throw new GuardError('GUARD_E_CONFIG', `${where} has no "dir"`, { hint: 'the model directory in the Hugging Face ONNX layout' });
    return checkSpec(spec, where);
  });
}

function checkSpec(spec: ModelSpec, where: string): ModelSpec {
  const fail = (what: string, hint: string) => new GuardError(where === '--model' ? 'GUARD_E_USAGE' : 'GUARD_E_CONFIG', `${where}: ${what}`, { hint });
  if (!NAME.test(spec.name)) throw fail(`invalid model name "${spec.name}"`, 'letters, digits, . _ -, at most 64 characters (tiers match it)');
  if (!TASKS.includes(spec.task)) throw fail(`unknown task "${spec.task}"`, 'moderate or translate');
  if (!SIZES.includes(spec.size)) throw fail(`unknown size class "${spec.size}"`, 'small or large');
  if (spec.dtype && !['fp32', 'fp16', 'q4', 'q4f16', 'int8'].includes(spec.dtype)) throw fail(`unknown dtype "${spec.dtype}"`, 'fp32, fp16, q4, q4f16 or int8');
  if (spec.device && !['auto', 'cpu', 'webgpu'].includes(spec.device)) throw fail(`unknown device "${spec.device}"`, 'auto, cpu or webgpu');
  if (spec.translateTemplate && !['hy-mt', 'by-target'].includes(spec.translateTemplate)) throw fail(`unknown template "${spec.translateTemplate}"`, 'hy-mt or by-target');
  if (!fs.existsSync(spec.dir)) throw fail(`model directory ${spec.dir} does not exist`, 'give the directory that holds config.json, tokenizer.json and onnx/');
  return { ...spec, dir: path.resolve(spec.dir) };
}

/** Names must be unique: tiers and requests address models by name. */
export function checkUniqueNames(specs: ModelSpec[]): void {
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new GuardError('GUARD_E_USAGE', `two models are named "${s.name}"`, { hint: 'give each --model a distinct NAME' });
    seen.add(s.name);
  }
}
