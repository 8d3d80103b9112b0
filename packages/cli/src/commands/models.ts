/** fqa-scan models [--json]: the registered architectures, read from the registry (docs/models.md prints this table). */
import { architectures, backendAvailable, flops, parameterCount } from '@fqa/core';
import type { Command } from '../index.js';

const usage = `Usage: fqa-scan models [--json]

Lists every architecture fqa can score (and train), with each variant's parameters, FLOPs at
the first patch size, patch sizes, backends (fastest first; * = not available here) and trainers.`;

export const modelsCommand: Command = {
  summary: 'list the architectures (parameters, FLOPs, patch sizes, backends, trainers)',
  usage,
  async run(args) {
    const rows = architectures().flatMap((d) =>
      Object.entries(d.variants).map(([variant, config]) => {
        const graph = d.graph(config);
        return {
          architecture: d.name,
          title: d.title,
          variant,
          parameters: parameterCount(graph),
          /** FLOPs at the first patch size (64 px where the variant takes it). */
          mflops: flops(graph, d.patchSizes(config)[0]!) / 1e6,
          patchSizes: d.patchSizes(config),
          backends: d.backends(config).map((b) => (backendAvailable(b) ? b : `${b}*`)),
          trainers: d.trainers,
          publishedWeights: d.reference !== undefined,
        };
      }),
    );
    if (args.includes('--json')) {
      process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
      return 0;
    }
    const lines = ['| --arch | variant | parameters | MFLOPs at the first patch | patch | backends | trainers |', '|---|---|---|---|---|---|---|'];
    for (const r of rows) {
      lines.push(`| ${r.architecture} | ${r.variant} | ${r.parameters.toLocaleString('en-US')} | ${r.mflops.toFixed(2)} | ${r.patchSizes.join(', ')} | ${r.backends.join(', ')} | ${r.trainers.join(', ') || '—'} |`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
