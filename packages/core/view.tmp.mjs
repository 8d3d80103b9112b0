import { writeDeepZoom } from '@fqa/core';
import { mkdtempSync } from 'node:fs';
const d = mkdtempSync('/tmp/view-');
const t = performance.now(); const c = process.cpuUsage();
const v = await writeDeepZoom(process.argv[2], d, 's', Number(process.argv[3] ?? 8192));
const u = process.cpuUsage(c);
console.log(v.width, v.height, ((performance.now()-t)/1000).toFixed(2), 's wall', ((u.user+u.system)/1e6).toFixed(2), 's cpu', (u.system/1e6).toFixed(2), 'sys');
