import { openSource } from '@fqa/core';
const s = await openSource(process.argv[2]); const L = Number(process.argv[3]);
const lv = s.levels[L]; if (process.argv[4]) s.readInBands(L); const t = performance.now(); const c = process.cpuUsage();
const rows = Math.floor(8*2**20/(lv.width*3));
for (let y=0;y<lv.height;y+=rows) await s.readRegion(L, 0, Math.ceil(y*lv.downsample), lv.width, Math.min(rows, lv.height-y));
const u = process.cpuUsage(c);
console.log(lv.width, lv.height, ((performance.now()-t)/1000).toFixed(2), 's wall', ((u.user+u.system)/1e6).toFixed(2), 's cpu', (u.system/1e6).toFixed(2), 'sys', JSON.stringify(s.readerStats()));
