/**
 * torchvision ResNets v1.5 with one output (spec section 4): the paper's "ResNet-18" is
 * ResNet(BasicBlock, [1,1,1,1]) = ResNet-10 (4.91M parameters), plus ResNet-50 and ResNet-101.
 */
import { GraphBuilder, type Graph } from '../graph.js';
import { registerArchitecture, variantFromHeader, type ArchitectureDefinition, type PaperRow } from '../registry.js';

interface ResNetConfig {
  block: 'basic' | 'bottleneck';
  layers: [number, number, number, number];
}

function resNet(c: ResNetConfig): Graph {
  const g = new GraphBuilder();
  const expansion = c.block === 'basic' ? 1 : 4;
  let x = g.relu(g.batchNorm(g.conv('input', 'conv1', 64, 7, { stride: 2, pad: 3 }), 'bn1'));
  x = g.maxPool(x, 3, 2, 1);
  [64, 128, 256, 512].forEach((planes, i) => {
    for (let b = 0; b < c.layers[i]!; b++) {
      const p = `layer${i + 1}.${b}`;
      const stride = b === 0 && i > 0 ? 2 : 1;
      let y: string;
      if (c.block === 'basic') {
        y = g.relu(g.batchNorm(g.conv(x, `${p}.conv1`, planes, 3, { stride, pad: 1 }), `${p}.bn1`));
        y = g.batchNorm(g.conv(y, `${p}.conv2`, planes, 3, { pad: 1 }), `${p}.bn2`);
      } else {
        y = g.relu(g.batchNorm(g.conv(x, `${p}.conv1`, planes, 1), `${p}.bn1`));
        y = g.relu(g.batchNorm(g.conv(y, `${p}.conv2`, planes, 3, { stride, pad: 1 }), `${p}.bn2`));
        y = g.batchNorm(g.conv(y, `${p}.conv3`, planes * expansion, 1), `${p}.bn3`);
      }
      const shortcut = stride !== 1 || g.channels(x) !== planes * expansion ? g.batchNorm(g.conv(x, `${p}.downsample.0`, planes * expansion, 1, { stride }), `${p}.downsample.1`) : x;
      x = g.relu(g.add(y, shortcut));
    }
  });
  return g.finish(g.linear(g.globalAvg(x), 'fc', 1));
}

function resNetArchitecture(name: string, title: string, config: ResNetConfig, paper: PaperRow): ArchitectureDefinition<ResNetConfig> {
  const variants = { [name]: config };
  return registerArchitecture<ResNetConfig>({
    name,
    title,
    variants,
    configFromHeader: (header, fail) => variantFromHeader(variants, header, fail),
    headerFields: (_config, variant) => ({ variant }),
    graph: resNet,
    patchSizes: () => [64, 235],
    defaultStride: (patch) => (patch === 64 ? 32 : 128),
    backends: () => ['onnx', 'tfjs'],
    trainers: ['torch', 'tfjs'],
    paper: [paper],
  });
}

export const resnet10 = resNetArchitecture('resnet10', 'ResNet-10 (the paper\'s "ResNet-18")', { block: 'basic', layers: [1, 1, 1, 1] }, { label: 'ResNet-18', variant: 'resnet10', layers: 16, params: 4.91e6, flops: 145e6, latencyMs: 2.26, hours: [28.67, 7.41, 2.43, 1.94] });
export const resnet50 = resNetArchitecture('resnet50', 'ResNet-50', { block: 'bottleneck', layers: [3, 4, 6, 3] }, { label: 'ResNet-50', variant: 'resnet50', layers: 48, params: 23.5e6, flops: 667e6, latencyMs: 9.29, hours: [118.12, 31.79, 11.8, 11.55] });
export const resnet101 = resNetArchitecture('resnet101', 'ResNet-101', { block: 'bottleneck', layers: [3, 4, 23, 3] }, { label: 'ResNet-101', variant: 'resnet101', layers: 99, params: 42.5e6, flops: 1273e6, latencyMs: 18.7, hours: [237.49, 60.55, 21.68, 21.3] });
