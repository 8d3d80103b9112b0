/** fqa-scan info: what this machine and build can run. */
import { createRequire } from 'node:module';
import { cpuInfo, gpuInfo, loadOnnxRuntime, nativeBinaryPath, nativeVersion, trainingEngines } from '@fqa/core';

/** The installed version of an optional package, or null (resolved from @fqa/core, which depends on them). */
function packageVersion(name: string): string | null {
  try {
    const require = createRequire(import.meta.resolve('@fqa/core'));
    return (require(`${name}/package.json`) as { version: string }).version;
  } catch {
    return null;
  }
}
import type { Command } from '../index.js';

export const infoCommand: Command = {
  summary: 'show the native build, CPU kernels, GPU status and model backends',
  usage: 'Usage: fqa-scan info [--json]',
  async run(args) {
    const tfjs = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs'].map((p) => [p, packageVersion(p)] as const).find(([, v]) => v !== null);
    const backends = {
      native: true,
      onnx: loadOnnxRuntime() === null ? null : `onnxruntime-node ${packageVersion('onnxruntime-node') ?? ''}`.trim(),
      tfjs: tfjs ? `${tfjs[0]} ${tfjs[1]}` : null,
    };
    const engines = await trainingEngines();
    const info = { version: nativeVersion, binary: nativeBinaryPath(), cpu: cpuInfo(), gpu: gpuInfo(), backends, trainingEngines: engines };
    if (args.includes('--json')) {
      process.stdout.write(JSON.stringify(info, null, 1) + '\n');
      return 0;
    }
    process.stdout.write(
      `fqa native ${info.version} (${info.binary})\n` +
        `cpu: best kernel ${info.cpu.best}; supported ${info.cpu.supported.join(', ')}; ${info.cpu.hardwareThreads} hardware threads\n` +
        `gpu: ${info.gpu.compiled ? 'CUDA build' : 'CPU-only build'}; ${info.gpu.deviceCount > 0 ? `${info.gpu.deviceCount} device(s), ${info.gpu.deviceName}` : info.gpu.error}\n` +
        `backends: native (FocusLiteNN, EONSS); onnx ${backends.onnx ?? 'not installed (npm install onnxruntime-node)'}; tfjs ${backends.tfjs ?? 'not installed'} (fqa-scan models lists which model runs where)\n` +
        `training engines (deep networks): ${engines.map((e) => `${e.name} ${e.available ? e.detail : `unavailable: ${e.reason}`}`).join('; ')}; FocusLiteNN trains natively\n`,
    );
    return 0;
  },
};
