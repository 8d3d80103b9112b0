// Shares in the files a user reads are percentages with the unit in the name; reports that earlier fqa
// versions wrote with fractions are still read, converted. And the `new` column of a summary that no
// single run wrote (the queue's report): the reports written since the previous summary.tsv.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { folderRows, readReportFolder, reportsWrittenSinceSummary, writeSummaryTsv } from '../src/report/folder.js';
import { fractionToPercent, optionsInPercent, summaryInPercent, upgradeReportJson } from '../src/scan/report-json.js';
import type { ScanSummary } from '../src/scan/scan-slide.js';

/** A slide report as fqa wrote it before shares were percentages (the fields of that version's summaryJson). */
const reportWithFractions = () => ({
  file: '/slides/a.svs',
  provenance: {
    fqa: '0.1.0', date: '2026-12-01T02:00:00.000Z', input: '/slides/a.svs', fingerprint: 'f', key: 'k',
    options: { patchSize: 235, stride: 235, mpp: null, threshold: 3.5, minTissue: 0.5, maxOutOfFocus: 0.07 },
  },
  summary: {
    tissueFraction: 0.528, penFraction: 0.0012, patchesScored: 10, outOfFocusFraction: 0.014,
    mean: -1, p10: -2, p90: 0.5, threshold: 3.5, verdict: 'pass', verdictReason: null,
  },
  summaryRow: '/slides/a.svs\taperio\t10\t10\t0.5000\t52.80\t10\t1.40\t-1\t-2\t0.5\tpass\t1.00\t\ta',
});

describe('shares in reports', () => {
  test('an old report is read with percent names and values; key order, other fields and nulls are kept', () => {
    const upgraded = upgradeReportJson(reportWithFractions());
    // Oracle: the percentages written out by hand (0.07 × 100 is 7.000000000000001 in float64).
    expect(upgraded.summary).toEqual({
      tissuePct: 52.8, penPctOfSlide: 0.12, patchesScored: 10, outOfFocusPctOfTissue: 1.4,
      mean: -1, p10: -2, p90: 0.5, threshold: 3.5, verdict: 'pass', verdictReason: null,
    });
    expect(Object.keys(upgraded.summary)).toEqual(['tissuePct', 'penPctOfSlide', 'patchesScored', 'outOfFocusPctOfTissue', 'mean', 'p10', 'p90', 'threshold', 'verdict', 'verdictReason']);
    expect(upgraded.provenance.options).toEqual({ patchSize: 235, stride: 235, mpp: null, threshold: 3.5, minTissuePct: 50, maxOutOfFocusPct: 7 });
    expect({ ...upgraded, summary: undefined, provenance: { ...upgraded.provenance, options: undefined } })
      .toEqual({ ...reportWithFractions(), summary: undefined, provenance: { ...reportWithFractions().provenance, options: undefined } });
    const noThreshold = reportWithFractions();
    (noThreshold.summary as { outOfFocusFraction: number | null }).outOfFocusFraction = null;
    expect(upgradeReportJson(noThreshold).summary).toMatchObject({ outOfFocusPctOfTissue: null });
  });

  test('a current report, an error report and what is not a report pass unchanged', () => {
    const current = upgradeReportJson(reportWithFractions());
    expect(upgradeReportJson(current)).toEqual(current);
    const errorReport = { file: 'x.svs', provenance: { fqa: '0.1.0', date: 'd', input: '/x.svs', fingerprint: null, key: null }, summary: { verdict: 'error' }, error: 'x.svs: empty file' };
    expect(upgradeReportJson(errorReport)).toEqual(errorReport);
    for (const other of [null, 3, 'text', [1, 2]]) expect(upgradeReportJson(other)).toEqual(other);
  });

  test('writing: the summary and options in percent, the same names and values that reading an old report gives', () => {
    const old = reportWithFractions();
    expect(summaryInPercent(old.summary as ScanSummary)).toEqual(upgradeReportJson(old).summary);
    expect(optionsInPercent(old.provenance.options)).toEqual(upgradeReportJson(old).provenance.options);
    expect([0.05, 0.07, 0.5, 1, 0.125, 1e-7].map(fractionToPercent)).toEqual([5, 7, 50, 100, 12.5, 0.00001]);
  });

  test('a folder of old reports: the artefact share in summary.tsv is in percent', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-report-json-'));
    writeFileSync(path.join(dir, 'a.json'), JSON.stringify(reportWithFractions(), null, 1));
    expect(readReportFolder(dir).get('a')).toMatchObject({ artefactPct: 0.12, verdict: 'pass', scannedAt: '2026-12-01T02:00:00.000Z' });
    expect(folderRows(dir)[0]!.slice(-3)).toEqual(['0.12', '2026-12-01T02:00:00.000Z', 'no']);
  });
});

describe('reports written since the previous summary.tsv (the queue report\'s `new`)', () => {
  const report = (file: string, stem: string, date: string) => {
    const json = reportWithFractions();
    json.file = file;
    json.provenance = { ...json.provenance, input: file, date };
    json.summaryRow = json.summaryRow.replace(/^\/slides\/a\.svs/, file).replace(/\ta$/, `\t${stem}`);
    return JSON.stringify(json);
  };

  test('none before the first summary; then only the reports added or rewritten', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fqa-new-since-'));
    // A slide whose name starts with '#' must not be taken for the summary's header.
    writeFileSync(path.join(dir, 'a.json'), report('/slides/a.svs', 'a', '2026-12-01T02:00:00.000Z'));
    writeFileSync(path.join(dir, '_hash.json'), report('#hash.svs', '_hash', '2026-12-01T02:00:00.000Z'));
    expect(reportsWrittenSinceSummary(dir)).toEqual(new Set(['a', '_hash']));
    await writeSummaryTsv(dir, ['# fqa test'], reportsWrittenSinceSummary(dir));
    expect(readFileSync(path.join(dir, 'summary.tsv'), 'utf8').split('\n').filter((l) => l.endsWith('\tyes'))).toHaveLength(2);
    // Nothing written since: nothing new.
    expect(reportsWrittenSinceSummary(dir)).toEqual(new Set());
    await writeSummaryTsv(dir, ['# fqa test'], reportsWrittenSinceSummary(dir));
    expect(reportsWrittenSinceSummary(dir)).toEqual(new Set());
    // One slide rescanned (a later date), one added: those two.
    writeFileSync(path.join(dir, 'a.json'), report('/slides/a.svs', 'a', '2026-12-02T02:00:00.000Z'));
    writeFileSync(path.join(dir, 'b.json'), report('/slides/b.svs', 'b', '2026-12-02T02:00:00.000Z'));
    expect(reportsWrittenSinceSummary(dir)).toEqual(new Set(['a', 'b']));
    // A summary from before the scanned_at column cannot tell: every report is new.
    writeFileSync(path.join(dir, 'summary.tsv'), '# fqa old\nslide\tverdict\treport\n/slides/a.svs\tpass\ta\n');
    expect(reportsWrittenSinceSummary(dir)).toEqual(new Set(['a', 'b', '_hash']));
  });
});
