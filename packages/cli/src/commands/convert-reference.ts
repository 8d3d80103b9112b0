/** fqa-scan convert-reference <reference.json> --arch focuslitenn|eonss --out FILE [--patch 235|64] */
import { parseArgs } from 'node:util';
import { UsageError, convertReferenceFile, expectOneOf, parseModelFile, writeModelFile } from '@fqa/core';
import type { Command } from '../index.js';

const usage = `Usage: fqa-scan convert-reference <reference.json> --arch focuslitenn|eonss --out FILE [--patch 235|64]

Converts published weights in the reference JSON layout ({name: {shape, data}}, PyTorch
state_dict names) into an fqa model file. For tests and comparisons: the published FocusLiteNN
weights are non-commercial; never ship the converted file.

Options:
  --arch NAME     focuslitenn | eonss
  --out FILE      model file to write
  --patch P       FocusLiteNN variant: 235 (7x7 stride 5 pad 1, default) or 64 (7x7 stride 1)
  --name NAME     model name stored in the file`;

export const convertReferenceCommand: Command = {
  summary: 'convert published reference weights into an fqa model file',
  usage,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { arch: { type: 'string' }, out: { type: 'string' }, patch: { type: 'string' }, name: { type: 'string' } },
    });
    if (positionals.length !== 1) throw new UsageError("expected exactly one reference JSON file (see fqa-scan convert-reference --help)");
    if (!values.out) throw new UsageError('--out is required');
    const architecture = expectOneOf(values.arch, 'arch', ['focuslitenn', 'eonss'] as const);
    const patch = values.patch === undefined ? 235 : Number(values.patch);
    if (patch !== 235 && patch !== 64) throw new UsageError(`Expected 235 or 64 for patch but received '${values.patch}'`);
    const bytes = await convertReferenceFile(positionals[0]!, { architecture, patchSize: patch, ...(values.name ? { name: values.name } : {}) });
    const model = parseModelFile(bytes, values.out); // what we write must load
    await writeModelFile(values.out, bytes);
    process.stdout.write(`wrote ${values.out}: ${model.header.name} (${architecture}, patch ${model.header.patchSize}, ${bytes.length} bytes)\n`);
    return 0;
  },
};
