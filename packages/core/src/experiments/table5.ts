/**
 * The ten networks of the paper's transfer experiment and its published Table 5 (transfer to
 * TCGA@Focus: ROC-AUC and PR-AUC in %, mean and standard deviation over five trials), for the
 * tables fqa writes beside its own numbers. A network is a registry architecture plus, for
 * FocusLiteNN, its kernel count; the variant per dataset (DARTS-FQA genotype, EONSS definition)
 * comes from the dataset preset.
 */
import { UsageError } from '../errors.js';

export interface TransferNetwork {
  /** The --archs name. */
  name: string;
  /** As the paper's Table 5 writes it. */
  label: string;
  architecture: string;
  kernels?: number;
}

export const TABLE5_NETWORKS: readonly TransferNetwork[] = [
  { name: 'focuslitenn-1', label: 'FocusLiteNN (1 kernel)', architecture: 'focuslitenn', kernels: 1 },
  { name: 'focuslitenn-2', label: 'FocusLiteNN (2 kernel)', architecture: 'focuslitenn', kernels: 2 },
  { name: 'focuslitenn-10', label: 'FocusLiteNN (10 kernel)', architecture: 'focuslitenn', kernels: 10 },
  { name: 'eonss', label: 'EONSS', architecture: 'eonss' },
  { name: 'densenet13', label: 'DenseNet-13', architecture: 'densenet13' },
  { name: 'mobilenetv2', label: 'MobileNetv2', architecture: 'mobilenetv2' },
  { name: 'resnet10', label: 'ResNet-18 (ResNet-10)', architecture: 'resnet10' },
  { name: 'resnet50', label: 'ResNet-50', architecture: 'resnet50' },
  { name: 'resnet101', label: 'ResNet-101', architecture: 'resnet101' },
  { name: 'darts-fqa', label: 'DARTS-FQA', architecture: 'darts-fqa' },
];

export function getTransferNetwork(name: string): TransferNetwork {
  const n = TABLE5_NETWORKS.find((x) => x.name === name);
  if (!n) throw new UsageError(`Expected one of ${TABLE5_NETWORKS.map((x) => x.name).join(', ')} for archs but received '${name}'`);
  return n;
}

/** Mean and standard deviation in %, as printed. */
export interface PaperCell {
  roc: [number, number];
  pr: [number, number];
}

/** Table 5 columns, in the paper's order. */
export const TABLE5_DATASETS = ['focuspath', 'focuspath64', 'bioimage', 'bioimage64', 'deepfocus'] as const;

// Row per network: ROC mean, std, PR mean, std for each column of TABLE5_DATASETS (null: '—').
const rows: Record<string, (number[] | null)[]> = {
  'focuslitenn-1': [[93.35, 0.0, 84.83, 0.0], [93.3, 0.06, 86.78, 0.15], [93.22, 0.07, 84.78, 0.09], [94.36, 0.14, 87.97, 0.23], [87.29, 0.07, 76.49, 0.14]],
  'focuslitenn-2': [[93.14, 0.03, 84.83, 0.02], [94.51, 0.23, 88.41, 0.4], [92.88, 0.24, 84.36, 0.62], [94.47, 0.03, 87.28, 0.07], [73.48, 1.95, 47.81, 3.34]],
  'focuslitenn-10': [[93.63, 0.25, 86.48, 0.32], [93.86, 0.17, 87.86, 0.28], [91.87, 0.92, 83.66, 1.31], [94.06, 0.31, 87.16, 0.57], [60.15, 3.85, 27.76, 3.02]],
  eonss: [[91.03, 0.09, 85.15, 0.1], [90.68, 0.34, 83.11, 0.31], [86.47, 3.29, 73.8, 6.38], [93.54, 0.21, 86.27, 0.52], [67.06, 4.78, 35.84, 7.56]],
  densenet13: [[95.64, 0.3, 89.85, 0.4], [93.28, 0.3, 85.28, 0.4], [92.76, 1.26, 84.37, 2.5], [90.18, 1.19, 78.87, 1.79], [61.73, 8.08, 37.88, 11.5]],
  mobilenetv2: [[94.34, 0.52, 86.26, 1.45], [92.93, 0.63, 83.83, 0.98], [94.29, 0.55, 87.16, 1.0], [91.39, 0.37, 80.72, 1.16], [70.69, 2.31, 38.63, 2.69]],
  resnet10: [[94.83, 1.04, 89.85, 1.11], [93.28, 0.51, 86.73, 0.48], [88.48, 2.71, 80.97, 2.67], [91.29, 0.59, 79.26, 0.81], [61.68, 5.41, 29.17, 5.84]],
  resnet50: [[94.85, 0.59, 88.01, 0.73], [93.14, 0.6, 86.08, 0.37], [93.42, 0.14, 87.33, 0.69], [91.31, 0.25, 80.02, 0.84], [63.32, 7.29, 34.32, 8.49]],
  resnet101: [[95.01, 0.46, 88.67, 0.86], [92.8, 0.73, 85.8, 0.82], [94.18, 0.65, 86.65, 0.78], [91.03, 0.5, 79.91, 1.28], [60.71, 6.24, 34.49, 10.4]],
  'darts-fqa': [null, [92.34, 0.8, 85.09, 0.74], null, [94.65, 1.01, 83.97, 2.45], [82.58, 0.81, 70.68, 0.55]],
};

/** The paper's cell, or null where it has none (DARTS-FQA at 235 px, and fqa's synthetic datasets). */
export function paperCell(network: string, dataset: string): PaperCell | null {
  const column = (TABLE5_DATASETS as readonly string[]).indexOf(dataset);
  const v = column < 0 ? null : rows[network]?.[column];
  return v ? { roc: [v[0]!, v[1]!], pr: [v[2]!, v[3]!] } : null;
}
