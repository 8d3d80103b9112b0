/**
 * The numbers of the default model's card (packages/core/models/README.md), for the shipped model
 * and, for comparison, the published FocusLiteNN weights from ../shared/reference (converted in
 * memory, never written):
 * - held-out tissue: a synthetic defocus series (120 crops, levels 0-9) of the in-focus TCGA@Focus
 *   patch, which is not in the default model's training data: SRCC of score vs level;
 * - the two TCGA@Focus patches: mean score (dense 235 px crops, stride 128);
 * - BBBC006: mean score of the z00 (far from focus) and z10 (nearer) images.
 *
 *   npm run model-card -w @fqa/bench
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNativeModel, trainForward } from '@fqa/native';
import {
  DEFAULT_MODEL_PATH, DEFAULT_RECIPE, convertReferenceFile, parseModelFile, scoreImage, srcc, syntheticDefocus, toNativeSpec, type LoadedModel,
} from '@fqa/core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const shared = path.resolve(repoRoot, '..', 'shared');
const tcgaIn = path.join(shared, 'data', 'tcga-focus', 'TCGA@Focus_patch_i_32381_j_37784.png');
const tcgaOut = path.join(shared, 'data', 'tcga-focus', 'TCGA@Focus_patch_i_9651_j_81514.png');

const models: [string, Promise<Buffer>][] = [
  ['fqa default', Promise.resolve(readFileSync(DEFAULT_MODEL_PATH))],
  ...['focuslitenn-1kernel', 'focuslitenn-2kernel', 'focuslitenn-10kernel'].map((n): [string, Promise<Buffer>] => [
    `published ${n}`, convertReferenceFile(path.join(shared, 'reference', 'focuslitenn', `${n}.json`), { architecture: 'focuslitenn' }),
  ]),
];
const series = await syntheticDefocus({ sources: [tcgaIn], count: 120, patchSize: 235, levels: DEFAULT_RECIPE.levels, sigmaPerLevel: DEFAULT_RECIPE.sigmaPerLevel, seed: 99, minTissue: 0.5 });
const bbbc = (z: string) => readdirSync(path.join(shared, 'data', 'bbbc006', z)).filter((f) => /\.tiff?$/i.test(f)).map((f) => path.join(shared, 'data', 'bbbc006', z, f));
const meanScore = async (model: LoadedModel, files: string[]) => {
  let sum = 0;
  for (const f of files) sum += (await scoreImage(f, { model })).mean;
  return sum / files.length;
};
console.log('model\theld-out series SRCC\tTCGA in-focus mean\tTCGA out-of-focus mean\tBBBC006 z00 mean\tBBBC006 z10 mean\ttraining notes');
for (const [name, bytes] of models) {
  const file = parseModelFile(await bytes, name);
  const model: LoadedModel = { header: file.header, native: createNativeModel(toNativeSpec(file)), file: name };
  const scores = trainForward(model.native, series.patches, series.count, series.size).scores;
  const row = [
    name, srcc(scores, series.labels).toFixed(3),
    (await meanScore(model, [tcgaIn])).toFixed(3), (await meanScore(model, [tcgaOut])).toFixed(3),
    (await meanScore(model, bbbc('z00'))).toFixed(3), (await meanScore(model, bbbc('z10'))).toFixed(3),
    name === 'fqa default' ? (file.header.provenance.notes ?? '') : '',
  ];
  console.log(row.join('\t'));
}
