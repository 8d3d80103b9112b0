/**
 * The accuracy suite on real data as one table: the shipped default model beside the published
 * FocusLiteNN-1 and -10 weights (converted in memory from ../shared/reference into a temporary
 * file, never shipped), plus any model files given.
 *
 *   npm run bench:accuracy -w @fqa/bench [-- --model cand.fqa ...] [--no-demo] [--json out.json]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MODEL_PATH, accuracyTable, convertReferenceFile, runAccuracySuite, type SuiteModel } from '@fqa/core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const shared = process.env.FQA_SHARED ?? path.resolve(repoRoot, '..', 'shared');
const { values } = parseArgs({ options: { model: { type: 'string', multiple: true, default: [] }, 'no-demo': { type: 'boolean', default: false }, 'no-published': { type: 'boolean', default: false }, json: { type: 'string' } } });

const temp = mkdtempSync(path.join(os.tmpdir(), 'fqa-published-'));
try {
  const models: SuiteModel[] = [{ name: 'fqa default', file: DEFAULT_MODEL_PATH }];
  for (const file of values.model) models.push({ name: path.basename(file), file });
  if (!values['no-published']) {
    for (const kernels of [1, 10]) {
      const file = path.join(temp, `published-focuslitenn-${kernels}.fqa`);
      writeFileSync(file, await convertReferenceFile(path.join(shared, 'reference', 'focuslitenn', `focuslitenn-${kernels}kernel.json`), { architecture: 'focuslitenn' }));
      models.push({ name: `published FocusLiteNN-${kernels}`, file });
    }
  }
  const results = await runAccuracySuite(path.join(shared, 'data'), models, { demo: !values['no-demo'], log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(accuracyTable(results));
  if (values.json) writeFileSync(values.json, JSON.stringify(results, null, 1) + '\n');
} finally {
  rmSync(temp, { recursive: true, force: true });
}
