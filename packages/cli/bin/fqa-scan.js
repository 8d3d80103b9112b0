#!/usr/bin/env node
// Entry point; the CLI lives in ../dist (built by `npm run build`, which `npm ci` runs).
import { main } from '../dist/index.js';

process.exitCode = await main(process.argv.slice(2));
