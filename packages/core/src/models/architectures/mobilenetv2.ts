/** torchvision mobilenet_v2(num_classes=1) (spec section 5): inverted residuals with ReLU6. */
import { GraphBuilder, type Graph } from '../graph.js';
import { registerArchitecture, variantFromHeader } from '../registry.js';

/** (expand ratio t, channels c, blocks n, first stride s) per stage, as torchvision. */
type MobileNetConfig = { stages: [number, number, number, number][]; stem: number; last: number };

function mobileNetV2(c: MobileNetConfig): Graph {
  const g = new GraphBuilder();
  let x = g.relu6(g.batchNorm(g.conv('input', 'features.0.0', c.stem, 3, { stride: 2, pad: 1 }), 'features.0.1'));
  let index = 1;
  for (const [t, channels, n, s] of c.stages) {
    for (let b = 0; b < n; b++) {
      const p = `features.${index++}.conv`;
      const inC = g.channels(x);
      const hidden = inC * t;
      const stride = b === 0 ? s : 1;
      let y = x;
      let layer = 0;
      if (t !== 1) {
        y = g.relu6(g.batchNorm(g.conv(y, `${p}.${layer}.0`, hidden, 1), `${p}.${layer}.1`));
        layer++;
      }
      y = g.relu6(g.batchNorm(g.conv(y, `${p}.${layer}.0`, hidden, 3, { stride, pad: 1, groups: hidden }), `${p}.${layer}.1`));
      layer++;
      y = g.batchNorm(g.conv(y, `${p}.${layer}`, channels, 1), `${p}.${layer + 1}`);
      x = stride === 1 && inC === channels ? g.add(x, y) : y;
    }
  }
  x = g.relu6(g.batchNorm(g.conv(x, `features.${index}.0`, c.last, 1), `features.${index}.1`));
  // classifier = [Dropout(0.2), Linear]: dropout is the identity at inference.
  return g.finish(g.linear(g.globalAvg(x), 'classifier.1', 1));
}

const variants: Record<string, MobileNetConfig> = {
  mobilenetv2: { stem: 32, last: 1280, stages: [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]] },
};

export const mobilenetv2 = registerArchitecture<MobileNetConfig>({
  name: 'mobilenetv2',
  title: 'MobileNetV2',
  variants,
  configFromHeader: (header, fail) => variantFromHeader(variants, header, fail),
  headerFields: (_config, variant) => ({ variant }),
  graph: mobileNetV2,
  patchSizes: () => [64, 235],
  defaultStride: (patch) => (patch === 64 ? 32 : 128),
  backends: () => ['onnx', 'tfjs'],
  trainers: ['torch', 'tfjs'],
  paper: [{ label: 'MobileNetV2', variant: 'mobilenetv2', layers: 21, params: 2.23e6, flops: 48.9e6, latencyMs: 7.39, hours: [93.98, 24.17, 7.61, 5.94] }],
});
