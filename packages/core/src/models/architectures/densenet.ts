/**
 * DenseNet-13 = torchvision DenseNet(block_config=(1,1,1,1), num_classes=1): growth 32, 64 initial
 * features, bottleneck 4x, one dense layer per block (spec: reference/deep/models.md section 3).
 */
import { GraphBuilder, type Graph } from '../graph.js';
import { NO_NORMALIZATION, registerArchitecture, variantFromHeader } from '../registry.js';

interface DenseNetConfig {
  blocks: number[];
  growth: number;
  initialFeatures: number;
  bottleneck: number;
}

function denseNet(c: DenseNetConfig): Graph {
  const g = new GraphBuilder();
  let x = g.conv('input', 'features.conv0', c.initialFeatures, 7, { stride: 2, pad: 3 });
  x = g.relu(g.batchNorm(x, 'features.norm0'));
  x = g.maxPool(x, 3, 2, 1);
  c.blocks.forEach((layers, b) => {
    for (let l = 1; l <= layers; l++) {
      const p = `features.denseblock${b + 1}.denselayer${l}`;
      let y = g.conv(g.relu(g.batchNorm(x, `${p}.norm1`)), `${p}.conv1`, c.bottleneck * c.growth, 1);
      y = g.conv(g.relu(g.batchNorm(y, `${p}.norm2`)), `${p}.conv2`, c.growth, 3, { pad: 1 });
      x = g.concat([x, y]);
    }
    if (b < c.blocks.length - 1) {
      const p = `features.transition${b + 1}`;
      x = g.conv(g.relu(g.batchNorm(x, `${p}.norm`)), `${p}.conv`, Math.floor(g.channels(x) / 2), 1);
      x = g.avgPool(x, 2);
    }
  });
  x = g.globalAvg(g.relu(g.batchNorm(x, 'features.norm5')));
  return g.finish(g.linear(x, 'classifier', 1));
}

const variants = { densenet13: { blocks: [1, 1, 1, 1], growth: 32, initialFeatures: 64, bottleneck: 4 } };

export const densenet13 = registerArchitecture<DenseNetConfig>({
  name: 'densenet13',
  title: 'DenseNet-13',
  variants,
  configFromHeader: (header, fail) => variantFromHeader(variants, header, fail),
  headerFields: (_config, variant) => ({ variant }),
  graph: denseNet,
  patchSizes: () => [64, 235],
  defaultStride: (patch) => (patch === 64 ? 32 : 128),
  backends: () => ['onnx', 'tfjs'],
  trainers: ['torch', 'tfjs'],
  torchChannelsLast: true,
  reference: {
    variantOf: () => 'densenet13',
    normalization: NO_NORMALIZATION,
    normalizationNote: 'FocusLiteNN trains and tests DenseNet-13 on ToTensor() output (x / 255, no normalization)',
    license: 'as the source weights (FocusLiteNN reference: Prosperity Public License 3.0.0, noncommercial)',
  },
  paper: [{ label: 'DenseNet-13', variant: 'densenet13', layers: 8, params: 0.19e6, flops: 52.4e6, latencyMs: 2.24, hours: [28.51, 8.46, 2.69, 1.75] }],
});
