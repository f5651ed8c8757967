/**
 * Which ONNX Runtime execution providers really load here: each is asked to create a session for a one-node
 * Identity model and run it once. Listing the bundled providers is not enough (WebGPU is bundled everywhere but
 * needs a GPU adapter through Vulkan).
 */
export interface ProviderProbe {
  name: string;
  ok: boolean;
  ms?: number;
  error?: string;
}

export async function probeExecutionProviders(names: string[] = ['cpu', 'webgpu']): Promise<ProviderProbe[]> {
  let ort: typeof import('onnxruntime-node');
  try {
    ort = await import('onnxruntime-node');
  } catch (err) {
    return names.map((name) => ({ name, ok: false, error: `onnxruntime-node does not load: ${(err as Error).message}` }));
  }
  const model = identityModel();
  const results: ProviderProbe[] = [];
  for (const name of names) {
    const started = performance.now();
    try {
      const session = await ort.InferenceSession.create(model, { executionProviders: [name], logSeverityLevel: 3 });
      try {
        const x = new ort.Tensor('float32', Float32Array.from([1, 2]), [2]);
        const out = await session.run({ x });
        if ((out.y?.data as Float32Array | undefined)?.[1] !== 2) throw new Error('the probe model returned a wrong value');
      } finally {
        await session.release();
      }
      results.push({ name, ok: true, ms: Math.round(performance.now() - started) });
    } catch (err) {
      // Drop ONNX Runtime's source location prefix: operators need the sentence after it.
      results.push({ name, ok: false, error: (err as Error).message.split('\n')[0]!.replace(/^.* was false\. /, '') });
    }
  }
  return results;
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
