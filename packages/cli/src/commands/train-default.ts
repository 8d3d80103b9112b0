/** fqa-scan train-default [--out FILE] [--data DIR]: reproduces the shipped default model. */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_MODEL_PATH, buildDefaultModel, parseModelFile, writeModelFile } from '@fqa/core';
import type { Command } from '../index.js';

export const trainDefaultCommand: Command = {
  summary: 'retrain the shipped default model with its recorded recipe',
  usage: `Usage: fqa-scan train-default [--out FILE] [--data DIR]

Runs the default model's recipe (scanner-like synthetic defocus of real tissue, FocusLiteNN-10, PLCC loss, native
trainer, seeded) and writes the model file (default: the shipped ${path.basename(DEFAULT_MODEL_PATH)}).
--data is the shared data folder (default: ../shared/data beside the repository).`,
  async run(args) {
    const { values } = parseArgs({ args, options: { out: { type: 'string' }, data: { type: 'string' } } });
    const data = values.data ?? path.resolve(path.dirname(DEFAULT_MODEL_PATH), '..', '..', '..', '..', 'shared', 'data');
    const out = values.out ?? DEFAULT_MODEL_PATH;
    const build = await buildDefaultModel(data, (line) => process.stderr.write(line + '\n'));
    parseModelFile(build.bytes, out);
    await writeModelFile(out, build.bytes);
    process.stdout.write(`wrote ${out}: threshold ${build.threshold}, training PLCC ${build.trainPlcc.toFixed(4)}, SRCC ${build.trainSrcc.toFixed(4)}, ${build.seconds.toFixed(0)} s\n`);
    return 0;
  },
};
