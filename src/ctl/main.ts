#!/usr/bin/env node
import { supportedRuntime } from './runtime.js';

// The runtime check runs before anything else is loaded, so that an old Node fails with a clear
// message (or hands over to the project's Node 24) instead of somewhere deep in a dependency.
if (supportedRuntime()) await import('./cli.js');
