/** fqa-scan info: what this machine and build can run. */
import { cpuInfo, gpuInfo, nativeBinaryPath, nativeVersion } from '@fqa/core';
import type { Command } from '../index.js';

export const infoCommand: Command = {
  summary: 'show the native build, CPU kernels and GPU status',
  usage: 'Usage: fqa-scan info [--json]',
  async run(args) {
    const info = { version: nativeVersion, binary: nativeBinaryPath(), cpu: cpuInfo(), gpu: gpuInfo() };
    if (args.includes('--json')) {
      process.stdout.write(JSON.stringify(info, null, 1) + '\n');
      return 0;
    }
    process.stdout.write(
      `fqa native ${info.version} (${info.binary})\n` +
        `cpu: best kernel ${info.cpu.best}; supported ${info.cpu.supported.join(', ')}; ${info.cpu.hardwareThreads} hardware threads\n` +
        `gpu: ${info.gpu.compiled ? 'CUDA build' : 'CPU-only build'}; ${info.gpu.deviceCount > 0 ? `${info.gpu.deviceCount} device(s), ${info.gpu.deviceName}` : info.gpu.error}\n`,
    );
    return 0;
  },
};
