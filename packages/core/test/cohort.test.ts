// The cohort view of index.html: groups by night, vendor and folder; a group is an outlier when its
// failures are far above the folder's rate for its size (binomial z > 3, at least 2 failures).
import { describe, expect, test } from 'vitest';
import { cohortGroups, cohortSection, isOutlierGroup } from '../src/report/cohort.js';

const row = (slide: string, verdict: string, pct: number, vendor = 'aperio', night = '2026-12-01') => ({
  slide, verdict, out_of_focus_pct_of_tissue: String(pct), vendor, scanned_at: `${night}T02:00:00.000Z`,
});

describe('cohort', () => {
  test('a bad scanner among good ones is marked; one unlucky slide is not', () => {
    const rows = [
      ...Array.from({ length: 40 }, (_, i) => row(`/a/s${i}.svs`, i === 0 ? 'fail' : 'pass', i === 0 ? 12 : 1)),
      ...Array.from({ length: 8 }, (_, i) => row(`/b/t${i}.ndpi`, i < 6 ? 'fail' : 'pass', i < 6 ? 30 : 2, 'hamamatsu')),
      row('/a/none.svs', 'no-tissue', Number.NaN),
    ];
    const byVendor = cohortGroups(rows, (r) => r.vendor!);
    expect(byVendor.map((g) => [g.key, g.slides, g.failed, g.outlier])).toEqual([['aperio', 40, 1, false], ['hamamatsu', 8, 6, true]]);
    expect(byVendor[1]!.shares).toHaveLength(8);
    const html = cohortSection(rows, 5);
    expect(html).toContain('hamamatsu (6/8 fail) ▲ outlier');
    expect(html.match(/<circle/g)).toHaveLength(48 * 3); // every judged slide once per grouping; no-tissue has no share
  });

  test('the outlier rule', () => {
    expect(isOutlierGroup(1, 1, 0.05)).toBe(false); // one slide is not a batch
    expect(isOutlierGroup(3, 10, 0.05)).toBe(true); // z = (3 - 0.5) / 0.69 = 3.6
    expect(isOutlierGroup(2, 20, 0.05)).toBe(false); // z = 1.0
    expect(isOutlierGroup(5, 5, 1)).toBe(false); // everything fails: nothing stands out
  });

  test('no slide with a verdict: no cohort section', () => {
    expect(cohortSection([row('/x.svs', 'error', Number.NaN)], 5)).toBe('');
  });
});
