/** fqa-scan convert-reference <reference.json> --arch NAME --out FILE [--patch 235|64] [--variant V] */
import { parseArgs } from 'node:util';
import { UsageError, convertReferenceFile, expectOneOf, getArchitecture, parseModelFile, referenceArchitectures, writeModelFile } from '@fqa/core';
import type { Command } from '../index.js';

const choices = referenceArchitectures();
const variants = choices.filter((a) => !['focuslitenn', 'eonss'].includes(a)).map((a) => `${a}: ${Object.keys(getArchitecture(a).variants).join('|')}`).join('; ');

const usage = `Usage: fqa-scan convert-reference <reference.json> --arch NAME --out FILE [--patch 235|64] [--variant V]

Converts published weights in the reference JSON layout ({name: {shape, dtype, data}}, PyTorch
state_dict names) into an fqa model file that carries the input normalization the published test
code applies (DARTS-FQA: the TCGA mean/std; FocusLiteNN, EONSS, DenseNet-13: none). For tests and
comparisons: the published weights are non-commercial; never ship the converted file.

Options:
  --arch NAME     ${choices.join(' | ')}
  --out FILE      model file to write
  --patch P       FocusLiteNN variant: 235 (7x7 stride 5 pad 1, default) or 64 (7x7 stride 1)
  --variant V     ${variants} (default: inferred from the weights)
  --name NAME     model name stored in the file`;

export const convertReferenceCommand: Command = {
  summary: 'convert published reference weights into an fqa model file',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { arch: { type: 'string' }, out: { type: 'string' }, patch: { type: 'string' }, name: { type: 'string' }, variant: { type: 'string' } },
    });
    if (positionals.length !== 1) throw new UsageError("expected exactly one reference JSON file (see fqa-scan convert-reference --help)");
    if (!values.out) throw new UsageError('--out is required');
    const architecture = expectOneOf(values.arch, 'arch', choices);
    const patch = values.patch === undefined ? 235 : Number(values.patch);
    if (patch !== 235 && patch !== 64) throw new UsageError(`Expected 235 or 64 for patch but received '${values.patch}'`);
    const bytes = await convertReferenceFile(positionals[0]!, { architecture, patchSize: patch, ...(values.name ? { name: values.name } : {}), ...(values.variant ? { variant: values.variant } : {}) });
    const model = parseModelFile(bytes, values.out); // what we write must load
    await writeModelFile(values.out, bytes);
    process.stdout.write(`wrote ${values.out}: ${model.header.name} (${architecture}${model.header.variant ? ` ${model.header.variant}` : ''}, patch ${model.header.patchSize}, ${bytes.length} bytes)\n`);
    return 0;
  },
};
