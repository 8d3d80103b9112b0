// Dataset loaders on miniature copies written to a temp folder with the real names, columns and
// images (FocusPath rows from the published split with real tissue images under those names, the two
// real TCGA@Focus patches at their published paths, real BBBC006 TIFFs).
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, test } from 'vitest';
import { channelStats, loadDataset, splitDataset } from '../dist/index.js';
import { hasShared, repoRoot, shared, tcgaImages } from '../../../test/helpers/shared.js';

describe.skipIf(!hasShared)('dataset loaders', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'fqa-datasets-'));

  test('FocusPath: label |z|, grouped by slide, from the published split rows', async () => {
    const dir = path.join(root, 'focuspath');
    mkdirSync(dir);
    const rows = readFileSync(shared('data', 'labels', 'FocusPath_full_split1.txt'), 'utf8').split('\n').filter((l) => /^Slide0[12]_/.test(l)).filter((_, i) => i % 40 === 0);
    const tile = await sharp(shared('data', 'tcga-focus', tcgaImages['tcga-in-focus'])).extract({ left: 0, top: 0, width: 256, height: 256 }).tiff().toBuffer();
    for (const r of rows) writeFileSync(path.join(dir, r.split(',')[0]!), tile);
    writeFileSync(path.join(dir, 'labels.txt'), rows.join('\n') + '\n');
    const d = loadDataset('focuspath', dir, path.join(dir, 'labels.txt'));
    expect(d.items).toHaveLength(rows.length);
    rows.forEach((r, i) => {
      const z = Number(r.split(',')[6]);
      expect(d.items[i]!.target).toBe(Math.abs(z));
      expect(d.items[i]!.group).toBe(`slide${r.split(',')[1]}`);
    });
    const split = splitDataset(d.items, { train: 0.5, validation: 0, test: 0.5 }, 7);
    expect(new Set(split.train.map((i) => i.group)).size + new Set(split.test.map((i) => i.group)).size).toBe(2);
    expect(splitDataset(d.items, { train: 0.5, validation: 0, test: 0.5 }, 7)).toEqual(split); // deterministic
  });

  test('TCGA@Focus: the two real patches at their published paths, out of focus = 1', () => {
    const dir = path.join(root, 'tcga');
    const list = readFileSync(shared('data', 'labels', 'TCGA@Focus.txt'), 'utf8').split('\n');
    const rows = Object.values(tcgaImages).map((f) => list.find((l) => l.includes(f.replace('TCGA@Focus_', '') + ',') || l.split(',')[0]!.endsWith('/' + f.replace('TCGA@Focus_', '')))!);
    for (const [i, f] of Object.values(tcgaImages).entries()) {
      const rel = rows[i]!.split(',')[0]!;
      mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
      copyFileSync(shared('data', 'tcga-focus', f), path.join(dir, rel));
    }
    writeFileSync(path.join(dir, 'TCGA@Focus.txt'), rows.join('\n') + '\n');
    const d = loadDataset('tcga', dir, path.join(dir, 'TCGA@Focus.txt'));
    expect(d.items.map((i) => i.target)).toEqual([0, 1]); // in focus, out of focus (data/README.md)
    // fqa-scan eval on it: the default model ranks the out-of-focus patch higher, so ROC-AUC = 1.
    const r = spawnSync(process.execPath, [path.join(repoRoot, 'packages', 'cli', 'bin', 'fqa-scan.js'), 'eval', '--dataset', 'tcga', '--root', dir, '--labels', path.join(dir, 'TCGA@Focus.txt'), '--out', path.join(dir, 'eval.json')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rocAuc\t1\.0000/);
    const json = JSON.parse(readFileSync(path.join(dir, 'eval.json'), 'utf8'));
    expect(json.models[0].metrics.averagePrecision).toBe(1);
    expect(json.summary.averagePrecision).toEqual({ mean: 1, std: null, n: 1 });
    expect(json.models[0].scores).toHaveLength(2);
  });

  test('BioImage (BBBC006): real 16-bit TIFFs, label |l|; DeepFocus |l - 5|; generic CSV', async () => {
    const dir = path.join(root, 'bioimage');
    mkdirSync(dir);
    // labels.csv gives the published (DARTS-FQA) label for the z00 images only.
    const rows = readFileSync(shared('data', 'bbbc006', 'labels.csv'), 'utf8').trim().split('\n').slice(1).filter((r) => r.split(',')[3] !== '').filter((_, i) => i % 6 === 0);
    const meta = rows.map((r) => {
      const [rel, , , label] = r.split(',');
      copyFileSync(shared('data', 'bbbc006', rel!), path.join(dir, path.basename(rel!)));
      return `${path.basename(rel!)},${label}`;
    });
    writeFileSync(path.join(dir, 'bioimage_full_metadata.csv'), meta.join('\n') + '\n');
    const b = loadDataset('bioimage', dir, path.join(dir, 'bioimage_full_metadata.csv'));
    b.items.forEach((item, i) => expect(item.target).toBe(Math.abs(Number(meta[i]!.split(',')[1]))));
    const stats = await channelStats(b.items.slice(0, 2));
    expect(stats.mean[0]).toBeCloseTo(stats.mean[1], 9); // grey: three equal channels
    expect(stats.std[0]).toBeGreaterThan(0);

    const deep = path.join(root, 'deepfocus');
    mkdirSync(deep);
    const png = await sharp(shared('data', 'tiles', 'ihc.png')).extract({ left: 0, top: 0, width: 64, height: 64 }).png().toBuffer();
    for (const n of ['patch_94945.png', 'patch_55478.png', 'patch_147075.png']) writeFileSync(path.join(deep, n), png);
    writeFileSync(path.join(deep, 'deepfocus_full_metadata.csv'), 'patch_94945.png,7\npatch_55478.png,8\npatch_147075.png,2\n');
    expect(loadDataset('deepfocus', deep, path.join(deep, 'deepfocus_full_metadata.csv')).items.map((i) => i.target)).toEqual([2, 3, 3]);

    writeFileSync(path.join(deep, 'labels.csv'), 'file,label\npatch_94945.png,0.5\n');
    expect(loadDataset('csv', deep, path.join(deep, 'labels.csv')).items[0]!.target).toBe(0.5);
  });

  test('channel statistics match sharp\'s own per-channel means', async () => {
    const file = shared('data', 'tcga-focus', tcgaImages['tcga-out-of-focus']);
    const ours = await channelStats([{ file, target: 1, label: 1, group: 'a' }]);
    const theirs = await sharp(file).removeAlpha().stats();
    theirs.channels.slice(0, 3).forEach((c, i) => {
      expect(ours.mean[i]).toBeCloseTo(c.mean / 255, 6);
      expect(ours.std[i]).toBeCloseTo(c.stdev / 255, 3);
    });
  });

  test('bad dataset folders are clear errors', () => {
    const dir = path.join(root, 'bad');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'a.png'), 'x');
    writeFileSync(path.join(dir, 'missing.csv'), 'file,label\nnot-there.png,1\n');
    expect(() => loadDataset('csv', dir, path.join(dir, 'missing.csv'))).toThrow(/missing\.csv:2: image .*not-there\.png not found/);
    writeFileSync(path.join(dir, 'bad.csv'), 'file,label\na.png,blurry\n');
    expect(() => loadDataset('csv', dir, path.join(dir, 'bad.csv'))).toThrow(/bad\.csv:2: expected a number for label but found 'blurry'/);
    writeFileSync(path.join(dir, 'header.csv'), 'a.png,1\n');
    expect(() => loadDataset('csv', dir, path.join(dir, 'header.csv'))).toThrow(/'file,label' header/);
    expect(() => loadDataset('csv', path.join(dir, 'nope'), path.join(dir, 'bad.csv'))).toThrow(/dataset folder not found/);
    writeFileSync(path.join(dir, 'one.csv'), 'file,label\na.png,1\n');
    const one = loadDataset('csv', dir, path.join(dir, 'one.csv'));
    expect(() => splitDataset(one.items, { train: 0.5, validation: 0, test: 0.5 }, 1)).toThrow(/split is empty/);
  });
});
