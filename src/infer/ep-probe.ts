import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';

/**
 * Which ONNX Runtime execution providers really load here: each is asked to create a session for a one-node
 * Identity model and run it once. Listing the bundled providers is not enough (WebGPU is bundled everywhere but
 * needs a GPU adapter through Vulkan).
 *
 * The probe runs in a child process whose output is captured: Dawn (WebGPU) writes adapter warnings straight to
 * the process's stdout/stderr ("maxDynamicUniformBuffersPerPipelineLayout artificially reduced ..."), which
 * `doctor` and `serve` must not show on a machine that ends up serving from the CPU. It also keeps the adapter
 * out of this process when nothing will use it.
 */
export interface ProviderProbe {
  name: string;
  ok: boolean;
  ms?: number;
  error?: string;
}

const MARK = 'guardctl-ep-probe:';

/** Runs in the child (CommonJS through `node -e`): argv holds the ORT path, the model (base64) and the providers. */
const CHILD = `
const [ortPath, modelB64, names] = process.argv.slice(1);
(async () => {
  const ort = require(ortPath);
  const model = Buffer.from(modelB64, 'base64');
  const results = [];
  for (const name of names.split(',')) {
    const started = performance.now();
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [name], logSeverityLevel: 3 });
      try {
        const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
        if (out.y?.data?.[1] !== 2) throw new Error('the probe model returned a wrong value');
      } finally {
        await session.release();
      }
      results.push({ name, ok: true, ms: Math.round(performance.now() - started) });
    } catch (err) {
      results.push({ name, ok: false, error: String(err && err.message || err).split('\\n')[0].replace(/^.* was false\\. /, '') });
    }
  }
  process.stdout.write('\\n${MARK}' + JSON.stringify(results) + '\\n', () => process.exit(0));
})();
`;

/**
 * The Vulkan drivers that run on the CPU (Mesa's lavapipe, Google's SwiftShader), as globs over their ICD manifest
 * names for the Vulkan loader's VK_LOADER_DRIVERS_DISABLE. Hidden from a probe, they leave only a hardware adapter.
 */
export const SOFTWARE_VULKAN_DRIVERS = '*lvp_icd*,*swiftshader*';

export interface ProbeOptions {
  /** Probe with the software Vulkan drivers hidden: WebGPU then loads only on a hardware adapter. */
  hardwareOnly?: boolean;
}

export async function probeExecutionProviders(names: string[] = ['cpu', 'webgpu'], options: ProbeOptions = {}): Promise<ProviderProbe[]> {
  let ortPath: string;
  try {
    ortPath = createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch (err) {
    return names.map((name) => ({ name, ok: false, error: `onnxruntime-node does not load: ${(err as Error).message}` }));
  }
  const model = Buffer.from(identityModel()).toString('base64');
  const { stdout, failure } = await new Promise<{ stdout: string; failure?: string }>((resolve) => {
    // A hang's bound only: creating a WebGPU device on a software adapter takes seconds on a busy machine.
    execFile(process.execPath, ['-e', CHILD, ortPath, model, names.join(',')], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '', ...(options.hardwareOnly ? { VK_LOADER_DRIVERS_DISABLE: SOFTWARE_VULKAN_DRIVERS } : {}) } }, (err, out, errText) => {
      resolve({ stdout: out, ...(err && !out.includes(MARK) ? { failure: `${err.message.split('\n')[0]}${errText ? `: ${errText.trim().split('\n').pop()}` : ''}` } : {}) });
    });
  });
  const line = stdout.split('\n').find((l) => l.startsWith(MARK));
  if (!line) return names.map((name) => ({ name, ok: false, error: `the provider probe process failed: ${failure ?? 'no answer'}` }));
  return JSON.parse(line.slice(MARK.length)) as ProviderProbe[];
}

/** ModelProto for y = Identity(x), x and y float32 [2], opset 13, hand-encoded protobuf (a few dozen bytes). */
export function identityModel(): Uint8Array {
  const valueInfo = (name: string) =>
    msg([field(1, str(name)), field(2, msg([field(1, msg([varintField(1, 1), field(2, msg([field(1, msg([varintField(1, 2)]))]))]))]))]);
  const node = msg([field(1, str('x')), field(2, str('y')), field(4, str('Identity'))]);
  const graph = msg([field(1, node), field(2, str('probe')), field(11, valueInfo('x')), field(12, valueInfo('y'))]);
  const opset = msg([field(1, str('')), varintField(2, 13)]);
  return msg([varintField(1, 8), field(7, graph), field(8, opset)]);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const str = (s: string) => Uint8Array.from(Buffer.from(s, 'utf8'));
const msg = (parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
const field = (no: number, bytes: Uint8Array) => Uint8Array.from([...varint((no << 3) | 2), ...varint(bytes.length), ...bytes]);
const varintField = (no: number, value: number) => Uint8Array.from([...varint(no << 3), ...varint(value)]);
