/** fqa-scan analyze [MODEL ...] [--model FILE ...] [--plot FILE.svg] [--json FILE]: knowledge gain and mapping condition (Figure 6). */
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_PATH, InputError, figure6Svg, modelKnowledgeGain, readModelFile, writeAtomic, type ModeMetrics, type ModelKnowledgeGain } from '@fqa/core';
import type { Command } from '../index.js';
import { ProgressLine } from '../progress-bar.js';

const usage = `Usage: fqa-scan analyze [MODEL.fqa ...] [--model FILE ...] [--plot FILE.svg] [--json FILE]

Knowledge gain (KG) and mapping condition (MC) of every conv weight, as DARTS-FQA's AdaS metrics
define them (the paper's Figure 6): each weight is unfolded along its input and its output channels,
each unfolding is factorized by EVBMF, and per mode
  rank = retained singular values / channels,  KG = sum(d / max d) / channels,  MC = d_max / d_min.
The layer's KG and MC are the means of the two modes; a mode with rank 0 counts as KG = MC = 0.
Depth-wise weights repeat the next conv's numbers. Works for every architecture, trained or converted.
See docs/analysis.md.

Options:
  --model FILE   model file, repeatable; files may also be given without --model
                 (default: fqa's shipped model)
  --plot FILE    write Figure 6 as SVG: mean KG against mean MC, one point per model (the
                 paper's figure; larger points for 235 px models), and KG and MC per layer
  --json FILE    also write every layer's metrics as JSON`;

function fixed(v: number, digits: number): string {
  return v.toFixed(digits);
}

function mode(m: ModeMetrics): string {
  const pos = m.evbmf?.pos ?? 0;
  return `${pos}/${m.unfoldShape[0]}\t${fixed(m.kg, 6)}\t${fixed(m.mc, 4)}`;
}

function table(result: ModelKnowledgeGain): string {
  const lines = [`${result.source}: ${result.name} (${result.architecture}${result.variant ? ` ${result.variant}` : ''}), ${result.layers.length} conv weights`];
  lines.push('#\tlayer\tshape\tin rank\tin KG\tin MC\tout rank\tout KG\tout MC\tKG\tMC');
  result.layers.forEach((l, i) => {
    const name = l.depthwiseCopyOfNext ? `${l.name} (depth-wise: next conv's)` : l.name;
    lines.push(`${i + 1}\t${name}\t${l.shape.join('x')}\t${mode(l.input)}\t${mode(l.output)}\t${fixed(l.kg, 6)}\t${fixed(l.mc, 4)}`);
  });
  const a = result.averages;
  lines.push(`mean over ${a.layers} layers: KG ${fixed(a.kg, 6)} (in ${fixed(a.kgInput, 6)}, out ${fixed(a.kgOutput, 6)}), MC ${fixed(a.mc, 4)} (in ${fixed(a.mcInput, 4)}, out ${fixed(a.mcOutput, 4)})`);
  if (a.kgNonZeroRank !== null && a.mcNonZeroRank !== null) lines.push(`without layers that have a rank-0 mode: KG ${fixed(a.kgNonZeroRank, 6)}, MC ${fixed(a.mcNonZeroRank, 4)}`);
  return lines.join('\n') + '\n';
}

function modeJson(m: ModeMetrics) {
  return { rank: m.rank, KG: m.kg, MC: m.mc, unfoldShape: m.unfoldShape, transposed: m.transposed, pos: m.evbmf?.pos ?? 0, sigma2: m.evbmf?.sigma2 ?? null, d: m.evbmf ? [...m.evbmf.d] : [] };
}

async function write(file: string, data: string): Promise<void> {
  try {
    await writeAtomic(file, data);
  } catch (err) {
    throw new InputError(`${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}

export const analyzeCommand: Command = {
  summary: 'knowledge gain and mapping condition per conv layer (Figure 6)',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { model: { type: 'string', multiple: true }, plot: { type: 'string' }, json: { type: 'string' } } });
    const given = [...(values.model ?? []), ...positionals];
    const files = given.length > 0 ? given : [DEFAULT_MODEL_PATH];
    const results: ModelKnowledgeGain[] = [];
    const line = new ProgressLine();
    for (const file of files) {
      const model = await readModelFile(file);
      const result = modelKnowledgeGain(model, file, (done, total) => line.bar(model.header.name, done, total, 'conv weights'));
      line.clear();
      if (result.layers.length === 0) throw new InputError(`${file}: ${model.header.architecture} has no conv weights to analyze`);
      results.push(result);
      process.stdout.write(table(result));
    }
    if (values.plot) {
      await write(values.plot, figure6Svg(results));
      process.stdout.write(`wrote ${values.plot}\n`);
    }
    if (values.json) {
      const json = results.map((r) => ({ ...r, layers: r.layers.map((l) => ({ name: l.name, shape: l.shape, depthwiseCopyOfNext: l.depthwiseCopyOfNext, KG: l.kg, MC: l.mc, input: modeJson(l.input), output: modeJson(l.output) })) }));
      await write(values.json, JSON.stringify({ models: json }, null, 1) + '\n');
      process.stdout.write(`wrote ${values.json}\n`);
    }
    return 0;
  },
};
