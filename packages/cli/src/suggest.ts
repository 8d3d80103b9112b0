/** "Did you mean": the closest known option to a mistyped one. */

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/** The known option closest to `given` (at most a third of its letters off), or null. */
export function closestOption(given: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const option of known) {
    const d = editDistance(given, option);
    if (d < bestDistance) [best, bestDistance] = [option, d];
  }
  return bestDistance <= Math.max(1, Math.floor(given.replace(/^-+/, '').length / 3)) ? best : null;
}

/** The long options a command's usage text lists (--name). */
export function optionsInUsage(usage: string): string[] {
  return [...new Set(usage.match(/--[a-z][a-z0-9-]*/g) ?? [])];
}
