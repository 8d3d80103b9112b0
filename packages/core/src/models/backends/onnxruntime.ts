/**
 * ONNX Runtime (onnxruntime-node, an optional dependency) running the graph fqa exports: the CPU
 * execution provider here, CUDA first where the installed binary has it. session.run blocks its
 * thread, so scans call it inside pool workers (one intra-op thread each).
 */
import { createRequire } from 'node:module';
import type * as Ort from 'onnxruntime-node';
import type { Graph } from '../graph.js';
import { exportOnnx } from './onnx-export.js';

const require = createRequire(import.meta.url);
let ort: typeof Ort | null | undefined;

/**
 * onnxruntime-node, or null when it is not installed (or its binary does not load here), or when
 * FQA_DISABLE_ONNX=1 says to act as if it were not: backend 'auto' then takes tfjs, and the tests show
 * that FQA_REQUIRE_ALL turns the missing runtime into failures on a machine that has it.
 */
export function loadOnnxRuntime(): typeof Ort | null {
  if (ort === undefined) {
    try {
      ort = process.env.FQA_DISABLE_ONNX === '1' ? null : (require('onnxruntime-node') as typeof Ort);
    } catch {
      ort = null;
    }
  }
  return ort;
}

export interface OnnxGraph {
  detail: string;
  /** Normalized input [n][3][size][size] -> n scores. */
  run(input: Float32Array, count: number, size: number): Promise<Float32Array>;
  dispose(): Promise<void>;
}

export async function onnxGraph(graph: Graph, tensors: Map<string, Float32Array>, o: { threads?: number; device?: 'cpu' | 'cuda' } = {}): Promise<OnnxGraph> {
  const runtime = loadOnnxRuntime();
  if (!runtime) throw new Error('onnxruntime-node is not installed (npm install onnxruntime-node)');
  const providers = o.device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'];
  const session = await runtime.InferenceSession.create(exportOnnx(graph, tensors), {
    executionProviders: providers,
    graphOptimizationLevel: 'all',
    ...(o.threads ? { intraOpNumThreads: o.threads, interOpNumThreads: 1 } : {}),
  });
  const version = (require('onnxruntime-node/package.json') as { version: string }).version;
  return {
    detail: `onnxruntime-node ${version} (${providers[0]})`,
    async run(input, count, size) {
      const result = await session.run({ [graph.input]: new runtime.Tensor('float32', input, [count, 3, size, size]) });
      return Float32Array.from(result.score!.data as Float32Array);
    },
    dispose: () => session.release(),
  };
}
