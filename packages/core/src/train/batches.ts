/**
 * Where training batches come from. Both trainers (native and tfjs) take a BatchSource, so the same
 * data, order and crops feed either one:
 * - patchSetSource: a fixed set of patches (synthetic defocus), shuffled each epoch;
 * - randomCropSource: a dataset of images, one random crop per image per epoch (torchvision's
 *   RandomCrop, as the FocusLiteNN repository trains). A crop size of 64 turns FocusPath and BioImage
 *   into the paper's FocusPath64 / BioImage64.
 */
import os from 'node:os';
import { InputError, UsageError } from '../errors.js';
import { decodeImage, type RgbImage } from '../image.js';
import type { DatasetItem } from './datasets.js';
import { shuffle } from './random.js';
import type { PatchSet } from './synthetic.js';

export interface Batch {
  /** count x size x size RGB u8, contiguous. */
  pixels: Uint8Array;
  labels: Float32Array;
  count: number;
}

export interface BatchSource {
  /** Patch size in pixels. */
  size: number;
  /** Samples per epoch. */
  count: number;
  /** One epoch of batches in a seeded random order; batches of fewer than 2 samples are dropped (PLCC needs 2). */
  epoch(random: () => number, batchSize: number): AsyncIterable<Batch>;
}

function shuffled(n: number, random: () => number): number[] {
  return shuffle(Array.from({ length: n }, (_, i) => i), random);
}

/**
 * Batches of a shuffled epoch; `prepare` (optional) runs once per batch before `fill` writes sample
 * `id` into slot `i` of the batch.
 */
async function* batchesOf(
  order: number[], batchSize: number, bytesPerSample: number, fill: (id: number, i: number, batch: Batch) => void | Promise<void>,
  prepare?: (ids: number[]) => Promise<void>,
): AsyncIterable<Batch> {
  for (let b0 = 0; b0 + 2 <= order.length; b0 += batchSize) {
    const ids = order.slice(b0, b0 + batchSize);
    await prepare?.(ids);
    const batch: Batch = { pixels: new Uint8Array(ids.length * bytesPerSample), labels: new Float32Array(ids.length), count: ids.length };
    for (const [i, id] of ids.entries()) await fill(id, i, batch);
    yield batch;
  }
}

export function patchSetSource(data: PatchSet): BatchSource {
  const bytes = data.size * data.size * 3;
  return {
    size: data.size,
    count: data.count,
    epoch(random, batchSize) {
      return batchesOf(shuffled(data.count, random), batchSize, bytes, (id, i, batch) => {
        batch.pixels.set(data.patches.subarray(id * bytes, (id + 1) * bytes), i * bytes);
        batch.labels[i] = data.labels[id]!;
      });
    },
  };
}

export interface RandomCropOptions {
  size: number;
  /** Decoded images are kept in memory up to this many bytes (default half the machine's memory); the rest are decoded again each epoch. */
  cacheBytes?: number;
  /** Called once per decoded image the first epoch (for progress). */
  onDecode?: (done: number, total: number) => void;
}

export function randomCropSource(items: DatasetItem[], o: RandomCropOptions): BatchSource {
  if (items.length < 2) throw new InputError(`training needs at least 2 images but the split has ${items.length}`);
  if (!Number.isInteger(o.size) || o.size < 8) throw new UsageError(`Expected a crop size of at least 8 px but received ${o.size}`);
  // Default: half of this machine's memory for decoded images (FocusPath's 5,200 images of 1024 px
  // are 16 GiB decoded); what does not fit is decoded again each epoch.
  const cacheBytes = o.cacheBytes ?? Math.floor(os.totalmem() / 2);
  const cache = new Map<number, RgbImage>();
  let cached = 0;
  let decodedOnce = 0;
  const image = async (index: number): Promise<RgbImage> => {
    const hit = cache.get(index);
    if (hit) return hit;
    const item = items[index]!;
    const decoded = await decodeImage(item.file);
    if (decoded.width < o.size || decoded.height < o.size) {
      throw new InputError(`${item.file}: image is ${decoded.width}x${decoded.height}, smaller than the ${o.size} px crop`);
    }
    if (cached + decoded.pixels.byteLength <= cacheBytes) {
      cache.set(index, decoded);
      cached += decoded.pixels.byteLength;
    }
    if (decodedOnce < items.length) o.onDecode?.(++decodedOnce, items.length);
    return decoded;
  };
  const bytes = o.size * o.size * 3;
  // The batch's images, decoded concurrently (sharp decodes on the libuv pool, all cores).
  let batchImages = new Map<number, RgbImage>();
  const prepare = async (ids: number[]) => {
    const decoded = await Promise.all(ids.map((id) => image(id)));
    batchImages = new Map(ids.map((id, i) => [id, decoded[i]!]));
  };
  return {
    size: o.size,
    count: items.length,
    epoch(random, batchSize) {
      return batchesOf(shuffled(items.length, random), batchSize, bytes, (id, i, batch) => {
        const img = batchImages.get(id)!;
        const x = Math.floor(random() * (img.width - o.size + 1));
        const y = Math.floor(random() * (img.height - o.size + 1));
        for (let row = 0; row < o.size; row++) {
          const from = (y + row) * img.rowStride + x * 3;
          batch.pixels.set(img.pixels.subarray(from, from + o.size * 3), i * bytes + row * o.size * 3);
        }
        batch.labels[i] = items[id]!.target;
      }, prepare);
    },
  };
}

/** Per-channel mean and standard deviation of a patch set's pixels (x / 255): "dataset" normalization. */
export function patchSetStats(data: PatchSet): { mean: [number, number, number]; std: [number, number, number] } {
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  for (let i = 0; i < data.patches.length; i++) {
    const v = data.patches[i]! / 255;
    sum[i % 3]! += v;
    sq[i % 3]! += v * v;
  }
  const n = data.patches.length / 3;
  const mean = sum.map((s) => s / n) as [number, number, number];
  return { mean, std: sq.map((s, c) => Math.sqrt(Math.max(1e-12, s / n - mean[c]! ** 2))) as [number, number, number] };
}

/** The patches `ids` of a patch set, in that order, as a new patch set (a split's share). */
export function patchSubset(data: PatchSet, ids: number[]): PatchSet {
  const bytes = data.size * data.size * 3;
  const patches = new Uint8Array(ids.length * bytes);
  const labels = new Float32Array(ids.length);
  ids.forEach((id, i) => {
    patches.set(data.patches.subarray(id * bytes, (id + 1) * bytes), i * bytes);
    labels[i] = data.labels[id]!;
  });
  return { patches, labels, count: ids.length, size: data.size, ...(data.crops ? { crops: Uint32Array.from(ids, (id) => data.crops![id]!) } : {}) };
}

/**
 * A seeded split of a patch set by source crop (PatchSet.crops): `first` takes whole crops in
 * shuffled order until it holds at least `firstCount` patches, `rest` the others. The levels of one
 * crop are the same tissue, so a crop on both sides would let validation see its training tissue.
 * With one patch per crop this is a per-patch shuffle (the same order as before crops were kept).
 */
export function splitByCrop(data: PatchSet, firstCount: number, random: () => number): { first: PatchSet; rest: PatchSet } {
  const members = new Map<number, number[]>();
  for (let id = 0; id < data.count; id++) {
    const crop = data.crops ? data.crops[id]! : id;
    const ids = members.get(crop);
    if (ids) ids.push(id);
    else members.set(crop, [id]);
  }
  const order = shuffle([...members.keys()], random);
  const first: number[] = [];
  const rest: number[] = [];
  for (const crop of order) (first.length < firstCount ? first : rest).push(...members.get(crop)!);
  return { first: patchSubset(data, first), rest: patchSubset(data, rest) };
}
