/**
 * Every architecture fqa knows, registered in the paper's order (Table 3). A new architecture is
 * one file in architectures/ plus its line here and its test.
 */
import './architectures/focuslitenn.js';
import './architectures/eonss.js';
import './architectures/densenet.js';
import './architectures/mobilenetv2.js';
import './architectures/resnet.js';
import './architectures/darts-fqa.js';

export * from './registry.js';
export * from './graph.js';
